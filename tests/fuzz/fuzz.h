/*
 * Helpers shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c).  Each
 * harness defines LLVMFuzzerTestOneInput(); a failed check calls
 * fuzz_fail(), which aborts, and so counts as a crash for libFuzzer and
 * for the replay driver (replay.c).
 */
#ifndef SUPERVISE_FUZZ_H
#define SUPERVISE_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define fuzz_fail(...)                                                         \
	do {                                                                   \
		fprintf(stderr, "fuzz check failed at %s:%d: ", __FILE__,      \
			__LINE__);                                             \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		abort();                                                       \
	} while (0)

#define fuzz_assert(cond)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fuzz_fail("%s", #cond);                                \
		}                                                              \
	} while (0)

/*
 * The input as a C string in a heap block of exactly size + 1 bytes, so
 * that AddressSanitizer sees any read past its end.  Text after an
 * embedded NUL byte is simply not seen by the parser.
 */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL) {
		abort();
	}
	if (size > 0) {
		memcpy(s, data, size);
	}
	s[size] = '\0';
	return s;
}

/* Whether s (NUL-terminated within len bytes) is printable ASCII. */
static inline bool
fuzz_is_printable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && s[i] != '\0'; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) {
			return false;
		}
	}
	return i < len;
}

#endif
