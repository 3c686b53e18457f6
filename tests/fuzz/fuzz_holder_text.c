/*
 * holder_cmdline() and holder_parse_line(): a lock holder's command line,
 * which its process sets to anything it likes (/proc/PID/cmdline), and
 * the lines of /proc/locks and fdinfo.  Any bytes: the command line comes
 * out NUL-terminated in every small buffer, printable but for one "…" at
 * its end, never longer than 80 characters and the ellipsis; a line parses
 * or not, and a parsed one is a held flock() lock.
 */
#include "fuzz.h"
#include "holder.h"

/* Printable ASCII, but for an optional "…" (UTF-8) at the end. */
static bool
shown_ok(const char *s, size_t *chars)
{
	size_t n = strlen(s), i;

	if (n >= 3 && memcmp(s + n - 3, "\xe2\x80\xa6", 3) == 0) {
		n -= 3;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f) {
			return false;
		}
	}
	*chars = n;
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[200], small[16], *line;
	struct holder_entry e;
	size_t len, chars;

	holder_cmdline((const char *)data, size, out, sizeof(out));
	fuzz_assert(memchr(out, '\0', sizeof(out)) != NULL);
	fuzz_assert(shown_ok(out, &chars));
	fuzz_assert(chars <= 81);
	fuzz_assert(chars <= size);
	for (len = 0; len <= sizeof(small); len++) {
		memset(small, '#', sizeof(small));
		holder_cmdline((const char *)data, size, small, len);
		fuzz_assert(len == 0 || memchr(small, '\0', len) != NULL);
		fuzz_assert(len == sizeof(small) || small[len] == '#');
		fuzz_assert(len == 0 || shown_ok(small, &chars));
	}
	line = fuzz_cstr(data, size);
	if (holder_parse_line(line, &e) == 0) {
		fuzz_assert(strstr(line, "FLOCK") != NULL);
		fuzz_assert(strstr(line, "->") == NULL ||
			    strstr(line, "->") > strstr(line, "FLOCK"));
	}
	free(line);
	return 0;
}
