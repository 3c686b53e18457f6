/*
 * caps_parse() (--caps): any text gives either a mask of capabilities
 * 0..63 or -1 with a NUL-terminated bad word that occurs in the text.
 * Every capability in a parsed mask has a name in libcap that parses
 * back to it; "none", in any case, is the empty set.
 */
#include <sys/capability.h>
#include <strings.h>

#include "caps.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), bad[64], *name;
	uint64_t mask = 12345;
	cap_value_t v;
	int r, c;

	memset(bad, 'x', sizeof(bad));
	r = caps_parse(s, &mask, bad, sizeof(bad));
	if (r < 0) {
		fuzz_assert(r == -1 && mask == 12345);
		fuzz_assert(memchr(bad, '\0', sizeof(bad)) != NULL);
		fuzz_assert(strstr(s, bad) != NULL);
		fuzz_assert(strcasecmp(s, "none") != 0);
	} else {
		fuzz_assert(r == 0);
		if (strcasecmp(s, "none") == 0) {
			fuzz_assert(mask == 0);
		} else {
			fuzz_assert(mask != 0 && *s != '\0');
		}
		for (c = 0; c < 64; c++) {
			if (!(mask & (UINT64_C(1) << c))) {
				continue;
			}
			name = cap_to_name((cap_value_t)c);
			fuzz_assert(name != NULL);
			fuzz_assert(cap_from_name(name, &v) == 0 && v == c);
			cap_free(name);
		}
	}
	free(s);
	return 0;
}
