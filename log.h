#ifndef SUPERVISE_LOG_H
#define SUPERVISE_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_ERROR = -1,	/* always shown */
	LOG_INFO = 0,	/* shown unless --quiet */
	LOG_DEBUG = 1,	/* shown with --verbose */
};

/* Sets the verbosity: -1 quiet, 0 normal, 1 verbose. Never fails. */
void log_init(int verbosity);

/* Whether a message of this level would be shown. */
int log_enabled(enum log_level level);

/*
 * Writes one line "supervise: MESSAGE\n" to stderr in one write(2), if the
 * level is enabled. Preserves errno. A closed or broken stderr is ignored:
 * logging never fails and never raises SIGPIPE (it is ignored or blocked).
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
