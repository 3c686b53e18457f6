#ifndef SUPERVISE_CHILD_H
#define SUPERVISE_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

#include "signals.h"

struct child_spec {
	char **argv;			/* COMMAND [ARG]..., NULL-terminated */
	const struct sig_state *sig;	/* what to restore before exec */
	bool new_session;		/* setsid() in the child */
	pid_t parent;			/* our pid, taken before the fork */
};

/*
 * Forks and execs COMMAND.  The child restores the inherited signal state,
 * optionally starts a session, arms PR_SET_PDEATHSIG(SIGKILL) and only then
 * checks that its parent is still spec->parent, then execs; it uses only
 * async-signal-safe calls.  Returns the child's pid with *exec_errno 0 when
 * the exec succeeded, or with *exec_errno set when it failed (the child has
 * then exited and is left to be reaped), or -1 with errno set when the
 * fork itself failed.
 */
pid_t child_start(const struct child_spec *spec, int *exec_errno);

/* The status for a wait(2) status: N, or 128+N for death by signal N. */
int child_exit_status(int wstatus);

/* The status for an exec errno: 127 for not found, else 126. */
int child_exec_status(int err);

#endif
