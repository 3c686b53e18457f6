#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "locking.h"
#include "log.h"
#include "options.h"
#include "parse.h"
#include "run.h"
#include "signals.h"
#include "teardown.h"
#include "tree.h"

static int finish(struct run *r, int status);

/* Options parsed, or an exit status for --help, --version and errors. */
static int
parse_args(struct run *r, int argc, char **argv)
{
	char err[256];

	switch (opts_parse(&r->opt, argc, argv, err, sizeof(err))) {
	case OPTS_RUN:
		return -1;
	case OPTS_HELP:
		fputs(opts_usage, stdout);
		return fflush(stdout) == 0 ? 0 : EXIT_FAILURE_SUPERVISE;
	case OPTS_VERSION:
		printf("supervise %s\n", SUPERVISE_VERSION);
		return fflush(stdout) == 0 ? 0 : EXIT_FAILURE_SUPERVISE;
	case OPTS_ERROR:
		break;
	}
	log_error("%s", err);
	return EXIT_FAILURE_SUPERVISE;
}

/*
 * A closed standard descriptor would be taken by the next open(), and our
 * diagnostics or COMMAND's output would land in whatever file that was.
 */
static void
open_std_fds(void)
{
	int fd;

	while ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0 && fd <= 2) {
		fcntl(fd, F_SETFD, 0);
	}
	if (fd > 2) {
		close(fd);
	}
}

/*
 * Arms the parent-death signal, then checks that the parent is still the
 * one recorded before (the caller's pid, or --parent-pid): a parent that
 * died in between is caught here, a later death by the signal.  Returns
 * -1 when all is well, or the status to exit with: 129 when the parent is
 * already gone, 125 when it cannot be watched.
 */
static int
watch_parent(struct run *r)
{
	pid_t ppid = getppid();

	if (r->opt.ignore_parent_death) {
		return -1;
	}
	if (r->opt.parent_pid == 0 && ppid == 0) {
		/*
		 * PID 1 of a PID namespace: the parent is outside and cannot be
		 * told apart from a thread of it that ended (a container
		 * runtime's), and the kernel ends the namespace with us anyway.
		 */
		log_debug("parent is outside the PID namespace; not watched");
		return -1;
	}
	r->parent = r->opt.parent_pid != 0 ? r->opt.parent_pid : ppid;
	if (prctl(PR_SET_PDEATHSIG, SIG_PARENT_DEATH) < 0) {
		log_error("cannot watch the parent process: %s", strerror(errno));
		return EXIT_FAILURE_SUPERVISE;
	}
	if (getppid() != r->parent) {
		log_info("parent process %d died before the command started",
			 (int)r->parent);
		return 128 + SIGHUP;
	}
	return -1;
}

/* Sets the exit status from the reason, once the run is over. */
static void
settle_status(struct run *r)
{
	switch (r->reason) {
	case REASON_EXIT:
		r->exit_status = child_exit_status(r->cmd_wstatus);
		break;
	case REASON_TIMEOUT:
		r->exit_status = r->opt.preserve_status && !r->cmd_alive ?
			child_exit_status(r->cmd_wstatus) : EXIT_TIMEDOUT;
		break;
	case REASON_CANCEL:
		r->exit_status = 128 + r->cancel_sig;
		break;
	case REASON_PARENT_DEATH:
		r->exit_status = 128 + SIGHUP;
		break;
	case REASON_EXEC_FAILED:
		r->exit_status = child_exec_status(r->exec_errno);
		break;
	case REASON_LOCK_TIMEOUT:
		r->exit_status = EXIT_TEMPFAIL;
		break;
	case REASON_NONE:
	case REASON_ERROR:
		r->exit_status = EXIT_FAILURE_SUPERVISE;
		break;
	}
}

static void run_over(struct run *r, uint64_t now);

/* Starts the stop sequence for the reason just recorded. */
static void
begin_stop(struct run *r, uint64_t now)
{
	r->stop.sig = r->opt.stop_signal;
	r->stop.grace_ns = r->opt.kill_after_ns;
	/* Never our own group (--foreground), nor one we no longer own. */
	r->stop.group = r->cmd_alive && !r->opt.foreground ? r->cmd_pid : 0;
	r->stop.skip = &r->skip;
	tree_stop_begin(&r->stop, now);
	r->shared->kill_at = r->stop.phase == TREE_GRACE ? r->stop.grace_end : now;
	r->state = RUN_STOPPING;
	if (r->stop.phase == TREE_DONE) {
		run_over(r, now);
	}
}

static const char *
stop_sig_name(const struct run *r, char *buf, size_t len)
{
	return sig_name(r->opt.kill_after_ns == 0 ? SIGKILL : r->opt.stop_signal,
			buf, len);
}

/*
 * A cancel signal, the parent's death or a timeout: the first one ends the
 * run and decides the status; a cancel signal while the tree is being
 * stopped skips the rest of the grace.
 */
static void
end_run(struct run *r, enum run_reason reason, int sig, pid_t from,
	bool relayed, uint64_t now)
{
	char name[32], stop[32], dur[32], who[48] = "";

	if (r->state == RUN_STOPPING) {
		/*
		 * "pkill supervise" reaches the supervisor directly and through
		 * the front: one event, seen twice.  Only a real second signal
		 * skips the grace.
		 */
		if (reason == REASON_CANCEL && sig == r->cancel_sig &&
		    from == r->cancel_from && from != 0 &&
		    relayed != r->cancel_relayed) {
			log_debug("%s from pid %d seen twice; once counts",
				  sig_name(sig, name, sizeof(name)), (int)from);
			return;
		}
		if (reason == REASON_CANCEL && r->stop.phase == TREE_GRACE) {
			int n = tree_stop_hurry(&r->stop, now);
			r->shared->kill_at = now;
			log_info("%s again; sending SIGKILL to %d process%s now",
				 sig_name(sig, name, sizeof(name)), n,
				 n == 1 ? "" : "es");
		} else {
			log_info("%s while stopping; ignored",
				 reason == REASON_PARENT_DEATH ? "parent died" :
				 sig_name(sig, name, sizeof(name)));
		}
		return;
	}
	if (r->state == RUN_TEARDOWN) {
		/* The teardown is bounded by its own deadline: let it finish. */
		if (reason == REASON_PARENT_DEATH) {
			log_info("parent process %d died; the teardown goes on",
				 (int)from);
		} else {
			log_info("%s during the teardown; ignored",
				 sig != 0 ? sig_name(sig, name, sizeof(name)) :
				 "timeout");
		}
		return;
	}
	if (r->state != RUN_RUNNING) {
		return;
	}
	r->reason = reason;
	r->cancel_sig = sig;
	r->cancel_from = from;
	r->cancel_relayed = relayed;
	/* For the front, should we die before the run is over. */
	r->shared->reason = (int)reason;
	r->shared->cancel_sig = sig;
	stop_sig_name(r, stop, sizeof(stop));
	if (from > 0) {
		snprintf(who, sizeof(who), " from pid %d", (int)from);
	}
	if (reason == REASON_TIMEOUT && sig == SIGALRM) {
		log_info("timed out by SIGALRM%s after %s; stopping the run "
			 "with %s", who, fmt_duration(now - r->cmd_started, dur,
						      sizeof(dur)), stop);
	} else if (reason == REASON_TIMEOUT) {
		log_info("timed out after %s; stopping the run with %s",
			 fmt_duration(r->opt.timeout_ns, dur, sizeof(dur)), stop);
	} else if (reason == REASON_PARENT_DEATH) {
		log_info("parent process %d died; stopping the run with %s",
			 (int)from, stop);
	} else if (r->front != 0 && sig == SIGKILL) {
		log_info("front process %d died; stopping the run with %s",
			 (int)r->front, stop);
	} else {
		log_info("cancelled by %s%s; stopping the run with %s",
			 sig_name(sig, name, sizeof(name)), who, stop);
	}
	begin_stop(r, now);
}

/* COMMAND is gone: stop what it left behind, or finish. */
static void
command_ended(struct run *r, uint64_t now)
{
	char stop[32];
	int n;

	r->reason = REASON_EXIT;
	r->shared->reason = (int)r->reason;
	r->shared->exit_status = child_exit_status(r->cmd_wstatus);
	begin_stop(r, now);
	n = r->stop.signalled;
	if (n > 0) {
		log_info("command exited; stopping %d leftover process%s with %s",
			 n, n == 1 ? "" : "es", stop_sig_name(r, stop, sizeof(stop)));
	}
}

/* Reaps every child that has exited; signals merge, so loop until none. */
static void
reap(struct run *r, uint64_t now)
{
	char dur[32];
	pid_t pid;
	int ws;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		if (pid != r->cmd_pid || !r->cmd_alive) {
			/* The teardown, an adopted orphan, or a child we inherited. */
			teardown_reaped(&r->td, pid, ws);
			tree_skip_remove(&r->skip, pid);
			continue;
		}
		r->cmd_alive = false;
		r->cmd_wstatus = ws;
		r->shared->cmd_wstatus = ws;
		r->shared->cmd_state = CMD_ENDED;
		log_debug("command exited with status %d after %s",
			  child_exit_status(ws),
			  fmt_duration(now - r->cmd_started, dur, sizeof(dur)));
		if (r->state == RUN_RUNNING) {
			command_ended(r, now);
		}
	}
}

static void
forward(struct run *r, int sig)
{
	char name[32];

	if (!r->cmd_alive || r->state != RUN_RUNNING) {
		return;
	}
	/* COMMAND's group, unless that is our own (--foreground). */
	kill(r->opt.foreground ? r->cmd_pid : -r->cmd_pid, sig);
	log_debug("forwarded %s to the command", sig_name(sig, name, sizeof(name)));
}

static void
on_parent_death(struct run *r, bool relayed, pid_t from, uint64_t now)
{
	if (relayed) {
		end_run(r, REASON_PARENT_DEATH, SIGHUP, from, true, now);
	} else if (r->front == 0 && r->parent != 0) {
		/*
		 * The signal also comes when only the parent thread that started
		 * us ended; siginfo cannot tell, a changed parent pid can.
		 */
		if (getppid() != r->parent) {
			end_run(r, REASON_PARENT_DEATH, SIGHUP, r->parent, false, now);
		} else {
			log_debug("a thread of parent process %d ended; the process "
				  "lives on", (int)r->parent);
		}
	}
}

static void
on_signal(struct run *r, const struct signalfd_siginfo *si, uint64_t now)
{
	int sig = (int)si->ssi_signo;
	/* The front relays signals with sigqueue(), the sender as value. */
	bool relayed = r->front != 0 && (pid_t)si->ssi_pid == r->front &&
		si->ssi_code == SI_QUEUE;
	pid_t from = relayed ? (pid_t)si->ssi_int : (pid_t)si->ssi_pid;

	if (sig == SIGCHLD) {
		reap(r, now);
	} else if (sig == SIG_PARENT_DEATH) {
		on_parent_death(r, relayed, from, now);
	} else if (sig == SIG_FRONT_DEATH) {
		if (r->front != 0 && getppid() != r->front) {
			end_run(r, REASON_CANCEL, SIGKILL, 0, false, now);
		}
	} else if (sig == SIGALRM) {
		end_run(r, REASON_TIMEOUT, SIGALRM, from, relayed, now);
	} else if (sig == SIGUSR1 || sig == SIGUSR2 || sig == SIGWINCH) {
		forward(r, sig);
	} else if (sig_is_handled(&r->sig, sig)) {
		end_run(r, REASON_CANCEL, sig, from, relayed, now);
	}
}

static void
on_time(struct run *r, uint64_t now, bool reaped)
{
	if (r->state == RUN_RUNNING && now >= r->timeout_at) {
		end_run(r, REASON_TIMEOUT, 0, 0, false, now);
		return;
	}
	if (r->state == RUN_TEARDOWN &&
	    (reaped || now >= teardown_deadline(&r->td)) &&
	    teardown_step(&r->td, now)) {
		if (teardown_failed(&r->td) && r->exit_status == 0) {
			r->exit_status = EXIT_TEARDOWN_FAILED;
		}
		r->state = RUN_DONE;
		return;
	}
	if (r->state == RUN_STOPPING && run_stop_step(r, now, reaped)) {
		run_over(r, now);
	}
}

/*
 * Nothing of the tree is alive; COMMAND may still be an unreaped zombie
 * (it died just as the stop began).  Collect it, so its status is known.
 */
static void
collect_command(struct run *r)
{
	pid_t pid;
	int ws;

	if (!r->cmd_alive) {
		return;
	}
	do {
		pid = waitpid(r->cmd_pid, &ws, 0);
	} while (pid < 0 && errno == EINTR);
	r->cmd_alive = false;
	r->cmd_wstatus = pid == r->cmd_pid ? ws : 0;
	r->shared->cmd_wstatus = r->cmd_wstatus;
	r->shared->cmd_state = CMD_ENDED;
}

/*
 * Nothing of the run's tree is left: settle the status, tell the front,
 * and start the teardown when this end calls for it and the front has not
 * taken it (it does only after our death, so this claim normally wins).
 */
static void
run_over(struct run *r, uint64_t now)
{
	char cs[64];

	collect_command(r);
	settle_status(r);
	r->shared->reason = (int)r->reason;
	r->shared->cancel_sig = r->cancel_sig;
	r->shared->exit_status = r->exit_status;
	r->state = RUN_DONE;
	if (!teardown_is_due(&r->td, run_event(r->reason, r->exit_status)) ||
	    !teardown_claim(&r->shared->teardown_claim, TEARDOWN_BY_SUPERVISOR)) {
		return;
	}
	run_command_status(r->reason == REASON_EXEC_FAILED ? CMD_NOT_STARTED :
			   CMD_ENDED, r->cmd_wstatus, cs, sizeof(cs));
	if (teardown_start(&r->td, run_reason_name(r->reason), r->exit_status,
			   cs, r->front != 0 ? r->front : r->self, &r->sig,
			   now) == 0) {
		r->state = RUN_TEARDOWN;
	} else if (r->exit_status == 0) {
		r->exit_status = EXIT_TEARDOWN_FAILED;
	}
}

/*
 * The run's one loop: every event, a signal read from the signalfd or a
 * deadline, is handled here, by the rules of the state it arrives in.
 */
static void
loop(struct run *r)
{
	struct signalfd_siginfo si;
	bool reaped;
	uint64_t now;
	int rc;

	/*
	 * From here on COMMAND exists: never leave the loop while any process
	 * of its tree lives.  A failure of our own is recorded as the reason,
	 * the tree is stopped, and the loop ends through its normal exit.
	 */
	while (r->state != RUN_DONE) {
		rc = sig_wait_fd(&r->sig, r->td.out_fd, run_next_deadline(r));
		now = tree_now();
		reaped = false;
		if (rc > 0 && (rc & SIG_WAIT_FD)) {
			teardown_pump(&r->td);
		}
		while (rc > 0 && (rc & SIG_WAIT_SIGNAL) &&
		       (rc = sig_read(&r->sig, &si)) > 0) {
			reaped |= si.ssi_signo == SIGCHLD;
			on_signal(r, &si, now);
		}
		if (rc < 0) {
			log_error("cannot wait for events: %s", strerror(errno));
			if (r->state == RUN_RUNNING) {
				r->reason = REASON_ERROR;
				begin_stop(r, now);
			} else {
				/* Do not spin; the stop's deadlines still come. */
				usleep(10000);
			}
		}
		on_time(r, now, reaped);
	}
}

/*
 * Forks the supervisor.  In the front, runs the front's loop and returns
 * the status to exit with; in the supervisor, returns -1 once it has its
 * own session and knows the front is alive.
 */
static int
start_supervisor(struct run *r)
{
	pid_t front = getpid(), pid;
	int status;

	pid = fork();
	if (pid < 0) {
		log_error("cannot start the supervisor process: %s",
			  strerror(errno));
		return finish(r, EXIT_FAILURE_SUPERVISE);
	}
	if (pid > 0) {
		status = front_run(r, pid);
		run_free(r);
		log_debug("exiting with status %d", status);
		return status;
	}
	/* The children inherited at start are the front's, not ours. */
	tree_skip_free(&r->skip);
	r->front = front;
	r->parent = 0;
	/*
	 * A session of our own, so that a SIGKILL to the caller's process
	 * group does not reach us.  Then the same order as for the parent:
	 * arm the death signal, then compare with the pid from before fork.
	 */
	if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIG_FRONT_DEATH) < 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		log_error("cannot set up the supervisor process: %s",
			  strerror(errno));
		return finish(r, EXIT_FAILURE_SUPERVISE);
	}
	if (getppid() != front) {
		log_info("front process %d died before the command started",
			 (int)front);
		r->reason = REASON_CANCEL;
		r->cancel_sig = SIGKILL;
		return finish(r, 128 + SIGKILL);
	}
	return -1;
}

/*
 * The kernel clears COMMAND's parent-death signal when its exec changes
 * credentials; say so once.  The subreaper sweep still covers COMMAND
 * while we live.
 */
static void
warn_if_creds_change(const struct run *r)
{
	char path[4096];
	const char *why;

	if (child_find_executable(r->opt.command[0], path, sizeof(path)) < 0) {
		return;
	}
	why = caps_exec_changes_creds(path, r->opt.no_new_privs);
	if (why != NULL) {
		log_info("warning: running '%s' changes credentials (%s): the "
			 "kernel clears its parent-death signal", path, why);
	}
}

/* Starts COMMAND.  Returns 0, or -1 with r->exit_status set. */
static int
start_command(struct run *r)
{
	struct child_spec spec;
	pid_t pid;
	int ws;

	child_spec_init(&spec, r->opt.command, &r->sig);
	spec.new_session = !r->opt.foreground;
	spec.die_with_parent = true;
	spec.caps = &r->caps;
	spec.no_new_privs = r->opt.no_new_privs;
	spec.pid_slot = &r->shared->cmd_pid;
	warn_if_creds_change(r);

	r->self = spec.parent;
	pid = child_start(&spec, &r->exec_errno);
	if (pid < 0) {
		log_error("cannot start the command: %s", strerror(errno));
		r->exit_status = EXIT_FAILURE_SUPERVISE;
		return -1;
	}
	r->cmd_pid = pid;
	r->cmd_started = tree_now();
	if (r->exec_errno < 0) {
		log_error("cannot set up the command: %s",
			  strerror(-r->exec_errno));
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
			continue;
		}
		r->exit_status = EXIT_FAILURE_SUPERVISE;
		return -1;
	}
	if (r->exec_errno != 0) {
		log_error("cannot run '%s': %s", r->opt.command[0],
			  strerror(r->exec_errno));
		/* It exits at once; it forked nothing. */
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
			continue;
		}
		r->reason = REASON_EXEC_FAILED;
		run_over(r, r->cmd_started);
		return -1;
	}
	r->cmd_alive = true;
	r->shared->cmd_state = CMD_RUNNING;
	r->state = RUN_RUNNING;
	r->timeout_at = r->opt.timeout_ns == 0 ? UINT64_MAX :
		r->cmd_started + r->opt.timeout_ns < r->cmd_started ? UINT64_MAX :
		r->cmd_started + r->opt.timeout_ns;
	log_debug("started '%s' as pid %d", r->opt.command[0], (int)pid);
	return 0;
}

/*
 * Everything before the first fork: what the teardown needs, the shared
 * page, signals, the parent watch, the subreaper.  Returns -1 when all is
 * set, or the status to exit with (the run is not started).
 */
static int
set_up(struct run *r)
{
	int status;

	clock_gettime(CLOCK_REALTIME, &r->started_rt);
	r->started = tree_now();
	status_prepare(&r->status, r->opt.status_file);
	r->caps.active = r->opt.caps_given;
	r->caps.mask = r->opt.caps;
	if (caps_prepare(&r->caps) < 0 || teardown_prepare(&r->td, &r->opt) < 0) {
		return EXIT_FAILURE_SUPERVISE;
	}
	r->shared = mmap(NULL, sizeof(*r->shared), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (r->shared == MAP_FAILED) {
		r->shared = NULL;
		log_error("cannot map shared memory: %s", strerror(errno));
		return EXIT_FAILURE_SUPERVISE;
	}
	r->td.rec = &r->shared->td;
	if (sig_setup(&r->sig) < 0) {
		log_error("cannot set up signal handling: %s", strerror(errno));
		return EXIT_FAILURE_SUPERVISE;
	}
	if ((status = watch_parent(r)) >= 0) {
		if (status != EXIT_FAILURE_SUPERVISE) {
			r->reason = REASON_PARENT_DEATH;
		}
		return status;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || tree_skip_init(&r->skip) < 0) {
		log_error("cannot become a subreaper: %s", strerror(errno));
		return EXIT_FAILURE_SUPERVISE;
	}
	return -1;
}

/* The one way out once options are parsed: the status record, then exit. */
static int
finish(struct run *r, int status)
{
	if (r->reason == REASON_NONE) {
		r->reason = REASON_ERROR;
	}
	r->exit_status = status;
	run_write_status(r);
	run_free(r);
	/* The supervisor's status is the front's, which says it. */
	if (r->front == 0) {
		log_debug("exiting with status %d", status);
	}
	return status;
}

int
main(int argc, char **argv)
{
	struct run run;
	struct run *r = &run;
	int status;

	memset(r, 0, sizeof(*r));
	r->self = getpid();
	open_std_fds();
	status = parse_args(r, argc, argv);
	if (status >= 0) {
		return status;
	}
	log_init(r->opt.verbosity);
	if ((status = set_up(r)) >= 0 || (status = locking_acquire(r)) >= 0) {
		return finish(r, status);
	}
	/* The front returns here when the run is over; it wrote what it had to. */
	if (!r->opt.foreground && (status = start_supervisor(r)) >= 0) {
		return status;
	}
	if (start_command(r) < 0 && r->reason != REASON_EXEC_FAILED) {
		return finish(r, r->exit_status);
	}
	loop(r);
	return finish(r, r->exit_status);
}
