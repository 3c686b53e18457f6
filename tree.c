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

#include "loop.h"
#include "tree.h"

#define NS_PER_MS UINT64_C(1000000)
/* Re-checks for grandchildren back off from 1 ms to this. */
#define CHECK_STEP_MAX (50 * NS_PER_MS)
/* Deeper trees than this are reached on the next sweep, once reparented. */
#define MAX_DEPTH 2048

struct proc_info {
	bool live; /* not a zombie, nor a zombie's last moments */
	pid_t ppid;
	pid_t pgrp;
};

struct sweep {
	int sig;
	bool cont;
	pid_t pgid;
	const struct tree_skip *skip;
	pid_t self;
	int self_dir;  /* our /proc directory */
	int max_depth; /* how deep to list children: 1 lists only ours */
	int found;
	int zombies;	/* our children seen as zombies */
	int group_dead; /* members of pgid seen as zombies */
	/*
	 * With told: our children that were sent sig are added to it, and
	 * with only_new, sig goes only to our children not in it (orphans
	 * that appeared since), never to deeper descendants.
	 */
	struct pid_vec *told;
	bool only_new;
	/*
	 * Live processes that refused sig (EPERM: one that became another
	 * user's), and with refusals, the list they are added to, once each.
	 */
	int refused;
	struct tree_refusals *refusals;
	/*
	 * With all: every live process sent sig (or its group's kill); with
	 * all_once, one already in it is not sent sig again.
	 */
	struct pid_vec *all;
	bool all_once;
};

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

static bool
in_vec(const struct pid_vec *pv, pid_t pid)
{
	size_t i;

	for (i = 0; i < pv->n; i++) {
		if (pv->v[i] == pid) {
			return true;
		}
	}
	return false;
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

/* The Threads: count of the status file at dir, or 0. */
static long
thread_count(int dir)
{
	char *buf = read_file_at(dir, "status"), *p;
	long n = 0;

	if (buf != NULL && (p = strstr(buf, "\nThreads:")) != NULL) {
		n = strtol(p + 9, NULL, 10);
	}
	free(buf);
	return n;
}

static int
read_info(int dir, struct proc_info *pi)
{
	char buf[512], *p, state;
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
	if (p == NULL) {
		return -1;
	}
	/* NOLINTNEXTLINE(cert-err34-c): the kernel writes these numbers. */
	if (sscanf(p + 1, " %c %d %d", &state, &pi->ppid, &pi->pgrp) != 3) {
		return -1;
	}
	/*
	 * A process whose main thread has exited shows the state of that
	 * thread, Z, while its other threads live on: it is alive, and must
	 * be signalled like any other.
	 */
	pi->live = (state != 'Z' && state != 'X') || thread_count(dir) > 1;
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

	return read_info(dir, &pi) == 0 && pi.live;
}

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
 * Signals the process at fd (a pidfd, or its /proc directory).  Where
 * pidfd_send_signal() is not to be had (before Linux 5.1, some seccomp
 * filters, valgrind), kill() by pid stands in if pid_ok (pid is ours to
 * name): safe for our own children, which nobody else can reap, and for
 * deeper ones as safe as any pid-based tool.  Returns 0 or an errno.
 */
static int
send_to(int fd, pid_t pid, int sig, bool pid_ok)
{
	if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) == 0) {
		return 0;
	}
	if (errno != ENOSYS && errno != EPERM) {
		return errno;
	}
	if (!pid_ok) {
		return errno;
	}
	return kill(pid, sig) == 0 ? 0 : errno;
}

/* Signals the process at dir; its pid is ours to name if /proc is ours. */
static int
send(const struct sweep *sw, int dir, pid_t pid, int sig)
{
	return send_to(dir, pid, sig, sw->self == getpid());
}

/* Notes a process that refused our signal, once, with its name. */
static void
note_refusal(struct sweep *sw, int dir, pid_t pid, int err)
{
	struct tree_refusals *rv = sw->refusals;
	struct tree_refusal *v;
	size_t i;
	ssize_t n;
	int fd;

	sw->refused++;
	if (rv == NULL) {
		return;
	}
	for (i = 0; i < rv->n; i++) {
		if (rv->v[i].pid == pid) {
			return;
		}
	}
	if (rv->n == rv->cap) {
		size_t cap = rv->cap ? rv->cap * 2 : 4;

		v = realloc(rv->v, cap * sizeof(*v));
		if (v == NULL) {
			return;
		}
		rv->v = v;
		rv->cap = cap;
	}
	v = &rv->v[rv->n++];
	memset(v, 0, sizeof(*v));
	v->pid = pid;
	v->err = err;
	fd = openat(dir, "comm", O_RDONLY | O_CLOEXEC);
	n = fd >= 0 ? read(fd, v->name, sizeof(v->name) - 1) : -1;
	if (fd >= 0) {
		close(fd);
	}
	v->name[n > 0 ? n : 0] = '\0';
	v->name[strcspn(v->name, "\n")] = '\0';
}

/* A live descendant, held by its /proc/PID directory. */
struct pinned {
	int dir;
	pid_t pid;
	struct proc_info pi;
};

static bool
out_of_resources(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM;
}

/*
 * Opens the /proc directory of pid, listed as a child of the process at
 * parent_dir, into k.  Returns 1 if it is held, 0 if it is no live child
 * of that process (anymore), -1 with errno set if it could not be opened.
 * A process is held only if it is still the child of the process it was
 * listed under, and that one still lives: otherwise the pid may be a new
 * process's.  (A real descendant that was reparented to us meanwhile is
 * found by the next sweep.)
 */
static int
hold_child(struct sweep *sw, int parent_dir, pid_t parent, pid_t pid,
	   struct pinned *k)
{
	char path[32];

	if (parent == sw->self && is_skipped(sw->skip, pid)) {
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	k->dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (k->dir < 0) {
		return out_of_resources(errno) ? -1 : 0;
	}
	k->pid = pid;
	errno = 0;
	if (read_info(k->dir, &k->pi) < 0) {
		int err = errno;

		close(k->dir);
		errno = err;
		return out_of_resources(err) ? -1 : 0;
	}
	if (!k->pi.live || k->pi.ppid != parent ||
	    (parent != sw->self && !proc_alive(parent_dir))) {
		if (!k->pi.live && k->pi.ppid == parent && parent == sw->self) {
			sw->zombies++;
		}
		/* A member of the group just signalled that died of it. */
		if (!k->pi.live && k->pi.ppid == parent && sw->pgid != 0 &&
		    k->pi.pgrp == sw->pgid) {
			sw->group_dead++;
		}
		close(k->dir);
		return 0;
	}
	return 1;
}

static void
signal_one(struct sweep *sw, const struct pinned *k, pid_t parent)
{
	if (sw->sig == 0 ||
	    (sw->only_new && (parent != sw->self || is_told(sw, k->pid))) ||
	    (sw->all_once && in_vec(sw->all, k->pid))) {
		return;
	}
	/* Members of pgid get it from the caller's kill() of the group. */
	if (!(sw->pgid != 0 && k->pi.pgrp == sw->pgid)) {
		int err = send(sw, k->dir, k->pid, sw->sig);

		if (err == EPERM) {
			note_refusal(sw, k->dir, k->pid, err);
		} else if (sw->cont) {
			send(sw, k->dir, k->pid, SIGCONT);
		}
	}
	if (sw->told != NULL && parent == sw->self && !is_told(sw, k->pid)) {
		vec_push(sw->told, k->pid);
	}
	if (sw->all != NULL) {
		vec_push(sw->all, k->pid);
	}
}

/*
 * Holds every child in kids of the process at dir.  Returns false, with
 * nothing held, if descriptors or memory ran out before all were held.
 */
static bool
hold_all(struct sweep *sw, int dir, pid_t pid, const struct pid_vec *kids,
	 struct pinned **out, size_t *n)
{
	struct pinned *pv;
	size_t i;
	int r;

	*out = NULL;
	*n = 0;
	if (kids->n == 0) {
		return true;
	}
	pv = calloc(kids->n, sizeof(*pv));
	if (pv == NULL) {
		return false;
	}
	for (i = 0; i < kids->n; i++) {
		r = hold_child(sw, dir, pid, kids->v[i], &pv[*n]);
		if (r < 0) {
			while (*n > 0) {
				close(pv[--*n].dir);
			}
			free(pv);
			return false;
		}
		*n += (size_t)r;
	}
	*out = pv;
	return true;
}

/*
 * Sweeps the process k (a child of parent) and everything below it, or,
 * with k NULL, everything below us.
 *
 * Parents first: a process signalled after its child could see the child
 * die of it and act on that before its own signal lands (a shell prints
 * "Killed", or runs the next line of its script).  So a process's children
 * are held by their /proc directory before it is signalled; if it dies and
 * hands them to us, this sweep still reaches them.  Where descriptors run
 * out (a process with thousands of children), that process goes after its
 * children, which are then held one at a time: late rather than lost.
 */
static void
visit(struct sweep *sw, const struct pinned *k, pid_t parent, int depth)
{
	struct pid_vec kids = { 0 };
	struct pinned *held = NULL, one;
	pid_t pid = k != NULL ? k->pid : sw->self;
	int dir = k != NULL ? k->dir : sw->self_dir;
	bool first = false;
	size_t i, n = 0;

	if (k != NULL) {
		sw->found++;
	}
	if (depth < sw->max_depth && list_children(dir, &kids) < 0) {
		kids.n = 0;
	}
	/* We are never signalled: our children need not be held at once. */
	if (k != NULL) {
		first = hold_all(sw, dir, pid, &kids, &held, &n);
	}
	if (first) {
		signal_one(sw, k, parent);
		for (i = 0; i < n; i++) {
			visit(sw, &held[i], pid, depth + 1);
			close(held[i].dir);
		}
	} else {
		for (i = 0; i < kids.n; i++) {
			if (hold_child(sw, dir, pid, kids.v[i], &one) > 0) {
				visit(sw, &one, pid, depth + 1);
				close(one.dir);
			}
		}
		if (k != NULL) {
			signal_one(sw, k, parent);
		}
	}
	free(held);
	free(kids.v);
}

/* What waitid() tells of our children, in one system call. */
enum kids {
	KIDS_NONE,   /* no child at all */
	KIDS_LIVE,   /* children, none of them exited */
	KIDS_EXITED, /* at least one exited and waits to be reaped */
};

static enum kids
children_state(void)
{
	siginfo_t info;

	memset(&info, 0, sizeof(info));
	if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0) {
		return errno == ECHILD ? KIDS_NONE : KIDS_LIVE;
	}
	return info.si_pid != 0 ? KIDS_EXITED : KIDS_LIVE;
}

/*
 * Whether we have any child at all, exited or not.  As a subreaper, we
 * have no descendant when we have no child: each one lives under a child
 * of ours, or was handed to us.  This spares the /proc walk at the end of
 * most runs.
 */
static bool
has_children(void)
{
	return children_state() != KIDS_NONE;
}

/*
 * A check for what is left, with a child of ours exited: the caller
 * reaps it first (its SIGCHLD brings the next check), rather than a walk
 * that would find it a zombie.
 */
static bool
reap_first(void)
{
	return children_state() == KIDS_EXITED;
}

/*
 * Runs the sweep sw describes over our descendants (max_depth 0: every
 * level).  Returns the number of live ones found, or -1 on error.
 */
static int
sweep_run(struct sweep *sw)
{
	int dir, seen = 0;

	sw->found = sw->zombies = sw->group_dead = sw->refused = 0;
	if (sw->max_depth == 0) {
		sw->max_depth = MAX_DEPTH;
	}
	if (!has_children()) {
		return 0;
	}
	sw->self = proc_self();
	dir = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		return -1;
	}
	/* A pgid is ours; it means the same to /proc only if /proc is ours. */
	if (sw->self != getpid()) {
		sw->pgid = 0;
	}
	sw->self_dir = dir;
	for (;;) {
		visit(sw, NULL, 0, 0);
		/*
		 * Nothing alive, but a child of ours was a zombie: it handed
		 * its children to us before it became one, perhaps after we
		 * had listed ours.  Once more, until no new zombie shows up;
		 * nothing was signalled, so nothing is signalled twice.
		 */
		if (sw->found != 0 || sw->zombies <= seen) {
			break;
		}
		seen = sw->zombies;
		sw->zombies = 0;
		sw->group_dead = 0;
	}
	close(dir);
	return sw->found;
}

int
tree_signal(int sig, bool cont, pid_t pgid, const struct tree_skip *skip)
{
	struct sweep sw = {
		.sig = sig,
		.cont = cont,
		.pgid = pgid,
		.skip = skip,
	};

	return sweep_run(&sw);
}

/*
 * Sends sig (and SIGCONT unless it is SIGKILL) to member pid of the
 * cgroup through a pidfd opened first and checked to be a member after:
 * a pid reused outside the cgroup meanwhile is never signalled.  Returns
 * whether it was told; it is then in ts->members.
 */
static bool
tell_member(struct tree_stop *ts, pid_t pid, int sig)
{
	bool told = false;
	char path[32];
	int fd;

	/*
	 * The cgroup's pids are in our PID namespace.  Where pidfd_open()
	 * is not to be had (before Linux 5.3, some seccomp filters,
	 * valgrind), the /proc directory stands in (see send_to()).
	 */
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
		snprintf(path, sizeof(path), "/proc/%d", (int)pid);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0) {
		return false;
	}
	if (cgroup_has(ts->cg, pid) && send_to(fd, pid, sig, true) == 0) {
		if (sig != SIGKILL) {
			send_to(fd, pid, SIGCONT, true);
		}
		vec_push(&ts->members, pid);
		told = true;
	}
	close(fd);
	return told;
}

/* Tells every member of the cgroup not told yet.  Returns how many. */
static int
signal_members(struct tree_stop *ts, int sig)
{
	pid_t *pids;
	int i, n, told = 0;

	n = cgroup_procs(ts->cg, &pids);
	for (i = 0; i < n; i++) {
		if (!in_vec(&ts->members, pids[i]) &&
		    tell_member(ts, pids[i], sig)) {
			told++;
		}
	}
	free(pids);
	return told;
}

/*
 * The start of a stop in a cgroup, without a /proc walk: the cgroup
 * lists every process of the run.  The members are counted, then the
 * stop's group (if any) is signalled as a whole, then every other member
 * through a pidfd, in the order of cgroup.procs, which is the order of
 * their forks: parents before their children.  Counted before the
 * group's signal, as the members that die of it leave the list at once.
 * Returns the number of members, or -1 where the list cannot be read,
 * or /proc is not ours (tell_member() looks there).
 */
static int
begin_contained(struct tree_stop *ts, int sig)
{
	pid_t *pids, group = ts->group;
	int i, n;

	/* The common end: COMMAND was the last, and is gone. */
	if (!cgroup_populated(ts->cg)) {
		return 0;
	}
	n = cgroup_procs(ts->cg, &pids);
	if (n > 0 && proc_self() != getpid()) {
		free(pids);
		return -1;
	}
	if (n <= 0) {
		free(pids);
		return n;
	}
	if (group > 0) {
		kill(-group, sig);
		if (sig != SIGKILL) {
			kill(-group, SIGCONT);
		}
	}
	for (i = 0; i < n; i++) {
		if (group > 0 && getpgid(pids[i]) == group) {
			vec_push(&ts->members, pids[i]);
		} else {
			tell_member(ts, pids[i], sig);
		}
	}
	free(pids);
	return n;
}

/*
 * The start of a stop by the sweep: group (if not 0) is signalled as a
 * whole first, as a member that forks meanwhile takes its child along,
 * and a member does not see a child outside the group die before its
 * own signal lands.  One walk then signals the rest, parents first, and
 * counts them with the group: its members found alive, and those found
 * dead of the signal (zombies until their parent reaps them).
 */
static int
begin_sweep(struct tree_stop *ts, int sig, pid_t group)
{
	struct sweep sw = {
		.sig = sig,
		.cont = sig != SIGKILL,
		.pgid = group,
		.skip = ts->skip,
		.told = &ts->told,
		.refusals = ts->cg == NULL ? &ts->refusals : NULL,
		/* With a cgroup: who was told, for the list's re-reads. */
		.all = ts->cg != NULL ? &ts->members : NULL,
	};
	int n;

	if (group > 0) {
		kill(-group, sig);
		if (sig != SIGKILL) {
			kill(-group, SIGCONT);
		}
	}
	n = sweep_run(&sw);
	return n < 0 ? n : n + sw.group_dead;
}

/*
 * With a cgroup: sends sig, once each, to what lives on outside the
 * cgroup (a process that moved itself out of it).  Called once the
 * cgroup is empty; with nothing outside, there is no child left either,
 * and no walk.  Returns the number found alive, or -1.
 */
static int
signal_outside(struct tree_stop *ts, int sig, int *refused)
{
	struct sweep sw = {
		.sig = sig,
		.cont = sig != SIGKILL,
		.skip = ts->skip,
		.all = &ts->members,
		.all_once = sig != SIGKILL,
	};
	int n;

	if (refused != NULL) {
		*refused = 0;
	}
	if (reap_first()) {
		return 1;
	}
	n = sweep_run(&sw);
	if (refused != NULL) {
		*refused = sw.refused;
	}
	return n;
}

/*
 * While the grace runs, by the sweep: the stop signal to orphans that
 * were not our children when the stop began (a descendant died and we
 * adopted its children): no parent of theirs is left to stop them.  Only
 * our children are looked at: as a subreaper, we have a live descendant
 * only if we have a live child.  Returns the number of live children.
 */
static int
check_children(struct tree_stop *ts)
{
	struct sweep sw = {
		.sig = ts->sig,
		.cont = true,
		.skip = ts->skip,
		.max_depth = 1,
		.told = &ts->told,
		.only_new = true,
	};

	return reap_first() ? 1 : sweep_run(&sw);
}

static uint64_t
add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/*
 * SIGKILL to everything.  Returns the number of live processes found,
 * less those that refused it: when nothing but refusers is left, the stop
 * gives up on them (they are counted in ts->abandoned), so that a process
 * we may not signal never makes the stop endless.
 */
static int
kill_all(struct tree_stop *ts)
{
	struct sweep sw = {
		.sig = SIGKILL,
		.skip = ts->skip,
		.refusals = &ts->refusals,
	};
	int refused, n;

	if (ts->cg != NULL) {
		/*
		 * The kernel kills every member, those forked meanwhile
		 * included: the members are counted as killed.  The sweep
		 * then reaches only what is outside the cgroup, once it is
		 * empty (a member is still our descendant while it dies).
		 */
		int members = cgroup_count(ts->cg);

		cgroup_kill(ts->cg);
		/*
		 * Still dying, or a child of ours (one just killed) waits to
		 * be reaped before anything outside is looked for: not over.
		 */
		if (cgroup_populated(ts->cg) || reap_first()) {
			return members > 0 ? members : 1;
		}
		n = signal_outside(ts, SIGKILL, &refused);
		if (n > 0 && refused == n) {
			ts->abandoned = n;
			return members;
		}
		return members + n;
	}
	n = sweep_run(&sw);
	if (n > 0 && sw.refused == n) {
		ts->abandoned = n;
		return 0;
	}
	return n;
}

int
tree_stop_begin(struct tree_stop *ts, uint64_t now)
{
	bool at_once = ts->grace_ns == 0 || ts->sig == SIGKILL;
	int sig = at_once ? SIGKILL : ts->sig;
	int n = -1;

	ts->escalated = false;
	ts->check_step = NS_PER_MS;
	ts->next_check = now + ts->check_step;
	ts->grace_end = add_sat(now, ts->grace_ns);
	ts->told.n = 0;
	ts->members.n = 0;
	ts->refusals.n = 0;
	ts->abandoned = 0;
	if (ts->cg != NULL) {
		n = begin_contained(ts, sig);
	}
	if (n < 0) {
		/* Our group means the same to /proc only if /proc is ours. */
		n = begin_sweep(ts, sig,
				ts->group > 0 && proc_self() == getpid() ?
					ts->group :
					0);
		if (ts->cg != NULL) {
			/* Members the walk missed (on their way to us). */
			n += signal_members(ts, sig);
		}
	}
	if (ts->cg != NULL && at_once) {
		cgroup_kill(ts->cg);
	}
	if (ts->cg != NULL && n <= 0) {
		/*
		 * Members not yet seen in the list: not done.  An empty
		 * cgroup: done unless something lives outside it.
		 */
		n = cgroup_populated(ts->cg) ? 1 :
					       signal_outside(ts, sig, NULL);
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
		} else if (ts->cg != NULL) {
			/*
			 * Contained: no walk while the cgroup drains (what is
			 * forked after the stop signal gets it from the list,
			 * or SIGKILL at the end of the grace); done when it is
			 * empty and nothing of the tree lives outside it.
			 */
			signal_members(ts, ts->sig);
			if (!cgroup_populated(ts->cg) &&
			    signal_outside(ts, ts->sig, NULL) == 0) {
				ts->phase = TREE_DONE;
			}
		} else if (check_children(ts) == 0) {
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
			CHECK_STEP_MAX :
			ts->check_step * 2;
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
	free(ts->refusals.v);
	ts->refusals.v = NULL;
	free(ts->members.v);
	ts->members.v = NULL;
	ts->members.n = ts->members.cap = 0;
	ts->refusals.n = ts->refusals.cap = 0;
}

uint64_t
tree_stop_deadline(const struct tree_stop *ts)
{
	switch (ts->phase) {
	case TREE_GRACE:
		return ts->next_check < ts->grace_end ? ts->next_check :
							ts->grace_end;
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
