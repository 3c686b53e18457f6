#ifndef SUPERVISE_FRONT_H
#define SUPERVISE_FRONT_H

#include <sys/types.h>

#include "run.h"

/*
 * The front: the process the caller started.  It stays in the caller's
 * process group, so that a runner's group SIGTERM and a terminal's Ctrl-C
 * reach it, while the supervisor, in a session of its own, survives a
 * group SIGKILL.  While the supervisor lives, the front relays the
 * signals it hears and reports its own parent's death.  When the
 * supervisor dies, the front takes the run over: every process of the
 * run is now reparented to it (it is a subreaper), and it stops them as
 * the supervisor would, finishes or runs the teardown once, and keeps
 * the locks until then, answering signals and deadlines all along.
 * Returns the status to exit with.  Never exits itself.
 */
int front_run(struct run *r, pid_t supervisor);

#endif
