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
 * Workloads run as COMMAND (fd 3 is a socket back to the measuring side):
 *   _hold                       write "r", wait for a byte, exit 0
 *   _orphans N HOLD_MS          N double-forked orphans that exit at once,
 *                               write "r", sleep HOLD_MS, exit 0
 *   _tree PLAIN SETSID NOTERM   a tree: PLAIN ordinary processes (this one
 *                               included), SETSID that called setsid(),
 *                               NOTERM that ignore SIGTERM; write "r" when
 *                               all are up, then wait for signals.
 * Output: one line per measured run, "<test> idx=I key=value...".
 */
#define _GNU_SOURCE
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

/* ---------------------------------------------------------------- util */

static void
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

/* fork+exec of cmd; extra (if >= 0) becomes fd 3 of the child. */
static pid_t
spawn(char **cmd, int extra)
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
		execv(cmd[0], cmd);
		_exit(127);
	}
	return pid;
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

/* ----------------------------------------------------------------- main */

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
	} else if (strcmp(mode, "idle") == 0 && argc > 4) {
		t_idle(num(argv[2]), num(argv[3]));
	} else {
		die("unknown mode or missing arguments: %s", mode);
	}
	cleanup_all();
	return 0;
}
