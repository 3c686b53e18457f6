#ifndef SUPERVISE_LOCKWAIT_H
#define SUPERVISE_LOCKWAIT_H

#include <stddef.h>
#include <stdint.h>

#include "run.h"

/*
 * Lock acquisition (the files themselves are lockfile.h's).  Takes every
 * --lock, in canonical order, before the supervisor is forked, so that
 * front and supervisor share the open file descriptions and the locks
 * last until both are gone.  Two names of one file (a hard link, a bind
 * mount) are one lock: it is taken once, never waited for by its own
 * holder.  A lock that is held elsewhere is waited for on the event
 * engine (cancel signals, the parent's death and --lock-wait end the
 * wait), with the holder shown once and every 30 s.  Returns -1 when all
 * are held, or the status to exit with (75, 128+N, 129, 125), with the
 * reason set in r->sh.  Never exits itself.
 */
int lockwait_acquire(struct run *r);

/*
 * How long a wait took, as the give-up line shows it, rounded down:
 * "850ms", "12.5s", and from a minute on in whole seconds, "10m0s",
 * "1h2m5s".  Returns buf.
 */
const char *lockwait_fmt_waited(uint64_t ns, char *buf, size_t len);

#endif
