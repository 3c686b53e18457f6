#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/*
 * The verbosity and the way to stderr are file-scope state, a deliberate
 * deviation from "one state struct": every module logs, and threading the
 * run struct through each of them only to reach them would add noise
 * without making anything testable that is not already.  They are set by
 * log_init(); the drop counter is moved into the page the two processes
 * share by log_count_drops_in().
 */
static int log_verbosity;

/* How stderr is written without ever waiting for its reader. */
enum err_mode {
	ERR_WRITE,  /* plain write(): a file, or our non-blocking copy */
	ERR_SOCKET, /* send(MSG_DONTWAIT) */
	ERR_POLL,   /* poll() for room first: the fallback without /proc */
};

static int err_fd = STDERR_FILENO;
static enum err_mode err_mode = ERR_WRITE;
static bool err_prepared;
static dev_t err_dev; /* what descriptor 2 was when prepared */
static ino_t err_ino;
static uint64_t drops_here;
static uint64_t *drops = &drops_here;

/*
 * A runner that stops reading the step's log must not freeze supervise's
 * deadlines.  O_NONBLOCK on descriptor 2 itself would change the caller's
 * open file description, which is not ours (and COMMAND inherits it): a
 * pipe, FIFO or terminal is opened anew through /proc instead, which
 * gives a description of our own to make non-blocking.  A socket is
 * written with MSG_DONTWAIT, a regular file as it is.  Without /proc, we
 * poll for room and write at most PIPE_BUF bytes, which a pipe with room
 * takes at once unless another writer fills it in between: documented as
 * the one case where a message may still wait.
 */
static void
open_private_stderr(void)
{
	struct stat st;
	int fd;

	if (err_fd != STDERR_FILENO) {
		close(err_fd);
	}
	err_fd = STDERR_FILENO;
	err_mode = ERR_WRITE;
	err_prepared = true;
	if (fstat(STDERR_FILENO, &st) < 0) {
		err_dev = 0;
		err_ino = 0;
		return;
	}
	err_dev = st.st_dev;
	err_ino = st.st_ino;
	if (S_ISSOCK(st.st_mode)) {
		err_mode = ERR_SOCKET;
	} else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
		fd = open("/proc/self/fd/2",
			  O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd >= 0) {
			err_fd = fd;
		} else {
			err_mode = ERR_POLL;
		}
	}
}

void
log_init(int verbosity)
{
	log_verbosity = verbosity;
	open_private_stderr();
}

/*
 * Descriptor 2 may have been replaced since (dup2() by a test, or by
 * anyone sharing our descriptor table): the copy follows it.
 */
static void
follow_stderr(void)
{
	struct stat st;

	if (!err_prepared) {
		return;
	}
	if (fstat(STDERR_FILENO, &st) < 0 || st.st_dev != err_dev ||
	    st.st_ino != err_ino) {
		open_private_stderr();
	}
}

int
log_enabled(enum log_level level)
{
	return (int)level <= log_verbosity || level == LOG_ERROR;
}

void
log_count_drops_in(uint64_t *counter)
{
	*counter += drops_here;
	drops_here = 0;
	drops = counter;
}

uint64_t
log_dropped(void)
{
	return __atomic_load_n(drops, __ATOMIC_SEQ_CST);
}

/* One non-waiting write attempt of at most len bytes. */
static ssize_t
try_write(int fd, const char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	if (fd != err_fd || err_mode == ERR_WRITE) {
		return write(fd, buf, len);
	}
	if (err_mode == ERR_SOCKET) {
		return send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	if (poll(&p, 1, 0) != 1 || (p.revents & POLLOUT) == 0) {
		errno = EAGAIN;
		return -1;
	}
	return write(fd, buf, len < PIPE_BUF ? len : PIPE_BUF);
}

size_t
log_output(int fd, const char *buf, size_t len)
{
	size_t done = 0;
	ssize_t n;

	if (fd == STDERR_FILENO) {
		follow_stderr();
		fd = err_fd;
	}
	while (done < len) {
		n = try_write(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		done += (size_t)n;
	}
	if (done < len) {
		__atomic_add_fetch(drops, len - done, __ATOMIC_SEQ_CST);
	}
	return done;
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	int saved = errno;
	int n, i;

	if (!log_enabled(level)) {
		return;
	}
	/* NOLINTNEXTLINE(bugprone-not-null-terminated-result): see below. */
	memcpy(buf, "supervise: ", 11);
	n = vsnprintf(buf + 11, sizeof(buf) - 12, fmt, ap);
	if (n < 0) {
		n = 0;
	}
	if ((size_t)n > sizeof(buf) - 13) {
		n = (int)(sizeof(buf) - 13);
	}
	n += 11;
	/*
	 * A message quotes what the user gave (a duration, a path): a newline
	 * or an escape sequence in it must not make a second line or reach
	 * the terminal.
	 */
	for (i = 11; i < n; i++) {
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
			buf[i] = '?';
		}
	}
	buf[n++] = '\n';
	/* One write, so lines of the two processes never interleave. */
	log_output(STDERR_FILENO, buf, (size_t)n);
	errno = saved;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}
