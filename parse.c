#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

#define NS_PER_MS UINT64_C(1000000)
#define NS_PER_S UINT64_C(1000000000)

static uint64_t
unit_ns(const char *unit)
{
	if (*unit == '\0' || strcmp(unit, "s") == 0) {
		return NS_PER_S;
	}
	if (strcmp(unit, "ms") == 0) {
		return NS_PER_MS;
	}
	if (strcmp(unit, "m") == 0) {
		return 60 * NS_PER_S;
	}
	if (strcmp(unit, "h") == 0) {
		return 3600 * NS_PER_S;
	}
	if (strcmp(unit, "d") == 0) {
		return 86400 * NS_PER_S;
	}
	return 0;
}

int
parse_duration(const char *text, uint64_t *ns)
{
	/*
	 * The digits are gathered into one 128-bit integer (with the count
	 * of fraction digits) so that "0.1" is exact and nothing goes through
	 * floating point.  Once the integer passes 10^20 the value is far
	 * beyond 2^64 ns whatever the unit, so more digits only saturate.
	 */
	const unsigned __int128 cap = (unsigned __int128)100000000000ULL *
		1000000000ULL;
	unsigned __int128 mant = 0, scale = 1, v;
	const char *p = text;
	int digits = 0, frac = 0, saturated = 0, nonzero = 0;
	uint64_t unit;

	for (; isdigit((unsigned char)*p); p++, digits++) {
		nonzero |= *p != '0';
		if (mant < cap) {
			mant = mant * 10 + (unsigned)(*p - '0');
		} else {
			saturated = 1;
		}
	}
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++, digits++) {
			nonzero |= *p != '0';
			/* Past 18 fraction digits, nothing below 1 ns is left. */
			if (frac < 18 && mant < cap) {
				mant = mant * 10 + (unsigned)(*p - '0');
				scale *= 10;
				frac++;
			}
		}
	}
	unit = unit_ns(p);
	if (digits == 0 || unit == 0) {
		errno = EINVAL;
		return -1;
	}
	if (saturated) {
		*ns = DURATION_FOREVER;
		return 0;
	}
	v = mant * unit / scale;
	if (v >= DURATION_FOREVER) {
		*ns = DURATION_FOREVER;
	} else if (v == 0 && nonzero) {
		*ns = 1;
	} else {
		*ns = (uint64_t)v;
	}
	return 0;
}

static int
parse_number(const char *text, long max)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)*text)) {
		return -1;
	}
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || *end != '\0' || v > max) {
		return -1;
	}
	return (int)v;
}

/*
 * The names of the classic signals, as glibc's sigabbrev_np() gives them.
 * A table of our own, so that a build with another C library (musl has no
 * sigabbrev_np()) names them the same.  Keyed by the constants, whose
 * numbers differ between architectures.
 */
static const struct {
	int sig;
	const char *name;
} signal_names[] = {
	{ SIGHUP, "HUP" },	 { SIGINT, "INT" },   { SIGQUIT, "QUIT" },
	{ SIGILL, "ILL" },	 { SIGTRAP, "TRAP" }, { SIGABRT, "ABRT" },
	{ SIGBUS, "BUS" },	 { SIGFPE, "FPE" },   { SIGKILL, "KILL" },
	{ SIGUSR1, "USR1" },	 { SIGSEGV, "SEGV" }, { SIGUSR2, "USR2" },
	{ SIGPIPE, "PIPE" },	 { SIGALRM, "ALRM" }, { SIGTERM, "TERM" },
#ifdef SIGSTKFLT
	{ SIGSTKFLT, "STKFLT" },
#endif
	{ SIGCHLD, "CHLD" },	 { SIGCONT, "CONT" }, { SIGSTOP, "STOP" },
	{ SIGTSTP, "TSTP" },	 { SIGTTIN, "TTIN" }, { SIGTTOU, "TTOU" },
	{ SIGURG, "URG" },	 { SIGXCPU, "XCPU" }, { SIGXFSZ, "XFSZ" },
	{ SIGVTALRM, "VTALRM" }, { SIGPROF, "PROF" }, { SIGWINCH, "WINCH" },
	{ SIGPOLL, "POLL" },
#ifdef SIGPWR
	{ SIGPWR, "PWR" },
#endif
	{ SIGSYS, "SYS" },
};

/* The name of a classic signal without "SIG", or NULL. */
static const char *
sig_abbrev(int sig)
{
	size_t i;

	for (i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
		if (signal_names[i].sig == sig) {
			return signal_names[i].name;
		}
	}
	return NULL;
}

int
parse_signal(const char *text)
{
	const char *name = text;
	size_t i;
	int off;

	if (isdigit((unsigned char)*text)) {
		return parse_number(text, SIGRTMAX);
	}
	if (strncasecmp(name, "SIG", 3) == 0) {
		name += 3;
	}
	if (*name == '\0') {
		return -1;
	}
	for (i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++) {
		if (strcasecmp(name, signal_names[i].name) == 0) {
			return signal_names[i].sig;
		}
	}
	/* Common aliases that the table does not hold. */
	if (strcasecmp(name, "IOT") == 0) {
		return SIGABRT;
	}
	if (strcasecmp(name, "POLL") == 0 || strcasecmp(name, "IO") == 0) {
		return SIGIO;
	}
	if (strcasecmp(name, "CLD") == 0) {
		return SIGCHLD;
	}
	if (strncasecmp(name, "RTMIN", 5) == 0) {
		if (name[5] == '\0') {
			return SIGRTMIN;
		}
		off = name[5] == '+' ?
			parse_number(name + 6, SIGRTMAX - SIGRTMIN) :
			-1;
		return off < 0 ? -1 : SIGRTMIN + off;
	}
	if (strncasecmp(name, "RTMAX", 5) == 0) {
		if (name[5] == '\0') {
			return SIGRTMAX;
		}
		off = name[5] == '-' ?
			parse_number(name + 6, SIGRTMAX - SIGRTMIN) :
			-1;
		return off < 0 ? -1 : SIGRTMAX - off;
	}
	return -1;
}

const char *
sig_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sig_abbrev(sig);

	if (abbrev != NULL) {
		snprintf(buf, len, "SIG%s", abbrev);
	} else if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
		if (sig == SIGRTMIN) {
			snprintf(buf, len, "SIGRTMIN");
		} else {
			snprintf(buf, len, "SIGRTMIN+%d", sig - SIGRTMIN);
		}
	} else {
		snprintf(buf, len, "signal %d", sig);
	}
	return buf;
}

/* "%.3f" without trailing zeros (and without a trailing point). */
static void
trimmed(char *buf, size_t len, double v, const char *unit)
{
	char tmp[48];
	size_t n;

	snprintf(tmp, sizeof(tmp), "%.3f", v);
	n = strlen(tmp);
	while (n > 0 && tmp[n - 1] == '0') {
		tmp[--n] = '\0';
	}
	if (n > 0 && tmp[n - 1] == '.') {
		tmp[--n] = '\0';
	}
	snprintf(buf, len, "%s%s", tmp, unit);
}

const char *
fmt_duration(uint64_t ns, char *buf, size_t len)
{
	uint64_t s = ns / NS_PER_S, rest = ns % NS_PER_S;
	char tmp[64];
	size_t n = 0;

	if (ns == DURATION_FOREVER) {
		snprintf(buf, len, "forever");
	} else if (ns < 1000) {
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
	} else if (ns < NS_PER_S) {
		trimmed(buf, len, (double)ns / 1e6, "ms");
	} else if (rest != 0 || s < 120) {
		trimmed(buf, len, (double)ns / 1e9, "s");
	} else {
		/* Whole seconds from two minutes on: "2m30s", "1h", "26h5m". */
		if (s >= 3600) {
			n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%lluh",
					      (unsigned long long)(s / 3600));
		}
		if (s % 3600 / 60 != 0) {
			n += (size_t)snprintf(tmp + n, sizeof(tmp) - n, "%llum",
					      (unsigned long long)(s % 3600 /
								   60));
		}
		if (s % 60 != 0) {
			snprintf(tmp + n, sizeof(tmp) - n, "%llus",
				 (unsigned long long)(s % 60));
		}
		snprintf(buf, len, "%s", tmp);
	}
	return buf;
}

int
parse_pid(const char *text)
{
	int v = parse_number(text, 0x7fffffff);

	return v > 0 ? v : -1;
}

int
parse_events(const char *text, unsigned *mask, char *bad, size_t badlen)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{ .name = "always", .bit = EVENT_ALL },
		{ .name = "cancel", .bit = EVENT_CANCEL },
		{ .name = "failure", .bit = EVENT_FAILURE },
		{ .name = "success", .bit = EVENT_SUCCESS },
		{ .name = "timeout", .bit = EVENT_TIMEOUT },
	};
	const char *p = text;
	unsigned m = 0;
	size_t len, i;

	for (;;) {
		len = strcspn(p, ",");
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (strlen(names[i].name) == len &&
			    strncmp(names[i].name, p, len) == 0) {
				break;
			}
		}
		if (i == sizeof(names) / sizeof(names[0])) {
			snprintf(bad, badlen, "%.*s", (int)len, p);
			return -1;
		}
		m |= names[i].bit;
		if (p[len] == '\0') {
			break;
		}
		p += len + 1;
	}
	*mask = m;
	return 0;
}
