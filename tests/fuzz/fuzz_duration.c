/*
 * parse_duration(): any text either parses or fails with EINVAL, exactly
 * as the grammar says (digits, an optional fraction, an optional unit
 * ms|s|m|h|d; at least one digit), and a value that parses is checked
 * against a long double reference: within 1 ns plus a relative 1e-15,
 * saturated to DURATION_FOREVER past 2^64 ns, never 0 for a non-zero
 * number.  fmt_duration() then formats it into buffers of every small size.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>

#include "fuzz.h"
#include "parse.h"

/* The grammar; sets *unit_ns and *nonzero when it matches. */
static bool
grammar(const char *s, long double *unit_ns, bool *nonzero)
{
	const char *p = s;
	int digits = 0;

	*nonzero = false;
	for (; *p >= '0' && *p <= '9'; p++, digits++) {
		*nonzero |= *p != '0';
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
			*nonzero |= *p != '0';
		}
	}
	if (digits == 0) {
		return false;
	}
	if (strcmp(p, "") == 0 || strcmp(p, "s") == 0) {
		*unit_ns = 1e9L;
	} else if (strcmp(p, "ms") == 0) {
		*unit_ns = 1e6L;
	} else if (strcmp(p, "m") == 0) {
		*unit_ns = 60e9L;
	} else if (strcmp(p, "h") == 0) {
		*unit_ns = 3600e9L;
	} else if (strcmp(p, "d") == 0) {
		*unit_ns = 86400e9L;
	} else {
		return false;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), buf[64];
	uint64_t ns = 42;
	long double unit = 0, ref, limit = 18446744073709551615.0L;
	bool nonzero, ok = grammar(s, &unit, &nonzero);
	size_t len;
	int r;

	errno = 0;
	r = parse_duration(s, &ns);
	if (!ok) {
		fuzz_assert(r == -1 && errno == EINVAL);
		fuzz_assert(ns == 42);
		free(s);
		return 0;
	}
	fuzz_assert(r == 0);
	fuzz_assert(nonzero ? ns > 0 : ns == 0);
	/* strtold() reads exactly the number part: the grammar checked it. */
	ref = strtold(s, NULL) * unit;
	if (ref >= limit * (1 + 1e-15L)) {
		fuzz_assert(ns == DURATION_FOREVER);
	} else if (ref < limit * (1 - 1e-15L)) {
		long double diff = fabsl((long double)ns - ref);
		if (ns != 1 || ref >= 1) {
			fuzz_assert(diff <= 1 + ref * 1e-15L);
		}
	}
	for (len = 1; len <= sizeof(buf); len++) {
		memset(buf, 'x', sizeof(buf));
		fmt_duration(ns, buf, len);
		fuzz_assert(memchr(buf, '\0', len) != NULL);
	}
	fuzz_assert(strchr(buf, 'e') == NULL || strcmp(buf, "forever") == 0);
	free(s);
	return 0;
}
