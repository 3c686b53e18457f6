#ifndef SUPERVISE_PARSE_H
#define SUPERVISE_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* A duration in nanoseconds; DURATION_FOREVER is "practically forever". */
#define DURATION_FOREVER UINT64_MAX

/*
 * Parses a DURATION: a non-negative decimal number with an optional
 * fraction ("1.5", ".5", "2."; no sign, exponent or blanks) and an optional
 * unit: ms, s (the default), m, h or d.  A value too large for 64 bits of
 * nanoseconds saturates to DURATION_FOREVER; a non-zero value never rounds
 * down to zero.  Returns 0 and sets *ns, or -1 (errno EINVAL) on bad text.
 */
int parse_duration(const char *text, uint64_t *ns);

/*
 * Parses a SIGNAL: a name with or without "SIG" in any case ("TERM",
 * "sigterm", "RTMIN+2") or a number from 0 to SIGRTMAX.  Returns the
 * number, or -1 on bad text.
 */
int parse_signal(const char *text);

/*
 * Writes the name of signal sig ("SIGTERM", "SIGRTMIN+2") into buf.
 * Unknown numbers come out as "signal N".  Returns buf.
 */
const char *sig_name(int sig, char *buf, size_t len);

/*
 * Formats a duration for humans ("10s", "1.5s", "250ms", "90s", "2m30s",
 * "1h", "12ns"), into buf; never in exponent notation.
 * Returns buf.
 */
const char *fmt_duration(uint64_t ns, char *buf, size_t len);

/* The events that end a run, for --teardown-on. */
enum {
	EVENT_TIMEOUT = 1,
	EVENT_CANCEL = 2,  /* a cancel signal, or the parent's death */
	EVENT_FAILURE = 4, /* COMMAND failed, died or could not run */
	EVENT_SUCCESS = 8, /* COMMAND exited 0 */
	EVENT_ALL = 15,
};

/*
 * Parses a comma list of event names (timeout, cancel, failure, success,
 * always) into an EVENT_* mask.  Returns 0, or -1 with the first bad word
 * (empty words included) copied into bad.
 */
int parse_events(const char *text, unsigned *mask, char *bad, size_t badlen);

/*
 * Parses a positive process id.  Returns it, or -1 on bad text.
 */
int parse_pid(const char *text);

#endif
