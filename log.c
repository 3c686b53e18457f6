#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/*
 * The verbosity is file-scope state, a deliberate deviation from "one state
 * struct": every module logs, and threading the run struct through each of
 * them only to read one integer would add noise without making anything
 * testable that is not already.  It is written once, by log_init().
 */
static int log_verbosity;

void
log_init(int verbosity)
{
	log_verbosity = verbosity;
}

int
log_enabled(enum log_level level)
{
	return (int)level <= log_verbosity || level == LOG_ERROR;
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
	while (write(STDERR_FILENO, buf, (size_t)n) < 0 && errno == EINTR) {
		continue;
	}
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
