#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "holder.h"
#include "lockfile.h"

/*
 * Everything here reads /proc and the lock file only.  Reads of procfs
 * files never wait for anything outside the kernel, and the holder's
 * descriptors are looked at through /proc/PID/fdinfo, never through
 * stat() of /proc/PID/fd/N, which would reach each file's own file system
 * (a hung NFS server would hang us).
 */

/* Pids taken from /proc/locks for one file; more are shared locks. */
#define MAX_NAMED 16
/* How many characters of a command line are shown. */
#define CMDLINE_SHOWN 80
/* U+2026, "…", in UTF-8. */
#define ELLIPSIS "\xe2\x80\xa6"
/*
 * How much later than the record's "since" its pid may seem to have
 * started: "since" is whole seconds, and a start time computed from
 * /proc/stat's btime is off by up to a second.
 */
#define START_SLACK 2

/* The file locked, as /proc/locks names it: device, inode. */
struct lock_id {
	unsigned major[2], minor[2];
	size_t ndev;
	unsigned long long ino;
};

int
holder_parse_line(const char *line, struct holder_entry *e)
{
	char type[16], mode[16], rw[16];
	long long id;
	int pid;

	/*
	 * "1: FLOCK  ADVISORY  WRITE 4711 fe:00:10952883 0 EOF"; a lock
	 * waited for reads "1: -> FLOCK ...", and fdinfo puts "lock:\t"
	 * first.  The device is the file system's major:minor in hex.
	 */
	if (strncmp(line, "lock:", 5) == 0) {
		line += 5;
	}
	/* NOLINTNEXTLINE(cert-err34-c): the kernel writes these numbers. */
	if (sscanf(line, " %lld: %15s %15s %15s %d %x:%x:%llu", &id, type, mode,
		   rw, &pid, &e->major, &e->minor, &e->ino) != 8 ||
	    strcmp(type, "FLOCK") != 0) {
		return -1;
	}
	e->pid = (pid_t)pid;
	return 0;
}

static bool
is_printable(unsigned char c)
{
	return c >= 0x20 && c < 0x7f;
}

const char *
holder_cmdline(const char *raw, size_t n, char *buf, size_t len)
{
	/* Room for " …" (a space and three bytes of UTF-8) and the NUL. */
	size_t max = len > 5 ? len - 5 : 0, i, j = 0, sp;

	if (max == 0) {
		if (len > 0) {
			buf[0] = '\0';
		}
		return buf;
	}
	if (max > CMDLINE_SHOWN) {
		max = CMDLINE_SHOWN;
	}
	/* The last argument's NUL (and any padding) separates nothing. */
	while (n > 0 && raw[n - 1] == '\0') {
		n--;
	}
	for (i = 0; i < n && j < max; i++) {
		unsigned char c = (unsigned char)raw[i];

		buf[j++] = (char)(c == '\0' ? ' ' : is_printable(c) ? c : '?');
	}
	if (i < n) {
		/*
		 * Cut where an argument ends if one ends in the second half
		 * ("flock -w 600 /x -c …"), else in the middle of one.
		 */
		if (raw[i] == '\0') {
			buf[j++] = ' ';
		} else {
			for (sp = j; sp > max / 2 && buf[sp - 1] != ' '; sp--) {
				continue;
			}
			if (sp > max / 2) {
				j = sp;
			}
		}
		memcpy(buf + j, ELLIPSIS, 3);
		j += 3;
	}
	buf[j] = '\0';
	return buf;
}

/*
 * Reads a small procfs file whole, path relative to dir (or AT_FDCWD).
 * Returns its length, or -1.
 */
static ssize_t
read_small(int dir, const char *path, char *buf, size_t len)
{
	int fd = openat(dir, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n, got = 0;

	if (fd < 0) {
		return -1;
	}
	while ((size_t)got + 1 < len) {
		n = read(fd, buf + got, len - 1 - (size_t)got);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return got;
}

/*
 * The device /proc/locks shows for the file: its file system's, which is
 * what mountinfo lists for the mount the descriptor is on.  stat() may
 * show another one (btrfs gives each subvolume a device of its own).
 */
static void
mount_device(int fd, struct lock_id *id)
{
	char path[64], buf[512], *line = NULL;
	unsigned maj, min;
	const char *p;
	size_t cap = 0;
	int mnt, m;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (read_small(AT_FDCWD, path, buf, sizeof(buf)) < 0 ||
	    (p = strstr(buf, "mnt_id:")) == NULL) {
		return;
	}
	/* NOLINTNEXTLINE(cert-err34-c): the kernel writes these numbers. */
	if (sscanf(p + 7, "%d", &mnt) != 1) {
		return;
	}
	f = fopen("/proc/self/mountinfo", "re");
	if (f == NULL) {
		return;
	}
	while (getline(&line, &cap, f) > 0) {
		/* NOLINTNEXTLINE(cert-err34-c): the kernel writes these. */
		if (sscanf(line, "%d %*d %u:%u", &m, &maj, &min) == 3 &&
		    m == mnt) {
			if (maj != id->major[0] || min != id->minor[0]) {
				id->major[id->ndev] = maj;
				id->minor[id->ndev++] = min;
			}
			break;
		}
	}
	free(line);
	fclose(f);
}

static int
lock_id_of(int fd, struct lock_id *id)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (fstat(fd, &st) < 0) {
		return -1;
	}
	id->major[0] = major(st.st_dev);
	id->minor[0] = minor(st.st_dev);
	id->ndev = 1;
	id->ino = (unsigned long long)st.st_ino;
	mount_device(fd, id);
	return 0;
}

static bool
is_the_file(const struct holder_entry *e, const struct lock_id *id)
{
	size_t i;

	for (i = 0; e->ino == id->ino && i < id->ndev; i++) {
		if (e->major == id->major[i] && e->minor == id->minor[i]) {
			return true;
		}
	}
	return false;
}

/*
 * Whether process pid holds the lock: whether one of its descriptors is
 * of the open file description the lock belongs to, which fdinfo shows
 * with a "lock:" line.  Returns 1 if so, 0 if not, -1 when its
 * descriptors cannot be seen (another user's), -2 when it is gone.
 */
static int
fds_hold(pid_t pid, const struct lock_id *id)
{
	char path[64], buf[4096];
	struct holder_entry e;
	struct dirent *de;
	const char *p;
	int found = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	d = opendir(path);
	if (d == NULL) {
		return errno == ENOENT || errno == ESRCH ? -2 : -1;
	}
	while (found == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9') {
			continue;
		}
		if (read_small(dirfd(d), de->d_name, buf, sizeof(buf)) <= 0) {
			continue;
		}
		for (p = strstr(buf, "\nlock:"); p != NULL && found == 0;
		     p = strstr(p + 1, "\nlock:")) {
			found = holder_parse_line(p + 1, &e) == 0 &&
				is_the_file(&e, id);
		}
	}
	closedir(d);
	return found;
}

/* The process's state letter and wall-clock start.  Returns 0 or -1. */
static int
proc_stat(pid_t pid, char *state, time_t *started)
{
	char path[64], buf[1024], *line = NULL;
	unsigned long long ticks, btime = 0;
	const char *p;
	size_t cap = 0;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	/* The command name, in parentheses, may hold anything: skip it. */
	if (read_small(AT_FDCWD, path, buf, sizeof(buf)) <= 0 ||
	    (p = strrchr(buf, ')')) == NULL) {
		return -1;
	}
	/* Fields 3 to 22 of proc(5): the state, ..., the start in ticks. */
	/* NOLINTNEXTLINE(cert-err34-c): the kernel writes these numbers. */
	if (sscanf(p + 1,
		   " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d "
		   "%*d %*d %*d %*d %*d %llu",
		   state, &ticks) != 2) {
		return -1;
	}
	f = fopen("/proc/stat", "re");
	if (f == NULL) {
		return 0;
	}
	while (getline(&line, &cap, f) > 0) {
		/* NOLINTNEXTLINE(cert-err34-c): the kernel writes these. */
		if (sscanf(line, "btime %llu", &btime) == 1) {
			break;
		}
	}
	free(line);
	fclose(f);
	if (btime > 0 && hz > 0) {
		*started = (time_t)(btime + ticks / (unsigned long long)hz);
	}
	return 0;
}

/*
 * What process pid is, as the holder of the lock.  since, when not 0, is
 * when the record naming it was written: a process that started later
 * is another one that got the pid.
 */
static enum holder_state
check_pid(pid_t pid, const struct lock_id *id, time_t since, time_t *started)
{
	char state = '?';
	int held;

	*started = 0;
	/* kill() sees a process that hidepid hides in /proc. */
	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH)) {
		return HOLDER_GONE;
	}
	if (proc_stat(pid, &state, started) == 0 &&
	    (state == 'Z' || state == 'X')) {
		return HOLDER_GONE;
	}
	/*
	 * First, even before what it holds: a record left by a holder that
	 * is gone names whatever process got its pid since, which may well
	 * hold the lock now, but did not write the record.
	 */
	if (since > 0 && *started > since + START_SLACK) {
		return HOLDER_REUSED;
	}
	held = fds_hold(pid, id);
	if (held == -2) {
		return HOLDER_GONE;
	}
	if (held == 1) {
		return HOLDER_HOLDS;
	}
	return held == 0 ? HOLDER_NOT_HOLDING : HOLDER_UNCHECKED;
}

/*
 * One more live holder.  The one shown is one that /proc shows holding
 * the lock rather than one only named, then the one started first (the
 * others are usually its children, which inherited the descriptor).
 */
static void
add_proc(struct holder_view *v, pid_t pid, time_t started, bool seen)
{
	bool better = v->nprocs == 0 || (seen && !v->proc_seen) ||
		(seen == v->proc_seen && started > 0 &&
		 (v->proc.started == 0 || started < v->proc.started));

	v->nprocs++;
	if (better) {
		v->proc.pid = pid;
		v->proc.started = started;
		v->proc_seen = seen;
	}
}

/* The pids /proc/locks names as holding a flock() lock on the file. */
static size_t
kernel_pids(const struct lock_id *id, pid_t *pids, size_t max, bool *locked)
{
	char *line = NULL;
	struct holder_entry e;
	size_t cap = 0, n = 0, i;
	FILE *f = fopen("/proc/locks", "re");

	*locked = false;
	if (f == NULL) {
		return 0;
	}
	while (getline(&line, &cap, f) > 0) {
		if (holder_parse_line(line, &e) < 0 || !is_the_file(&e, id)) {
			continue;
		}
		*locked = true;
		for (i = 0; i < n && pids[i] != e.pid; i++) {
			continue;
		}
		if (i == n && n < max) {
			pids[n++] = e.pid;
		}
	}
	free(line);
	fclose(f);
	return n;
}

/*
 * The processes that hold the lock, found by their descriptors.  For when
 * /proc/locks names a process that is gone: the one that took the lock
 * has exited, and the processes that share its open file description
 * (children that inherited it; supervise's own front and supervisor after
 * a wait) hold it now.  Sees only the processes whose descriptors we may
 * read.
 */
static void
scan_holders(struct holder_view *v, const struct lock_id *id)
{
	pid_t self = getpid(), pid;
	struct dirent *de;
	time_t started;
	char state, *end;
	DIR *d = opendir("/proc");

	if (d == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		pid = (pid_t)strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 0 || pid == self ||
		    fds_hold(pid, id) != 1) {
			continue;
		}
		started = 0;
		if (proc_stat(pid, &state, &started) == 0) {
			add_proc(v, pid, started, true);
		}
	}
	closedir(d);
}

/* The shown holder's command line, or "[name]" when it has none. */
static void
read_cmdline(struct holder_proc *p)
{
	char path[64], raw[4096], name[80];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)p->pid);
	n = read_small(AT_FDCWD, path, raw, sizeof(raw));
	if (n > 0) {
		holder_cmdline(raw, (size_t)n, p->cmdline, sizeof(p->cmdline));
		if (p->cmdline[0] != '\0') {
			return;
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)p->pid);
	n = read_small(AT_FDCWD, path, raw, 64);
	if (n > 0 && raw[n - 1] == '\n') {
		raw[--n] = '\0';
	}
	if (n <= 0) {
		snprintf(p->cmdline, sizeof(p->cmdline), "?");
		return;
	}
	/* A kernel thread's (or a dying process's), as ps shows it. */
	holder_cmdline(raw, (size_t)n, name, sizeof(name));
	snprintf(p->cmdline, sizeof(p->cmdline), "[%s]", name);
}

/* The record's pid: ours to check only if it was written on this host. */
static enum holder_state
record_state(const struct holder_view *v, const struct lock_id *id)
{
	char host[256] = "";
	time_t started;

	if (gethostname(host, sizeof(host) - 1) == 0 &&
	    strcmp(host, v->record.host) != 0) {
		return HOLDER_ELSEWHERE;
	}
	return check_pid((pid_t)v->record.pid, id, v->record.since, &started);
}

void
holder_look(const struct lock *l, struct holder_view *v)
{
	pid_t pids[MAX_NAMED];
	struct lock_id id;
	enum holder_state st;
	time_t started;
	size_t n, i;
	bool locked;

	memset(v, 0, sizeof(*v));
	v->has_record = lock_read_holder(l, &v->record) == 0;
	if (lock_id_of(l->fd, &id) < 0) {
		v->record_state = v->has_record ? HOLDER_UNCHECKED :
						  HOLDER_NONE;
		return;
	}
	n = kernel_pids(&id, pids, MAX_NAMED, &locked);
	for (i = 0; i < n; i++) {
		if (v->has_record && pids[i] == (pid_t)v->record.pid) {
			v->record_named = true;
		}
		st = check_pid(pids[i], &id, 0, &started);
		if (st == HOLDER_HOLDS || st == HOLDER_UNCHECKED) {
			add_proc(v, pids[i], started, st == HOLDER_HOLDS);
		} else if (v->kernel_pid == 0 && pids[i] > 0) {
			v->kernel_pid = pids[i];
			v->kernel_state = st;
		}
	}
	if (v->has_record) {
		v->record_state = record_state(v, &id);
	}
	/*
	 * The one that took the lock is gone.  (A supervise that waited for
	 * its lock is one: the process that took it for the front exited.
	 * Its record, confirmed, says all there is to say.)
	 */
	if (v->nprocs == 0 && locked && v->record_state != HOLDER_HOLDS) {
		scan_holders(v, &id);
	}
	if (v->nprocs > 0) {
		read_cmdline(&v->proc);
	}
}

/* "; the lock file names pid 99, which is gone" and the like. */
static void
record_note(const struct holder_view *v, char *buf, size_t len)
{
	const char *what;

	switch (v->record_state) {
	case HOLDER_GONE:
		what = ", which is gone";
		break;
	case HOLDER_REUSED:
		what = ", which is now another process";
		break;
	case HOLDER_NOT_HOLDING:
		what = ", which does not hold it";
		break;
	case HOLDER_UNCHECKED:
		what = ", which /proc/locks does not name";
		break;
	case HOLDER_ELSEWHERE:
		snprintf(buf, len, "; the lock file names pid %ld on %s",
			 v->record.pid, v->record.host);
		return;
	default:
		buf[0] = '\0';
		return;
	}
	snprintf(buf, len, "; the lock file names pid %ld%s", v->record.pid,
		 what);
}

const char *
holder_describe(const struct holder_view *v, char *buf, size_t len)
{
	char rec[640], note[384] = "", knote[96] = "", when[64] = "";
	char others[48] = "", stamp[40];

	if (v->has_record &&
	    (v->record_state == HOLDER_HOLDS ||
	     (v->record_state == HOLDER_UNCHECKED && v->record_named))) {
		/* The kernel agrees: the record says more. */
		return lock_describe_holder(&v->record, buf, len);
	}
	if (v->has_record) {
		record_note(v, note, sizeof(note));
	}
	if (v->nprocs > 0) {
		if (v->proc.started > 0) {
			snprintf(when, sizeof(when), ", started %s",
				 lock_format_time(v->proc.started, stamp,
						  sizeof(stamp)));
		}
		if (v->nprocs > 1) {
			snprintf(others, sizeof(others),
				 ", and %zu other process%s", v->nprocs - 1,
				 v->nprocs > 2 ? "es" : "");
		}
		snprintf(buf, len, "pid %d (%s)%s%s (from /proc/locks)%s",
			 (int)v->proc.pid, v->proc.cmdline, when, others, note);
		return buf;
	}
	if (v->has_record &&
	    (v->record_state == HOLDER_UNCHECKED ||
	     v->record_state == HOLDER_ELSEWHERE)) {
		snprintf(buf, len, "%s (from the lock file's record)",
			 lock_describe_holder(&v->record, rec, sizeof(rec)));
		return buf;
	}
	/* (Unless it is the record's pid, just said to be no holder.) */
	if (v->kernel_pid > 0 &&
	    !(v->has_record && v->kernel_pid == (pid_t)v->record.pid)) {
		snprintf(knote, sizeof(knote), "; /proc/locks names pid %d, %s",
			 (int)v->kernel_pid,
			 v->kernel_state == HOLDER_GONE ?
				 "which is gone" :
				 "which does not hold it");
	}
	snprintf(buf, len, "an unknown process%s%s", note, knote);
	return buf;
}
