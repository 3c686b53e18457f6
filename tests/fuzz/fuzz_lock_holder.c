/*
 * lock_parse_holder(): the holder record that a waiting supervise reads
 * back from a lock file, which anybody who can write that file controls.
 * Any bytes, of any length, in an exact-size buffer (no NUL after it):
 * the result is 0 or -1, the host and command come out NUL-terminated and
 * printable, and lock_describe_holder() formats them into buffers of
 * every small size (and one as large as supervise uses).
 */
#include "fuzz.h"
#include "lockfile.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1), out[600], small[24];
	struct lock_holder h;
	size_t len;
	int r;

	fuzz_assert(buf != NULL);
	if (size > 0) {
		memcpy(buf, data, size);
	}
	r = lock_parse_holder(buf, size, &h);
	fuzz_assert(r == 0 || r == -1);
	fuzz_assert(fuzz_is_printable(h.host, sizeof(h.host)));
	fuzz_assert(fuzz_is_printable(h.command, sizeof(h.command)));
	if (r == 0) {
		lock_describe_holder(&h, out, sizeof(out));
		fuzz_assert(memchr(out, '\0', sizeof(out)) != NULL);
		fuzz_assert(strncmp(out, "pid ", 4) == 0);
		fuzz_assert(fuzz_is_printable(out, sizeof(out)));
		for (len = 1; len <= sizeof(small); len++) {
			memset(small, 'x', sizeof(small));
			lock_describe_holder(&h, small, len);
			fuzz_assert(memchr(small, '\0', len) != NULL);
		}
	}
	free(buf);
	return 0;
}
