#ifndef SUPERVISE_LOCKING_H
#define SUPERVISE_LOCKING_H

#include "run.h"

/*
 * Takes every --lock, in canonical order, before the supervisor is forked,
 * so that front and supervisor share the open file descriptions and the
 * locks last until both are gone.  A lock that is held elsewhere is waited
 * for in an event loop of its own (cancel signals, the parent's death and
 * --lock-wait end the wait), with the holder shown once and every 30 s.
 * Returns -1 when all are held, or the status to exit with (75, 128+N,
 * 129, 125), with r->reason set.  Never exits itself.
 */
int locking_acquire(struct run *r);

#endif
