#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "holder.h"
#include "lockfile.h"
#include "lockwait.h"
#include "log.h"
#include "loop.h"
#include "parse.h"
#include "remotelock.h"
#include "run.h"
#include "signals.h"

/* The index of an etcd lock in the run's remote set, or -1 for a file. */
static long
remote_index(const struct run *r, const struct lock *l)
{
	size_t first = r->nlocks - remote_count(r->remote);
	size_t i = (size_t)(l - r->locks);

	return i >= first ? (long)(i - first) : -1;
}

/*
 * Who holds the lock: for a file, from the kernel and the file's record
 * (holder.c); for an etcd lock, from the record stored with its key.
 */
static const char *
describe_holder(const struct run *r, const struct lock *l, char *buf,
		size_t len)
{
	long i = remote_index(r, l);
	struct lock_holder h;
	struct holder_view v;
	const char *rec;

	if (i < 0) {
		holder_look(l, &v);
		return holder_describe(&v, buf, len);
	}
	rec = remote_holder_record(r->remote, (size_t)i);
	if (rec == NULL || lock_parse_holder(rec, strlen(rec), &h) != 0) {
		snprintf(buf, len, "an unknown process");
		return buf;
	}
	return lock_describe_holder(&h, buf, len);
}

/* "waiting for lock X; held by ..." */
static void
say_waiting(const struct run *r, const struct lock *l, enum log_level level)
{
	char who[1024];

	if (!log_enabled(level)) {
		return;
	}
	log_msg(level, "waiting for lock %s; held by %s", l->path,
		describe_holder(r, l, who, sizeof(who)));
}

const char *
lockwait_fmt_waited(uint64_t ns, char *buf, size_t len)
{
	unsigned long long s = ns / 1000000000, ms = ns / 1000000 % 1000;
	char frac[8] = "";
	size_t n;

	if (s == 0) {
		snprintf(buf, len, "%llums", ms);
	} else if (s < 60) {
		if (ms != 0) {
			snprintf(frac, sizeof(frac), ".%03llu", ms);
			for (n = strlen(frac); frac[n - 1] == '0'; n--) {
				frac[n - 1] = '\0';
			}
		}
		snprintf(buf, len, "%llu%ss", s, frac);
	} else if (s < 3600) {
		snprintf(buf, len, "%llum%llus", s / 60, s % 60);
	} else {
		snprintf(buf, len, "%lluh%llum%llus", s / 3600, s % 3600 / 60,
			 s % 60);
	}
	return buf;
}

/*
 * "gave up waiting for lock X after 10m0s (-w 10m); held by ...": the
 * time waited for all locks so far, and the bound as the user wrote it.
 */
static void
say_gave_up(const struct run *r, const struct lock *l, uint64_t waited)
{
	char who[1024], dur[32], asked[32];

	log_error("gave up waiting for lock %s after %s (-w %s); held by %s",
		  l->path,
		  r->opt.lock_wait_ns == 0 ?
			  "0s" :
			  lockwait_fmt_waited(waited, dur, sizeof(dur)),
		  r->opt.lock_wait_text != NULL ?
			  r->opt.lock_wait_text :
			  fmt_duration(r->opt.lock_wait_ns, asked,
				       sizeof(asked)),
		  describe_holder(r, l, who, sizeof(who)));
}

/* Signals read in one turn of the loop, decided on in order. */
#define QUEUE_MAX 32

/* The state of one wait for a lock. */
struct lock_wait {
	struct run *r;
	struct lock *lock;
	struct loop loop;
	pid_t waiter; /* the process in flock(), or 0 once reaped */
	int status;   /* WAITING, HELD, or the status to exit with */
	struct signalfd_siginfo q[QUEUE_MAX];
	size_t nq;
	bool read_failed;
	bool ancestor_died; /* the --parent-pid pidfd polled readable */
	int hangup_fd;	    /* 1 or 2 polled POLLERR/POLLHUP, or 0 */
	long remote;	    /* an etcd lock: its index; else -1 */
	bool blocked;	    /* the etcd lock was seen held by another */
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
on_wait_signal(struct lock_wait *w, const struct signalfd_siginfo *si)
{
	struct run *r = w->r;
	int sig = (int)si->ssi_signo, ws;
	bool open = w->status == WAITING || w->status == HELD;
	char name[32];
	pid_t pid;

	switch (sig_classify(sig)) {
	case SIGK_CHILD:
		while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
			if (pid != w->waiter) {
				tree_skip_remove(&r->skip, pid);
				continue;
			}
			w->waiter = 0;
			if (w->status == WAITING) {
				w->status = WIFEXITED(ws) &&
						WEXITSTATUS(ws) == 0 ?
					HELD :
					EXIT_FAILURE_SUPERVISE;
			}
		}
		break;
	case SIGK_PARENT_DEATH:
		if (open && r->parent != 0 && getppid() != r->parent) {
			log_info("parent process %d died while waiting for "
				 "lock %s",
				 (int)r->parent, w->lock->path);
			run_set_reason(r, REASON_PARENT_DEATH, 0);
			r->sh->cause_pid = r->parent;
			w->status = 128 + SIGHUP;
		}
		break;
	case SIGK_CANCEL:
		if (open) {
			log_info("cancelled by %s while waiting for lock %s",
				 sig_name(sig, name, sizeof(name)),
				 w->lock->path);
			run_set_reason(r, REASON_CANCEL, sig);
			w->status = 128 + sig;
		}
		break;
	case SIGK_JOB_CONTROL:
		/* Ctrl-Z while waiting: only we are there to stop. */
		if (sig != SIGCONT) {
			kill(getpid(), SIGSTOP);
		}
		break;
	case SIGK_TIMEOUT:
	case SIGK_FORWARD:
	case SIGK_FRONT_DEATH:
	case SIGK_OTHER:
		/* No COMMAND yet: nothing to time out or forward to. */
		break;
	}
}

static void
on_ancestor(void *ctx, int fd, short revents LOOP_UNUSED)
{
	struct lock_wait *w = ctx;

	w->ancestor_died = true;
	loop_remove(&w->loop, fd);
}

static void
on_hangup(void *ctx, int fd, short revents LOOP_UNUSED)
{
	struct lock_wait *w = ctx;

	if (w->hangup_fd == 0) {
		w->hangup_fd = fd;
	}
	loop_remove(&w->loop, fd);
}

/* The ancestor's death or a hang-up ends the wait as a cancel would. */
static void
on_other_events(struct lock_wait *w)
{
	struct run *r = w->r;

	if (w->status != WAITING && w->status != HELD) {
		return;
	}
	if (w->ancestor_died) {
		log_info("ancestor process %d died while waiting for lock %s",
			 (int)r->ancestor, w->lock->path);
		run_set_reason(r, REASON_PARENT_DEATH, 0);
		r->sh->cause_pid = r->ancestor;
		r->sh->cause_ancestor = true;
		w->status = 128 + SIGHUP;
	} else if (w->hangup_fd != 0) {
		log_info("nobody reads standard %s any more while waiting for "
			 "lock %s",
			 w->hangup_fd == 1 ? "output" : "error", w->lock->path);
		run_set_reason(r, REASON_HANGUP, 0);
		r->sh->cause_fd = w->hangup_fd;
		w->status = 128 + SIGHUP;
	}
}

static void
on_signalfd(void *ctx, int fd LOOP_UNUSED, short revents LOOP_UNUSED)
{
	struct lock_wait *w = ctx;
	int rc = 1;

	while (w->nq < QUEUE_MAX &&
	       (rc = sig_read(&w->r->sig, &w->q[w->nq])) > 0) {
		w->nq++;
	}
	if (rc < 0) {
		w->read_failed = true;
	}
}

/*
 * After a turn: the signals in the order read, then the deadlines.  Each
 * batch of signals is read whole, so that a cancel that came with the
 * lock is seen; one that comes later stays pending for the run's own
 * loop.
 */
static void
decide(struct lock_wait *w, int rc, uint64_t now, uint64_t deadline,
       uint64_t *next)
{
	const uint64_t every = UINT64_C(30) * 1000000000;
	size_t i;

	for (i = 0; i < w->nq; i++) {
		on_wait_signal(w, &w->q[i]);
	}
	w->nq = 0;
	on_other_events(w);
	if (rc < 0 || w->read_failed) {
		if (w->read_failed) {
			log_error("cannot read signals: %s", strerror(errno));
		}
		w->status = EXIT_FAILURE_SUPERVISE;
	} else if (w->status == WAITING && now >= deadline &&
		   (w->remote < 0 || w->blocked)) {
		/* An etcd lock is given up on once known to be held. */
		w->status = GAVE_UP;
	} else if (w->status == WAITING && now >= *next) {
		say_waiting(w->r, w->lock, LOG_INFO);
		*next += every;
	}
}

/*
 * An etcd lock's requests, after a turn: the first news that another
 * holds it starts the wait proper (its message, the 30 s reminders).
 */
static void
remote_progress(struct lock_wait *w, uint64_t now, uint64_t *next)
{
	switch (remote_acquire_step(w->r->remote, (size_t)w->remote, now)) {
	case REMOTE_BLOCKED:
		if (!w->blocked) {
			w->blocked = true;
			say_waiting(w->r, w->lock, LOG_ERROR);
			*next = now + UINT64_C(30) * 1000000000;
		}
		break;
	case REMOTE_HELD:
		w->status = HELD;
		break;
	case REMOTE_FAILED:
		w->status = EXIT_FAILURE_SUPERVISE;
		break;
	case REMOTE_PENDING:
		break;
	}
}

/* The earliest of three deadlines. */
static uint64_t
earliest(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t m = a < b ? a : b;

	return m < c ? m : c;
}

/*
 * Waits, on the event engine, for a process that takes the lock with a
 * blocking flock() on our shared open file description, or (remote >= 0)
 * for etcd lock number remote of the run's remote set, whose requests
 * run on the same engine.  Returns HELD once the lock is ours, GAVE_UP at
 * the deadline, or the status to exit with: 128+N on a cancel, 129 on the
 * parent's death, 125 on errors.  COMMAND has not started: nothing to
 * stop, no teardown.
 */
static int
wait_for_lock(struct run *r, struct lock *l, uint64_t deadline, long remote)
{
	const uint64_t every = UINT64_C(30) * 1000000000;
	struct lock_wait w = {
		.r = r, .lock = l, .status = WAITING, .remote = remote
	};
	uint64_t now = loop_now(), next = now + every;
	int rc, ws;

	/* An etcd lock is at least tried, even with -w 0. */
	if (deadline <= now && remote < 0) {
		return GAVE_UP;
	}
	loop_init(&w.loop);
	loop_add(&w.loop, r->sig.fd, POLLIN, on_signalfd, &w);
	if (r->ancestor_fd >= 0) {
		loop_add(&w.loop, r->ancestor_fd, POLLIN, on_ancestor, &w);
	}
	if (r->opt.cancel_on_hangup) {
		loop_add(&w.loop, STDOUT_FILENO, 0, on_hangup, &w);
		loop_add(&w.loop, STDERR_FILENO, 0, on_hangup, &w);
	}
	if (remote >= 0) {
		remote_attach(r->remote, &w.loop);
		remote_acquire_begin(r->remote, (size_t)remote, now);
		next = LOOP_NEVER;
	} else if ((w.waiter = lock_start_waiter(l)) < 0) {
		log_error("cannot wait for lock %s: %s", l->path,
			  strerror(errno));
		return EXIT_FAILURE_SUPERVISE;
	} else {
		/* The first line even with -q: a silent hang would be a
		 * mystery. */
		say_waiting(r, l, LOG_ERROR);
	}
	while (w.status == WAITING) {
		rc = loop_turn(&w.loop,
			       earliest(w.blocked || remote < 0 ? deadline :
								  LOOP_NEVER,
					next, remote_deadline(r->remote)));
		now = loop_now();
		if (remote >= 0) {
			remote_progress(&w, now, &next);
		}
		decide(&w, rc, now, deadline, &next);
	}
	if (remote >= 0) {
		/* Every connection closed: the supervisor is forked next. */
		remote_attach(r->remote, NULL);
	}
	if (w.waiter > 0) {
		/*
		 * It is our child and dies of SIGKILL at once (flock() sleeps
		 * interruptibly), so this wait is short.
		 */
		kill(w.waiter, SIGKILL);
		while (waitpid(w.waiter, &ws, 0) < 0 && errno == EINTR) {
			continue;
		}
	}
	return w.status;
}

/*
 * Another name of a lock already held (a hard link, a bind mount, a path
 * through a symbolic link to a directory): the same file.  Returns it,
 * or NULL.
 */
static const struct lock *
held_alias(const struct run *r, const struct lock *l)
{
	struct stat a, b;
	size_t i;

	if (fstat(l->fd, &a) < 0) {
		return NULL;
	}
	for (i = 0; i < r->nlocks && &r->locks[i] != l; i++) {
		if (r->locks[i].fd >= 0 && fstat(r->locks[i].fd, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			return &r->locks[i];
		}
	}
	return NULL;
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
			log_error("lock file '%s' keeps being replaced",
				  l->path);
			rc = EXIT_FAILURE_SUPERVISE;
			break;
		}
		if (lock_open(l) < 0) {
			rc = EXIT_FAILURE_SUPERVISE;
			break;
		}
		l->same_as = held_alias(r, l);
		if (l->same_as != NULL) {
			/* flock() on a second description would wait for us. */
			log_debug("lock %s is lock %s", l->path,
				  l->same_as->path);
			close(l->fd);
			l->fd = -1;
			rc = HELD;
			break;
		}
		rc = lock_try(l);
		if (rc == 0) {
			rc = wait_for_lock(r, l, deadline, -1);
			if (rc == GAVE_UP) {
				say_gave_up(r, l, loop_now() - start);
				run_set_reason(r, REASON_LOCK_TIMEOUT, 0);
				rc = EXIT_TEMPFAIL;
				break;
			}
			if (rc != HELD) {
				break;
			}
			rc = 1;
		}
		if (rc < 0) {
			log_error("cannot lock '%s': %s", l->path,
				  strerror(errno));
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
		log_debug("lock file %s was replaced; taking it again",
			  l->path);
		close(l->fd);
		l->fd = -1;
	}
	l->wait_ns = loop_now() - t0;
	return rc;
}

/*
 * Takes etcd lock l (number i of the run's remote set), waiting for it on
 * the engine.  Sets l->wait_ns like take_lock().  Returns HELD, or the
 * status to exit with.
 */
static int
take_remote(struct run *r, struct lock *l, size_t i, uint64_t start,
	    uint64_t t0, uint64_t deadline)
{
	int rc = wait_for_lock(r, l, deadline, (long)i);

	if (rc == GAVE_UP) {
		say_gave_up(r, l, loop_now() - start);
		run_set_reason(r, REASON_LOCK_TIMEOUT, 0);
		rc = EXIT_TEMPFAIL;
	}
	l->wait_ns = loop_now() - t0;
	return rc;
}

/*
 * The etcd:// locks: prepared apart (remotelock.h), then appended to the
 * run's locks after the files, in their own canonical order (by name).
 * Returns the number of lock files, or -1 after logging why.
 */
static int
prepare_locks(struct run *r)
{
	struct remote_creds c = {
		.cacert = r->opt.etcd_cacert,
		.cert = r->opt.etcd_cert,
		.key = r->opt.etcd_key,
		.user_file = r->opt.etcd_user_file,
	};
	char *files[OPTS_MAX_LOCKS], rec[1024];
	size_t i, nf = 0, nr;
	struct lock *all;
	int n;

	for (i = 0; i < r->opt.nlocks; i++) {
		if (!remote_is_url(r->opt.locks[i])) {
			files[nf++] = r->opt.locks[i];
		}
	}
	remote_creds_from_env(&c);
	if (remote_prepare(r->opt.locks, r->opt.nlocks, &c, r->opt.lock_ttl_ns,
			   &r->remote) < 0) {
		return -1;
	}
	n = lock_prepare(files, nf, &r->locks);
	if (n < 0) {
		return -1;
	}
	r->nlocks = (size_t)n;
	nr = remote_count(r->remote);
	if (nr == 0) {
		return n;
	}
	all = realloc(r->locks, ((size_t)n + nr) * sizeof(*all));
	if (all == NULL) {
		log_error("cannot prepare locks: %s", strerror(errno));
		return -1;
	}
	r->locks = all;
	for (i = 0; i < nr; i++) {
		all[n + i] = (struct lock){
			.path = remote_url_of(r->remote, i),
			.fd = -1,
		};
	}
	r->nlocks += nr;
	lock_format_holder(rec, sizeof(rec), r->self, r->opt.command);
	remote_set_record(r->remote, rec);
	return n;
}

/* COMMAND and the teardown get the etcd locks' fencing tokens. */
static int
export_tokens(const struct run *r)
{
	char tokens[1024];

	if (remote_count(r->remote) == 0) {
		return 0;
	}
	remote_tokens(r->remote, tokens, sizeof(tokens));
	log_debug("fencing token%s %s", remote_count(r->remote) == 1 ? "" : "s",
		  tokens);
	if (setenv("SUPERVISE_FENCING_TOKEN", tokens, 1) < 0) {
		log_error("cannot set SUPERVISE_FENCING_TOKEN: %s",
			  strerror(errno));
		return -1;
	}
	return 0;
}

int
lockwait_acquire(struct run *r)
{
	uint64_t start, t0, deadline;
	char dur[32];
	size_t i;
	int n, rc;

	if (r->opt.nlocks == 0) {
		return -1;
	}
	n = prepare_locks(r);
	if (n < 0) {
		return EXIT_FAILURE_SUPERVISE;
	}
	/*
	 * --lock-wait bounds all the waits together, and each lock's wait
	 * runs from the end of the one before, so that the waits add up to
	 * the time spent taking locks.
	 */
	start = t0 = loop_now();
	deadline = r->opt.lock_wait_ns == DURATION_FOREVER ||
			start + r->opt.lock_wait_ns < start ?
		UINT64_MAX :
		start + r->opt.lock_wait_ns;
	for (i = 0; i < r->nlocks; i++) {
		struct lock *l = &r->locks[i];

		/* The status record lists the locks taken and the one tried. */
		r->nlocks_tried = i + 1;
		rc = i < (size_t)n ?
			take_lock(r, l, start, t0, deadline) :
			take_remote(r, l, i - (size_t)n, start, t0, deadline);
		if (rc != HELD) {
			return rc;
		}
		if (i < (size_t)n && l->same_as == NULL) {
			lock_write_holder(l, r->self, r->opt.command);
		}
		t0 += l->wait_ns;
		log_debug("took lock %s after %s", l->path,
			  fmt_duration(l->wait_ns, dur, sizeof(dur)));
	}
	return export_tokens(r) < 0 ? EXIT_FAILURE_SUPERVISE : -1;
}
