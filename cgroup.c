#include <sys/stat.h>
#include <sys/vfs.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup.h"

#define PREFIX "supervise."

/* statfs()'s f_type of a cgroup v2 file system (linux/magic.h). */
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

void
cgroup_set_init(struct cgroup_set *set)
{
	memset(set, 0, sizeof(*set));
	set->run.dir_fd = set->run.events_fd = -1;
	set->teardown.dir_fd = set->teardown.events_fd = -1;
}

/* Reads a small file into buf (NUL-terminated).  Returns bytes or -1. */
static ssize_t
read_small(int dir, const char *name, char *buf, size_t len)
{
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		return -1;
	}
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/* Our own cgroup v2 path, from the "0::" line of /proc/self/cgroup. */
static int
own_path(char *out, size_t len)
{
	char buf[4096], *p;

	if (read_small(AT_FDCWD, "/proc/self/cgroup", buf, sizeof(buf)) <= 0) {
		return -1;
	}
	p = strstr(buf, "0::");
	if (p == NULL || (p != buf && p[-1] != '\n')) {
		return -1;
	}
	p += 3;
	p[strcspn(p, "\n")] = '\0';
	if (strlen(p) >= len) {
		return -1;
	}
	snprintf(out, len, "%.2040s", strcmp(p, "/") == 0 ? "" : p);
	return 0;
}

/*
 * Whether our own cgroup's cgroup.procs, under mount point mnt, lists us:
 * proof that mnt shows the hierarchy from the root that /proc/self/cgroup
 * names paths from (a process is in one cgroup v2 only).
 */
static bool
lists_us(const char *mnt, const char *own)
{
	char path[4096 + 64], buf[4096], num[16];
	size_t have = 0, numlen;
	bool found = false;
	ssize_t n, i, start;
	int fd;

	numlen = (size_t)snprintf(num, sizeof(num), "%d", (int)getpid());
	snprintf(path, sizeof(path), "%s%s/cgroup.procs", mnt, own);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return false;
	}
	/* One pid a line; a line cut by the buffer is carried over. */
	while (!found && (n = read(fd, buf + have, sizeof(buf) - have)) > 0) {
		n += (ssize_t)have;
		for (i = start = 0; i < n && !found; i++) {
			if (buf[i] == '\n') {
				found = (size_t)(i - start) == numlen &&
					memcmp(buf + start, num, numlen) == 0;
				start = i + 1;
			}
		}
		have = (size_t)(n - start);
		memmove(buf, buf + start, have);
	}
	close(fd);
	return found;
}

/*
 * The mount point of the cgroup v2 hierarchy, from /proc/self/mountinfo:
 * only a mount of the hierarchy's root, and only one that lists us (a
 * mount point covered by a later mount shows something else).
 */
static int
find_mount(const char *own, char *out, size_t len)
{
	char line[4096], root[1024], mnt[1024];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	const char *sep;
	int found = -1;

	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE ... */
		sep = strstr(line, " - ");
		if (sep == NULL || strncmp(sep + 3, "cgroup2 ", 8) != 0) {
			continue;
		}
		/* NOLINTNEXTLINE(cert-err34-c): the kernel writes this line. */
		if (sscanf(line, "%*d %*d %*s %1023s %1023s", root, mnt) == 2 &&
		    strcmp(root, "/") == 0 && lists_us(mnt, own)) {
			snprintf(out, len, "%s", mnt);
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

/*
 * The usual places first, which cost one statfs() each where reading
 * /proc/self/mountinfo costs a line a mount (a host with many containers
 * has thousands): /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified
 * on a hybrid one.  A cgroup2 file system there counts only if our own
 * cgroup under it lists us, which a bind mount of another part of the
 * hierarchy never does; else find_mount() decides.
 */
static int
usual_mount(const char *own, char *out, size_t len)
{
	static const char *const places[] = { "/sys/fs/cgroup",
					      "/sys/fs/cgroup/unified" };
	struct statfs fs;
	size_t i;

	for (i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		if (statfs(places[i], &fs) == 0 &&
		    fs.f_type == CGROUP2_SUPER_MAGIC) {
			if (!lists_us(places[i], own)) {
				return -1;
			}
			snprintf(out, len, "%s", places[i]);
			return 0;
		}
	}
	return -1;
}

/* The start time of pid (field 22 of /proc/PID/stat), or 0. */
static unsigned long long
start_time(pid_t pid)
{
	char path[32], buf[1024], *p;
	unsigned long long t = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_small(AT_FDCWD, path, buf, sizeof(buf)) > 0 &&
	    (p = strrchr(buf, ')')) != NULL) {
		/* NOLINTNEXTLINE(cert-err34-c): the kernel writes these. */
		if (sscanf(p + 2,
			   "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			   "%*u %*u %*d %*d %*d %*d %*d %*d %llu",
			   &t) != 1) {
			t = 0;
		}
	}
	return t;
}

static void
close_cg(struct cgroup *cg)
{
	if (cg->events_fd >= 0) {
		close(cg->events_fd);
	}
	if (cg->dir_fd >= 0) {
		close(cg->dir_fd);
	}
	cg->dir_fd = cg->events_fd = -1;
}

/* The inode of our PID namespace, or 0. */
static unsigned long long
pid_ns(void)
{
	struct stat st;

	return stat("/proc/self/ns/pid", &st) == 0 ? st.st_ino : 0;
}

/* Only runs of our own PID namespace: a pid means nothing across them. */
void
cgroup_remove_leftovers(const struct cgroup_set *set)
{
	const char *base = set->base;
	unsigned long long ns = set->ns;
	char path[4096 + 300];
	unsigned long long t, their_ns;
	struct dirent *de;
	DIR *d;
	int pid;

	if (ns == 0 || base[0] == '\0' || (d = opendir(base)) == NULL) {
		return;
	}
	while ((de = readdir(d)) != NULL) {
		/* NOLINTNEXTLINE(cert-err34-c): a name we made, or skipped. */
		if (sscanf(de->d_name, PREFIX "%llu.%d.%llu", &their_ns, &pid,
			   &t) != 3 ||
		    their_ns != ns || start_time(pid) == t) {
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s/run", base, de->d_name);
		rmdir(path);
		snprintf(path, sizeof(path), "%s/%s/teardown", base,
			 de->d_name);
		rmdir(path);
		snprintf(path, sizeof(path), "%s/%s", base, de->d_name);
		rmdir(path);
	}
	closedir(d);
}

static int
make_one(struct cgroup *cg, const char *parent, const char *rel_parent,
	 const char *name)
{
	snprintf(cg->path, sizeof(cg->path), "%.4000s/%s", parent, name);
	snprintf(cg->rel, sizeof(cg->rel), "%.4000s/%s", rel_parent, name);
	if (mkdir(cg->path, 0755) < 0) {
		return -1;
	}
	cg->dir_fd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg->dir_fd < 0) {
		return -1;
	}
	cg->events_fd = openat(cg->dir_fd, "cgroup.events",
			       O_RDONLY | O_CLOEXEC);
	/* cgroup.kill came with Linux 5.14: without it, no containment. */
	if (cg->events_fd < 0 ||
	    faccessat(cg->dir_fd, "cgroup.kill", W_OK, 0) < 0) {
		return -1;
	}
	return 0;
}

int
cgroup_make_set(struct cgroup_set *set, pid_t front, bool teardown)
{
	char mnt[1024], own[2048], rel[4096];
	unsigned long long started;
	int err, n;

	cgroup_set_init(set);
	if (own_path(own, sizeof(own)) < 0) {
		snprintf(set->why, sizeof(set->why),
			 "no cgroup v2 path in "
			 "/proc/self/cgroup");
		return -1;
	}
	if (usual_mount(own, mnt, sizeof(mnt)) < 0 &&
	    find_mount(own, mnt, sizeof(mnt)) < 0) {
		snprintf(set->why, sizeof(set->why), "no cgroup v2 hierarchy");
		return -1;
	}
	n = snprintf(set->base, sizeof(set->base), "%s%s", mnt, own);
	if (n < 0 || (size_t)n >= sizeof(set->base) - 100) {
		snprintf(set->why, sizeof(set->why), "cgroup path too long");
		return -1;
	}
	set->ns = pid_ns();
	started = start_time(front);
	snprintf(set->parent, sizeof(set->parent),
		 "%.3900s/" PREFIX "%llu.%d.%llu", set->base, set->ns,
		 (int)front, started);
	if (mkdir(set->parent, 0755) < 0) {
		snprintf(set->why, sizeof(set->why),
			 "cannot make a cgroup in "
			 "%.300s: %s",
			 set->base, strerror(errno));
		return -1;
	}
	snprintf(rel, sizeof(rel), "%.2000s/" PREFIX "%llu.%d.%llu", own,
		 set->ns, (int)front, started);
	if (make_one(&set->run, set->parent, rel, "run") < 0 ||
	    (teardown &&
	     make_one(&set->teardown, set->parent, rel, "teardown") < 0)) {
		err = errno;
		snprintf(set->why, sizeof(set->why),
			 "cannot set up a cgroup in "
			 "%.300s: %s",
			 set->parent, strerror(err));
		cgroup_remove_set(set);
		return -1;
	}
	set->active = true;
	return 0;
}

bool
cgroup_populated(const struct cgroup *cg)
{
	char buf[256], *p;
	ssize_t n;

	if (cg->events_fd < 0) {
		return false;
	}
	/*
	 * pread from 0: a read is also what re-arms poll()'s POLLPRI.  It
	 * fails (ENODEV) once the other process removed the cgroup, which
	 * rmdir allows only when it is empty.
	 */
	n = pread(cg->events_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		return false;
	}
	buf[n] = '\0';
	p = strstr(buf, "populated ");
	return p == NULL || p[10] != '0';
}

bool
cgroup_has(const struct cgroup *cg, pid_t pid)
{
	char path[40], buf[4096 + 64], *p;
	int dir;
	bool in;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		return false;
	}
	in = read_small(dir, "cgroup", buf, sizeof(buf)) > 0 &&
		(p = strstr(buf, "0::")) != NULL &&
		(p == buf || p[-1] == '\n') &&
		strncmp(p + 3, cg->rel, strlen(cg->rel)) == 0 &&
		p[3 + strlen(cg->rel)] == '\n';
	close(dir);
	return in;
}

int
cgroup_procs(const struct cgroup *cg, pid_t **out)
{
	size_t cap = 64, n = 0;
	pid_t *v, *nv;
	long pid = -1; /* the number being read, or -1 between two */
	char buf[4096];
	ssize_t got, i;
	int fd;

	*out = NULL;
	fd = openat(cg->dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	v = malloc(cap * sizeof(*v));
	if (v == NULL) {
		close(fd);
		return -1;
	}
	/* The kernel writes one pid a line; read(), not stdio, for one pass. */
	while ((got = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < got; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				pid = pid < 0	       ? 0 :
					pid > 99999999 ? pid :
							 pid * 10;
				pid += buf[i] - '0';
				continue;
			}
			if (pid < 0) {
				continue;
			}
			if (n == cap) {
				nv = realloc(v, cap * 2 * sizeof(*v));
				if (nv == NULL) {
					break;
				}
				v = nv;
				cap *= 2;
			}
			v[n++] = (pid_t)pid;
			pid = -1;
		}
	}
	close(fd);
	*out = v;
	return (int)n;
}

int
cgroup_count(const struct cgroup *cg)
{
	char buf[4096];
	int fd = openat(cg->dir_fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	int lines = 0;
	ssize_t n, i;

	if (fd < 0) {
		return 0;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++) {
			lines += buf[i] == '\n';
		}
	}
	close(fd);
	return lines;
}

static int
write_word(const struct cgroup *cg, const char *file, const char *word)
{
	int fd = openat(cg->dir_fd, file, O_WRONLY | O_CLOEXEC);
	ssize_t len = (ssize_t)strlen(word);
	int r;

	if (fd < 0) {
		return -1;
	}
	r = write(fd, word, (size_t)len) == len ? 0 : -1;
	close(fd);
	return r;
}

int
cgroup_freeze(const struct cgroup *cg, bool frozen)
{
	return write_word(cg, "cgroup.freeze", frozen ? "1" : "0");
}

int
cgroup_kill(const struct cgroup *cg)
{
	return write_word(cg, "cgroup.kill", "1");
}

void
cgroup_remove_set(struct cgroup_set *set)
{
	close_cg(&set->run);
	close_cg(&set->teardown);
	if (set->parent[0] == '\0') {
		return;
	}
	/* rmdir fails (EBUSY) while a cgroup has processes: left for later. */
	if (set->run.path[0] != '\0') {
		rmdir(set->run.path);
	}
	if (set->teardown.path[0] != '\0') {
		rmdir(set->teardown.path);
	}
	rmdir(set->parent);
}
