/*
 * tree.c: finding, signalling and stopping every descendant.
 *
 * The tree functions act on every descendant of the calling process, so
 * each test builds its own small tree of helper processes under the test
 * process, which is a child subreaper as supervise's supervisor is: an
 * orphan (a helper whose parent exited, or one killed with its parent)
 * comes back to it and is reaped here.
 */
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_suites.h"
#include "loop.h"
#include "tree.h"

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

/* A helper left behind by a crashed test ends itself after this. */
#define HELPER_LIFETIME 60

/* How a helper sets itself up before it says it is ready. */
enum {
	H_IGNORE_TERM = 1 << 0, /* only SIGKILL ends it */
	H_SETSID = 1 << 1,	/* leaves our session, as a daemon does */
	H_OWN_GROUP = 1 << 2,	/* leads a process group of its own */
};

#define MAX_REAPED 64

/* The children reaped during a test, with how they ended. */
struct reaped {
	int n;
	pid_t pid[MAX_REAPED];
	int status[MAX_REAPED];
};

/* Each ready helper writes its pid here, so tests never sleep and hope. */
static int ready[2] = { -1, -1 };

/* The stop sequence under test; the fixture frees what it allocated. */
static struct tree_stop stop;

/*
 * Worst-case scheduling, made deterministic.  A signal may take effect
 * before the call that sends it returns (the target runs on another CPU),
 * and code that signals a process and then looks at it must cope.  Left to
 * the scheduler, such a race makes a test pass or fail at random; so while
 * kill_is_instant is set, kill() and syscall(SYS_pidfd_send_signal, ...),
 * which this program defines in front of the C library's, return only once
 * every target that the signal ends is a zombie.
 */
static bool kill_is_instant;

/*
 * While log_sends is set, kill() and pidfd_send_signal() note each signal
 * in sends[], in the order sent: the target's pid (minus a group's id for
 * a group), and the signal.
 */
#define MAX_SENDS 64
static bool log_sends;
static struct {
	pid_t pid;
	int sig;
} sends[MAX_SENDS];
static int nsends;

static void
log_send(pid_t pid, int sig)
{
	if (log_sends && nsends < MAX_SENDS) {
		sends[nsends].pid = pid;
		sends[nsends].sig = sig;
		nsends++;
	}
}

/* Where sig to pid first is in sends[], or -1. */
static int
sent_at(pid_t pid, int sig)
{
	int i;

	for (i = 0; i < nsends; i++) {
		if (sends[i].pid == pid && sends[i].sig == sig) {
			return i;
		}
	}
	return -1;
}

/* The signals whose default action ends the process. */
static bool
ends_by_default(int sig)
{
	switch (sig) {
	case SIGCHLD:
	case SIGCONT:
	case SIGURG:
	case SIGWINCH:
	case SIGSTOP:
	case SIGTSTP:
	case SIGTTIN:
	case SIGTTOU:
		return false;
	default:
		return sig > 0 && sig < NSIG;
	}
}

/* A "Name:\tHEX" mask of /proc/PID/status, as a 64-bit signal set. */
static unsigned long long
status_mask(const char *status, const char *name)
{
	const char *p = strstr(status, name);

	return p != NULL ? strtoull(p + strlen(name), NULL, 16) : 0;
}

/* What /proc/PID/status says about a process and its signals. */
struct sig_view {
	char state;
	unsigned long long pending, deliverable;
};

static bool
view_signals(pid_t pid, struct sig_view *v)
{
	char path[64], buf[4096];
	const char *state;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return false;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return false;
	}
	buf[n] = '\0';
	state = strstr(buf, "State:\t");
	v->state = state != NULL ? state[7] : '?';
	v->pending = status_mask(buf, "SigPnd:\t") |
		status_mask(buf, "ShdPnd:\t");
	v->deliverable = ~(status_mask(buf, "SigBlk:\t") |
			   status_mask(buf, "SigIgn:\t") |
			   status_mask(buf, "SigCgt:\t"));
	return true;
}

/* Whether sig, sent to a process seen as v just before, ends it now. */
static bool
signal_ends(const struct sig_view *v, int sig)
{
	unsigned long long fatal = 0, pending = v->pending;
	int s;

	if (sig == SIGKILL) {
		return true;
	}
	/* A stopped process acts on its signals once continued. */
	if ((v->state == 'T' || v->state == 't') && sig != SIGCONT) {
		return false;
	}
	for (s = 1; s <= 64; s++) {
		if (ends_by_default(s)) {
			fatal |= 1ULL << (s - 1);
		}
	}
	if (sig > 0 && sig <= 64) {
		pending |= 1ULL << (sig - 1);
	}
	return (pending & fatal & v->deliverable) != 0;
}

/* The state letter of /proc/PID/stat, or 0 when pid is gone. */
static char
state_of(pid_t pid)
{
	char path[64], buf[512], *p;
	char state = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL) {
		return 0;
	}
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL) {
		sscanf(p + 1, " %c", &state);
	}
	fclose(f);
	return state;
}

static bool
is_dead(pid_t pid)
{
	char state = state_of(pid);

	return state == 0 || state == 'Z' || state == 'X';
}

/* The pgrp field of /proc/PID/stat, or -1. */
static pid_t
group_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int pgrp = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL) {
		return -1;
	}
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL) {
		sscanf(p + 1, " %*c %*d %d", &pgrp);
	}
	fclose(f);
	return pgrp;
}

#define MAX_WATCHED 64

/* The processes a kill(pid, ...) reaches: one, or a group's members. */
static int
targets_of(pid_t pid, pid_t *out, struct sig_view *views)
{
	struct dirent *de;
	DIR *dir;
	int n = 0;
	pid_t p;

	if (pid > 0) {
		out[0] = pid;
		return view_signals(pid, &views[0]) ? 1 : 0;
	}
	if (pid >= -1 || (dir = opendir("/proc")) == NULL) {
		return 0;
	}
	while (n < MAX_WATCHED && (de = readdir(dir)) != NULL) {
		p = (pid_t)strtol(de->d_name, NULL, 10);
		if (p > 0 && group_of(p) == -pid &&
		    view_signals(p, &views[n])) {
			out[n++] = p;
		}
	}
	closedir(dir);
	return n;
}

/* Waits (bounded) until each target that sig ends is a zombie. */
static void
await_ends(const pid_t *targets, const struct sig_view *views, int n, int sig)
{
	struct timespec nap = { 0, 100 * 1000 };
	int saved = errno, t, i;

	for (t = 0; t < n; t++) {
		if (!signal_ends(&views[t], sig)) {
			continue;
		}
		/* A process that lives on is the test's to judge. */
		for (i = 0; i < 20000 && !is_dead(targets[t]); i++) {
			nanosleep(&nap, NULL);
		}
	}
	errno = saved;
}

/* The pid of a pidfd or of a /proc/PID directory descriptor, or 0. */
static pid_t
pid_of_fd(int fd)
{
	char path[64], buf[256];
	int pid = 0;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = '\0';
		if (sscanf(buf, "/proc/%d", &pid) == 1 &&
		    strchr(buf + 6, '/') == NULL) {
			return pid;
		}
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (f == NULL) {
		return 0;
	}
	pid = 0;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		if (sscanf(buf, "Pid: %d", &pid) == 1) {
			break;
		}
	}
	fclose(f);
	return pid > 0 ? pid : 0;
}

int
kill(pid_t pid, int sig)
{
	struct sig_view views[MAX_WATCHED];
	pid_t targets[MAX_WATCHED];
	int r, n = 0;

	log_send(pid, sig);
	/* Looked at first: once sent, a signal may already be consumed. */
	if (kill_is_instant) {
		n = targets_of(pid, targets, views);
	}
	r = (int)syscall(SYS_kill, pid, sig);
	if (r == 0) {
		await_ends(targets, views, n, sig);
	}
	return r;
}

/*
 * pidfd_send_signal(2) came with Linux 5.1, and a seccomp profile (or
 * valgrind) may refuse it: while pidfd_signal_fails is set, syscall()
 * answers it with ENOSYS.
 */
static bool pidfd_signal_fails;

/* The C library's syscall(), found before main(): never after a fork. */
static long (*real_syscall)(long, ...);

static void __attribute__((constructor)) find_real_syscall(void)
{
	real_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
}

/*
 * Not instrumented: it reads six arguments as the C library's does, used
 * or not, and the sixth of a shorter call is the caller's stack, which
 * AddressSanitizer may have poisoned as a redzone.
 */
__attribute__((no_sanitize_address)) long
syscall(long number, ...)
{
	struct sig_view views[MAX_WATCHED];
	pid_t targets[MAX_WATCHED];
	long a[6], r;
	va_list ap;
	pid_t pid;
	int i, n = 0;

	/* As the C library's own does: six arguments, used or not. */
	va_start(ap, number);
	for (i = 0; i < 6; i++) {
		a[i] = va_arg(ap, long);
	}
	va_end(ap);
	if (pidfd_signal_fails && number == SYS_pidfd_send_signal) {
		errno = ENOSYS;
		return -1;
	}
	if (log_sends && number == SYS_pidfd_send_signal) {
		log_send(pid_of_fd((int)a[0]), (int)a[1]);
	}
	if (kill_is_instant && number == SYS_pidfd_send_signal &&
	    (pid = pid_of_fd((int)a[0])) > 0) {
		n = targets_of(pid, targets, views);
	}
	r = real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (r == 0 && n > 0) {
		await_ends(targets, views, n, (int)a[1]);
	}
	return r;
}

/*
 * The moment between listing a process and looking at it, made
 * deterministic: while open_hook is set, the first open() of the /proc
 * directory of process open_hook_pid runs open_hook first.
 */
static void (*open_hook)(void);
static pid_t open_hook_pid;

/* The C library's open(), found before main(). */
static int (*real_open)(const char *, int, ...);

static void __attribute__((constructor)) find_real_open(void)
{
	real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
}

int
open(const char *path, int flags, ...)
{
	void (*hook)(void) = open_hook;
	mode_t mode = 0;
	va_list ap;
	char want[32];

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (hook != NULL) {
		snprintf(want, sizeof(want), "/proc/%d", (int)open_hook_pid);
		if (strcmp(path, want) == 0) {
			open_hook = NULL;
			hook();
		}
	}
	return real_open(path, flags, mode);
}

static void
sleep_ns(uint64_t ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(ns / SEC),
		.tv_nsec = (long)(ns % SEC),
	};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
		continue;
	}
}

static void
helper_setup(int flags)
{
	sigset_t none;

	/* Only async-signal-safe calls: a helper may be forked by a thread. */
	signal(SIGTERM, (flags & H_IGNORE_TERM) ? SIG_IGN : SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (flags & H_SETSID) {
		setsid();
	} else if (flags & H_OWN_GROUP) {
		setpgid(0, 0);
	}
	alarm(HELPER_LIFETIME);
}

static void __attribute__((noreturn)) helper_idle(void)
{
	pid_t self = getpid();

	if (write(ready[1], &self, sizeof(self)) != (ssize_t)sizeof(self)) {
		_exit(1);
	}
	for (;;) {
		pause();
	}
}

/*
 * Forks a helper set up with flags, which first forks nkids idle children
 * of its own set up with kid_flags.  The grandchildren are forked after the
 * helper's own setup, so they share its process group.
 */
static pid_t
spawn(int flags, int nkids, int kid_flags)
{
	pid_t pid = fork();
	int i;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		helper_setup(flags);
		for (i = 0; i < nkids; i++) {
			if (fork() == 0) {
				helper_setup(kid_flags);
				helper_idle();
			}
		}
		helper_idle();
	}
	return pid;
}

/*
 * A daemon-like orphan: its parent forks it and exits at once, and it
 * starts a session of its own.  Only the subreaper keeps it in our tree.
 */
static void
spawn_orphan(int flags)
{
	pid_t mid = fork();
	int status;

	ck_assert_int_ge(mid, 0);
	if (mid == 0) {
		if (fork() == 0) {
			helper_setup(flags | H_SETSID);
			helper_idle();
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(mid, &status, 0), mid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A helper's answer to the stop signal: leave a child behind, and exit. */
static void
desert(int sig)
{
	if (fork() == 0) {
		helper_setup(0);
		helper_idle();
	}
	_exit(0);
}

/* A helper that leaves an orphan behind when it gets SIGTERM. */
static pid_t
spawn_deserter(void)
{
	struct sigaction sa;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		helper_setup(0);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = desert;
		sigaction(SIGTERM, &sa, NULL);
		helper_idle();
	}
	return pid;
}

/* Waits for n helpers to be set up; their pids go to pids if not NULL. */
static void
wait_ready(int n, pid_t *pids)
{
	struct pollfd pfd = { .fd = ready[0], .events = POLLIN };
	pid_t pid;
	int i;

	for (i = 0; i < n; i++) {
		ck_assert_msg(poll(&pfd, 1, 10000) == 1,
			      "only %d of %d helpers ready", i, n);
		ck_assert_int_eq(read(ready[0], &pid, sizeof(pid)),
				 sizeof(pid));
		if (pids != NULL) {
			pids[i] = pid;
		}
	}
}

static void
reap_nohang(struct reaped *r)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (r != NULL && r->n < MAX_REAPED) {
			r->pid[r->n] = pid;
			r->status[r->n] = status;
			r->n++;
		}
	}
}

/* Reaps until no child is left at all; a live one fails the test. */
static void
reap_rest(struct reaped *r)
{
	uint64_t limit = loop_now() + 10 * SEC;

	for (;;) {
		reap_nohang(r);
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD) {
			return;
		}
		ck_assert_msg(loop_now() < limit, "a child is still alive");
		sleep_ns(1 * MS);
	}
}

/* Reaps until n children in all are in r, for at most limit_ns. */
static void
reap_count(struct reaped *r, int n, uint64_t limit_ns)
{
	uint64_t limit = loop_now() + limit_ns;

	for (;;) {
		reap_nohang(r);
		if (r->n >= n) {
			return;
		}
		ck_assert_msg(loop_now() < limit, "%d of %d processes ended",
			      r->n, n);
		sleep_ns(1 * MS);
	}
}

/* How pid ended, reaped into r; fails if it was not reaped. */
static int
status_of(const struct reaped *r, pid_t pid)
{
	int i;

	for (i = 0; i < r->n; i++) {
		if (r->pid[i] == pid) {
			return r->status[i];
		}
	}
	ck_abort_msg("process %d was not reaped", (int)pid);
	return -1;
}

static void
ck_assert_killed_by(const struct reaped *r, const pid_t *pids, int n, int sig)
{
	int i, status;

	for (i = 0; i < n; i++) {
		status = status_of(r, pids[i]);
		ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == sig,
			      "process %d: status 0x%x, not killed by %d",
			      (int)pids[i], status, sig);
	}
}

/* Waits, with a bound, for our child pid to end; returns its status. */
static int
await(pid_t pid)
{
	uint64_t limit = loop_now() + 10 * SEC;
	int status;
	pid_t r;

	while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
		ck_assert_msg(loop_now() < limit, "process %d lives on",
			      (int)pid);
		sleep_ns(1 * MS);
	}
	ck_assert_int_eq(r, pid);
	return status;
}

/*
 * Drives the stop sequence as supervise's loop does: step, reap, sleep to
 * the next deadline.  The real loop also wakes for SIGCHLD; a nap of a few
 * milliseconds stands in for that.  Then reaps every child that is left.
 */
static void
run_stop(struct tree_stop *ts, struct reaped *r)
{
	uint64_t limit = loop_now() + 10 * SEC, now, next;

	for (;;) {
		reap_nohang(r);
		now = loop_now();
		if (tree_stop_step(ts, now)) {
			break;
		}
		ck_assert_msg(now < limit, "still stopping (phase %d)",
			      (int)ts->phase);
		next = tree_stop_deadline(ts);
		ck_assert_msg(next != UINT64_MAX, "no deadline in phase %d",
			      (int)ts->phase);
		if (next > now) {
			sleep_ns(next - now < 5 * MS ? next - now : 5 * MS);
		}
	}
	ck_assert_int_eq(ts->phase, TREE_DONE);
	reap_rest(r);
}

static void
setup(void)
{
	memset(&stop, 0, sizeof(stop));
	kill_is_instant = true;
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	/* A count of "our" processes is only right from an empty tree. */
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 0);
}

/* Whatever a test left, alive or not, is killed and reaped. */
static void
teardown(void)
{
	uint64_t limit = loop_now() + 5 * SEC;
	int n;

	do {
		n = tree_signal(SIGKILL, false, 0, NULL);
		while (waitpid(-1, NULL, WNOHANG) > 0) {
			continue;
		}
		if (n == 0 && waitpid(-1, NULL, WNOHANG) < 0) {
			break;
		}
		sleep_ns(1 * MS);
	} while (loop_now() < limit);
	close(ready[0]);
	close(ready[1]);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	kill_is_instant = false;
	pidfd_signal_fails = false;
	log_sends = false;
	nsends = 0;
	open_hook = NULL;
	tree_stop_free(&stop);
}

START_TEST(test_tree_signal_counts_live_descendants)
{
	siginfo_t info;
	pid_t zombie;

	spawn(0, 0, 0);
	spawn(0, 1, 0);	 /* a child with a grandchild */
	spawn_orphan(0); /* a grandchild in its own session, orphaned */
	wait_ready(4, NULL);

	/* A child that has exited but is not reaped is not alive. */
	zombie = fork();
	ck_assert_int_ge(zombie, 0);
	if (zombie == 0) {
		_exit(0);
	}
	ck_assert_int_eq(waitid(P_PID, (id_t)zombie, &info, WEXITED | WNOWAIT),
			 0);

	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 4);
	/* Signal 0 only counts: everything is still there. */
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 4);
}
END_TEST

/*
 * The parent dies of the signal at once; its children, still alive at the
 * call, must get the signal too (they are reparented to us as orphans, so
 * we reap them here).
 */
START_TEST(test_tree_signal_reaches_grandchildren)
{
	struct reaped r = { 0 };
	pid_t pids[3];
	int n;

	spawn(0, 2, 0);
	wait_ready(3, pids);
	n = tree_signal(SIGTERM, false, 0, NULL);
	reap_count(&r, 3, 3 * SEC);
	ck_assert_killed_by(&r, pids, 3, SIGTERM);
	ck_assert_int_eq(n, 3);
}
END_TEST

/*
 * Parents first: a process that saw its child die of the signal before
 * its own came could act on it (a shell prints "Killed", or goes on with
 * its script).  As signals take effect at once here, the parent is dead
 * before the sweep goes on: its children are reached only because they
 * were held before it was signalled.
 */
START_TEST(test_tree_signal_reaches_parents_before_their_children)
{
	struct reaped r = { 0 };
	pid_t parent, pids[3];
	int i;

	parent = spawn(0, 2, 0);
	wait_ready(3, pids);
	log_sends = true;
	ck_assert_int_eq(tree_signal(SIGKILL, false, 0, NULL), 3);
	log_sends = false;
	ck_assert_int_eq(nsends, 3);
	ck_assert_msg(sends[0].pid == parent,
		      "process %d was signalled before its parent %d",
		      (int)sends[0].pid, (int)parent);
	for (i = 0; i < 3; i++) {
		ck_assert_int_ge(sent_at(pids[i], SIGKILL), 0);
	}
	reap_count(&r, 3, 3 * SEC);
	ck_assert_killed_by(&r, pids, 3, SIGKILL);
}
END_TEST

/* How many descriptors this process has open. */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = -1; /* the directory's own */

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL) {
		n += de->d_name[0] != '.';
	}
	closedir(d);
	return n;
}

/*
 * With too few descriptors to hold all its children at once, a process is
 * signalled after them, and they are held one at a time: none is missed.
 */
START_TEST(test_tree_signal_reaches_every_child_with_few_descriptors)
{
	struct reaped r = { 0 };
	struct rlimit old, low;
	pid_t pids[41];
	int n;

	spawn(0, 40, 0);
	wait_ready(41, pids);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)open_fds() + 12;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	n = tree_signal(SIGKILL, false, 0, NULL);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_int_eq(n, 41);
	reap_count(&r, 41, 5 * SEC);
	ck_assert_killed_by(&r, pids, 41, SIGKILL);
}
END_TEST

/*
 * Our own children can be signalled by pid whatever the kernel offers: no
 * one else can reap them, so their pids cannot be reused under us.  If the
 * sweep only had pidfd_send_signal(), a stop on an older kernel (or under
 * a seccomp profile that refuses it) would SIGKILL nothing, find the same
 * processes alive at every re-check, and never end.
 */
START_TEST(test_tree_signal_kills_children_without_pidfd_send_signal)
{
	struct reaped r = { 0 };
	pid_t pids[2];
	int n;

	spawn(0, 0, 0);
	spawn(0, 0, 0);
	wait_ready(2, pids);
	pidfd_signal_fails = true;
	n = tree_signal(SIGKILL, false, 0, NULL);
	pidfd_signal_fails = false;
	ck_assert_int_eq(n, 2);
	reap_count(&r, 2, 3 * SEC);
	ck_assert_killed_by(&r, pids, 2, SIGKILL);
}
END_TEST

START_TEST(test_tree_signal_skips_listed_children_and_their_subtrees)
{
	struct tree_skip skip;
	pid_t a, b;

	a = spawn(0, 0, 0);
	b = spawn(0, 1, 0);
	wait_ready(3, NULL);
	skip.pids = &b;
	skip.n = 1;
	ck_assert_int_eq(tree_signal(0, false, 0, &skip), 1);
	ck_assert_int_eq(tree_signal(SIGKILL, false, 0, &skip), 1);
	ck_assert_int_eq(WTERMSIG(await(a)), SIGKILL);
	/* The skipped child and its child live on. */
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 2);
}
END_TEST

/* The caller signals that group itself, in one kill(). */
START_TEST(test_tree_signal_counts_but_leaves_the_given_group)
{
	pid_t g, a;

	g = spawn(H_OWN_GROUP, 1, 0);
	a = spawn(0, 0, 0);
	wait_ready(3, NULL);
	ck_assert_int_eq(tree_signal(SIGKILL, false, g, NULL), 3);
	ck_assert_int_eq(WTERMSIG(await(a)), SIGKILL);
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 2);
	ck_assert_int_eq(waitpid(g, NULL, WNOHANG), 0);
}
END_TEST

/* A helper's answer to SIGUSR1: hand a new child over to us, and exit. */
static void
hand_over(int sig)
{
	if (fork() == 0) {
		helper_setup(0);
		helper_idle();
	}
	_exit(0);
}

static pid_t hand_over_pid;

/* Run just before the sweep looks at the helper it has listed. */
static void
make_hand_over_now(void)
{
	uint64_t limit = loop_now() + 5 * SEC;

	syscall(SYS_kill, hand_over_pid, SIGUSR1);
	while (state_of(hand_over_pid) != 'Z') {
		ck_assert_msg(loop_now() < limit, "the helper did not exit");
		sleep_ns(1 * MS);
	}
}

/*
 * A child that exits after the sweep listed our children, and before the
 * sweep looks at it, has handed its own children to us: a zombie seen
 * means our children are listed again, or an orphan is missed and the run
 * is thought to be over while it lives.
 */
START_TEST(test_tree_signal_finds_orphans_handed_over_while_listing)
{
	struct sigaction sa;
	pid_t orphan;

	hand_over_pid = fork();
	ck_assert_int_ge(hand_over_pid, 0);
	if (hand_over_pid == 0) {
		helper_setup(0);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = hand_over;
		sigaction(SIGUSR1, &sa, NULL);
		helper_idle();
	}
	wait_ready(1, NULL);
	open_hook_pid = hand_over_pid;
	open_hook = make_hand_over_now;
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 1);
	ck_assert_ptr_null(open_hook);
	wait_ready(1, &orphan);
	ck_assert_int_eq(tree_signal(SIGKILL, false, 0, NULL), 1);
	ck_assert_int_eq(WTERMSIG(await(orphan)), SIGKILL);
}
END_TEST

/* A helper whose main thread exits while another thread lives on. */
static void *
idle_thread(void *arg)
{
	helper_idle();
}

/*
 * /proc shows such a process in the state of its main thread, Z, but it
 * lives, and must be counted and stopped like any other.
 */
START_TEST(test_tree_signal_reaches_a_process_whose_main_thread_exited)
{
	uint64_t limit = loop_now() + 5 * SEC;
	pthread_t t;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		helper_setup(0);
		if (pthread_create(&t, NULL, idle_thread, NULL) != 0) {
			_exit(1);
		}
		pthread_exit(NULL);
	}
	wait_ready(1, NULL);
	while (state_of(pid) != 'Z') {
		ck_assert_msg(loop_now() < limit, "the main thread lives on");
		sleep_ns(1 * MS);
	}
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 1);
	ck_assert_int_eq(tree_signal(SIGTERM, false, 0, NULL), 1);
	ck_assert_int_eq(WTERMSIG(await(pid)), SIGTERM);
}
END_TEST

static int thread_hold[2] = { -1, -1 };

/* Forks a helper, then stays alive so that the child stays listed here. */
static void *
forking_thread(void *arg)
{
	char c;

	if (fork() == 0) {
		helper_setup(0);
		helper_idle();
	}
	while (read(thread_hold[0], &c, 1) < 0 && errno == EINTR) {
		continue;
	}
	return NULL;
}

/* A child forked by a thread is listed under that thread's task only. */
START_TEST(test_tree_signal_finds_children_of_other_threads)
{
	pthread_t thread;
	pid_t pid;

	ck_assert_int_eq(pipe2(thread_hold, O_CLOEXEC), 0);
	ck_assert_int_eq(pthread_create(&thread, NULL, forking_thread, NULL),
			 0);
	wait_ready(1, &pid);
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 1);
	ck_assert_int_eq(tree_signal(SIGKILL, false, 0, NULL), 1);
	ck_assert_int_eq(WTERMSIG(await(pid)), SIGKILL);
	close(thread_hold[1]);
	ck_assert_int_eq(pthread_join(thread, NULL), 0);
	close(thread_hold[0]);
}
END_TEST

START_TEST(test_tree_skip_init_lists_the_current_children)
{
	struct tree_skip skip = { 0 };
	pid_t a, b;

	a = spawn(0, 0, 0);
	b = spawn(0, 1, 0);
	wait_ready(3, NULL);
	ck_assert_int_eq(tree_skip_init(&skip), 0);
	/* Children only: the grandchild is not listed. */
	ck_assert_uint_eq(skip.n, 2);
	ck_assert((skip.pids[0] == a && skip.pids[1] == b) ||
		  (skip.pids[0] == b && skip.pids[1] == a));
	ck_assert_int_eq(tree_signal(0, false, 0, &skip), 0);

	tree_skip_remove(&skip, a);
	ck_assert_uint_eq(skip.n, 1);
	ck_assert_int_eq(skip.pids[0], b);
	tree_skip_remove(&skip, 1);
	ck_assert_uint_eq(skip.n, 1);
	ck_assert_int_eq(tree_signal(0, false, 0, &skip), 1);

	tree_skip_free(&skip);
	ck_assert_ptr_null(skip.pids);
	ck_assert_uint_eq(skip.n, 0);
}
END_TEST

START_TEST(test_tree_stop_kills_term_ignoring_processes_after_the_grace)
{
	struct reaped r = { 0 };
	uint64_t start;
	pid_t pids[4];

	stop.sig = SIGTERM;
	stop.grace_ns = 50 * MS;
	spawn(H_IGNORE_TERM, 0, 0);
	spawn(H_IGNORE_TERM, 1, H_IGNORE_TERM);
	spawn_orphan(H_IGNORE_TERM);
	wait_ready(4, pids);

	start = loop_now();
	ck_assert_int_eq(tree_stop_begin(&stop, start), 4);
	ck_assert_int_eq(stop.phase, TREE_GRACE);
	ck_assert_int_eq(stop.signalled, 4);
	ck_assert_int_eq(stop.killed, 0);
	/* Just before the grace ends, nothing is killed yet. */
	ck_assert(!tree_stop_step(&stop, start + 49 * MS));
	ck_assert_int_eq(stop.phase, TREE_GRACE);
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 4);

	run_stop(&stop, &r);
	ck_assert_uint_ge(loop_now() - start, 50 * MS);
	ck_assert(stop.escalated);
	ck_assert_killed_by(&r, pids, 4, SIGKILL);
}
END_TEST

/*
 * "grace of 10s over; sending SIGKILL to N processes" reports stop.killed:
 * all four were alive at the end of the grace and all four get SIGKILL.
 */
START_TEST(test_tree_stop_counts_every_process_killed_at_the_grace_end)
{
	struct reaped r = { 0 };
	uint64_t start;
	pid_t pids[4];

	stop.sig = SIGTERM;
	stop.grace_ns = 10 * SEC;
	spawn(H_IGNORE_TERM, 0, 0);
	spawn(H_IGNORE_TERM, 1, H_IGNORE_TERM);
	spawn_orphan(H_IGNORE_TERM);
	wait_ready(4, pids);
	start = loop_now();
	ck_assert_int_eq(tree_stop_begin(&stop, start), 4);
	ck_assert(!tree_stop_step(&stop, stop.grace_end));
	ck_assert_int_eq(stop.phase, TREE_KILL);
	run_stop(&stop, &r);
	ck_assert_killed_by(&r, pids, 4, SIGKILL);
	ck_assert_int_eq(stop.killed, 4);
}
END_TEST

START_TEST(test_tree_stop_ends_without_sigkill_when_the_tree_obeys)
{
	struct reaped r = { 0 };
	uint64_t start;
	pid_t pids[4];

	stop.sig = SIGTERM;
	stop.grace_ns = 20 * SEC;
	spawn(0, 0, 0);
	spawn(0, 1, 0);
	spawn_orphan(0);
	wait_ready(4, pids);

	start = loop_now();
	ck_assert_int_eq(tree_stop_begin(&stop, start), 4);
	run_stop(&stop, &r);
	/* Done as soon as the last one went, long before the grace ends. */
	ck_assert_uint_lt(loop_now() - start, 10 * SEC);
	ck_assert(!stop.escalated);
	ck_assert_int_eq(stop.killed, 0);
	ck_assert_killed_by(&r, pids, 4, SIGTERM);
}
END_TEST

/* A stopped process sees the stop signal only once it is continued. */
START_TEST(test_tree_stop_resumes_stopped_processes)
{
	struct reaped r = { 0 };
	uint64_t limit = loop_now() + 10 * SEC;
	pid_t pids[3];
	int status, i;

	/* Long enough for an obeying tree, short enough to fail fast. */
	stop.sig = SIGTERM;
	stop.grace_ns = 3 * SEC;
	spawn(0, 0, 0);
	spawn(0, 1, 0);
	wait_ready(3, pids);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(kill(pids[i], SIGSTOP), 0);
	}
	for (i = 0; i < 3; i++) {
		while (state_of(pids[i]) != 'T') {
			ck_assert_msg(loop_now() < limit, "%d did not stop",
				      (int)pids[i]);
			sleep_ns(1 * MS);
		}
	}
	/* Consume the stop notices, or they would pass for exits below. */
	while (waitpid(-1, &status, WNOHANG | WUNTRACED) > 0) {
		ck_assert(WIFSTOPPED(status));
	}

	ck_assert_int_gt(tree_stop_begin(&stop, loop_now()), 0);
	run_stop(&stop, &r);
	ck_assert_killed_by(&r, pids, 3, SIGTERM);
	ck_assert(!stop.escalated);
}
END_TEST

/* -k 0: no grace at all, SIGKILL with the first sweep. */
START_TEST(test_tree_stop_with_zero_grace_sends_sigkill_at_once)
{
	struct reaped r = { 0 };
	pid_t pids[3];

	stop.sig = SIGTERM;
	stop.grace_ns = 0;
	spawn(H_IGNORE_TERM, 0, 0);
	spawn(0, 1, 0);
	wait_ready(3, pids);
	ck_assert_int_eq(tree_stop_begin(&stop, loop_now()), 3);
	ck_assert(stop.phase == TREE_KILL || stop.phase == TREE_DONE);
	ck_assert_int_eq(stop.signalled, 3);
	ck_assert_int_eq(stop.killed, 3);
	run_stop(&stop, &r);
	ck_assert_killed_by(&r, pids, 3, SIGKILL);
}
END_TEST

START_TEST(test_tree_stop_with_sigkill_as_the_signal_skips_the_grace)
{
	struct reaped r = { 0 };
	uint64_t start;
	pid_t pids[3];

	stop.sig = SIGKILL;
	stop.grace_ns = 20 * SEC;
	spawn(H_IGNORE_TERM, 1, H_IGNORE_TERM);
	spawn(0, 0, 0);
	wait_ready(3, pids);
	start = loop_now();
	ck_assert_int_eq(tree_stop_begin(&stop, start), 3);
	ck_assert(stop.phase == TREE_KILL || stop.phase == TREE_DONE);
	ck_assert_int_eq(stop.killed, 3);
	run_stop(&stop, &r);
	ck_assert_uint_lt(loop_now() - start, 10 * SEC);
	ck_assert_killed_by(&r, pids, 3, SIGKILL);
}
END_TEST

START_TEST(test_tree_stop_of_an_empty_tree_is_done_at_once)
{
	uint64_t now = loop_now();

	stop.sig = SIGTERM;
	stop.grace_ns = 10 * SEC;
	ck_assert_int_eq(tree_stop_begin(&stop, now), 0);
	ck_assert_int_eq(stop.phase, TREE_DONE);
	ck_assert(tree_stop_step(&stop, now));
	ck_assert_uint_eq(tree_stop_deadline(&stop), UINT64_MAX);
	ck_assert_int_eq(tree_stop_hurry(&stop, now), 0);
	ck_assert_int_eq(stop.phase, TREE_DONE);
}
END_TEST

/* The fixture leaves stop zeroed: TREE_IDLE, not stopping. */
START_TEST(test_tree_stop_idle_has_no_deadline_and_nothing_to_hurry)
{
	uint64_t now = loop_now();

	spawn(0, 0, 0);
	wait_ready(1, NULL);
	ck_assert_uint_eq(tree_stop_deadline(&stop), UINT64_MAX);
	ck_assert(!tree_stop_step(&stop, now));
	ck_assert_int_eq(tree_stop_hurry(&stop, now), 0);
	ck_assert_int_eq(stop.phase, TREE_IDLE);
	/* Not stopping means not signalling. */
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 1);
}
END_TEST

/* A second cancel signal in the grace: SIGKILL everything now. */
START_TEST(test_tree_stop_hurry_sends_sigkill_during_the_grace)
{
	struct reaped r = { 0 };
	uint64_t start;
	pid_t pids[3];

	stop.sig = SIGTERM;
	stop.grace_ns = 20 * SEC;
	spawn(H_IGNORE_TERM, 0, 0);
	spawn(H_IGNORE_TERM, 1, H_IGNORE_TERM);
	wait_ready(3, pids);
	start = loop_now();
	ck_assert_int_eq(tree_stop_begin(&stop, start), 3);
	ck_assert_int_eq(stop.phase, TREE_GRACE);
	ck_assert_int_eq(tree_stop_hurry(&stop, loop_now()), 3);
	ck_assert_int_eq(stop.phase, TREE_KILL);
	ck_assert(stop.escalated);
	ck_assert_int_eq(stop.killed, 3);
	run_stop(&stop, &r);
	ck_assert_uint_lt(loop_now() - start, 10 * SEC);
	ck_assert_killed_by(&r, pids, 3, SIGKILL);
	ck_assert_int_eq(tree_stop_hurry(&stop, loop_now()), 0);
}
END_TEST

/*
 * The loop sleeps until tree_stop_deadline(): it must never be past the
 * end of the grace, and the re-checks for grandchildren (which exit
 * without a SIGCHLD to us) back off but stay frequent.  Time is simulated
 * here: each step runs exactly at the deadline it was given.
 */
START_TEST(test_tree_stop_deadline_keeps_to_the_grace_and_rechecks)
{
	struct reaped r = { 0 };
	uint64_t t, d;
	pid_t pid;
	int i;

	stop.sig = SIGTERM;
	stop.grace_ns = 10 * SEC;
	pid = spawn(H_IGNORE_TERM, 0, 0);
	wait_ready(1, NULL);
	t = loop_now();
	ck_assert_int_eq(tree_stop_begin(&stop, t), 1);
	for (i = 0; i < 30; i++) {
		d = tree_stop_deadline(&stop);
		ck_assert_uint_gt(d, t);
		ck_assert_uint_le(d - t, 50 * MS);
		ck_assert_uint_le(d, stop.grace_end);
		t = d;
		ck_assert(!tree_stop_step(&stop, t));
		ck_assert_int_eq(stop.phase, TREE_GRACE);
	}
	/* At the end of the grace: SIGKILL, and re-checks until it is gone. */
	t = stop.grace_end;
	ck_assert(!tree_stop_step(&stop, t));
	ck_assert_int_eq(stop.phase, TREE_KILL);
	ck_assert(stop.escalated);
	ck_assert_int_eq(stop.killed, 1);
	d = tree_stop_deadline(&stop);
	ck_assert_uint_gt(d, t);
	ck_assert_uint_le(d - t, 50 * MS);
	ck_assert_int_eq(WTERMSIG(await(pid)), SIGKILL);
	ck_assert(tree_stop_step(&stop, loop_now()));
	ck_assert_uint_eq(tree_stop_deadline(&stop), UINT64_MAX);
	reap_rest(&r);
}
END_TEST

/* The group gets the signal through kill(-group), not from the sweep. */
START_TEST(test_tree_stop_signals_the_group_as_a_whole)
{
	struct reaped r = { 0 };
	pid_t pids[2];

	stop.sig = SIGTERM;
	stop.grace_ns = 20 * SEC;
	stop.group = spawn(H_OWN_GROUP, 1, 0);
	wait_ready(2, pids);
	/* Both are counted, though the sweep leaves them to kill(-group). */
	ck_assert_int_eq(tree_stop_begin(&stop, loop_now()), 2);
	run_stop(&stop, &r);
	ck_assert(!stop.escalated);
	ck_assert_killed_by(&r, pids, 2, SIGTERM);
}
END_TEST

/*
 * A group member's child that left the group is signalled after the group:
 * its parent must not see it die first.  The tree is counted after the
 * group was signalled: members that died of it count as zombies.
 */
START_TEST(test_tree_stop_signals_the_group_before_children_outside_it)
{
	struct reaped r = { 0 };
	pid_t pids[2], kid;
	int group_at, kid_at;

	stop.sig = SIGTERM;
	stop.grace_ns = 20 * SEC;
	stop.group = spawn(H_OWN_GROUP, 1, H_SETSID);
	wait_ready(2, pids);
	kid = pids[0] == stop.group ? pids[1] : pids[0];
	log_sends = true;
	ck_assert_int_eq(tree_stop_begin(&stop, loop_now()), 2);
	log_sends = false;
	group_at = sent_at(-stop.group, SIGTERM);
	kid_at = sent_at(kid, SIGTERM);
	ck_assert_int_ge(group_at, 0);
	ck_assert_msg(kid_at > group_at,
		      "the child outside the group was signalled at %d, the "
		      "group at %d",
		      kid_at, group_at);
	run_stop(&stop, &r);
	ck_assert(!stop.escalated);
	ck_assert_killed_by(&r, pids, 2, SIGTERM);
}
END_TEST

/*
 * A process that answers the stop signal by exiting and leaving a child
 * behind hands us an orphan that was never sent the stop signal.  With
 * its parent gone nobody else will stop it, so it gets the stop signal in
 * the grace, and the run ends without SIGKILL.
 */
START_TEST(test_tree_stop_signals_orphans_adopted_during_the_grace)
{
	struct reaped r = { 0 };
	pid_t deserter, orphan;
	int status;

	stop.sig = SIGTERM;
	stop.grace_ns = 3 * SEC;
	deserter = spawn_deserter();
	wait_ready(1, NULL);
	ck_assert_int_eq(tree_stop_begin(&stop, loop_now()), 1);
	wait_ready(1, &orphan);
	run_stop(&stop, &r);
	status = status_of(&r, deserter);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_killed_by(&r, &orphan, 1, SIGTERM);
	ck_assert(!stop.escalated);
}
END_TEST

/* Children supervise inherited (not part of the run) are left alone. */
START_TEST(test_tree_stop_leaves_skipped_children_alone)
{
	struct tree_skip skip;
	pid_t keep, gone;

	stop.sig = SIGTERM;
	stop.grace_ns = 0;
	keep = spawn(0, 1, 0);
	gone = spawn(0, 0, 0);
	wait_ready(3, NULL);
	skip.pids = &keep;
	skip.n = 1;
	stop.skip = &skip;
	ck_assert_int_eq(tree_stop_begin(&stop, loop_now()), 1);
	ck_assert_int_eq(WTERMSIG(await(gone)), SIGKILL);
	ck_assert(tree_stop_step(&stop, loop_now()));
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 2);
}
END_TEST

Suite *
tree_suite(void)
{
	Suite *s = suite_create("tree");
	TCase *tc;

	/*
	 * These act on every descendant of the test process and make it a
	 * subreaper: only in a process of their own, never in the shared
	 * runner of CK_FORK=no.
	 */
	if (!test_forks()) {
		return s;
	}
	tc = tcase_create("signal");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_tree_signal_counts_live_descendants);
	tcase_add_test(tc, test_tree_signal_reaches_grandchildren);
	tcase_add_test(tc,
		       test_tree_signal_reaches_parents_before_their_children);
	tcase_add_test(
		tc, test_tree_signal_reaches_every_child_with_few_descriptors);
	tcase_add_test(
		tc, test_tree_signal_kills_children_without_pidfd_send_signal);
	tcase_add_test(
		tc, test_tree_signal_skips_listed_children_and_their_subtrees);
	tcase_add_test(tc, test_tree_signal_counts_but_leaves_the_given_group);
	tcase_add_test(tc, test_tree_signal_finds_children_of_other_threads);
	tcase_add_test(
		tc, test_tree_signal_finds_orphans_handed_over_while_listing);
	tcase_add_test(
		tc,
		test_tree_signal_reaches_a_process_whose_main_thread_exited);
	tcase_add_test(tc, test_tree_skip_init_lists_the_current_children);
	suite_add_tcase(s, tc);

	tc = tcase_create("stop");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(
		tc,
		test_tree_stop_kills_term_ignoring_processes_after_the_grace);
	tcase_add_test(
		tc,
		test_tree_stop_counts_every_process_killed_at_the_grace_end);
	tcase_add_test(tc,
		       test_tree_stop_ends_without_sigkill_when_the_tree_obeys);
	tcase_add_test(tc, test_tree_stop_resumes_stopped_processes);
	tcase_add_test(tc,
		       test_tree_stop_with_zero_grace_sends_sigkill_at_once);
	tcase_add_test(
		tc, test_tree_stop_with_sigkill_as_the_signal_skips_the_grace);
	tcase_add_test(tc, test_tree_stop_of_an_empty_tree_is_done_at_once);
	tcase_add_test(
		tc, test_tree_stop_idle_has_no_deadline_and_nothing_to_hurry);
	tcase_add_test(tc, test_tree_stop_hurry_sends_sigkill_during_the_grace);
	tcase_add_test(tc,
		       test_tree_stop_deadline_keeps_to_the_grace_and_rechecks);
	tcase_add_test(tc, test_tree_stop_signals_the_group_as_a_whole);
	tcase_add_test(
		tc,
		test_tree_stop_signals_the_group_before_children_outside_it);
	tcase_add_test(tc,
		       test_tree_stop_signals_orphans_adopted_during_the_grace);
	tcase_add_test(tc, test_tree_stop_leaves_skipped_children_alone);
	suite_add_tcase(s, tc);
	return s;
}
