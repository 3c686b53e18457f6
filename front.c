#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "parse.h"
#include "run.h"

/*
 * The front stays in the caller's process group, so that a runner's group
 * SIGTERM and a terminal's Ctrl-C reach it, while the supervisor, in a
 * session of its own, survives a group SIGKILL.  The front decides nothing
 * about the run: it relays what it hears and waits.  Only when the
 * supervisor dies does it act, on the orphans that were reparented to it.
 */
struct front {
	struct run *r;
	pid_t sup;
	bool sup_alive;
	bool parent_told;
	int status;
};

static void
begin_stop(struct front *f, uint64_t now)
{
	struct run *r = f->r;

	r->stop.sig = r->opt.stop_signal;
	r->stop.grace_ns = r->opt.kill_after_ns;
	r->stop.group = 0;
	r->stop.skip = &r->skip;
	tree_stop_begin(&r->stop, now);
	r->state = r->stop.phase == TREE_DONE ? RUN_DONE : RUN_STOPPING;
}

static void
supervisor_ended(struct front *f, int ws, uint64_t now)
{
	char name[32], stop[32];
	int n;

	f->sup_alive = false;
	sig_name(f->r->opt.kill_after_ns == 0 ? SIGKILL : f->r->opt.stop_signal,
		 stop, sizeof(stop));
	begin_stop(f, now);
	n = f->r->stop.signalled;
	if (WIFEXITED(ws)) {
		f->status = WEXITSTATUS(ws);
		/* It stops its tree before it exits; this is only a backstop. */
		if (n > 0) {
			log_info("stopping %d leftover process%s with %s", n,
				 n == 1 ? "" : "es", stop);
		}
		return;
	}
	f->status = EXIT_FAILURE_SUPERVISE;
	log_error("supervisor process %d died (%s); stopping %d orphaned "
		  "process%s with %s", (int)f->sup,
		  sig_name(WIFSIGNALED(ws) ? WTERMSIG(ws) : 0, name, sizeof(name)),
		  n, n == 1 ? "" : "es", stop);
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
			/* An orphan, or a child inherited from our caller. */
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
on_signal(struct front *f, const struct signalfd_siginfo *si, uint64_t now)
{
	struct run *r = f->r;
	int sig = (int)si->ssi_signo;

	if (sig == SIGCHLD) {
		reap(f, now);
		return;
	}
	if (sig == SIG_PARENT_DEATH) {
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
		}
		return;
	}
	if (sig == SIG_FRONT_DEATH) {
		return;
	}
	if (f->sup_alive) {
		relay(f, sig, (pid_t)si->ssi_pid);
	} else if (r->state == RUN_STOPPING && sig != SIGALRM &&
		   sig != SIGUSR1 && sig != SIGUSR2 && sig != SIGWINCH) {
		tree_stop_hurry(&r->stop, now);
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
	/*
	 * The supervisor owns the run; once it is gone, any orphan it left
	 * is ours: never leave while one lives.
	 */
	while (r->state != RUN_DONE) {
		rc = sig_wait(&r->sig, r->state == RUN_STOPPING ?
			      tree_stop_deadline(&r->stop) : UINT64_MAX);
		now = tree_now();
		reaped = false;
		while (rc > 0 && (rc = sig_read(&r->sig, &si)) > 0) {
			reaped |= si.ssi_signo == SIGCHLD;
			on_signal(&f, &si, now);
		}
		if (rc < 0) {
			log_error("cannot wait for events: %s", strerror(errno));
			usleep(10000);
		}
		if (r->state == RUN_STOPPING &&
		    (reaped || now >= tree_stop_deadline(&r->stop)) &&
		    tree_stop_step(&r->stop, now)) {
			r->state = RUN_DONE;
		}
	}
	return f.status;
}
