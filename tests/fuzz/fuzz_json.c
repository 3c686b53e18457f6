/*
 * json_string() (status-file escaping): any bytes at all become one JSON
 * string, checked by a strict JSON reader (json_check.h), and that string
 * decodes to exactly the input with each byte that does not start a valid
 * UTF-8 sequence replaced by U+FFFD, the reference computed here
 * independently.  The buffer is grown from empty and from a non-empty
 * start, so that appending to earlier text is exercised too.
 */
#include "fuzz.h"
#include "json_check.h"
#include "status.h"

/* Expected code points: valid UTF-8 as is, else U+FFFD per byte. */
static size_t
reference(const uint8_t *s, size_t len, uint32_t *out)
{
	struct jc j;
	size_t n = 0;
	uint32_t cp;

	j.p = s;
	j.end = s + len;
	while (j.p < j.end) {
		if (jc_utf8(&j, &cp)) {
			out[n++] = cp;
		} else {
			out[n++] = 0xfffd;
			j.p++;
		}
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_buf b = { 0 };
	uint32_t *want = malloc((size + 1) * sizeof(*want));
	uint32_t *got = malloc((size + 1) * sizeof(*got));
	size_t nwant = reference(data, size, want), prefix, i;
	struct jc j;

	fuzz_assert(want != NULL && got != NULL);
	/* Start after some text already in the buffer, half of the time. */
	prefix = size % 2 == 0 ? 0 : 3;
	if (prefix > 0) {
		json_string(&b, "ab", 2);
		fuzz_assert(!b.failed && b.len == 4);
	}
	json_string(&b, (const char *)data, size);
	fuzz_assert(!b.failed && b.data != NULL);
	fuzz_assert(b.len < b.cap && b.data[b.len] == '\0');
	fuzz_assert(strlen(b.data) == b.len);
	fuzz_assert(json_is_valid(b.data + (prefix ? 4 : 0),
				  b.len - (prefix ? 4 : 0)));
	/* No raw DEL either: supervise escapes it, for terminals. */
	fuzz_assert(memchr(b.data, 0x7f, b.len) == NULL);
	j.p = (const unsigned char *)b.data + (prefix ? 4 : 0);
	j.end = (const unsigned char *)b.data + b.len;
	j.depth = 0;
	j.out = got;
	j.maxout = size + 1;
	fuzz_assert(jc_string(&j) && j.p == j.end);
	fuzz_assert(j.nout == nwant);
	for (i = 0; i < nwant; i++) {
		if (got[i] != want[i]) {
			fuzz_fail("code point %zu: got U+%04X, want U+%04X", i,
				  (unsigned)got[i], (unsigned)want[i]);
		}
	}
	free(b.data);
	free(want);
	free(got);
	return 0;
}
