#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tree.h"

#define NS_PER_MS UINT64_C(1000000)
/* Re-checks for grandchildren back off from 1 ms to this. */
#define CHECK_STEP_MAX (50 * NS_PER_MS)
/* Deeper trees than this are reached on the next sweep, once reparented. */
#define MAX_DEPTH 2048

struct proc_info {
	char state;
	pid_t ppid;
	pid_t pgrp;
};

struct sweep {
	int sig;
	bool cont;
	pid_t pgid;
	const struct tree_skip *skip;
	pid_t self;
	int found;
	/*
	 * With told: our children that were sent sig are added to it, and
	 * with only_new, sig goes only to our children not in it (orphans
	 * that appeared since), never to deeper descendants.
	 */
	struct pid_vec *told;
	bool only_new;
};

uint64_t
tree_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static int
vec_push(struct pid_vec *pv, pid_t pid)
{
	if (pv->n == pv->cap) {
		size_t cap = pv->cap ? pv->cap * 2 : 16;
		pid_t *v = realloc(pv->v, cap * sizeof(*v));
		if (v == NULL) {
			return -1;
		}
		pv->v = v;
		pv->cap = cap;
	}
	pv->v[pv->n++] = pid;
	return 0;
}

/*
 * Processes are reached through their /proc/PID directory, opened once:
 * reading stat and the children lists through it, and signalling it with
 * pidfd_send_signal() (which takes such a descriptor), can never reach
 * another process that got the same pid later.  It also keeps the sweep
 * right when /proc belongs to another PID namespace than ours (PID 1 of a
 * namespace without a /proc of its own): every pid the sweep handles is
 * one of /proc's, and none is passed to kill() (only our own COMMAND's
 * process group is, and only when /proc is ours).
 */

/* Reads a whole small file (at dir) into a malloc'd, NUL-terminated buffer. */
static char *
read_file_at(int dir, const char *path)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap), *nbuf;
	ssize_t n;
	int fd;

	if (buf == NULL) {
		return NULL;
	}
	fd = openat(dir, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	for (;;) {
		if (len + 1 >= cap) {
			nbuf = realloc(buf, cap * 2);
			if (nbuf == NULL) {
				break;
			}
			buf = nbuf;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/*
 * The children of every thread of the process at dir (a child forked by a
 * thread other than the main one is listed only under that thread).
 */
static int
list_children(int dir, struct pid_vec *out)
{
	char path[300], *buf, *p, *end;
	struct dirent *de;
	DIR *tasks;
	long v;
	int fd;

	fd = openat(dir, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (tasks = fdopendir(fd)) == NULL) {
		if (fd >= 0) {
			close(fd);
		}
		return -1;
	}
	while ((de = readdir(tasks)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9') {
			continue;
		}
		snprintf(path, sizeof(path), "task/%s/children", de->d_name);
		buf = read_file_at(dir, path);
		if (buf == NULL) {
			continue;
		}
		for (p = buf;; p = end) {
			v = strtol(p, &end, 10);
			if (end == p) {
				break;
			}
			if (v > 0 && vec_push(out, (pid_t)v) < 0) {
				free(buf);
				closedir(tasks);
				return -1;
			}
		}
		free(buf);
	}
	closedir(tasks);
	return 0;
}

static int
read_info(int dir, struct proc_info *pi)
{
	char buf[512], *p;
	ssize_t n;
	int fd;

	fd = openat(dir, "stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return -1;
	}
	buf[n] = '\0';
	/* The command name may hold anything, ")" included: skip to the last. */
	p = strrchr(buf, ')');
	/* NOLINTNEXTLINE(cert-err34-c): the kernel writes these numbers. */
	if (p == NULL || sscanf(p + 1, " %c %d %d", &pi->state, &pi->ppid,
				 &pi->pgrp) != 3) {
		return -1;
	}
	return 0;
}

/* Our own pid as /proc counts it (another namespace's /proc differs). */
static pid_t
proc_self(void)
{
	char buf[32];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

	if (n <= 0) {
		return getpid();
	}
	buf[n] = '\0';
	return (pid_t)strtol(buf, NULL, 10);
}

static bool
is_skipped(const struct tree_skip *skip, pid_t pid)
{
	size_t i;

	for (i = 0; skip != NULL && i < skip->n; i++) {
		if (skip->pids[i] == pid) {
			return true;
		}
	}
	return false;
}

/* The process at dir still lives (a zombie has handed on its children). */
static bool
proc_alive(int dir)
{
	struct proc_info pi;

	return read_info(dir, &pi) == 0 && pi.state != 'Z';
}

static void visit(struct sweep *sw, int dir, pid_t parent, int depth);

static bool
is_told(const struct sweep *sw, pid_t pid)
{
	size_t i;

	for (i = 0; sw->told != NULL && i < sw->told->n; i++) {
		if (sw->told->v[i] == pid) {
			return true;
		}
	}
	return false;
}

/*
 * Signals the process at dir.  Where pidfd_send_signal() is not to be had
 * (before Linux 5.1, some seccomp filters, valgrind), kill() by pid stands
 * in if /proc is ours: safe for our own children, which nobody else can
 * reap, and for deeper ones as safe as any pid-based tool.
 */
static void
send(const struct sweep *sw, int dir, pid_t pid, int sig)
{
	if (syscall(SYS_pidfd_send_signal, dir, sig, NULL, 0) == 0 ||
	    (errno != ENOSYS && errno != EPERM)) {
		return;
	}
	if (sw->self == getpid()) {
		kill(pid, sig);
	}
}

static void
visit_child(struct sweep *sw, int parent_dir, pid_t parent, pid_t pid,
	    int depth)
{
	struct proc_info pi;
	char path[32];
	int dir;

	if (parent == sw->self && is_skipped(sw->skip, pid)) {
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		/* Gone; or out of descriptors, and then found next time. */
		return;
	}
	if (read_info(dir, &pi) < 0 || pi.state == 'Z' || pi.ppid != parent ||
	    (parent != sw->self && !proc_alive(parent_dir))) {
		/*
		 * Gone, a zombie, or no longer the child of the process it was
		 * listed under (and so perhaps a new process on a reused pid).
		 * A real descendant is reparented to us and found next time.
		 */
		goto out;
	}
	sw->found++;
	/*
	 * Children first: a process that is signalled first may die and
	 * hand its children to us before we list them, and we would miss
	 * them in this sweep.
	 */
	if (depth < MAX_DEPTH) {
		visit(sw, dir, pid, depth + 1);
	}
	if (sw->sig == 0 ||
	    (sw->only_new && (parent != sw->self || is_told(sw, pid)))) {
		goto out;
	}
	/* Members of pgid get it from the caller's kill() of the group. */
	if (!(sw->pgid != 0 && pi.pgrp == sw->pgid)) {
		send(sw, dir, pid, sw->sig);
		if (sw->cont) {
			send(sw, dir, pid, SIGCONT);
		}
	}
	if (sw->told != NULL && parent == sw->self && !is_told(sw, pid)) {
		vec_push(sw->told, pid);
	}
out:
	close(dir);
}

static void
visit(struct sweep *sw, int dir, pid_t parent, int depth)
{
	struct pid_vec kids = { 0 };
	size_t i;

	if (list_children(dir, &kids) == 0) {
		for (i = 0; i < kids.n; i++) {
			visit_child(sw, dir, parent, kids.v[i], depth);
		}
	}
	free(kids.v);
}

/*
 * Whether we have any child at all, exited or not, in one system call.
 * As a subreaper, we have no descendant when we have no child: each one
 * lives under a child of ours, or was handed to us.  This spares the
 * /proc walk at the end of most runs.
 */
static bool
has_children(void)
{
	siginfo_t info;

	return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0 ||
		errno != ECHILD;
}

static int
sweep(int sig, bool cont, pid_t pgid, const struct tree_skip *skip,
      struct pid_vec *told, bool only_new)
{
	struct sweep sw = {
		.sig = sig, .cont = cont, .skip = skip,
		.found = 0, .told = told, .only_new = only_new,
	};
	int dir;

	if (!has_children()) {
		return 0;
	}
	sw.self = proc_self();
	dir = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		return -1;
	}
	/* A pgid is ours; it means the same to /proc only if /proc is ours. */
	sw.pgid = sw.self == getpid() ? pgid : 0;
	visit(&sw, dir, sw.self, 0);
	close(dir);
	return sw.found;
}

int
tree_signal(int sig, bool cont, pid_t pgid, const struct tree_skip *skip)
{
	return sweep(sig, cont, pgid, skip, NULL, false);
}

static uint64_t
add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int
kill_all(struct tree_stop *ts)
{
	return tree_signal(SIGKILL, false, 0, ts->skip);
}

int
tree_stop_begin(struct tree_stop *ts, uint64_t now)
{
	bool at_once = ts->grace_ns == 0 || ts->sig == SIGKILL;
	int sig = at_once ? SIGKILL : ts->sig;
	int n;

	ts->escalated = false;
	ts->check_step = NS_PER_MS;
	ts->next_check = now + ts->check_step;
	ts->grace_end = add_sat(now, ts->grace_ns);
	/*
	 * The sweep counts every process and signals those outside the
	 * group; then one kill() reaches the whole group, so that a member
	 * that forks meanwhile takes its child along.  (Killing the group
	 * first would let its members die before they are counted.)
	 */
	ts->told.n = 0;
	n = sweep(sig, sig != SIGKILL, ts->group, ts->skip, &ts->told, false);
	if (ts->group > 0 && proc_self() == getpid()) {
		kill(-ts->group, sig);
		if (sig != SIGKILL) {
			kill(-ts->group, SIGCONT);
		}
	}
	ts->signalled = n;
	ts->killed = at_once ? n : 0;
	ts->phase = n == 0 ? TREE_DONE : at_once ? TREE_KILL : TREE_GRACE;
	return n;
}

int
tree_stop_hurry(struct tree_stop *ts, uint64_t now)
{
	int n;

	if (ts->phase == TREE_DONE || ts->phase == TREE_IDLE) {
		return 0;
	}
	n = kill_all(ts);
	if (ts->phase == TREE_GRACE) {
		ts->killed = n;
		ts->escalated = true;
	}
	ts->phase = n == 0 ? TREE_DONE : TREE_KILL;
	ts->check_step = NS_PER_MS;
	ts->next_check = now + ts->check_step;
	return n;
}

bool
tree_stop_step(struct tree_stop *ts, uint64_t now)
{
	int n;

	switch (ts->phase) {
	case TREE_GRACE:
		if (now >= ts->grace_end) {
			n = kill_all(ts);
			ts->killed = n;
			ts->escalated = n > 0;
			ts->phase = n == 0 ? TREE_DONE : TREE_KILL;
			ts->check_step = NS_PER_MS;
		} else if (sweep(ts->sig, true, 0, ts->skip, &ts->told, true) == 0) {
			/*
			 * Above: orphans that were not our children when the
			 * stop began (a descendant died and we adopted its
			 * children) get the stop signal too: no parent of
			 * theirs is left to stop them.
			 */
			ts->phase = TREE_DONE;
		}
		break;
	case TREE_KILL:
		/* SIGKILL again: anything forked since the last sweep. */
		if (kill_all(ts) == 0) {
			ts->phase = TREE_DONE;
		}
		break;
	case TREE_IDLE:
	case TREE_DONE:
		break;
	}
	if (now >= ts->next_check) {
		ts->check_step = ts->check_step * 2 > CHECK_STEP_MAX ?
			CHECK_STEP_MAX : ts->check_step * 2;
	}
	ts->next_check = now + ts->check_step;
	return ts->phase == TREE_DONE;
}

void
tree_stop_free(struct tree_stop *ts)
{
	free(ts->told.v);
	ts->told.v = NULL;
	ts->told.n = ts->told.cap = 0;
}

uint64_t
tree_stop_deadline(const struct tree_stop *ts)
{
	switch (ts->phase) {
	case TREE_GRACE:
		return ts->next_check < ts->grace_end ? ts->next_check : ts->grace_end;
	case TREE_KILL:
		return ts->next_check;
	case TREE_IDLE:
	case TREE_DONE:
		break;
	}
	return UINT64_MAX;
}

int
tree_skip_init(struct tree_skip *skip)
{
	struct pid_vec kids = { 0 };
	int dir;

	skip->pids = NULL;
	skip->n = 0;
	if (!has_children()) {
		return 0;
	}
	dir = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0 || list_children(dir, &kids) < 0) {
		if (dir >= 0) {
			close(dir);
		}
		free(kids.v);
		return -1;
	}
	close(dir);
	skip->pids = kids.v;
	skip->n = kids.n;
	return 0;
}

void
tree_skip_remove(struct tree_skip *skip, pid_t pid)
{
	size_t i;

	for (i = 0; i < skip->n; i++) {
		if (skip->pids[i] == pid) {
			skip->pids[i] = skip->pids[--skip->n];
			return;
		}
	}
}

void
tree_skip_free(struct tree_skip *skip)
{
	free(skip->pids);
	skip->pids = NULL;
	skip->n = 0;
}
