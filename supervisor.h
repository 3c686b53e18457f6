#ifndef SUPERVISE_SUPERVISOR_H
#define SUPERVISE_SUPERVISOR_H

#include "run.h"

/*
 * The supervisor: the process that owns the run.  It starts COMMAND,
 * decides how the run ends (COMMAND's exit, a cancel signal, the
 * parent's or the front's death, the timeout), stops the whole tree,
 * runs the teardown when it is due, and settles the exit status in the
 * shared page.  In a normal run it is a child of the front in a session
 * of its own; with --foreground it is the one process of the run.
 * Returns the status to exit with.  Never exits itself.
 */
int supervisor_run(struct run *r);

/*
 * In the forked supervisor, before supervisor_run(): a session of its
 * own, the front's death armed and checked, the subreaper bit.  Returns
 * -1 when all is set, or the status to exit with.
 */
int supervisor_set_up(struct run *r, pid_t front);

#endif
