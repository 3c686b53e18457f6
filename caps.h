#ifndef SUPERVISE_CAPS_H
#define SUPERVISE_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The capabilities COMMAND keeps (--caps), as a bit mask by number. */
struct caps_keep {
	bool active; /* --caps was given */
	uint64_t mask;
	int last_cap; /* the kernel's highest capability number */
};

/*
 * Parses a comma list of capability names (libcap's: "cap_net_raw", any
 * case) or "none".  Returns 0 and sets *mask, -1 with the first bad word
 * copied into bad, or -2 with why into bad when libcap cannot be loaded.
 */
int caps_parse(const char *text, uint64_t *mask, char *bad, size_t badlen);

/*
 * At start: checks that supervise may limit COMMAND to keep->mask (it
 * needs CAP_SETPCAP, and every kept capability in its permitted set) and
 * reads the kernel's last capability.  Returns 0, or -1 after logging why.
 */
int caps_prepare(struct caps_keep *keep);

/*
 * In the child, before exec: drops every other capability from the
 * bounding set, sets the inheritable, permitted and effective sets to the
 * kept ones and raises them as ambient, so that they survive the exec and
 * nothing else can be regained.  Async-signal-safe (raw system calls).
 * Returns 0 or an errno value.
 */
int caps_apply(const struct caps_keep *keep);

/*
 * Whether executing path will change the caller's credentials, which makes
 * the kernel clear the parent-death signal at the exec: a set-user-ID or
 * set-group-ID file of another owner (unless no_new_privs), or, for a
 * caller whose real uid is not 0, file capabilities with the effective
 * bit or beyond what it holds (checked on this kernel; see caps.c).
 * Returns a short reason ("set-user-ID", "file capabilities") or NULL.
 */
const char *caps_exec_changes_creds(const char *path, bool no_new_privs);

#endif
