/*
 * A small strict JSON checker for the harnesses (RFC 8259): strings must
 * be valid UTF-8 with no raw control character, escapes well formed
 * (\uXXXX surrogates paired), numbers in the JSON grammar.  Not fast; it
 * only has to be right.
 */
#ifndef SUPERVISE_JSON_CHECK_H
#define SUPERVISE_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jc {
	const unsigned char *p, *end;
	int depth;
	/* Decoded code points of the last string, when out != NULL. */
	uint32_t *out;
	size_t nout, maxout;
};

static inline void
jc_ws(struct jc *j)
{
	while (j->p < j->end &&
	       (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' ||
		*j->p == '\r')) {
		j->p++;
	}
}

static inline int
jc_hex(int c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

static inline bool
jc_u4(struct jc *j, uint32_t *v)
{
	int i, h;

	if (j->end - j->p < 4) {
		return false;
	}
	for (*v = 0, i = 0; i < 4; i++) {
		h = jc_hex(j->p[i]);
		if (h < 0) {
			return false;
		}
		*v = *v * 16 + (uint32_t)h;
	}
	j->p += 4;
	return true;
}

static inline bool
jc_emit(struct jc *j, uint32_t cp)
{
	if (j->out != NULL) {
		if (j->nout == j->maxout) {
			return false;
		}
		j->out[j->nout++] = cp;
	}
	return true;
}

/* One UTF-8 sequence, strictly (no overlongs, surrogates, > U+10FFFF). */
static inline bool
jc_utf8(struct jc *j, uint32_t *cp)
{
	unsigned c = *j->p;
	size_t n, i;

	if (c < 0x80) {
		n = 1;
		*cp = c;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2;
		*cp = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		*cp = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4;
		*cp = c & 0x07;
	} else {
		return false;
	}
	if ((size_t)(j->end - j->p) < n) {
		return false;
	}
	for (i = 1; i < n; i++) {
		if ((j->p[i] & 0xc0) != 0x80) {
			return false;
		}
		*cp = (*cp << 6) | (j->p[i] & 0x3f);
	}
	if ((n == 2 && *cp < 0x80) || (n == 3 && *cp < 0x800) ||
	    (n == 4 && *cp < 0x10000) || *cp > 0x10ffff ||
	    (*cp >= 0xd800 && *cp <= 0xdfff)) {
		return false;
	}
	j->p += n;
	return true;
}

static inline bool
jc_string(struct jc *j)
{
	uint32_t cp, lo;

	j->nout = 0;
	if (j->p >= j->end || *j->p != '"') {
		return false;
	}
	j->p++;
	while (j->p < j->end && *j->p != '"') {
		if (*j->p < 0x20) {
			return false;
		}
		if (*j->p != '\\') {
			if (!jc_utf8(j, &cp) || !jc_emit(j, cp)) {
				return false;
			}
			continue;
		}
		if (++j->p >= j->end) {
			return false;
		}
		switch (*j->p++) {
		case '"':
			cp = '"';
			break;
		case '\\':
			cp = '\\';
			break;
		case '/':
			cp = '/';
			break;
		case 'b':
			cp = '\b';
			break;
		case 'f':
			cp = '\f';
			break;
		case 'n':
			cp = '\n';
			break;
		case 'r':
			cp = '\r';
			break;
		case 't':
			cp = '\t';
			break;
		case 'u':
			if (!jc_u4(j, &cp)) {
				return false;
			}
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				return false;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (j->end - j->p < 6 || j->p[0] != '\\' ||
				    j->p[1] != 'u') {
					return false;
				}
				j->p += 2;
				if (!jc_u4(j, &lo) || lo < 0xdc00 ||
				    lo > 0xdfff) {
					return false;
				}
				cp = 0x10000 + ((cp - 0xd800) << 10) +
					(lo - 0xdc00);
			}
			break;
		default:
			return false;
		}
		if (!jc_emit(j, cp)) {
			return false;
		}
	}
	if (j->p >= j->end) {
		return false;
	}
	j->p++;
	return true;
}

static inline bool
jc_digits(struct jc *j)
{
	const unsigned char *start = j->p;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		j->p++;
	}
	return j->p > start;
}

static inline bool
jc_number(struct jc *j)
{
	if (j->p < j->end && *j->p == '-') {
		j->p++;
	}
	if (j->p < j->end && *j->p == '0') {
		j->p++;
	} else if (!jc_digits(j)) {
		return false;
	}
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!jc_digits(j)) {
			return false;
		}
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
			j->p++;
		}
		if (!jc_digits(j)) {
			return false;
		}
	}
	return true;
}

static inline bool
jc_literal(struct jc *j, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) {
		return false;
	}
	j->p += n;
	return true;
}

static inline bool jc_value(struct jc *j);

static inline bool
jc_members(struct jc *j, bool object)
{
	j->p++;
	jc_ws(j);
	if (j->p < j->end && *j->p == (object ? '}' : ']')) {
		j->p++;
		return true;
	}
	for (;;) {
		if (object) {
			jc_ws(j);
			if (!jc_string(j)) {
				return false;
			}
			jc_ws(j);
			if (j->p >= j->end || *j->p != ':') {
				return false;
			}
			j->p++;
		}
		if (!jc_value(j)) {
			return false;
		}
		jc_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == (object ? '}' : ']')) {
			j->p++;
			return true;
		}
		return false;
	}
}

static inline bool
jc_value(struct jc *j)
{
	bool ok;

	jc_ws(j);
	if (j->p >= j->end || ++j->depth > 64) {
		return false;
	}
	switch (*j->p) {
	case '{':
		ok = jc_members(j, true);
		break;
	case '[':
		ok = jc_members(j, false);
		break;
	case '"':
		ok = jc_string(j);
		break;
	case 't':
		ok = jc_literal(j, "true");
		break;
	case 'f':
		ok = jc_literal(j, "false");
		break;
	case 'n':
		ok = jc_literal(j, "null");
		break;
	default:
		ok = jc_number(j);
		break;
	}
	j->depth--;
	return ok;
}

/* Whether s[0..len) is exactly one JSON value (blanks around allowed). */
static inline bool
json_is_valid(const char *s, size_t len)
{
	struct jc j = { (const unsigned char *)s,
			(const unsigned char *)s + len,
			0,
			NULL,
			0,
			0 };

	if (!jc_value(&j)) {
		return false;
	}
	jc_ws(&j);
	return j.p == j.end;
}

#endif
