#include <sys/mman.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "parse.h"
#include "run.h"

unsigned
run_event(enum run_reason reason, int exit_status)
{
	switch (reason) {
	case REASON_TIMEOUT:
		return EVENT_TIMEOUT;
	case REASON_CANCEL:
	case REASON_PARENT_DEATH:
	case REASON_HANGUP:
	case REASON_LOCK_LOST:
		return EVENT_CANCEL;
	case REASON_EXIT:
		return exit_status == 0 ? EVENT_SUCCESS : EVENT_FAILURE;
	case REASON_NONE:
	case REASON_EXEC_FAILED:
	case REASON_ERROR:
	case REASON_LOCK_TIMEOUT:
		break;
	}
	return EVENT_FAILURE;
}

const char *
run_reason_name(enum run_reason reason)
{
	switch (reason) {
	case REASON_TIMEOUT:
		return "timeout";
	case REASON_CANCEL:
		return "cancel";
	case REASON_PARENT_DEATH:
		return "parent-death";
	case REASON_HANGUP:
		return "hangup";
	case REASON_LOCK_LOST:
		return "lock-lost";
	case REASON_NONE:
	case REASON_EXIT:
	case REASON_EXEC_FAILED:
	case REASON_ERROR:
	case REASON_LOCK_TIMEOUT:
		break;
	}
	return "exit";
}

const char *
run_command_status(int cmd_state, int wstatus, char *buf, size_t len)
{
	char name[32];

	if (cmd_state == CMD_NOT_STARTED) {
		snprintf(buf, len, "not started");
	} else if (cmd_state == CMD_RUNNING) {
		/* The supervisor died; COMMAND's death signal is SIGKILL. */
		snprintf(buf, len, "killed by SIGKILL");
	} else if (WIFSIGNALED(wstatus)) {
		snprintf(buf, len, "killed by %s",
			 sig_name(WTERMSIG(wstatus), name, sizeof(name)));
	} else {
		snprintf(buf, len, "exited %d", WEXITSTATUS(wstatus));
	}
	return buf;
}

/* The "reason" of the status record. */
static const char *
status_reason(enum run_reason reason)
{
	switch (reason) {
	case REASON_EXIT:
		return "exit";
	case REASON_TIMEOUT:
		return "timeout";
	case REASON_CANCEL:
		return "cancel";
	case REASON_PARENT_DEATH:
		return "parent-death";
	case REASON_EXEC_FAILED:
		return "exec-failed";
	case REASON_LOCK_TIMEOUT:
		return "lock-timeout";
	case REASON_HANGUP:
		return "hangup";
	case REASON_LOCK_LOST:
		return "lock-lost";
	case REASON_NONE:
	case REASON_ERROR:
		break;
	}
	return "error";
}

int
run_init(struct run *r)
{
	r->self = getpid();
	r->timeout_at = LOOP_NEVER;
	r->ancestor_fd = -1;
	cgroup_set_init(&r->cgs);
	r->sh = mmap(NULL, sizeof(*r->sh), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r->sh == MAP_FAILED) {
		r->sh = NULL;
		return -1;
	}
	return 0;
}

bool
run_cmd_alive(const struct run *r)
{
	return r->sh->cmd_state == CMD_RUNNING;
}

bool
run_set_reason(struct run *r, enum run_reason reason, int sig)
{
	if (r->sh->reason != REASON_NONE) {
		return false;
	}
	r->sh->reason = reason;
	r->sh->cancel_sig = sig;
	return true;
}

int
run_begin_stop(struct run *r, pid_t group, uint64_t grace_ns, uint64_t now)
{
	r->stop.sig = r->opt.stop_signal;
	r->stop.grace_ns = grace_ns;
	r->stop.group = group;
	r->stop.skip = &r->skip;
	r->stop.cg = r->cgs.active ? &r->cgs.run : NULL;
	tree_stop_begin(&r->stop, now);
	r->sh->kill_at = r->stop.phase == TREE_GRACE ? r->stop.grace_end : now;
	r->state = RUN_STOPPING;
	run_report_refusals(r, &r->stop, &r->refusals_reported);
	return r->stop.signalled;
}

void
run_report_refusals(struct run *r, struct tree_stop *ts, size_t *reported)
{
	const struct tree_refusal *t;

	for (; *reported < ts->refusals.n; (*reported)++) {
		t = &ts->refusals.v[*reported];
		log_error("cannot stop process %d (%s): %s; giving up on it "
			  "when the grace is over",
			  (int)t->pid, t->name, strerror(t->err));
	}
	if (ts->phase == TREE_DONE && ts->abandoned > r->sh->abandoned) {
		r->sh->abandoned = ts->abandoned;
		log_error("gave up on %d process%s that could not be stopped",
			  ts->abandoned, ts->abandoned == 1 ? "" : "es");
	}
}

void
run_write_status(struct run *r)
{
	struct shared *sh = r->sh;
	bool started = sh->cmd_pid > 0 && sh->reason != REASON_EXEC_FAILED;
	struct status_info si = {
		.command = r->opt.command,
		.pid = r->front != 0 ? r->front : r->self,
		.command_pid = started ? sh->cmd_pid : 0,
		.started = r->started_rt,
		.started_mono = r->started,
		.reason = status_reason(sh->reason),
		.signal = sh->reason == REASON_CANCEL ? sh->cancel_sig : 0,
		.exit_status = sh->exit_status,
		.command_ended = started && sh->cmd_state == CMD_ENDED,
		.command_wstatus = sh->cmd_wstatus,
		.stopped = r->stop.signalled > 0 || r->stop.escalated ||
			sh->abandoned > 0,
		.stop_signal = r->opt.kill_after_ns == 0 ? SIGKILL :
							   r->opt.stop_signal,
		.escalated = r->stop.escalated,
		.signalled = r->stop.signalled,
		.leftovers = sh->reason == REASON_EXIT ? r->stop.signalled : 0,
		.unstoppable = sh->abandoned,
		.containment = r->cgs.active ? "cgroup" : "sweep",
		.cause_pid = sh->reason == REASON_PARENT_DEATH ? sh->cause_pid :
								 0,
		.cause_ancestor = sh->cause_ancestor,
		.cause_fd = sh->reason == REASON_HANGUP ? sh->cause_fd : 0,
		.dropped = log_dropped(),
		.td = &r->td,
		.locks = r->locks,
		.nlocks = r->nlocks_tried,
	};

	sh->status_written = true;
	status_write(&r->status, &si);
}

void
run_free(struct run *r)
{
	cgroup_remove_set(&r->cgs);
	tree_skip_free(&r->skip);
	tree_stop_free(&r->stop);
	tree_stop_free(&r->td.stop);
	lock_free(r->locks, r->nlocks);
	remote_free(r->remote);
	r->remote = NULL;
	r->locks = NULL;
	r->nlocks = 0;
	free(r->status.base);
	r->status.base = NULL;
}

uint64_t
run_next_deadline(const struct run *r)
{
	switch (r->state) {
	case RUN_RUNNING:
		/* Stopped by job control, the run's time stands still. */
		return r->paused ? LOOP_NEVER : r->timeout_at;
	case RUN_STOPPING:
		return tree_stop_deadline(&r->stop);
	case RUN_TEARDOWN:
		return teardown_deadline(&r->td);
	case RUN_TREE_GONE:
		return 0;
	case RUN_DONE:
		break;
	}
	return LOOP_NEVER;
}

bool
run_stop_step(struct run *r, uint64_t now, bool reaped)
{
	bool was_grace = r->stop.phase == TREE_GRACE, done;
	char dur[32];

	/* After something was reaped, or at a deadline. */
	if (!reaped && now < tree_stop_deadline(&r->stop)) {
		return false;
	}
	done = tree_stop_step(&r->stop, now);
	if (was_grace && r->stop.escalated) {
		log_info("grace of %s over; sending SIGKILL to %d process%s",
			 fmt_duration(r->stop.grace_ns, dur, sizeof(dur)),
			 r->stop.killed, r->stop.killed == 1 ? "" : "es");
	}
	run_report_refusals(r, &r->stop, &r->refusals_reported);
	return done;
}
