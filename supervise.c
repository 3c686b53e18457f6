#include <sys/prctl.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "front.h"
#include "lockwait.h"
#include "log.h"
#include "options.h"
#include "parent.h"
#include "parse.h"
#include "run.h"
#include "signals.h"
#include "supervise.h"
#include "supervisor.h"

static const char usage_hint[] =
	"Try 'supervise --help' for more information.\n";

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
	/* As coreutils do: a second line, without our prefix. */
	log_output(STDERR_FILENO, usage_hint, sizeof(usage_hint) - 1);
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
 * A cgroup v2 of the run's own, where one can be made (--cgroup); else
 * the subreaper sweep, which is always there as well.  Returns -1, or
 * 125 when --cgroup=require cannot be met.
 */
static int
contain(struct run *r)
{
	if (r->opt.cgroup == CGROUP_OFF) {
		log_debug("containment: process sweep (--cgroup=off)");
		return -1;
	}
	if (cgroup_make_set(&r->cgs, r->self, r->opt.teardown != NULL) == 0) {
		r->td.cg = r->opt.teardown != NULL ? &r->cgs.teardown : NULL;
		log_debug("containment: cgroup %s", r->cgs.parent);
		return -1;
	}
	if (r->opt.cgroup == CGROUP_REQUIRE) {
		log_error("cannot contain the run in a cgroup: %s", r->cgs.why);
		return EXIT_FAILURE_SUPERVISE;
	}
	log_debug("containment: process sweep (%s)", r->cgs.why);
	return -1;
}

/*
 * Everything before the first fork: the files we will write, what the
 * teardown needs, the parent watch, the subreaper.  Returns -1 when all
 * is set, or the status to exit with (the run is not started).
 */
static int
set_up(struct run *r)
{
	int status;

	clock_gettime(CLOCK_REALTIME, &r->started_rt);
	r->started = loop_now();
	/*
	 * The status file first: its check makes nothing, so a refusal
	 * leaves no trace, where the teardown log and the lock files that
	 * come after are created by their checks.  Once it has passed,
	 * every end writes a record, a failure of those included.
	 */
	if (status_prepare(&r->status, r->opt.status_file) < 0) {
		return EXIT_FAILURE_SUPERVISE;
	}
	r->caps.active = r->opt.caps_given;
	r->caps.mask = r->opt.caps;
	if (caps_prepare(&r->caps) < 0 ||
	    teardown_prepare(&r->td, &r->opt, &r->skip) < 0) {
		return EXIT_FAILURE_SUPERVISE;
	}
	r->td.rec = &r->sh->td;
	if ((status = parent_watch(r)) >= 0) {
		return status;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 ||
	    tree_skip_init(&r->skip) < 0) {
		log_error("cannot become a subreaper: %s", strerror(errno));
		return EXIT_FAILURE_SUPERVISE;
	}
	return contain(r);
}

/*
 * Signals that came before COMMAND could start (they are blocked from the
 * first instruction of main): a cancel or SIGALRM ends the run before it
 * starts, with its documented status; the parent's death likewise.
 * Others have nobody to go to yet.  Returns -1, or the status to exit with.
 */
static int
take_early_signals(struct run *r)
{
	struct signalfd_siginfo si;
	char name[32];
	int sig;

	while (sig_read(&r->sig, &si) > 0) {
		sig = (int)si.ssi_signo;
		switch (sig_classify(sig)) {
		case SIGK_CANCEL:
			log_info("cancelled by %s before the command started",
				 sig_name(sig, name, sizeof(name)));
			run_set_reason(r, REASON_CANCEL, sig);
			return 128 + sig;
		case SIGK_TIMEOUT:
			log_info("timed out by SIGALRM before the command "
				 "started");
			run_set_reason(r, REASON_TIMEOUT, sig);
			return EXIT_TIMEDOUT;
		case SIGK_PARENT_DEATH:
			if (r->parent != 0 && getppid() != r->parent) {
				log_info("parent process %d died before the "
					 "command started",
					 (int)r->parent);
				run_set_reason(r, REASON_PARENT_DEATH, 0);
				r->sh->cause_pid = r->parent;
				return 128 + SIGHUP;
			}
			break;
		case SIGK_JOB_CONTROL:
			/* Ctrl-Z before the run: only we are there to stop. */
			if (sig != SIGCONT) {
				kill(getpid(), SIGSTOP);
			}
			break;
		case SIGK_CHILD:
		case SIGK_FORWARD:
		case SIGK_FRONT_DEATH:
		case SIGK_OTHER:
			break;
		}
	}
	return -1;
}

/*
 * The etcd locks are released by the last process of supervise that
 * lives: the front, after the supervisor and the teardown; the supervisor
 * only when the front is gone.  Bounded: a lease that cannot be revoked
 * expires after its TTL.
 */
static void
release_remote(struct run *r)
{
	if (r->remote != NULL && (r->front == 0 || getppid() != r->front)) {
		remote_release(r->remote, UINT64_C(5000000000));
	}
}

/* The one way out before a run starts: the status record, then exit. */
static int
finish(struct run *r, int status)
{
	release_remote(r);
	run_set_reason(r, REASON_ERROR, 0);
	r->sh->exit_status = status;
	run_write_status(r);
	run_free(r);
	log_debug("exiting with status %d", status);
	return status;
}

/* The end of a role: the supervisor's record, then exit. */
static int
leave(struct run *r, int status)
{
	release_remote(r);
	/* In the front, the record is written already (front.c). */
	if (r->front != 0 || r->opt.foreground) {
		r->sh->exit_status = status;
		run_write_status(r);
	}
	run_free(r);
	/* The supervisor's status is the front's, which says it. */
	if (r->front == 0) {
		log_debug("exiting with status %d", status);
	} else {
		r->sh->final = true;
	}
	return status;
}

int
main(int argc, char **argv)
{
	struct run run = { .sig.fd = -1 };
	struct run *r = &run;
	pid_t front, pid;
	int status;

	/*
	 * Signals first: a runner may cancel a step the moment it starts,
	 * and a signal that comes before the loop must wait for it, not kill
	 * us with its default action.  Only the standard descriptors come
	 * before (three opens at most), or the signalfd could become one.
	 */
	open_std_fds();
	if (sig_setup(&r->sig) < 0 || run_init(r) < 0) {
		log_error("cannot set up: %s", strerror(errno));
		return EXIT_FAILURE_SUPERVISE;
	}
	if ((status = parse_args(r, argc, argv)) >= 0) {
		return status;
	}
	log_init(r->opt.verbosity);
	log_count_drops_in(&r->sh->dropped);
	if ((status = set_up(r)) >= 0 || (status = lockwait_acquire(r)) >= 0 ||
	    (status = take_early_signals(r)) >= 0) {
		return finish(r, status);
	}
	if (r->opt.foreground) {
		/* COMMAND shares our group: the terminal stops both at once. */
		if (sig_release_job_control(&r->sig) < 0) {
			log_error("cannot set up signals: %s", strerror(errno));
			return finish(r, EXIT_FAILURE_SUPERVISE);
		}
		if (r->cgs.active) {
			cgroup_remove_leftovers(&r->cgs);
		}
		return leave(r, supervisor_run(r));
	}
	front = getpid();
	pid = fork();
	if (pid < 0) {
		log_error("cannot start the supervisor process: %s",
			  strerror(errno));
		return finish(r, EXIT_FAILURE_SUPERVISE);
	}
	if (pid > 0) {
		return leave(r, front_run(r, pid));
	}
	if ((status = supervisor_set_up(r, front)) >= 0) {
		return leave(r, status);
	}
	return leave(r, supervisor_run(r));
}
