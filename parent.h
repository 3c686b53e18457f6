#ifndef SUPERVISE_PARENT_H
#define SUPERVISE_PARENT_H

#include <stdbool.h>
#include <sys/types.h>

#include "run.h"

/*
 * Watching the processes whose death cancels the run: the direct parent,
 * through the parent-death signal (armed first, then checked against the
 * pid recorded before, so that a parent that died in between is caught),
 * and with --parent-pid an ancestor further up, through a pidfd that the
 * event loop polls (opened first, then checked to be an ancestor).
 * Returns -1 when all is watched, or the status to exit with: 129 when
 * the parent or the ancestor is already gone, 125 when --parent-pid names
 * a live process that is no ancestor, or it cannot be watched.  Sets
 * r->parent, r->ancestor and r->ancestor_fd.
 */
int parent_watch(struct run *r);

/*
 * Whether pid is an ancestor of the calling process (its parent, its
 * parent's parent, ...), read from /proc.
 */
bool parent_is_ancestor(pid_t pid);

#endif
