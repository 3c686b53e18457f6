/*
 * parse_signal(): any text gives -1 or a signal number from 0 to
 * SIGRTMAX; a plain decimal number up to SIGRTMAX is that number; a name
 * that sig_name() gives back parses to the same signal.  sig_name() is
 * also run on the number from the input's first bytes with every small
 * buffer size.
 */
#include <signal.h>

#include "fuzz.h"
#include "parse.h"

static bool
is_decimal(const char *s)
{
	if (*s == '\0') {
		return false;
	}
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9') {
			return false;
		}
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), name[64], small[16];
	int sig = parse_signal(s), back, any = 0;
	size_t len;

	fuzz_assert(sig >= -1 && sig <= SIGRTMAX);
	if (is_decimal(s) && strlen(s) < 9) {
		long v = strtol(s, NULL, 10);
		fuzz_assert(v <= SIGRTMAX ? sig == v : sig == -1);
	}
	if (sig > 0) {
		sig_name(sig, name, sizeof(name));
		fuzz_assert(strncmp(name, "SIG", 3) == 0 ||
			    strncmp(name, "signal ", 7) == 0);
		if (strncmp(name, "SIG", 3) == 0) {
			back = parse_signal(name);
			fuzz_assert(back == sig);
			/* Without "SIG" and in lower case, too. */
			for (len = 0; name[len] != '\0'; len++) {
				name[len] = (char)(name[len] | 0x20);
			}
			fuzz_assert(parse_signal(name + 3) == sig);
		}
	}
	if (size >= sizeof(any)) {
		memcpy(&any, data, sizeof(any));
	}
	for (len = 1; len <= sizeof(small); len++) {
		memset(small, 'x', sizeof(small));
		sig_name(any, small, len);
		fuzz_assert(memchr(small, '\0', len) != NULL);
	}
	free(s);
	return 0;
}
