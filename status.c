#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "options.h"
#include "parse.h"
#include "status.h"
#include "tree.h"

/*
 * How every record begins: the format's version, then supervise's.  A
 * file that begins so is a status file, which a new record may replace.
 */
#define RECORD_FORMAT 1
#define RECORD_HEAD "{\"version\": "
#define RECORD_HEAD_NEXT ", \"supervise_version\": \""

static void
put(struct json_buf *b, const char *s, size_t n)
{
	if (b->failed) {
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *d;
		while (cap < b->len + n + 1) {
			cap *= 2;
		}
		d = realloc(b->data, cap);
		if (d == NULL) {
			b->failed = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void __attribute__((format(printf, 2, 3)))
putf(struct json_buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0) {
		put(b, tmp,
		    (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
	}
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t
utf8_len(const unsigned char *s, size_t len)
{
	size_t n, i;
	unsigned cp;

	if (s[0] < 0x80) {
		return 1;
	} else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > len) {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
		return 0;
	}
	return n;
}

void
json_string(struct json_buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;

	put(b, "\"", 1);
	while (i < len) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			put(b, "\\", 1);
			put(b, (const char *)&p[i], 1);
			i++;
		} else if (c == '\n') {
			put(b, "\\n", 2);
			i++;
		} else if (c == '\t') {
			put(b, "\\t", 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			putf(b, "\\u%04x", c);
			i++;
		} else if ((n = utf8_len(p + i, len - i)) > 0) {
			put(b, (const char *)&p[i], n);
			i += n;
		} else {
			put(b, "\\ufffd", 6);
			i++;
		}
	}
	put(b, "\"", 1);
}

static void
json_cstr(struct json_buf *b, const char *s)
{
	if (s == NULL) {
		put(b, "null", 4);
	} else {
		json_string(b, s, strlen(s));
	}
}

static void
json_signal(struct json_buf *b, int sig)
{
	char name[32];

	if (sig <= 0) {
		put(b, "null", 4);
	} else {
		json_cstr(b, sig_name(sig, name, sizeof(name)));
	}
}

static void
json_time(struct json_buf *b, const struct timespec *ts)
{
	char when[32];
	struct tm tm;

	gmtime_r(&ts->tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	putf(b, "\"%s.%03ldZ\"", when, ts->tv_nsec / 1000000);
}

/* Seconds with millisecond precision, rounded to the nearest. */
static void
json_seconds(struct json_buf *b, uint64_t ns)
{
	uint64_t ms = ns / 1000000 + (ns % 1000000 >= 500000);

	putf(b, "%llu.%03llu", (unsigned long long)(ms / 1000),
	     (unsigned long long)(ms % 1000));
}

static void
json_teardown(struct json_buf *b, const struct teardown *td)
{
	bool exited;

	if (td == NULL || td->state == TD_IDLE) {
		put(b, "null", 4);
		return;
	}
	exited = td->rec->start_errno == 0 && WIFEXITED(td->rec->wstatus);
	put(b, "{\"reason\": ", 11);
	json_cstr(b, td->rec->reason);
	if (exited) {
		putf(b, ", \"exit\": %d", WEXITSTATUS(td->rec->wstatus));
	} else {
		put(b, ", \"exit\": null", 14);
	}
	put(b, ", \"signaled\": ", 14);
	json_signal(b,
		    td->rec->start_errno == 0 && WIFSIGNALED(td->rec->wstatus) ?
			    WTERMSIG(td->rec->wstatus) :
			    0);
	putf(b, ", \"timed_out\": %s, \"duration_s\": ",
	     td->rec->timed_out ? "true" : "false");
	json_seconds(b,
		     td->ended >= td->rec->started ?
			     td->ended - td->rec->started :
			     0);
	put(b, "}", 1);
}

void
status_json(struct json_buf *b, const struct status_info *si)
{
	struct timespec now;
	uint64_t mono = loop_now();
	size_t i;

	clock_gettime(CLOCK_REALTIME, &now);
	putf(b, RECORD_HEAD "%d" RECORD_HEAD_NEXT "%s\", \"command\": [",
	     RECORD_FORMAT, SUPERVISE_VERSION);
	for (i = 0; si->command != NULL && si->command[i] != NULL; i++) {
		if (i > 0) {
			put(b, ", ", 2);
		}
		json_cstr(b, si->command[i]);
	}
	putf(b, "], \"pid\": %d, \"command_pid\": ", (int)si->pid);
	if (si->command_pid > 0) {
		putf(b, "%d", (int)si->command_pid);
	} else {
		put(b, "null", 4);
	}
	put(b, ", \"started_at\": ", 16);
	json_time(b, &si->started);
	put(b, ", \"ended_at\": ", 14);
	json_time(b, &now);
	put(b, ", \"duration_s\": ", 16);
	json_seconds(b, mono - si->started_mono);
	put(b, ", \"reason\": ", 12);
	json_cstr(b, si->reason);
	put(b, ", \"signal\": ", 12);
	json_signal(b, si->signal);
	put(b, ", \"cause\": ", 11);
	if (si->cause_pid > 0) {
		putf(b, "{\"process\": %d, \"ancestor\": %s}",
		     (int)si->cause_pid, si->cause_ancestor ? "true" : "false");
	} else if (si->cause_fd > 0) {
		putf(b, "{\"stream\": \"%s\"}",
		     si->cause_fd == 1 ? "stdout" : "stderr");
	} else {
		put(b, "null", 4);
	}
	putf(b, ", \"exit_status\": %d, \"command_status\": ", si->exit_status);
	if (!si->command_ended) {
		put(b, "null", 4);
	} else if (WIFSIGNALED(si->command_wstatus)) {
		put(b, "{\"signaled\": ", 13);
		json_signal(b, WTERMSIG(si->command_wstatus));
		put(b, "}", 1);
	} else {
		putf(b, "{\"exited\": %d}", WEXITSTATUS(si->command_wstatus));
	}
	put(b, ", \"stop\": ", 10);
	if (!si->stopped) {
		put(b, "null", 4);
	} else {
		put(b, "{\"signal\": ", 11);
		json_signal(b, si->stop_signal);
		putf(b,
		     ", \"escalated_to_kill\": %s, \"processes_signaled\": %d, "
		     "\"leftovers\": %d, \"unstoppable\": %d}",
		     si->escalated ? "true" : "false", si->signalled,
		     si->leftovers, si->unstoppable);
	}
	put(b, ", \"containment\": ", 17);
	json_cstr(b, si->containment != NULL ? si->containment : "sweep");
	put(b, ", \"teardown\": ", 14);
	json_teardown(b, si->td);
	put(b, ", \"locks\": [", 12);
	for (i = 0; i < si->nlocks; i++) {
		put(b, i > 0 ? ", {\"path\": " : "{\"path\": ", i > 0 ? 11 : 9);
		json_cstr(b, si->locks[i].path);
		put(b, ", \"wait_s\": ", 12);
		json_seconds(b, si->locks[i].wait_ns);
		put(b, "}", 1);
	}
	putf(b, "], \"output_dropped_bytes\": %llu}\n",
	     (unsigned long long)si->dropped);
}

/* Whether the len bytes at buf begin as a record does (RECORD_HEAD). */
static bool
begins_as_record(const char *buf, size_t len)
{
	size_t head = sizeof(RECORD_HEAD) - 1,
	       next = sizeof(RECORD_HEAD_NEXT) - 1;
	size_t i = head;

	if (len < head || memcmp(buf, RECORD_HEAD, head) != 0) {
		return false;
	}
	while (i < len && buf[i] >= '0' && buf[i] <= '9') {
		i++;
	}
	return i > head && len - i >= next &&
		memcmp(buf + i, RECORD_HEAD_NEXT, next) == 0;
}

/*
 * What is at the path now may be replaced only if it is ours: nothing, or
 * a regular file that is empty or holds a record.  A symbolic link is
 * refused, not replaced: rename(2) would replace the link itself, which
 * is not what its owner meant the record to update.  A device or FIFO is
 * never opened (opening one can do things); a regular file is opened
 * without following a link that a swap may have put there.  A hard link
 * is fine: the rename leaves the other name with the old contents.
 * Returns 0, or -1 after logging why.
 */
static int
check_existing(const struct status_target *t)
{
	char head[sizeof(RECORD_HEAD) + sizeof(RECORD_HEAD_NEXT) + 16];
	struct stat st;
	ssize_t n = -1;
	int fd;

	if (fstatat(t->dir_fd, t->base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT) {
			return 0;
		}
		log_error("cannot write status file '%s': %s", t->path,
			  strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		goto symlink;
	}
	if (!S_ISREG(st.st_mode)) {
		goto foreign;
	}
	if (st.st_size == 0) {
		return 0;
	}
	fd = openat(t->dir_fd, t->base,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			return 0; /* removed meanwhile: nothing to replace */
		}
		if (errno == ELOOP) {
			goto symlink;
		}
		log_error("cannot read status file '%s': %s", t->path,
			  strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		n = pread(fd, head, sizeof(head), 0);
	}
	close(fd);
	if (n == 0 || (n > 0 && begins_as_record(head, (size_t)n))) {
		return 0;
	}
foreign:
	log_error("status file '%s' exists and is not a supervise status "
		  "file; not replacing it",
		  t->path);
	return -1;
symlink:
	log_error("status file '%s' is a symbolic link; not replacing it",
		  t->path);
	return -1;
}

/*
 * Whether a file can be made in dir, asked of the kernel itself: the mode
 * bits (access(2)) say yes to root where a read-only mount, an immutable
 * directory or a security module says no.  An unnamed file (O_TMPFILE)
 * is made and closed at once; it never has a name, so nothing is left
 * behind, even after a SIGKILL.  It is not kept for the record: giving
 * it a name would take linkat() through /proc (or CAP_DAC_READ_SEARCH),
 * and after the fork the front and the supervisor would share it, while
 * either may have a record to write.  Where the file system has no
 * O_TMPFILE, a named probe is made and removed at once; only a SIGKILL
 * between the two could leave it, under a name that says whose it is.
 * Returns 0 or an errno.
 */
static int
probe_dir(int dir)
{
	char probe[64];
	unsigned i;
	int fd;

	fd = openat(dir, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		return errno;
	}
	for (i = 0; i < 100; i++) {
		snprintf(probe, sizeof(probe), ".supervise-status.%d.%u.probe",
			 (int)getpid(), i);
		fd = openat(dir, probe,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				    O_CLOEXEC,
			    0600);
		if (fd >= 0) {
			close(fd);
			unlinkat(dir, probe, 0);
			return 0;
		}
		if (errno != EEXIST) {
			return errno;
		}
	}
	return EEXIST;
}

int
status_prepare(struct status_target *t, const char *path)
{
	char *d, *b;
	int err = 0;

	t->path = path;
	t->dir_fd = -1;
	t->base = NULL;
	if (path == NULL) {
		return 0;
	}
	d = strdup(path);
	b = strdup(path);
	if (d == NULL || b == NULL || (t->base = strdup(basename(b))) == NULL) {
		err = ENOMEM;
	} else {
		t->dir_fd = open(dirname(d), O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (t->dir_fd < 0) {
			err = errno;
		}
	}
	free(d);
	free(b);
	if (err == 0 && check_existing(t) < 0) {
		err = -1;
	}
	if (err == 0) {
		err = probe_dir(t->dir_fd);
	}
	if (err == 0) {
		return 0;
	}
	if (err > 0) {
		log_error("cannot write status file '%s': %s", path,
			  strerror(err));
	}
	/* Nothing will be written: the caller exits. */
	if (t->dir_fd >= 0) {
		close(t->dir_fd);
	}
	free(t->base);
	t->dir_fd = -1;
	t->base = NULL;
	t->path = NULL;
	return -1;
}

/* Returns 0, or -1 with errno set (EIO when nothing could be written). */
static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w == 0) {
			errno = EIO;
		}
		if (w <= 0) {
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Writes b into the new file tmp in dir and syncs it: a rename shows the
 * new name at once, and after a crash it could name a file whose data
 * never reached the disk.  Returns 0, or an errno with the file closed
 * and removed.
 */
static int
write_temp(int dir, const char *tmp, const struct json_buf *b)
{
	int fd, err = 0;

	fd = openat(dir, tmp,
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		return errno;
	}
	if (write_all(fd, b->data, b->len) < 0 || fsync(fd) < 0) {
		err = errno;
	}
	/* A network file system may report a failed write only here. */
	if (close(fd) < 0 && err == 0) {
		err = errno;
	}
	if (err != 0) {
		unlinkat(dir, tmp, 0);
	}
	return err;
}

/*
 * The rename is a change to the directory, which reaches the disk only
 * when the directory itself is synced.  dir may be an O_PATH descriptor,
 * which fsync() refuses: the directory is opened again to read.  Returns
 * 0 or an errno.
 */
static int
sync_dir(int dir)
{
	int fd, err = 0;

	fd = openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		return errno;
	}
	if (fsync(fd) < 0) {
		err = errno;
	}
	close(fd);
	return err;
}

int
status_write(const struct status_target *t, const struct status_info *si)
{
	struct json_buf b = { 0 };
	char tmp[64];
	const char *doing = "write status file";
	int err = 0;
	static unsigned serial;

	if (t->path == NULL) {
		return 0;
	}
	status_json(&b, si);
	if (b.failed) {
		err = ENOMEM;
		goto out;
	}
	/* Unique among writers: front and supervisor have different pids. */
	snprintf(tmp, sizeof(tmp), ".supervise-status.%d.%u.tmp", (int)getpid(),
		 serial++);
	err = write_temp(t->dir_fd, tmp, &b);
	if (err != 0) {
		goto out;
	}
	/*
	 * The path was checked at start, but the run had all the time in
	 * the world to put something else there: checked again, as late as
	 * can be, and left alone (said by check_existing()) if not ours.
	 */
	if (check_existing(t) < 0) {
		unlinkat(t->dir_fd, tmp, 0);
		free(b.data);
		return -1;
	}
	if (renameat(t->dir_fd, tmp, t->dir_fd, t->base) < 0) {
		err = errno;
		unlinkat(t->dir_fd, tmp, 0);
		goto out;
	}
	/* The record is in place; only whether it survives a crash is not. */
	doing = "sync the directory of status file";
	err = sync_dir(t->dir_fd);
out:
	free(b.data);
	if (err != 0) {
		log_error("cannot %s '%s': %s", doing, t->path, strerror(err));
		return -1;
	}
	return 0;
}
