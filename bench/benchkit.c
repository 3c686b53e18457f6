/*
 * benchkit: the measuring half of bench/run (which builds it into
 * bench/results/ and parses what it prints).
 *
 * It is a child subreaper, so every process a measured run leaves behind
 * (a survivor of a tree stop, an orphan a wrapper did not adopt) ends up
 * as its descendant: it counts them, then SIGKILLs and reaps every
 * descendant after each run, and again on SIGINT/SIGTERM/SIGHUP and at
 * exit.  Nothing it started outlives it.
 *
 * Measuring subcommands (CMD lists are separated by "---"; each CMD is an
 * absolute path and its arguments; runs are interleaved across the CMDs,
 * the order rotated each round):
 *   spawn   ROUNDS WARMUP              -- CMD [--- CMD]...
 *       wall time of fork+exec+waitpid of each CMD.
 *   term    ROUNDS SETTLE_MS           -- CMD...   (CMD runs sleep 1000)
 *       SIGTERM to the spawned process -> its waitpid returns.
 *   cmdexit ROUNDS SETTLE_MS           -- CMD...   (CMD runs "benchkit _hold")
 *       COMMAND told to exit(0) -> the spawned process's waitpid returns.
 *   orphans ROUNDS HOLD_MS CHECK_MS    -- CMD...   (CMD: "benchkit _orphans N HOLD_MS")
 *       CHECK_MS after the orphans were made: the Z-state processes under
 *       the wrapper, the orphans that went past it to us (not adopted),
 *       the wrapper's CPU time; then its wall time, less HOLD_MS.
 *   tree    ROUNDS SETTLE_MS PRE_MS    -- CMD...   (CMD runs "benchkit _tree")
 *       PRE_MS after the tree is up, SIGTERM to the spawned process ->
 *       waitpid; then, SETTLE_MS later, the live processes of the tree
 *       per kind.
 *   idle    SETTLE_MS WINDOW_MS        -- CMD...   (CMD runs sleep N)
 *       all CMDs at once; context switches, CPU time and VmHWM of every
 *       process of the wrapper (the spawned one and its descendants that
 *       are not "sleep") over a window.
 *   stop    ROUNDS SETTLE_MS PRE_MS PIDS_MAX PHASE -- CMD... (CMD runs
 *           "benchkit _tree" or "benchkit _storm")
 *       each run in a cgroup v2 of the bench's own (see "cgroups" below):
 *       PRE_MS after the workload said "r", SIGTERM to the spawned
 *       process; the time until its waitpid returns, until the
 *       cgroup is empty (every process of the run gone) or SETTLE_MS
 *       after the wrapper's exit, whichever comes first, and with PHASE 1
 *       until every process of the tree that honours SIGTERM is gone;
 *       then the live processes per kind, and cgroup.kill for the rest.  A CMD whose
 *       first word is "@kill" or "@term" is the kernel's floor: the rest
 *       of it runs bare in the cgroup, and instead of a SIGTERM the
 *       bench writes cgroup.kill (@kill), or SIGTERMs every member until
 *       only TERM-ignoring ones are left and then writes cgroup.kill
 *       (@term).  PIDS_MAX > 0 also sets pids.max on the run's cgroup.
 *       Without a cgroup (none can be made, or BENCHKIT_NO_CGROUP is
 *       set), "all gone" is no live descendant of ours left, polled
 *       through /proc; the floors need one.
 *   cgcheck
 *       prints "ok PIDS" (PIDS: how pids.max is set, or "none") when
 *       the bench can make cgroups of its own, else "no REASON".
 * Workloads run as COMMAND (fd 3 is a socket back to the measuring side):
 *   _hold                       write "r", wait for a byte, exit 0
 *   _orphans N HOLD_MS          N double-forked orphans that exit at once,
 *                               write "r", sleep HOLD_MS, exit 0
 *   _tree PLAIN SETSID NOTERM   a tree: PLAIN ordinary processes (this one
 *                               included), SETSID that called setsid(),
 *                               NOTERM that ignore SIGTERM; write "r" when
 *                               all are up, then wait for signals.
 *   _storm N EVERY TRIGGER      a bounded fork storm: every process forks
 *                               until N processes were made in all (a
 *                               counter in shared memory), then waits;
 *                               every EVERY-th one calls setsid() first.
 *                               The TRIGGER-th process made writes "r".
 *                               Each process ends itself after 120 s.
 * Output: one line per measured run, "<test> idx=I key=value...".
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CMDS 32
#define READY_TIMEOUT_MS 20000
#define EXIT_TIMEOUT_MS 30000

static volatile sig_atomic_t g_stop;
static int g_devnull = -1, g_errfd = -1;
static char **g_cmds[MAX_CMDS];
static int g_ncmds;
static struct rlimit g_nofile; /* as we found it: the wrappers get it back */
static int g_nofile_set;

/* ---------------------------------------------------------------- util */

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("benchkit: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !g_stop) {
		continue;
	}
}

static void
sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	nanosleep(&ts, NULL);
}

static long
num(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0) {
		die("bad number '%s'", s);
	}
	return v;
}

struct vec {
	pid_t *v;
	size_t n, cap;
};

static void
vec_push(struct vec *pv, pid_t p)
{
	if (pv->n == pv->cap) {
		pv->cap = pv->cap ? pv->cap * 2 : 64;
		pv->v = realloc(pv->v, pv->cap * sizeof(*pv->v));
		if (pv->v == NULL) {
			die("out of memory");
		}
	}
	pv->v[pv->n++] = p;
}

/* ---------------------------------------------------------------- /proc */

static ssize_t
read_small(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		return -1;
	}
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0) {
		return -1;
	}
	buf[n] = '\0';
	return n;
}

/* Reads a whole /proc file (a seq_file gives a page per read). */
static char *
read_all(const char *path)
{
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (buf == NULL || fd < 0) {
		free(buf);
		if (fd >= 0) {
			close(fd);
		}
		return NULL;
	}
	for (;;) {
		if (cap - len < 4097) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (buf == NULL) {
				die("out of memory");
			}
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

/* Appends the children of every thread of pid. */
static void
children(pid_t pid, struct vec *out)
{
	char path[320], *buf, *p, *end;
	struct dirent *de;
	DIR *d;
	long v;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (d == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9') {
			continue;
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%s/children",
			 (int)pid, de->d_name);
		if ((buf = read_all(path)) == NULL) {
			continue;
		}
		for (p = buf;; p = end) {
			v = strtol(p, &end, 10);
			if (end == p) {
				break;
			}
			if (v > 0) {
				vec_push(out, (pid_t)v);
			}
		}
		free(buf);
	}
	closedir(d);
}

/* Appends every descendant of pid (zombies included), breadth first. */
static void
descendants(pid_t pid, struct vec *out)
{
	size_t i = out->n; /* only what is appended here is expanded */

	children(pid, out);
	for (; i < out->n; i++) {
		children(out->v[i], out);
	}
}

struct pinfo {
	char state;
	pid_t ppid;
	char comm[32];
	unsigned long utime, stime;
};

static int
pinfo(pid_t pid, struct pinfo *pi)
{
	char path[64], buf[1024], *l, *r;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0) {
		return -1;
	}
	l = strchr(buf, '(');
	r = strrchr(buf, ')');
	if (l == NULL || r == NULL || r < l) {
		return -1;
	}
	n = (size_t)(r - l - 1);
	if (n >= sizeof(pi->comm)) {
		n = sizeof(pi->comm) - 1;
	}
	memcpy(pi->comm, l + 1, n);
	pi->comm[n] = '\0';
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (sscanf(r + 2, "%c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
		   &pi->state, &pi->ppid, &pi->utime, &pi->stime) != 4) {
		return -1;
	}
	/*
	 * A process whose main thread exited shows that thread's state, Z,
	 * while other threads live on: it counts as alive.
	 */
	if (pi->state == 'Z') {
		char status[4096];

		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		if (read_small(path, status, sizeof(status)) > 0 &&
		    (l = strstr(status, "\nThreads:")) != NULL &&
		    strtol(l + 9, NULL, 10) > 1) {
			pi->state = 'S';
		}
	}
	return 0;
}

static long
status_field(const char *buf, const char *key)
{
	const char *p = strstr(buf, key);

	return p == NULL ? -1 : strtol(p + strlen(key), NULL, 10);
}

struct snap {
	long vol, invol, hwm_kb, rss_kb;
	unsigned long utime, stime;
	unsigned long long cpu_ns;
	char comm[32];
	int ok;
};

static void
snapshot(pid_t pid, struct snap *s)
{
	char path[64], buf[4096];
	struct pinfo pi;

	memset(s, 0, sizeof(*s));
	if (pinfo(pid, &pi) < 0) {
		return;
	}
	snprintf(s->comm, sizeof(s->comm), "%s", pi.comm);
	s->utime = pi.utime;
	s->stime = pi.stime;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_small(path, buf, sizeof(buf)) <= 0) {
		return;
	}
	s->vol = status_field(buf, "\nvoluntary_ctxt_switches:");
	s->invol = status_field(buf, "\nnonvoluntary_ctxt_switches:");
	s->hwm_kb = status_field(buf, "\nVmHWM:");
	s->rss_kb = status_field(buf, "\nVmRSS:");
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	if (read_small(path, buf, sizeof(buf)) > 0) {
		s->cpu_ns = strtoull(buf, NULL, 10);
	}
	s->ok = 1;
}

/* -------------------------------------------------------------- cgroups */

/*
 * The bench's own cgroups, for "stop": <v2 mount><our cgroup>/benchkit.PID
 * and under it r<N>, one per measured run.  The spawned process joins r<N>
 * before it execs, so every process of the run stays in r<N> or below it,
 * whatever it does with sessions and process groups (a wrapper makes its
 * own cgroups under the one it is in).  "All gone" is then cgroup.events
 * saying "populated 0", and cgroup.kill removes whatever is left, peers'
 * survivors included.  Where a pids controller is at hand, r<N> also gets
 * a pids.max: in v2 when our parent already offers the controller, else in
 * the v1 pids hierarchy of a hybrid host (a directory of the same name).
 */
struct runcg {
	char path[4200], v1path[4200];
	int dir, events, procs, v1procs;
};

static char g_cgbase[4096], g_v1base[4096], g_cgwhy[600];
static int g_cgok, g_v2pids;
static unsigned long long g_pidns; /* our PID namespace's inode */

/*
 * The mount point of the hierarchy that fstype/controller names, from
 * /proc/self/mountinfo: "cgroup2" (controller NULL), or a v1 "cgroup" mount
 * whose super options name controller.  Only mounts of a hierarchy's root.
 */
static int
cg_mount(const char *fstype, const char *controller, char *out, size_t len)
{
	char line[4096], root[1024], mnt[1024], type[64], opts[1024], *tok,
		*save;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	const char *sep;
	int found = -1;

	if (f == NULL) {
		return -1;
	}
	while (found < 0 && fgets(line, sizeof(line), f) != NULL) {
		sep = strstr(line, " - ");
		if (sep == NULL ||
		    sscanf(sep + 3, "%63s %*s %1023s", type, opts) != 2 ||
		    strcmp(type, fstype) != 0 ||
		    sscanf(line, "%*d %*d %*s %1023s %1023s", root, mnt) != 2 ||
		    strcmp(root, "/") != 0) {
			continue;
		}
		if (controller != NULL) {
			for (tok = strtok_r(opts, ",", &save); tok != NULL;
			     tok = strtok_r(NULL, ",", &save)) {
				if (strcmp(tok, controller) == 0) {
					break;
				}
			}
			if (tok == NULL) {
				continue;
			}
		}
		snprintf(out, len, "%s", mnt);
		found = 0;
	}
	fclose(f);
	return found;
}

/*
 * Our cgroup's path in a hierarchy, from /proc/self/cgroup: the "0::"
 * line (controller NULL) or the v1 line whose controller list names
 * controller.  "/" comes back as "".
 */
static int
cg_own(const char *controller, char *out, size_t len)
{
	char buf[8192], *line, *save, *c, *p, *tok, *save2;

	if (read_small("/proc/self/cgroup", buf, sizeof(buf)) <= 0) {
		return -1;
	}
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		c = strchr(line, ':');
		p = c != NULL ? strchr(c + 1, ':') : NULL;
		if (p == NULL) {
			continue;
		}
		*p++ = '\0';
		*c++ = '\0';
		if (controller == NULL ? strcmp(line, "0") != 0 || *c != '\0' :
					 strcmp(line, "0") == 0) {
			continue;
		}
		if (controller != NULL) {
			for (tok = strtok_r(c, ",", &save2); tok != NULL;
			     tok = strtok_r(NULL, ",", &save2)) {
				if (strcmp(tok, controller) == 0) {
					break;
				}
			}
			if (tok == NULL) {
				continue;
			}
		}
		snprintf(out, len, "%s", strcmp(p, "/") == 0 ? "" : p);
		return 0;
	}
	return -1;
}

/* Writes word into dir/file.  Returns 0 or -1 with errno set. */
static int
cg_write(const char *dir, const char *file, const char *word)
{
	char path[4400];
	ssize_t len = (ssize_t)strlen(word), n;
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	n = write(fd, word, (size_t)len);
	err = errno;
	close(fd);
	errno = err;
	return n == len ? 0 : -1;
}

/* Whether a cgroup has live processes, from its open cgroup.events. */
static int
cg_populated(int events)
{
	char buf[256], *p;
	ssize_t n = pread(events, buf, sizeof(buf) - 1, 0);

	if (n <= 0) {
		return 0;
	}
	buf[n] = '\0';
	p = strstr(buf, "populated ");
	return p == NULL || p[10] != '0';
}

/* Removes a cgroup and every cgroup under it, deepest first. */
static void
cg_rmtree(const char *path)
{
	char sub[4400];
	struct dirent *de;
	DIR *d = opendir(path);

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (de->d_type == DT_DIR && de->d_name[0] != '.') {
				snprintf(sub, sizeof(sub), "%.4000s/%s", path,
					 de->d_name);
				cg_rmtree(sub);
			}
		}
		closedir(d);
	}
	rmdir(path);
}

/*
 * Kills every process in the cgroup at path and below it (cgroup.kill),
 * waits up to timeout_ms until it is empty, reaps our zombies, and removes
 * it.  Returns 0 when it emptied in time, else -1.
 */
static int
cg_kill_remove(const char *path, long timeout_ms)
{
	char ev[4400];
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
	int fd, rc = -1;

	snprintf(ev, sizeof(ev), "%s/cgroup.events", path);
	fd = open(ev, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	cg_write(path, "cgroup.kill", "1");
	while (now_ns() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLPRI };

		if (!cg_populated(fd)) {
			rc = 0;
			break;
		}
		poll(&pfd, 1, 20);
	}
	close(fd);
	while (waitpid(-1, NULL, WNOHANG) > 0) {
		continue;
	}
	cg_rmtree(path);
	return rc;
}

/* Removes the bench's cgroups, killing what is left in them (at exit). */
static void
cg_teardown(void)
{
	if (g_cgbase[0] != '\0') {
		cg_kill_remove(g_cgbase, 10000);
		g_cgbase[0] = '\0';
	}
	if (g_v1base[0] != '\0') {
		cg_rmtree(g_v1base);
		g_v1base[0] = '\0';
	}
}

/*
 * Removes what a benchkit that died without cleaning up (SIGKILL) left in
 * dir: its cgroups, and any process still in them.
 */
static void
cg_remove_stale(const char *dir, int v2)
{
	char path[4400];
	struct dirent *de;
	DIR *d = opendir(dir);
	unsigned long long ns;
	int pid;

	if (d == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		/*
		 * Only benches of our own PID namespace are judged: a pid
		 * means nothing across namespaces.
		 */
		/* NOLINTNEXTLINE(cert-err34-c): a name we made, or skipped. */
		if (sscanf(de->d_name, "benchkit.%llu.%d", &ns, &pid) != 2 ||
		    ns != g_pidns || kill(pid, 0) == 0 || errno != ESRCH) {
			continue;
		}
		snprintf(path, sizeof(path), "%.4000s/%s", dir, de->d_name);
		if (v2) {
			cg_kill_remove(path, 10000);
		} else {
			cg_rmtree(path);
		}
	}
	closedir(d);
}

/*
 * Makes benchkit.PID under our v2 cgroup (g_cgok), or says in g_cgwhy why
 * not; sets up the pids bound where it can.  Registers cg_teardown to run
 * at exit.
 */
static void
cg_setup(void)
{
	char mnt[1024], own[2048], v1mnt[1024], v1own[2048], buf[512];
	struct stat st;

	if (getenv("BENCHKIT_NO_CGROUP") != NULL) {
		snprintf(g_cgwhy, sizeof(g_cgwhy), "BENCHKIT_NO_CGROUP is set");
		return;
	}
	if (cg_mount("cgroup2", NULL, mnt, sizeof(mnt)) < 0) {
		snprintf(g_cgwhy, sizeof(g_cgwhy), "no cgroup v2 hierarchy");
		return;
	}
	if (cg_own(NULL, own, sizeof(own)) < 0) {
		snprintf(g_cgwhy, sizeof(g_cgwhy),
			 "no cgroup v2 path in /proc/self/cgroup");
		return;
	}
	if (stat("/proc/self/ns/pid", &st) == 0) {
		g_pidns = st.st_ino;
	}
	snprintf(g_cgbase, sizeof(g_cgbase), "%.1000s%.2000s", mnt, own);
	cg_remove_stale(g_cgbase, 1);
	snprintf(g_cgbase, sizeof(g_cgbase), "%.1000s%.2000s/benchkit.%llu.%d",
		 mnt, own, g_pidns, (int)getpid());
	if (mkdir(g_cgbase, 0755) < 0) {
		snprintf(g_cgwhy, sizeof(g_cgwhy),
			 "cannot make a cgroup in %.200s%.300s: %s", mnt, own,
			 strerror(errno));
		g_cgbase[0] = '\0';
		return;
	}
	atexit(cg_teardown);
	snprintf(buf, sizeof(buf), "%.400s/cgroup.kill", g_cgbase);
	if (access(buf, W_OK) < 0) {
		snprintf(g_cgwhy, sizeof(g_cgwhy),
			 "no cgroup.kill (Linux 5.14 or later)");
		return;
	}
	g_cgok = 1;
	snprintf(buf, sizeof(buf), "%.400s/cgroup.controllers", g_cgbase);
	if (read_small(buf, buf, sizeof(buf)) > 0 && strstr(buf, "pids") &&
	    cg_write(g_cgbase, "cgroup.subtree_control", "+pids") == 0) {
		g_v2pids = 1;
		return;
	}
	if (cg_mount("cgroup", "pids", v1mnt, sizeof(v1mnt)) == 0 &&
	    cg_own("pids", v1own, sizeof(v1own)) == 0) {
		snprintf(g_v1base, sizeof(g_v1base), "%.1000s%.2000s", v1mnt,
			 v1own);
		cg_remove_stale(g_v1base, 0);
		snprintf(g_v1base, sizeof(g_v1base),
			 "%.1000s%.2000s/benchkit.%llu.%d", v1mnt, v1own,
			 g_pidns, (int)getpid());
		if (mkdir(g_v1base, 0755) < 0) {
			g_v1base[0] = '\0';
		}
	}
}

static int
open_in(const char *dir, const char *file, int flags)
{
	char path[4400];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return open(path, flags | O_CLOEXEC);
}

/*
 * Makes the cgroup of run k, and its pids bound if pids_max > 0; the
 * descriptors are what the spawned process writes itself into.  Dies on
 * failure (at-exit removes what was made).
 */
static void
run_make(struct runcg *rc, int k, long pids_max)
{
	char num[32];

	snprintf(num, sizeof(num), "%ld", pids_max);
	memset(rc, 0, sizeof(*rc));
	rc->dir = rc->events = rc->procs = rc->v1procs = -1;
	snprintf(rc->path, sizeof(rc->path), "%s/r%d", g_cgbase, k);
	if (mkdir(rc->path, 0755) < 0 ||
	    (rc->dir = open_in(rc->path, ".", O_RDONLY | O_DIRECTORY)) < 0 ||
	    (rc->events = open_in(rc->path, "cgroup.events", O_RDONLY)) < 0 ||
	    (rc->procs = open_in(rc->path, "cgroup.procs", O_WRONLY)) < 0) {
		die("cannot make the cgroup %s: %s", rc->path, strerror(errno));
	}
	if (pids_max > 0 && g_v2pids &&
	    cg_write(rc->path, "pids.max", num) < 0) {
		die("cannot set pids.max in %s: %s", rc->path, strerror(errno));
	}
	if (pids_max > 0 && g_v1base[0] != '\0') {
		snprintf(rc->v1path, sizeof(rc->v1path), "%s/r%d", g_v1base, k);
		if (mkdir(rc->v1path, 0755) < 0 ||
		    cg_write(rc->v1path, "pids.max", num) < 0 ||
		    (rc->v1procs = open_in(rc->v1path, "cgroup.procs",
					   O_WRONLY)) < 0) {
			die("cannot make the cgroup %s: %s", rc->v1path,
			    strerror(errno));
		}
	}
}

/* The most processes the run had at once (pids.peak), or -1. */
static long
run_peak(const struct runcg *rc)
{
	char path[4400], buf[64];

	snprintf(path, sizeof(path), "%s/pids.peak",
		 rc->v1path[0] != '\0' ? rc->v1path : rc->path);
	return read_small(path, buf, sizeof(buf)) > 0 ? strtol(buf, NULL, 10) :
							-1;
}

/* Kills what is left of run rc, removes its cgroups, closes them. */
static void
run_remove(struct runcg *rc)
{
	if (cg_kill_remove(rc->path, 10000) < 0) {
		die("cgroup %s did not empty within 10 s", rc->path);
	}
	if (rc->v1path[0] != '\0') {
		cg_rmtree(rc->v1path);
	}
	if (rc->dir >= 0) {
		close(rc->dir);
	}
	close(rc->events);
	close(rc->procs);
	if (rc->v1procs >= 0) {
		close(rc->v1procs);
	}
}

/* ------------------------------------------------------- process control */

/* SIGKILLs and reaps every descendant; returns how many were alive. */
static int
cleanup_all(void)
{
	struct vec d = { 0 };
	struct pinfo pi;
	int alive = 0, pass;
	size_t i;

	for (pass = 0; pass < 2000; pass++) {
		d.n = 0;
		descendants(getpid(), &d);
		for (i = 0; i < d.n; i++) {
			if (pinfo(d.v[i], &pi) == 0 && pi.state != 'Z') {
				if (pass == 0) {
					alive++;
				}
				kill(d.v[i], SIGKILL);
			}
		}
		while (waitpid(-1, NULL, WNOHANG) > 0) {
			continue;
		}
		if (d.n == 0) {
			break;
		}
		sleep_us(1000);
	}
	free(d.v);
	return alive;
}

static void
on_signal(int sig)
{
	g_stop = sig;
}

static void
check_stop(void)
{
	if (g_stop) {
		cleanup_all();
		fprintf(stderr,
			"benchkit: interrupted; every process it started "
			"is gone\n");
		exit(130);
	}
}

/*
 * fork+exec of cmd; extra (if >= 0) becomes fd 3 of the child, which
 * joins the cgroups of rc (if not NULL) before it execs.
 */
static pid_t
spawn_in(char **cmd, int extra, const struct runcg *rc)
{
	pid_t pid = fork();

	if (pid < 0) {
		die("fork: %s", strerror(errno));
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(g_devnull, 0);
		dup2(g_devnull, 1);
		dup2(g_errfd, 2);
		if (extra >= 0) {
			if (extra == 3) {
				fcntl(3, F_SETFD, 0);
			} else {
				dup2(extra, 3);
			}
		}
		if (g_nofile_set) {
			setrlimit(RLIMIT_NOFILE, &g_nofile);
		}
		if (rc != NULL &&
		    (write(rc->procs, "0", 1) != 1 ||
		     (rc->v1procs >= 0 && write(rc->v1procs, "0", 1) != 1))) {
			static const char msg[] =
				"benchkit: cannot join the run's cgroup\n";

			(void)!write(2, msg, sizeof(msg) - 1);
			_exit(126);
		}
		execv(cmd[0], cmd);
		_exit(127);
	}
	return pid;
}

static pid_t
spawn(char **cmd, int extra)
{
	return spawn_in(cmd, extra, NULL);
}

/*
 * Waits for pid (our child) to exit: 0 and its status, or -1 after
 * timeout_ms (it is then SIGKILLed and reaped).  A pidfd is polled so that
 * the wait can time out and notice an interrupt; the wake-up comes when
 * the process exits.
 */
static int
wait_exit(pid_t pid, long timeout_ms, int *ws)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
	struct pollfd pfd;
	pid_t r;

	if (fd < 0) {
		die("pidfd_open: %s", strerror(errno));
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (;;) {
		int rc = poll(&pfd, 1, 100);

		check_stop();
		if (rc > 0) {
			break;
		}
		if (now_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, ws, 0);
			close(fd);
			return -1;
		}
	}
	close(fd);
	while ((r = waitpid(pid, ws, 0)) < 0 && errno == EINTR) {
		check_stop();
	}
	return r == pid ? 0 : -1;
}

/* Reads one byte from fd within timeout_ms: 0, or -1. */
static int
read_byte(int fd, long timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
	char c;

	for (;;) {
		int rc = poll(&pfd, 1, 100);

		check_stop();
		if (rc > 0) {
			return read(fd, &c, 1) == 1 ? 0 : -1;
		}
		if (now_ns() > end) {
			return -1;
		}
	}
}

static int
exit_code(int ws)
{
	return WIFEXITED(ws)	? WEXITSTATUS(ws) :
		WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) :
				  -1;
}

/* The first live process named comm in pid's tree (pid included), or 0. */
static pid_t
find_comm(pid_t pid, const char *comm)
{
	struct vec d = { 0 };
	struct pinfo pi;
	pid_t found = 0;
	size_t i;

	vec_push(&d, pid);
	descendants(pid, &d);
	for (i = 0; i < d.n && found == 0; i++) {
		if (pinfo(d.v[i], &pi) == 0 && pi.state != 'Z' &&
		    strcmp(pi.comm, comm) == 0) {
			found = d.v[i];
		}
	}
	free(d.v);
	return found;
}

static pid_t
wait_comm(pid_t pid, const char *comm, long timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
	pid_t p;

	while ((p = find_comm(pid, comm)) == 0) {
		check_stop();
		if (now_ns() > end) {
			return 0;
		}
		sleep_us(200);
	}
	return p;
}

static void
make_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		die("socketpair: %s", strerror(errno));
	}
}

/* Command index for run r of round k: the order rotates each round. */
static int
order(int k, int r)
{
	return (r + k) % g_ncmds;
}

/* ------------------------------------------------------------ measuring */

static void
t_spawn(long rounds, long warmup)
{
	long k;
	int i, ws;

	for (k = -warmup; k < rounds; k++) {
		for (i = 0; i < g_ncmds; i++) {
			int c = order((int)(k < 0 ? -k : k), i);
			uint64_t t0, t1;
			pid_t pid;

			t0 = now_ns();
			pid = spawn(g_cmds[c], -1);
			while (waitpid(pid, &ws, 0) < 0) {
				if (errno != EINTR) {
					die("waitpid: %s", strerror(errno));
				}
				check_stop();
			}
			t1 = now_ns();
			check_stop();
			if (k >= 0) {
				printf("spawn idx=%d ns=%llu st=%d\n", c,
				       (unsigned long long)(t1 - t0),
				       exit_code(ws));
			}
		}
	}
}

static void
t_term(long rounds, long settle_ms)
{
	long k;
	int i, ws;

	for (k = 0; k < rounds; k++) {
		for (i = 0; i < g_ncmds; i++) {
			int c = order((int)k, i), ok, left;
			uint64_t t0, t1;
			pid_t pid = spawn(g_cmds[c], -1);

			if (wait_comm(pid, "sleep", READY_TIMEOUT_MS) == 0) {
				die("command %d: no 'sleep' process appeared",
				    c);
			}
			sleep_ms(settle_ms);
			t0 = now_ns();
			kill(pid, SIGTERM);
			ok = wait_exit(pid, EXIT_TIMEOUT_MS, &ws);
			t1 = now_ns();
			left = cleanup_all();
			printf("term idx=%d ns=%llu st=%d timeout=%d left=%d\n",
			       c, (unsigned long long)(t1 - t0),
			       ok == 0 ? exit_code(ws) : -1, ok != 0, left);
		}
	}
}

static void
t_cmdexit(long rounds, long settle_ms)
{
	long k;
	int i, ws;

	for (k = 0; k < rounds; k++) {
		for (i = 0; i < g_ncmds; i++) {
			int c = order((int)k, i), ok, left, sv[2];
			uint64_t t0, t1;
			pid_t pid;

			make_pair(sv);
			pid = spawn(g_cmds[c], sv[1]);
			close(sv[1]);
			if (read_byte(sv[0], READY_TIMEOUT_MS) < 0) {
				die("command %d: COMMAND never became ready "
				    "(is fd 3 passed on?)",
				    c);
			}
			sleep_ms(settle_ms);
			t0 = now_ns();
			if (write(sv[0], "x", 1) != 1) {
				die("write: %s", strerror(errno));
			}
			ok = wait_exit(pid, EXIT_TIMEOUT_MS, &ws);
			t1 = now_ns();
			close(sv[0]);
			left = cleanup_all();
			printf("cmdexit idx=%d ns=%llu st=%d timeout=%d left=%d\n",
			       c, (unsigned long long)(t1 - t0),
			       ok == 0 ? exit_code(ws) : -1, ok != 0, left);
		}
	}
}

/* Z-state processes in pid's tree, and processes (any state) that are our
 * children other than pid: orphans that went past the wrapper. */
static void
count_zombies(pid_t pid, int *under, int *escaped)
{
	struct vec d = { 0 };
	struct pinfo pi;
	size_t i;

	*under = 0;
	descendants(pid, &d);
	for (i = 0; i < d.n; i++) {
		if (pinfo(d.v[i], &pi) == 0 && pi.state == 'Z') {
			(*under)++;
		}
	}
	d.n = 0;
	children(getpid(), &d);
	*escaped = 0;
	for (i = 0; i < d.n; i++) {
		if (d.v[i] != pid) {
			(*escaped)++;
		}
	}
	free(d.v);
}

/* CPU time so far (ns) of the wrapper's own processes: pid and its live
 * descendants other than the workload (named benchkit). */
static unsigned long long
wrapper_cpu(pid_t pid)
{
	struct vec d = { 0 };
	unsigned long long sum = 0;
	struct pinfo pi;
	struct snap s;
	size_t i;

	vec_push(&d, pid);
	descendants(pid, &d);
	for (i = 0; i < d.n; i++) {
		if (pinfo(d.v[i], &pi) == 0 && pi.state != 'Z' &&
		    (i == 0 || strcmp(pi.comm, "benchkit") != 0)) {
			snapshot(d.v[i], &s);
			sum += s.cpu_ns;
		}
	}
	free(d.v);
	return sum;
}

static void
t_orphans(long rounds, long hold_ms, long check_ms)
{
	long k;
	int i, ws;

	for (k = 0; k < rounds; k++) {
		for (i = 0; i < g_ncmds; i++) {
			int c = order((int)k, i), ok, sv[2], under, escaped,
			    left;
			uint64_t t0, t1, tr;
			unsigned long long cpu;
			pid_t pid;

			make_pair(sv);
			t0 = now_ns();
			pid = spawn(g_cmds[c], sv[1]);
			close(sv[1]);
			if (read_byte(sv[0], 120000) < 0) {
				die("command %d: the orphans were never made",
				    c);
			}
			tr = now_ns();
			sleep_ms(check_ms);
			count_zombies(pid, &under, &escaped);
			cpu = wrapper_cpu(pid);
			ok = wait_exit(pid, EXIT_TIMEOUT_MS, &ws);
			t1 = now_ns();
			close(sv[0]);
			left = cleanup_all();
			printf("orphans idx=%d ns=%llu made_ns=%llu st=%d timeout=%d "
			       "zombies=%d escaped=%d cpu_ns=%llu left=%d\n",
			       c,
			       (unsigned long long)(t1 - t0 -
						    (uint64_t)hold_ms *
							    1000000u),
			       (unsigned long long)(tr - t0),
			       ok == 0 ? exit_code(ws) : -1, ok != 0, under,
			       escaped, cpu, left);
		}
	}
}

static void
t_tree(long rounds, long settle_ms, long pre_ms)
{
	long k;
	int i, ws;

	for (k = 0; k < rounds; k++) {
		for (i = 0; i < g_ncmds; i++) {
			int c = order((int)k, i), ok, sv[2];
			int plain = 0, setsid_ = 0, noterm = 0, other = 0;
			struct vec d = { 0 };
			struct pinfo pi;
			uint64_t t0, t1;
			size_t j;
			pid_t pid;

			make_pair(sv);
			pid = spawn(g_cmds[c], sv[1]);
			close(sv[1]);
			if (read_byte(sv[0], READY_TIMEOUT_MS) < 0) {
				die("command %d: the tree never came up", c);
			}
			sleep_ms(pre_ms);
			t0 = now_ns();
			kill(pid, SIGTERM);
			ok = wait_exit(pid, EXIT_TIMEOUT_MS, &ws);
			t1 = now_ns();
			close(sv[0]);
			sleep_ms(settle_ms);
			descendants(getpid(), &d);
			for (j = 0; j < d.n; j++) {
				if (pinfo(d.v[j], &pi) < 0 || pi.state == 'Z') {
					continue;
				}
				if (strcmp(pi.comm, "bt-plain") == 0 ||
				    strcmp(pi.comm, "bt-root") == 0) {
					plain++;
				} else if (strcmp(pi.comm, "bt-setsid") == 0) {
					setsid_++;
				} else if (strcmp(pi.comm, "bt-noterm") == 0) {
					noterm++;
				} else {
					other++;
				}
			}
			free(d.v);
			cleanup_all();
			printf("tree idx=%d ns=%llu st=%d timeout=%d plain=%d "
			       "setsid=%d noterm=%d other=%d\n",
			       c, (unsigned long long)(t1 - t0),
			       ok == 0 ? exit_code(ws) : -1, ok != 0, plain,
			       setsid_, noterm, other);
		}
	}
}

/* Survivors by kind, from the comm each workload process gives itself. */
enum { S_PLAIN, S_SETSID, S_NOTERM, S_SGROUP, S_SSETSID, S_OTHER, S_KINDS };

/* Counts our live descendants per kind into cnt; returns their total. */
static int
count_kinds(int cnt[S_KINDS])
{
	static const char *const names[] = { "bt-root",	  "bt-plain",
					     "bt-setsid", "bt-noterm",
					     "bs-group",  "bs-setsid" };
	static const int kinds[] = { S_PLAIN,  S_PLAIN,	 S_SETSID,
				     S_NOTERM, S_SGROUP, S_SSETSID };
	struct vec d = { 0 };
	struct pinfo pi;
	size_t i, j;
	int total = 0;

	memset(cnt, 0, S_KINDS * sizeof(*cnt));
	descendants(getpid(), &d);
	for (i = 0; i < d.n; i++) {
		if (pinfo(d.v[i], &pi) < 0 || pi.state == 'Z') {
			continue;
		}
		for (j = 0; j < sizeof(kinds) / sizeof(kinds[0]); j++) {
			if (strcmp(pi.comm, names[j]) == 0) {
				break;
			}
		}
		cnt[j < sizeof(kinds) / sizeof(kinds[0]) ? kinds[j] :
							   S_OTHER]++;
		total++;
	}
	free(d.v);
	return total;
}

/*
 * The "@term" floor: SIGTERM to every member of the run's cgroup, again
 * to those forked meanwhile, until nothing but TERM-ignoring processes is
 * left (or nothing at all).  A pid is told and classified once (by its
 * comm, when first listed), so a pass costs one read of cgroup.procs.
 * Returns 0, or -1 after timeout_ms.
 */
static int
term_members(const struct runcg *rc, long timeout_ms)
{
	enum { PIDS = 1 << 22 }; /* the largest pid_max */
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000u;
	unsigned char *seen = calloc(PIDS / 8, 1), *ign = calloc(PIDS / 8, 1);
	struct pinfo pi;
	char *buf, *p, *q, path[4400];
	int rest, rc_ = -1;
	long v;

	if (seen == NULL || ign == NULL) {
		die("out of memory");
	}
	snprintf(path, sizeof(path), "%s/cgroup.procs", rc->path);
	while (now_ns() < end) {
		check_stop();
		if ((buf = read_all(path)) == NULL) {
			die("cannot read %s: %s", path, strerror(errno));
		}
		rest = 0;
		for (p = buf;; p = q) {
			v = strtol(p, &q, 10);
			if (q == p || v <= 0 || v >= PIDS) {
				break;
			}
			if (!(seen[v / 8] & (1u << (v % 8)))) {
				seen[v / 8] |= (unsigned char)(1u << (v % 8));
				if (pinfo((pid_t)v, &pi) == 0 &&
				    strcmp(pi.comm, "bt-noterm") == 0) {
					ign[v / 8] |=
						(unsigned char)(1u << (v % 8));
				}
				kill((pid_t)v, SIGTERM);
			}
			rest += !(ign[v / 8] & (1u << (v % 8)));
		}
		free(buf);
		if (rest == 0) {
			rc_ = 0;
			break;
		}
		sleep_us(100);
	}
	free(seen);
	free(ign);
	return rc_;
}

/*
 * The processes of a tree workload that honour SIGTERM (all but the
 * TERM-ignoring ones), each as a pidfd in an epoll set: one event per
 * exit, so the end of the stop signal's phase is seen without polling
 * /proc.  Taken before the stop, while the tree is complete.
 */
struct honour {
	int ep, left;
};

static void
honour_take(struct honour *h)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct vec d = { 0 };
	struct pinfo pi;
	size_t i;
	int fd;

	h->left = 0;
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	if (h->ep < 0) {
		die("epoll_create1: %s", strerror(errno));
	}
	descendants(getpid(), &d);
	for (i = 0; i < d.n; i++) {
		if (pinfo(d.v[i], &pi) < 0 || pi.state == 'Z' ||
		    (strcmp(pi.comm, "bt-root") != 0 &&
		     strcmp(pi.comm, "bt-plain") != 0 &&
		     strcmp(pi.comm, "bt-setsid") != 0)) {
			continue;
		}
		fd = (int)syscall(SYS_pidfd_open, d.v[i], 0);
		if (fd < 0) {
			die("pidfd_open: %s", strerror(errno));
		}
		ev.data.fd = fd;
		if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			die("epoll_ctl: %s", strerror(errno));
		}
		h->left++;
	}
	free(d.v);
}

/* Takes in the exits seen so far; returns how many are still alive. */
static int
honour_drain(struct honour *h)
{
	struct epoll_event ev[256];
	int n, i;

	while (h->left > 0 && (n = epoll_wait(h->ep, ev, 256, 0)) > 0) {
		for (i = 0; i < n; i++) {
			close(ev[i].data.fd); /* also leaves the set */
			h->left--;
		}
	}
	return h->left;
}

/* Closes the set and the pidfds of processes that are still alive. */
static void
honour_close(struct honour *h)
{
	struct epoll_event ev[256];
	int n, i;

	/* Every process was killed by now: each pidfd reports, then goes. */
	while (h->left > 0 && (n = epoll_wait(h->ep, ev, 256, 1000)) > 0) {
		for (i = 0; i < n; i++) {
			close(ev[i].data.fd);
			h->left--;
		}
	}
	close(h->ep);
}

struct stop_out {
	uint64_t exit_ns, gone_ns, term_ns;
	int st, timeout, exited, gone, termed;
};

/*
 * After the stop began at t0: waits for pid (our child) to exit, for the
 * processes in h to be gone (the stop signal's phase), and for every
 * process of the run to be gone (the cgroup empty, or with no cgroup, no
 * live descendant), giving up SETTLE_MS after pid's exit or
 * EXIT_TIMEOUT_MS after t0 (pid is then SIGKILLed).  For a floor, pid is
 * the bare workload's first process, whose exit ends nothing.  Each event is
 * stamped right after the poll that saw it.
 */
static void
wait_stop(pid_t pid, const struct runcg *rc, struct honour *h, uint64_t t0,
	  long settle_ms, int floor, struct stop_out *o)
{
	uint64_t settle = (uint64_t)settle_ms * 1000000u,
		 hard = t0 + (uint64_t)EXIT_TIMEOUT_MS * 1000000u, now, last;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0), ws, wait_ms = 0;
	struct pollfd pfd[3];
	int cnt[S_KINDS];

	if (fd < 0) {
		die("pidfd_open: %s", strerror(errno));
	}
	memset(o, 0, sizeof(*o));
	o->st = -1;
	o->termed = h->left == 0;
	for (;; wait_ms = rc != NULL ? 20 : 2) {
		pfd[0].fd = o->exited ? -1 : fd;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = rc != NULL && !o->gone ? rc->events : -1;
		pfd[1].events = POLLPRI;
		pfd[2].fd = o->termed ? -1 : h->ep;
		pfd[2].events = POLLIN;
		poll(pfd, 3, wait_ms);
		now = now_ns();
		check_stop();
		if (!o->exited && (pfd[0].revents & POLLIN)) {
			while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
				continue;
			}
			o->exited = 1;
			o->exit_ns = now - t0;
			o->st = exit_code(ws);
		} else if (!o->exited && now > hard) {
			kill(pid, SIGKILL);
			waitpid(pid, &ws, 0);
			o->exited = o->timeout = 1;
			o->exit_ns = now - t0;
		}
		if (!o->termed && honour_drain(h) == 0) {
			o->termed = 1;
			o->term_ns = now - t0;
		}
		if (!o->gone &&
		    (rc != NULL ? !cg_populated(rc->events) :
				  count_kinds(cnt) == 0)) {
			o->gone = 1;
			o->gone_ns = now - t0;
		}
		/*
		 * A process leaves its cgroup a little before its pidfd
		 * reports the exit: once all are gone, the last exits are
		 * still waited for.
		 */
		last = o->exited && !floor ? t0 + o->exit_ns + settle :
					     hard + settle;
		if ((o->gone && o->exited && o->termed) ||
		    (o->exited && !o->gone && now >= last) ||
		    (o->gone && o->exited && now >= t0 + o->gone_ns + settle) ||
		    now >= hard + settle) {
			break;
		}
	}
	close(fd);
}

/*
 * While it observes a stop (from the workload's "ready" to "all gone"),
 * benchkit runs at a real-time priority where it may: under load, and in
 * a fork storm above all, a normal process may wait long for a CPU, which
 * would delay the stop signal past mid-storm and every stamp.  It only
 * sleeps in poll() there, and a wrapper it forks never inherits the
 * policy (SCHED_RESET_ON_FORK).  Not with no cgroup, where it polls /proc.
 */
static void
observe(int on)
{
	struct sched_param sp = { .sched_priority = on ? 1 : 0 };

	sched_setscheduler(
		0, (on ? SCHED_FIFO : SCHED_OTHER) | SCHED_RESET_ON_FORK, &sp);
}

/* The stop itself: SIGTERM to the wrapper, or a floor's own way. */
static uint64_t
stop_begin(char **cmd, pid_t pid, const struct runcg *rc, uint64_t *t_term)
{
	uint64_t t0 = now_ns();

	*t_term = 0;
	if (cmd[0][0] != '@') {
		kill(pid, SIGTERM);
		return t0;
	}
	if (strcmp(cmd[0], "@term") == 0) {
		/* Signalling is the floor's own work: at normal priority. */
		observe(0);
		if (term_members(rc, EXIT_TIMEOUT_MS) < 0) {
			die("@term: processes left after %d ms",
			    EXIT_TIMEOUT_MS);
		}
		*t_term = now_ns() - t0;
		observe(1);
	}
	cg_write(rc->path, "cgroup.kill", "1");
	return t0;
}

/* One measured run of "stop" with command c; prints its line. */
static void
stop_one(int c, long settle_ms, long pre_ms, long pids_max, long phase)
{
	static int serial;
	char **cmd = g_cmds[c];
	int floor = cmd[0][0] == '@', sv[2], cnt[S_KINDS];
	struct honour h = { .ep = -1, .left = 0 };
	struct stop_out o;
	struct runcg rc;
	uint64_t t0, t_term;
	long peak = -1;
	pid_t pid;

	memset(&rc, 0, sizeof(rc));
	if (floor && !g_cgok) {
		die("%s needs a cgroup: %s", cmd[0], g_cgwhy);
	}
	if (g_cgok) {
		run_make(&rc, serial++, pids_max);
	}
	make_pair(sv);
	pid = spawn_in(floor ? cmd + 1 : cmd, sv[1], g_cgok ? &rc : NULL);
	close(sv[1]);
	observe(g_cgok);
	if (read_byte(sv[0], 3L * READY_TIMEOUT_MS) < 0) {
		die("command %d: the workload never became ready", c);
	}
	if (phase) {
		honour_take(&h);
	}
	sleep_ms(pre_ms);
	t0 = stop_begin(cmd, pid, &rc, &t_term);
	wait_stop(pid, g_cgok ? &rc : NULL, &h, t0, settle_ms, floor, &o);
	observe(0);
	if (floor) {
		/* @term's stop signal phase is its own loop's; @kill has none. */
		o.termed = t_term > 0;
		o.term_ns = t_term;
	}
	close(sv[0]);
	count_kinds(cnt);
	if (g_cgok) {
		peak = run_peak(&rc);
		run_remove(&rc);
	}
	cleanup_all();
	if (phase) {
		honour_close(&h);
	}
	printf("stop idx=%d exit_ns=%llu gone_ns=%lld term_ns=%lld st=%d "
	       "timeout=%d plain=%d setsid=%d noterm=%d sgroup=%d "
	       "ssetsid=%d other=%d peak=%ld\n",
	       c, (unsigned long long)o.exit_ns,
	       o.gone ? (long long)o.gone_ns : -1LL,
	       o.termed && o.term_ns ? (long long)o.term_ns : -1LL, o.st,
	       o.timeout, cnt[S_PLAIN], cnt[S_SETSID], cnt[S_NOTERM],
	       cnt[S_SGROUP], cnt[S_SSETSID], cnt[S_OTHER], peak);
}

static void
t_stop(long rounds, long settle_ms, long pre_ms, long pids_max, long phase)
{
	long k;
	int i;

	for (k = 0; k < rounds; k++) {
		for (i = 0; i < g_ncmds; i++) {
			stop_one(order((int)k, i), settle_ms, pre_ms, pids_max,
				 phase);
		}
	}
}

/* Every process of the wrapper: pid and its descendants not named sleep. */
static void
wrapper_procs(pid_t pid, struct vec *out)
{
	struct vec d = { 0 };
	struct pinfo pi;
	size_t i;

	vec_push(out, pid);
	descendants(pid, &d);
	for (i = 0; i < d.n; i++) {
		if (pinfo(d.v[i], &pi) == 0 && pi.state != 'Z' &&
		    strcmp(pi.comm, "sleep") != 0) {
			vec_push(out, d.v[i]);
		}
	}
	free(d.v);
}

static void
t_idle(long settle_ms, long window_ms)
{
	struct vec procs[MAX_CMDS];
	struct snap *s0[MAX_CMDS];
	pid_t pids[MAX_CMDS];
	uint64_t t0, t1;
	size_t j;
	int i, ws;

	for (i = 0; i < g_ncmds; i++) {
		pids[i] = spawn(g_cmds[i], -1);
	}
	for (i = 0; i < g_ncmds; i++) {
		if (wait_comm(pids[i], "sleep", READY_TIMEOUT_MS) == 0) {
			die("command %d: no 'sleep' process appeared", i);
		}
	}
	sleep_ms(settle_ms);
	check_stop();
	t0 = now_ns();
	for (i = 0; i < g_ncmds; i++) {
		memset(&procs[i], 0, sizeof(procs[i]));
		wrapper_procs(pids[i], &procs[i]);
		s0[i] = calloc(procs[i].n, sizeof(struct snap));
		if (s0[i] == NULL) {
			die("out of memory");
		}
		for (j = 0; j < procs[i].n; j++) {
			snapshot(procs[i].v[j], &s0[i][j]);
		}
	}
	sleep_ms(window_ms);
	check_stop();
	t1 = now_ns();
	for (i = 0; i < g_ncmds; i++) {
		for (j = 0; j < procs[i].n; j++) {
			struct snap a = s0[i][j], b;

			snapshot(procs[i].v[j], &b);
			printf("idle idx=%d proc=%zu pid=%d comm=%s ok=%d "
			       "window_ns=%llu vol=%ld invol=%ld utime=%lu "
			       "stime=%lu cpu_ns=%llu hwm_kb=%ld rss_kb=%ld\n",
			       i, j, (int)procs[i].v[j], a.comm, a.ok && b.ok,
			       (unsigned long long)(t1 - t0), b.vol - a.vol,
			       b.invol - a.invol, b.utime - a.utime,
			       b.stime - a.stime, b.cpu_ns - a.cpu_ns, b.hwm_kb,
			       b.rss_kb);
		}
		free(s0[i]);
		free(procs[i].v);
	}
	for (i = 0; i < g_ncmds; i++) {
		int ok = wait_exit(pids[i], EXIT_TIMEOUT_MS, &ws);

		printf("idle-exit idx=%d st=%d timeout=%d\n", i,
		       ok == 0 ? exit_code(ws) : -1, ok != 0);
	}
	cleanup_all();
}

/* ------------------------------------------------------------ workloads */

static void __attribute__((noreturn)) w_hold(void)
{
	char c;

	if (write(3, "r", 1) != 1 || read(3, &c, 1) < 0) {
		_exit(3);
	}
	_exit(0);
}

static pid_t
fork_retry(void)
{
	pid_t p;
	int tries = 0;

	while ((p = fork()) < 0 && errno == EAGAIN && tries++ < 1000) {
		sleep_us(1000);
	}
	return p;
}

static void __attribute__((noreturn)) w_orphans(long n, long hold_ms)
{
	long i;

	for (i = 0; i < n; i++) {
		pid_t p = fork_retry();

		if (p < 0) {
			_exit(4);
		}
		if (p == 0) {
			/* The middle process: fork the orphan and leave. */
			if (fork() == 0) {
				_exit(0);
			}
			_exit(0);
		}
		while (waitpid(p, NULL, 0) < 0 && errno == EINTR) {
			continue;
		}
	}
	if (write(3, "r", 1) != 1) {
		_exit(3);
	}
	close(3);
	if (hold_ms > 0) {
		sleep_ms(hold_ms);
	}
	_exit(0);
}

enum kind { K_PLAIN, K_SETSID, K_NOTERM };

static void __attribute__((noreturn)) leaf(enum kind kind, int ready)
{
	static const char *const names[] = { "bt-plain", "bt-setsid",
					     "bt-noterm" };

	prctl(PR_SET_NAME, names[kind]);
	if (kind == K_SETSID) {
		setsid();
	} else if (kind == K_NOTERM) {
		signal(SIGTERM, SIG_IGN);
	}
	if (write(ready, "", 1) != 1) {
		_exit(3);
	}
	close(ready);
	for (;;) {
		pause();
	}
}

/*
 * The root (this process, an ordinary one) forks B plain branches; the
 * leaves of every kind are spread over the branches.
 */
static void __attribute__((noreturn))
w_tree(long plain, long setsid_n, long noterm)
{
	long branches = plain > 10 ? 10 : plain - 1, leaves, total, i, got = 0;
	int fds[2];
	char buf[256];

	prctl(PR_SET_NAME, "bt-root");
	if (branches < 0) {
		branches = 0;
	}
	leaves = plain - 1 - branches;
	total = plain - 1 + setsid_n + noterm;
	if (pipe(fds) < 0) {
		_exit(3);
	}
	for (i = 0; i < branches; i++) {
		pid_t p = fork_retry();
		long j;

		if (p < 0) {
			_exit(4);
		}
		if (p != 0) {
			continue;
		}
		close(3);
		close(fds[0]);
		prctl(PR_SET_NAME, "bt-plain");
		for (j = i; j < leaves + setsid_n + noterm; j += branches) {
			enum kind kind = j < leaves   ? K_PLAIN :
				j < leaves + setsid_n ? K_SETSID :
							K_NOTERM;
			pid_t q = fork_retry();

			if (q < 0) {
				_exit(4);
			}
			if (q == 0) {
				leaf(kind, fds[1]);
			}
		}
		leaf(K_PLAIN, fds[1]);
	}
	close(fds[1]);
	while (got < total) {
		ssize_t n = read(fds[0], buf, sizeof(buf));

		if (n <= 0) {
			_exit(5);
		}
		got += n;
	}
	close(fds[0]);
	if (write(3, "r", 1) != 1) {
		_exit(3);
	}
	close(3);
	for (;;) {
		pause();
	}
}

/*
 * Not root: RLIMIT_NPROC as a second bound, at what the user runs now plus
 * n and some room (root is exempt from it; the bench's pids.max and the
 * shared counter bound the storm there).
 */
static void
limit_nproc(long n)
{
	struct rlimit rl;
	struct dirent *de;
	struct stat st;
	char path[300];
	long mine = 0;
	DIR *d;

	if (getuid() == 0 || getrlimit(RLIMIT_NPROC, &rl) < 0 ||
	    (d = opendir("/proc")) == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "/proc/%s", de->d_name);
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9' &&
		    stat(path, &st) == 0 && st.st_uid == getuid()) {
			mine++;
		}
	}
	closedir(d);
	if (rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > (rlim_t)(mine + n + 64)) {
		rl.rlim_cur = (rlim_t)(mine + n + 64);
		setrlimit(RLIMIT_NPROC, &rl);
	}
}

/*
 * A bounded fork storm: each process takes a ticket from a counter in
 * shared memory and forks while the ticket is within n, so no more than n
 * processes are ever made; parent and child storm on alike.  The child
 * with ticket trigger says "r" (mid-storm when trigger < n).  Never an
 * unbounded bomb: the counter, RLIMIT_NPROC when not root, the bench's
 * pids.max, and an alarm that ends every process after 120 s.
 */
static void __attribute__((noreturn)) w_storm(long n, long every, long trigger)
{
	long *made, got;
	pid_t pid;

	made = mmap(NULL, sizeof(*made), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (made == MAP_FAILED) {
		_exit(3);
	}
	*made = 1;
	prctl(PR_SET_NAME, "bs-group");
	limit_nproc(n);
	alarm(120);
	for (;;) {
		got = __atomic_add_fetch(made, 1, __ATOMIC_SEQ_CST);
		if (got > n) {
			break;
		}
		pid = fork();
		if (pid < 0) {
			break;
		}
		if (pid == 0) {
			alarm(120); /* fork cleared the parent's */
			if (every > 0 && got % every == 0) {
				setsid();
				prctl(PR_SET_NAME, "bs-setsid");
			}
			if (got == trigger && write(3, "r", 1) != 1) {
				_exit(3);
			}
		}
	}
	for (;;) {
		pause();
	}
}

/* ----------------------------------------------------------------- main */

/* "cgcheck": whether the bench can make cgroups, and its pids bound. */
static void
cg_check(void)
{
	cg_setup();
	if (!g_cgok) {
		printf("no %s\n", g_cgwhy);
		return;
	}
	printf("ok %s\n",
	       g_v2pids			   ? "v2-pids.max" :
		       g_v1base[0] != '\0' ? "v1-pids.max" :
					     "none");
}

/* Before "stop": the bench's cgroups, and room for a pidfd per process. */
static void
stop_setup(void)
{
	struct rlimit more;

	cg_setup();
	if (getrlimit(RLIMIT_NOFILE, &g_nofile) == 0) {
		more = g_nofile;
		more.rlim_cur = more.rlim_max;
		g_nofile_set = setrlimit(RLIMIT_NOFILE, &more) == 0;
	}
}

static void
split_cmds(int argc, char **argv)
{
	int i, start;

	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		continue;
	}
	if (i == argc) {
		die("missing -- before the commands");
	}
	start = ++i;
	for (; i <= argc; i++) {
		if (i == argc || strcmp(argv[i], "---") == 0) {
			if (i == start) {
				die("empty command");
			}
			if (g_ncmds == MAX_CMDS) {
				die("too many commands");
			}
			g_cmds[g_ncmds++] = &argv[start];
			if (i < argc) {
				argv[i] = NULL;
			}
			start = i + 1;
		}
	}
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	const char *mode;

	if (argc < 2) {
		die("usage: benchkit MODE ARGS... -- CMD [--- CMD]...");
	}
	mode = argv[1];
	if (strcmp(mode, "_hold") == 0) {
		w_hold();
	}
	if (strcmp(mode, "_orphans") == 0 && argc == 4) {
		w_orphans(num(argv[2]), num(argv[3]));
	}
	if (strcmp(mode, "_tree") == 0 && argc == 5) {
		w_tree(num(argv[2]), num(argv[3]), num(argv[4]));
	}
	if (strcmp(mode, "_storm") == 0 && argc == 5) {
		w_storm(num(argv[2]), num(argv[3]), num(argv[4]));
	}

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		die("prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: waits see EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	g_devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	g_errfd = getenv("BENCHKIT_LOG") != NULL ?
		open(getenv("BENCHKIT_LOG"),
		     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) :
		g_devnull;
	if (g_devnull < 0 || g_errfd < 0) {
		die("cannot open /dev/null or the log");
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "cgcheck") == 0) {
		cg_check();
		return 0;
	}
	if (strcmp(mode, "stop") == 0) {
		stop_setup();
	}
	split_cmds(argc, argv);

	if (strcmp(mode, "spawn") == 0 && argc > 4) {
		t_spawn(num(argv[2]), num(argv[3]));
	} else if (strcmp(mode, "term") == 0 && argc > 4) {
		t_term(num(argv[2]), num(argv[3]));
	} else if (strcmp(mode, "cmdexit") == 0 && argc > 4) {
		t_cmdexit(num(argv[2]), num(argv[3]));
	} else if (strcmp(mode, "orphans") == 0 && argc > 5) {
		t_orphans(num(argv[2]), num(argv[3]), num(argv[4]));
	} else if (strcmp(mode, "tree") == 0 && argc > 5) {
		t_tree(num(argv[2]), num(argv[3]), num(argv[4]));
	} else if (strcmp(mode, "stop") == 0 && argc > 7) {
		t_stop(num(argv[2]), num(argv[3]), num(argv[4]), num(argv[5]),
		       num(argv[6]));
	} else if (strcmp(mode, "idle") == 0 && argc > 4) {
		t_idle(num(argv[2]), num(argv[3]));
	} else {
		die("unknown mode or missing arguments: %s", mode);
	}
	cleanup_all();
	return 0;
}
