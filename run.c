#include <sys/wait.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
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
	case REASON_NONE:
	case REASON_ERROR:
		break;
	}
	return "error";
}

void
run_write_status(struct run *r)
{
	bool started = r->cmd_pid > 0 && r->reason != REASON_EXEC_FAILED;
	struct status_info si = {
		.command = r->opt.command,
		.pid = r->front != 0 ? r->front : r->self,
		.command_pid = started ? r->cmd_pid : 0,
		.started = r->started_rt,
		.started_mono = r->started,
		.reason = status_reason(r->reason),
		.signal = r->reason == REASON_CANCEL ? r->cancel_sig : 0,
		.exit_status = r->exit_status,
		.command_ended = started && !r->cmd_alive,
		.command_wstatus = r->cmd_wstatus,
		.stopped = r->stop.signalled > 0 || r->stop.escalated,
		.stop_signal = r->opt.kill_after_ns == 0 ? SIGKILL :
			r->opt.stop_signal,
		.escalated = r->stop.escalated,
		.signalled = r->stop.signalled,
		.leftovers = r->reason == REASON_EXIT ? r->stop.signalled : 0,
		.td = &r->td,
		.locks = r->locks,
		.nlocks = r->nlocks_tried,
	};

	if (r->shared != NULL) {
		r->shared->status_written = 1;
	}
	status_write(&r->status, &si);
}

void
run_free(struct run *r)
{
	tree_skip_free(&r->skip);
	tree_stop_free(&r->stop);
	tree_stop_free(&r->td.stop);
	lock_free(r->locks, r->nlocks);
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
		return r->timeout_at;
	case RUN_STOPPING:
		return tree_stop_deadline(&r->stop);
	case RUN_TEARDOWN:
		return teardown_deadline(&r->td);
	case RUN_DONE:
		break;
	}
	return UINT64_MAX;
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
	return done;
}
