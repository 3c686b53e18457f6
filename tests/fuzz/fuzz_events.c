/*
 * parse_events() (--teardown-on): the input's first byte picks the size
 * of the buffer for the bad word (1 to 64 bytes; supervise passes 64),
 * the rest is the list.  The result is compared with a reference parser:
 * the list parses exactly when every comma-separated word is one of the
 * five names, the mask is the union of their bits, and on failure the
 * buffer holds the first bad word, truncated and NUL-terminated.
 */
#include "fuzz.h"
#include "parse.h"

static const struct {
	const char *name;
	unsigned bit;
} names[] = {
	{ "timeout", EVENT_TIMEOUT }, { "cancel", EVENT_CANCEL },
	{ "failure", EVENT_FAILURE }, { "success", EVENT_SUCCESS },
	{ "always", EVENT_ALL },
};

/* Returns the mask, or -1 with the first bad word's start and length. */
static long
reference(const char *s, const char **bad, size_t *badlen)
{
	unsigned mask = 0;
	size_t i, n;

	for (;;) {
		n = strcspn(s, ",");
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			if (strlen(names[i].name) == n &&
			    memcmp(names[i].name, s, n) == 0) {
				break;
			}
		}
		if (i == sizeof(names) / sizeof(names[0])) {
			*bad = s;
			*badlen = n;
			return -1;
		}
		mask |= names[i].bit;
		if (s[n] == '\0') {
			return mask;
		}
		s += n + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t blen = size > 0 ? 1 + data[0] % 64 : 64, want_len = 0;
	char *s = fuzz_cstr(size > 0 ? data + 1 : data,
			    size > 0 ? size - 1 : 0);
	char *bad = malloc(blen);
	const char *want = NULL;
	unsigned mask = 12345;
	long ref = reference(s, &want, &want_len);
	int r;

	fuzz_assert(bad != NULL);
	memset(bad, 'x', blen);
	r = parse_events(s, &mask, bad, blen);
	if (ref >= 0) {
		fuzz_assert(r == 0 && mask == (unsigned)ref);
		fuzz_assert(mask != 0 && (mask & ~(unsigned)EVENT_ALL) == 0);
	} else {
		size_t got;
		fuzz_assert(r == -1 && mask == 12345);
		fuzz_assert(memchr(bad, '\0', blen) != NULL);
		got = strlen(bad);
		fuzz_assert(got == (want_len < blen ? want_len : blen - 1));
		fuzz_assert(memcmp(bad, want, got) == 0);
	}
	free(bad);
	free(s);
	return 0;
}
