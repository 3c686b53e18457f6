#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "run.h"
#include "teardown.h"

/*
 * The front stays in the caller's process group, so that a runner's group
 * SIGTERM and a terminal's Ctrl-C reach it, while the supervisor, in a
 * session of its own, survives a group SIGKILL.  The front decides nothing
 * about the run: it relays what it hears and waits.  Only when the
 * supervisor dies does it act, on the orphans that were reparented to it:
 * it stops them, and runs or finishes the teardown.
 */
struct front {
	struct run *r;
	pid_t sup;
	bool sup_alive;
	bool sup_crashed;	/* it died of a signal */
	bool parent_told;
	int status;
};

static void
begin_stop(struct front *f, uint64_t now)
{
	struct run *r = f->r;
	uint64_t kill_at = r->shared->kill_at;

	r->stop.sig = r->opt.stop_signal;
	/*
	 * If the supervisor died while stopping the run, only what was left
	 * of its grace: the bound on our lifetime holds.
	 */
	r->stop.grace_ns = kill_at == 0 ? r->opt.kill_after_ns :
		kill_at > now ? kill_at - now : 0;
	r->stop.group = 0;
	r->stop.skip = &r->skip;
	tree_stop_begin(&r->stop, now);
	r->state = RUN_STOPPING;
}

/*
 * The orphans are gone.  If the supervisor crashed before it claimed the
 * teardown, and the run had started COMMAND, the teardown is ours.
 */
static void
orphans_gone(struct front *f, uint64_t now)
{
	struct run *r = f->r;
	struct shared *sh = r->shared;
	enum run_reason reason;
	char cs[64];

	r->state = RUN_DONE;
	/* COMMAND's pid is in the slot as soon as it is forked. */
	if (!f->sup_crashed || sh->cmd_pid == 0) {
		return;
	}
	/* Its reason if it got as far as one; else a cut-short run: cancel. */
	reason = sh->reason != REASON_NONE ? (enum run_reason)sh->reason :
		REASON_CANCEL;
	if (!teardown_is_due(&r->td, run_event(reason, sh->exit_status)) ||
	    !teardown_claim(&sh->teardown_claim, TEARDOWN_BY_FRONT)) {
		return;
	}
	run_command_status(sh->cmd_state, sh->cmd_wstatus, cs, sizeof(cs));
	if (teardown_start(&r->td, run_reason_name(reason), f->status, cs,
			   r->self, &r->sig, now) == 0) {
		r->state = RUN_TEARDOWN;
	}
}

static void
supervisor_ended(struct front *f, int ws, uint64_t now)
{
	struct run *r = f->r;
	char name[32], stop[32];
	int n;

	f->sup_alive = false;
	f->sup_crashed = !WIFEXITED(ws);
	if (f->sup_crashed && r->shared->cmd_pid != 0 &&
	    r->shared->cmd_state == CMD_NOT_STARTED) {
		/* Forked, and the supervisor died before it said so. */
		r->shared->cmd_state = CMD_RUNNING;
	}
	if (f->sup_crashed && r->shared->cmd_state == CMD_RUNNING) {
		/*
		 * COMMAND dies with the supervisor (its death signal is
		 * SIGKILL) and is ours now.  Collect it first: its children
		 * are handed to us as it dies, and then the sweep sees them.
		 */
		pid_t pid;
		int cws;

		do {
			pid = waitpid(r->shared->cmd_pid, &cws, 0);
		} while (pid < 0 && errno == EINTR);
		if (pid == r->shared->cmd_pid) {
			r->shared->cmd_wstatus = cws;
			r->shared->cmd_state = CMD_ENDED;
		}
	}
	f->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : EXIT_FAILURE_SUPERVISE;
	sig_name(WIFSIGNALED(ws) ? WTERMSIG(ws) : 0, name, sizeof(name));
	if (f->sup_crashed &&
	    r->shared->teardown_claim == TEARDOWN_BY_SUPERVISOR &&
	    !r->td.rec->done && r->td.rec->pid == 0) {
		/* It claimed the teardown but died before it forked it. */
		r->shared->teardown_claim = TEARDOWN_UNCLAIMED;
	}
	if (f->sup_crashed &&
	    r->shared->teardown_claim == TEARDOWN_BY_SUPERVISOR &&
	    !r->td.rec->done) {
		/* The run's tree was gone before the teardown started. */
		log_error("supervisor process %d died (%s) during the teardown; "
			  "the teardown goes on", (int)f->sup, name);
		teardown_adopt(&r->td, now);
		r->state = RUN_TEARDOWN;
		return;
	}
	sig_name(r->opt.kill_after_ns == 0 ? SIGKILL : r->opt.stop_signal,
		 stop, sizeof(stop));
	begin_stop(f, now);
	n = r->stop.signalled;
	if (f->sup_crashed && n == 0) {
		log_error("supervisor process %d died (%s); no orphaned process "
			  "is left", (int)f->sup, name);
	} else if (f->sup_crashed) {
		log_error("supervisor process %d died (%s); stopping %d orphaned "
			  "process%s with %s", (int)f->sup, name, n,
			  n == 1 ? "" : "es", stop);
	} else if (n > 0) {
		/* It stops its tree before it exits; this is only a backstop. */
		log_info("stopping %d leftover process%s with %s", n,
			 n == 1 ? "" : "es", stop);
	}
	if (r->stop.phase == TREE_DONE) {
		orphans_gone(f, now);
	}
}

static void
reap(struct front *f, uint64_t now)
{
	pid_t pid;
	int ws;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		if (pid == f->sup && f->sup_alive) {
			supervisor_ended(f, ws, now);
		} else {
			/* The teardown, an orphan, or a child of our caller's. */
			teardown_reaped(&f->r->td, pid, ws);
			tree_skip_remove(&f->r->skip, pid);
		}
	}
}

static void
relay(struct front *f, int sig, pid_t from)
{
	union sigval v = { .sival_int = (int)from };

	/* The supervisor is our unreaped child: its pid cannot be reused. */
	sigqueue(f->sup, sig, v);
}

static void
on_parent_death(struct front *f)
{
	struct run *r = f->r;

	if (r->parent == 0 || f->parent_told) {
		return;
	}
	/* Only a changed parent pid tells a dead parent from a thread. */
	if (getppid() == r->parent) {
		log_debug("a thread of parent process %d ended; the process "
			  "lives on", (int)r->parent);
		return;
	}
	f->parent_told = true;
	if (f->sup_alive) {
		relay(f, SIG_PARENT_DEATH, r->parent);
	} else if (r->state == RUN_TEARDOWN) {
		log_info("parent process %d died; the teardown goes on",
			 (int)r->parent);
	}
}

static void
on_signal(struct front *f, const struct signalfd_siginfo *si, uint64_t now)
{
	struct run *r = f->r;
	int sig = (int)si->ssi_signo;
	bool cancel = sig == SIGTERM || sig == SIGINT || sig == SIGHUP ||
		sig == SIGQUIT;
	char name[32];

	if (sig == SIGCHLD) {
		reap(f, now);
	} else if (sig == SIG_PARENT_DEATH) {
		on_parent_death(f);
	} else if (sig == SIG_FRONT_DEATH) {
		return;
	} else if (f->sup_alive) {
		relay(f, sig, (pid_t)si->ssi_pid);
	} else if (r->state == RUN_STOPPING && cancel) {
		tree_stop_hurry(&r->stop, now);
	} else if (r->state == RUN_TEARDOWN && (cancel || sig == SIGALRM)) {
		log_info("%s during the teardown; ignored",
			 sig_name(sig, name, sizeof(name)));
	}
}

static void
on_time(struct front *f, uint64_t now, bool reaped)
{
	struct run *r = f->r;

	if (r->state == RUN_STOPPING && run_stop_step(r, now, reaped)) {
		orphans_gone(f, now);
	} else if (r->state == RUN_TEARDOWN &&
		   (reaped || now >= teardown_deadline(&r->td)) &&
		   teardown_step(&r->td, now)) {
		r->state = RUN_DONE;
	}
}

int
front_run(struct run *r, pid_t supervisor)
{
	struct front f = {
		.r = r, .sup = supervisor, .sup_alive = true,
		.status = EXIT_FAILURE_SUPERVISE,
	};
	struct signalfd_siginfo si;
	bool reaped;
	uint64_t now;
	int rc;

	r->state = RUN_RUNNING;
	r->timeout_at = UINT64_MAX;	/* the supervisor keeps the time */
	teardown_keep_reader(&r->td);
	/*
	 * The supervisor owns the run; once it is gone, any orphan it left
	 * is ours: never leave while one lives.  Only the teardown's output
	 * pipe is read here, and only once the teardown is ours.
	 */
	while (r->state != RUN_DONE) {
		rc = sig_wait_fd(&r->sig, r->state == RUN_TEARDOWN ?
				 r->td.out_fd : -1, run_next_deadline(r));
		now = tree_now();
		reaped = false;
		if (rc > 0 && (rc & SIG_WAIT_FD)) {
			teardown_pump(&r->td);
		}
		while (rc > 0 && (rc & SIG_WAIT_SIGNAL) &&
		       (rc = sig_read(&r->sig, &si)) > 0) {
			reaped |= si.ssi_signo == SIGCHLD;
			on_signal(&f, &si, now);
		}
		if (rc < 0) {
			log_error("cannot wait for events: %s", strerror(errno));
			usleep(10000);
		}
		on_time(&f, now, reaped);
	}
	/*
	 * The supervisor writes the status record; if it died first, what
	 * it shared and what we did since make the record.
	 */
	if (!r->shared->status_written) {
		r->reason = REASON_ERROR;
		r->exit_status = f.status;
		r->cmd_pid = r->shared->cmd_pid;
		r->cmd_alive = r->shared->cmd_state != CMD_ENDED;
		r->cmd_wstatus = r->shared->cmd_wstatus;
		run_write_status(r);
	}
	return f.status;
}
