#ifndef SUPERVISE_LOG_H
#define SUPERVISE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum log_level {
	LOG_ERROR = -1, /* always shown */
	LOG_INFO = 0,	/* shown unless --quiet */
	LOG_DEBUG = 1,	/* shown with --verbose */
};

/*
 * Sets the verbosity: -1 quiet, 0 normal, 1 verbose, and prepares a way
 * to write stderr that never waits for its reader (a pipe, FIFO or
 * terminal is reopened through /proc as a non-blocking description of
 * our own; the caller's is left as it is).  Never fails.
 */
void log_init(int verbosity);

/*
 * Writes len bytes to fd (STDERR_FILENO: stderr, the non-waiting way)
 * without ever waiting: what cannot be written at once is dropped and
 * its bytes are counted.  Returns the bytes written.
 */
size_t log_output(int fd, const char *buf, size_t len);

/*
 * Counts dropped bytes in *counter from now on (shared memory of both
 * processes), adding those counted so far.
 */
void log_count_drops_in(uint64_t *counter);

/* The bytes of output dropped so far. */
uint64_t log_dropped(void);

/* Whether a message of this level would be shown. */
int log_enabled(enum log_level level);

/*
 * Writes one line "supervise: MESSAGE\n" to stderr in one write(2), if the
 * level is enabled. Preserves errno. A closed, broken or full stderr is
 * ignored (the line is dropped and counted): logging never fails, never
 * waits and never raises SIGPIPE (it is ignored or blocked).
 */
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Like log_msg(), with a va_list; also used by the teardown log file. */
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
