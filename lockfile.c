#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lockfile.h"
#include "log.h"

#define RECORD_MAGIC "supervise-lock 1\n"

static int
compare_keys(const void *a, const void *b)
{
	return strcmp(((const struct lock *)a)->key,
		      ((const struct lock *)b)->key);
}

/*
 * The absolute path of path's directory, plus its last component.  A
 * leading "//" is one "/": POSIX lets realpath() keep it, and musl's does
 * ("//tmp" stays "//tmp" there, glibc gives "/tmp"), but on Linux both
 * name the same directory, and the key must sort the same either way.
 */
static char *
canonical_key(const char *path)
{
	char *d = strdup(path), *b = strdup(path), *dir = NULL, *key = NULL;
	const char *base, *abs;

	if (d == NULL || b == NULL) {
		goto out;
	}
	base = basename(b);
	dir = realpath(dirname(d), NULL);
	if (dir == NULL) {
		goto out;
	}
	abs = dir;
	while (abs[0] == '/' && abs[1] == '/') {
		abs++;
	}
	if (asprintf(&key, "%s/%s", strcmp(abs, "/") == 0 ? "" : abs, base) <
	    0) {
		key = NULL;
	}
out:
	free(d);
	free(b);
	free(dir);
	return key;
}

int
lock_prepare(char *const *paths, size_t n, struct lock **out)
{
	struct lock *locks = calloc(n ? n : 1, sizeof(*locks));
	size_t i, j;

	if (locks == NULL) {
		log_error("cannot prepare locks: %s", strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		locks[i].path = paths[i];
		locks[i].fd = -1;
		locks[i].key = canonical_key(paths[i]);
		if (locks[i].key == NULL) {
			log_error("cannot open lock file '%s': %s", paths[i],
				  strerror(errno));
			lock_free(locks, i + 1);
			return -1;
		}
	}
	qsort(locks, n, sizeof(*locks), compare_keys);
	/* The same file named twice is one lock (flock would deadlock). */
	for (i = j = 0; i < n; i++) {
		if (j > 0 && strcmp(locks[j - 1].key, locks[i].key) == 0) {
			free(locks[i].key);
			continue;
		}
		locks[j++] = locks[i];
	}
	*out = locks;
	return (int)j;
}

void
lock_free(struct lock *locks, size_t n)
{
	size_t i;

	for (i = 0; locks != NULL && i < n; i++) {
		if (locks[i].fd >= 0) {
			close(locks[i].fd);
		}
		free(locks[i].key);
	}
	free(locks);
}

/* Empty, or beginning with a holder record: a supervise lock file. */
static bool
is_lock_file(int fd)
{
	char head[sizeof(RECORD_MAGIC) - 1];
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		return false;
	}
	return st.st_size == 0 ||
		(pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
		 memcmp(head, RECORD_MAGIC, sizeof(head)) == 0);
}

int
lock_open(struct lock *l)
{
	/*
	 * O_NOFOLLOW: in a shared directory, a symlink planted at the lock's
	 * name must not make us create or lock another file.  O_NONBLOCK: a
	 * FIFO planted there must not hang the open; it is refused below.
	 */
	int flags = O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC;
	struct stat st;
	int fd;

	/*
	 * A device or FIFO planted at the name is refused before it is even
	 * opened (opening a device can do things); the fstat() below closes
	 * the race with a swap in between.
	 */
	if (lstat(l->path, &st) == 0 && !S_ISREG(st.st_mode) &&
	    !S_ISLNK(st.st_mode)) {
		log_error("lock file '%s' is not a regular file", l->path);
		return -1;
	}
	/*
	 * Made here (O_EXCL), the file is ours to write the holder record
	 * into; one that was there is someone else's until it proves to be
	 * a lock file (see may_write_record()).
	 */
	fd = open(l->path, O_RDWR | O_EXCL | flags, 0644);
	l->created = fd >= 0;
	if (fd < 0 && errno == EEXIST) {
		/*
		 * Read-only first: a lock needs no write access, and a file
		 * open for writing cannot be executed (ETXTBSY), as when a
		 * script locks itself (-l ./deploy.sh -- ./deploy.sh).  Only
		 * a file that looks like a lock file is opened for writing.
		 */
		fd = open(l->path, O_RDONLY | (flags & ~O_CREAT));
		if (fd >= 0 && is_lock_file(fd)) {
			int w = open(l->path, O_RDWR | (flags & ~O_CREAT));

			if (w >= 0) {
				close(fd);
				fd = w;
			}
		}
		if (fd < 0 && errno == ENOENT) {
			/* Removed in between: make it after all. */
			fd = open(l->path, O_RDWR | flags, 0644);
		}
	}
	if (fd < 0 && (errno == EACCES || errno == EROFS)) {
		/* A lock needs no write access; the holder record does. */
		fd = open(l->path, O_RDONLY | flags, 0644);
	}
	if (fd < 0) {
		if (errno == ELOOP) {
			log_error("lock file '%s' is a symbolic link", l->path);
		} else if (errno == EISDIR) {
			log_error("lock file '%s' is not a regular file",
				  l->path);
		} else {
			log_error("cannot open lock file '%s': %s", l->path,
				  strerror(errno));
		}
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_error("lock file '%s' is not a regular file", l->path);
		close(fd);
		return -1;
	}
	fcntl(fd, F_SETFL, 0);
	l->fd = fd;
	return 0;
}

int
lock_try(struct lock *l)
{
	if (flock(l->fd, LOCK_EX | LOCK_NB) == 0) {
		return 1;
	}
	return errno == EWOULDBLOCK ? 0 : -1;
}

int
lock_is_current(const struct lock *l)
{
	struct stat held, named;

	if (fstat(l->fd, &held) < 0) {
		return -1;
	}
	if (lstat(l->path, &named) < 0) {
		return errno == ENOENT ? 0 : -1;
	}
	return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

pid_t
lock_start_waiter(const struct lock *l)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0) {
		/*
		 * The lock belongs to the open file description, which we
		 * share with the parent: once we have it, so has the parent.
		 * If the parent dies, so do we, and the wait with us.
		 */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
		    getppid() != parent) {
			_exit(1);
		}
		_exit(flock(l->fd, LOCK_EX) == 0 ? 0 : 1);
	}
	return pid;
}

/* Copies s into buf as one printable line, at most len - 1 bytes. */
static void
printable(char *buf, size_t len, const char *s, size_t slen)
{
	size_t i, j = 0;

	for (i = 0; i < slen && j + 1 < len; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[j++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
	}
	buf[j] = '\0';
}

/*
 * Whether the holder record may replace the file's contents: never those
 * of a file that is not a supervise lock file.  Only a file we made, or
 * one that is empty or already holds a record; never through a second
 * link (a hard link would carry the write to its other names); and, as
 * root in a world-writable sticky directory (/tmp), only a file of ours.
 */
static bool
may_write_record(const struct lock *l)
{
	struct stat st, ds;
	char *dir;
	bool ok;

	if (fstat(l->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		return false;
	}
	if (!l->created && !is_lock_file(l->fd)) {
		return false;
	}
	if (geteuid() != 0 || st.st_uid == 0 || l->key == NULL) {
		return true;
	}
	dir = strdup(l->key);
	ok = dir != NULL && stat(dirname(dir), &ds) == 0 &&
		!((ds.st_mode & S_ISVTX) && (ds.st_mode & S_IWOTH));
	free(dir);
	return ok;
}

int
lock_format_holder(char *rec, size_t len, pid_t pid, char *const *command)
{
	char host[256] = "?", cmd[200], phost[256];
	size_t used = 0, n;

	if (gethostname(host, sizeof(host) - 1) < 0) {
		strcpy(host, "?");
	}
	host[sizeof(host) - 1] = '\0';
	for (; *command != NULL && used + 1 < sizeof(cmd); command++) {
		if (used > 0) {
			cmd[used++] = ' ';
		}
		n = strlen(*command);
		printable(cmd + used, sizeof(cmd) - used, *command, n);
		used += strlen(cmd + used);
	}
	cmd[used] = '\0';
	printable(phost, sizeof(phost), host, strlen(host));
	return snprintf(rec, len,
			RECORD_MAGIC
			"pid %ld\nhost %s\nsince %lld\ncommand %s\n",
			(long)pid, phost, (long long)time(NULL), cmd) < 0 ?
		-1 :
		0;
}

void
lock_write_holder(const struct lock *l, pid_t pid, char *const *command)
{
	char rec[1024];

	if (lock_format_holder(rec, sizeof(rec), pid, command) < 0) {
		return;
	}
	if (!may_write_record(l)) {
		log_debug("lock file '%s' is not a supervise lock file; its "
			  "contents are left as they are",
			  l->path);
		return;
	}
	/* Best effort: a read-only lock file keeps no record. */
	if (ftruncate(l->fd, 0) == 0 &&
	    pwrite(l->fd, rec, strlen(rec), 0) < 0) {
		log_debug("cannot write the holder of lock '%s': %s", l->path,
			  strerror(errno));
	}
}

int
lock_parse_holder(const char *buf, size_t len, struct lock_holder *h)
{
	const char *p = buf, *end = buf + len, *nl, *val;
	size_t klen, vlen;

	memset(h, 0, sizeof(*h));
	if (len < sizeof(RECORD_MAGIC) - 1 ||
	    memcmp(buf, RECORD_MAGIC, sizeof(RECORD_MAGIC) - 1) != 0) {
		return -1;
	}
	p += sizeof(RECORD_MAGIC) - 1;
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			nl = end;
		}
		val = memchr(p, ' ', (size_t)(nl - p));
		if (val == NULL) {
			if (nl == end) {
				break;
			}
			continue;
		}
		klen = (size_t)(val - p);
		val++;
		vlen = (size_t)(nl - val);
		if (klen == 3 && memcmp(p, "pid", 3) == 0) {
			char num[24], *endp;
			printable(num, sizeof(num), val, vlen);
			h->pid = strtol(num, &endp, 10);
			if (endp == num || h->pid <= 0) {
				h->pid = 0;
			}
		} else if (klen == 4 && memcmp(p, "host", 4) == 0) {
			printable(h->host, sizeof(h->host), val, vlen);
		} else if (klen == 5 && memcmp(p, "since", 5) == 0) {
			char num[24];
			printable(num, sizeof(num), val, vlen);
			h->since = (time_t)strtoll(num, NULL, 10);
		} else if (klen == 7 && memcmp(p, "command", 7) == 0) {
			printable(h->command, sizeof(h->command), val, vlen);
		}
		if (nl == end) {
			break;
		}
	}
	/* A record cut short or garbled names no holder. */
	return h->pid > 0 ? 0 : -1;
}

int
lock_read_holder(const struct lock *l, struct lock_holder *h)
{
	char buf[2048];
	ssize_t n = pread(l->fd, buf, sizeof(buf), 0);

	if (n <= 0) {
		return -1;
	}
	return lock_parse_holder(buf, (size_t)n, h);
}

const char *
lock_format_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	/*
	 * Date, time and the numeric offset from UTC: unambiguous whatever
	 * the zone (TZ is honoured) and whenever the line is read.
	 */
	tzset();
	if (len == 0) {
		return buf;
	}
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm) == 0) {
		snprintf(buf, len, "@%lld", (long long)t);
	}
	return buf;
}

const char *
lock_describe_holder(const struct lock_holder *h, char *buf, size_t len)
{
	char since[48] = "", when[40];

	if (h->since > 0) {
		snprintf(since, sizeof(since), " since %s",
			 lock_format_time(h->since, when, sizeof(when)));
	}
	snprintf(buf, len, "pid %ld on %s%s%s%s", h->pid,
		 h->host[0] ? h->host : "?", since, h->command[0] ? ": " : "",
		 h->command);
	return buf;
}
