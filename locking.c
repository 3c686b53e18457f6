#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lock.h"
#include "locking.h"
#include "log.h"
#include "parse.h"
#include "run.h"
#include "signals.h"
#include "tree.h"

/* "waiting for lock X (held by ...)" */
static void
say_waiting(const struct lock *l, enum log_level level, const char *what,
	    uint64_t waited)
{
	struct lock_holder h;
	char who[640], dur[32], after[48] = "";

	if (waited > 0) {
		snprintf(after, sizeof(after), " after %s",
			 fmt_duration(waited, dur, sizeof(dur)));
	}
	if (lock_read_holder(l, &h) == 0) {
		lock_describe_holder(&h, who, sizeof(who));
	} else {
		snprintf(who, sizeof(who), "an unknown process");
	}
	log_msg(level, "%s lock %s%s (held by %s)", what, l->path, after, who);
}

/* The state of one wait for a lock. */
struct lock_wait {
	struct lock *lock;
	pid_t waiter;		/* the process in flock(), or 0 once reaped */
	int status;		/* WAITING, HELD, or the status to exit with */
};

enum {
	WAITING = -2,
	HELD = -1,
	GAVE_UP = -3,
};

/*
 * One signal read while waiting.  A cancel or the parent's death wins over
 * a lock got in the same batch (COMMAND has not started), and the first
 * of them decides.
 */
static void
on_wait_signal(struct run *r, struct lock_wait *w,
	       const struct signalfd_siginfo *si)
{
	int sig = (int)si->ssi_signo, ws;
	bool open = w->status == WAITING || w->status == HELD;
	char name[32];
	pid_t pid;

	if (sig == SIGCHLD) {
		while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
			if (pid != w->waiter) {
				tree_skip_remove(&r->skip, pid);
				continue;
			}
			w->waiter = 0;
			if (w->status == WAITING) {
				w->status = WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ?
					HELD : EXIT_FAILURE_SUPERVISE;
			}
		}
	} else if (sig == SIG_PARENT_DEATH && open && r->parent != 0 &&
		   getppid() != r->parent) {
		log_info("parent process %d died while waiting for lock %s",
			 (int)r->parent, w->lock->path);
		r->reason = REASON_PARENT_DEATH;
		w->status = 128 + SIGHUP;
	} else if ((sig == SIGTERM || sig == SIGINT || sig == SIGHUP ||
		    sig == SIGQUIT) && open) {
		log_info("cancelled by %s while waiting for lock %s",
			 sig_name(sig, name, sizeof(name)), w->lock->path);
		r->reason = REASON_CANCEL;
		r->cancel_sig = sig;
		w->status = 128 + sig;
	}
}

/*
 * Waits, in an event loop of its own, for a process that takes the lock
 * with a blocking flock() on our shared open file description.  Returns
 * HELD once the lock is ours, GAVE_UP at the deadline, or the status to
 * exit with: 128+N on a cancel, 129 on the parent's death, 125 on errors.
 * COMMAND has not started: nothing to stop, no teardown.
 */
static int
wait_for_lock(struct run *r, struct lock *l, uint64_t deadline)
{
	const uint64_t every = UINT64_C(30) * 1000000000;
	struct lock_wait w = { .lock = l, .status = WAITING };
	struct signalfd_siginfo si;
	uint64_t now = tree_now(), next = now + every;
	int rc, ws;

	if (deadline <= now) {
		return GAVE_UP;
	}
	w.waiter = lock_start_waiter(l);
	if (w.waiter < 0) {
		log_error("cannot wait for lock %s: %s", l->path, strerror(errno));
		return EXIT_FAILURE_SUPERVISE;
	}
	/* The first line even with -q: a silent hang would be a mystery. */
	say_waiting(l, LOG_ERROR, "waiting for", 0);
	/*
	 * Until the waiter has the lock or something ends the wait.  Each
	 * batch of signals is read whole, so that a cancel that came with
	 * the lock is seen; one that comes later stays pending for the run's
	 * own loop.
	 */
	while (w.status == WAITING) {
		rc = sig_wait(&r->sig, deadline < next ? deadline : next);
		now = tree_now();
		while (rc > 0 && (rc = sig_read(&r->sig, &si)) > 0) {
			on_wait_signal(r, &w, &si);
		}
		if (rc < 0) {
			log_error("cannot wait for events: %s", strerror(errno));
			w.status = EXIT_FAILURE_SUPERVISE;
		} else if (w.status == WAITING && now >= deadline) {
			w.status = GAVE_UP;
		} else if (w.status == WAITING && now >= next) {
			say_waiting(l, LOG_INFO, "waiting for", 0);
			next += every;
		}
	}
	if (w.waiter > 0) {
		kill(w.waiter, SIGKILL);
		while (waitpid(w.waiter, &ws, 0) < 0 && errno == EINTR) {
			continue;
		}
	}
	return w.status;
}

/*
 * Takes one lock, waiting for it when it is held elsewhere, and checking
 * afterwards that the path still names the file locked.  Sets l->wait_ns,
 * the time since t0, whatever the outcome.  Returns HELD, or the status
 * to exit with.
 */
static int
take_lock(struct run *r, struct lock *l, uint64_t start, uint64_t t0,
	  uint64_t deadline)
{
	int rc, tries = 0;

	for (;;) {
		/* A path that names a new file each time is no lock at all. */
		if (++tries > 100) {
			log_error("lock file '%s' keeps being replaced", l->path);
			rc = EXIT_FAILURE_SUPERVISE;
			break;
		}
		if (lock_open(l) < 0) {
			rc = EXIT_FAILURE_SUPERVISE;
			break;
		}
		rc = lock_try(l);
		if (rc == 0) {
			rc = wait_for_lock(r, l, deadline);
			if (rc == GAVE_UP) {
				say_waiting(l, LOG_ERROR, "gave up waiting for",
					    r->opt.lock_wait_ns == 0 ? 0 :
					    tree_now() - start);
				r->reason = REASON_LOCK_TIMEOUT;
				rc = EXIT_TEMPFAIL;
				break;
			}
			if (rc != HELD) {
				break;
			}
			rc = 1;
		}
		if (rc < 0) {
			log_error("cannot lock '%s': %s", l->path, strerror(errno));
			rc = EXIT_FAILURE_SUPERVISE;
			break;
		}
		/*
		 * A janitor may have unlinked or replaced the file while we
		 * waited: a lock on an inode nobody opens any more excludes
		 * nobody.  Take the new one.
		 */
		rc = lock_is_current(l);
		if (rc == 1) {
			rc = HELD;
			break;
		}
		if (rc < 0) {
			log_error("cannot check lock file '%s': %s", l->path,
				  strerror(errno));
			rc = EXIT_FAILURE_SUPERVISE;
			break;
		}
		log_debug("lock file %s was replaced; taking it again", l->path);
		close(l->fd);
		l->fd = -1;
	}
	l->wait_ns = tree_now() - t0;
	return rc;
}

int
locking_acquire(struct run *r)
{
	uint64_t start, t0, deadline;
	char dur[32];
	size_t i;
	int n, rc;

	if (r->opt.nlocks == 0) {
		return -1;
	}
	n = lock_prepare(r->opt.locks, r->opt.nlocks, &r->locks);
	if (n < 0) {
		return EXIT_FAILURE_SUPERVISE;
	}
	r->nlocks = (size_t)n;
	/*
	 * --lock-wait bounds all the waits together, and each lock's wait
	 * runs from the end of the one before, so that the waits add up to
	 * the time spent taking locks.
	 */
	start = t0 = tree_now();
	deadline = r->opt.lock_wait_ns == DURATION_FOREVER ||
		start + r->opt.lock_wait_ns < start ? UINT64_MAX :
		start + r->opt.lock_wait_ns;
	for (i = 0; i < r->nlocks; i++) {
		struct lock *l = &r->locks[i];

		/* The status record lists the locks taken and the one tried. */
		r->nlocks_tried = i + 1;
		rc = take_lock(r, l, start, t0, deadline);
		if (rc != HELD) {
			return rc;
		}
		lock_write_holder(l, r->self, r->opt.command);
		t0 += l->wait_ns;
		log_debug("took lock %s after %s", l->path,
			  fmt_duration(l->wait_ns, dur, sizeof(dur)));
	}
	return -1;
}
