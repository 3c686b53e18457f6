#ifndef SUPERVISE_RUN_H
#define SUPERVISE_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "options.h"
#include "signals.h"
#include "tree.h"

/* Where the loop of the process that owns the run is. */
enum run_state {
	RUN_RUNNING,	/* COMMAND runs */
	RUN_STOPPING,	/* the tree is being stopped */
	RUN_DONE,	/* nothing left: leave the loop */
};

/* What ended the run: the first such event decides. */
enum run_reason {
	REASON_NONE,
	REASON_EXIT,		/* COMMAND exited by itself */
	REASON_TIMEOUT,
	REASON_CANCEL,		/* a cancel signal, or the front died */
	REASON_PARENT_DEATH,
	REASON_EXEC_FAILED,
	REASON_ERROR,		/* supervise itself failed */
};

/* The whole state of one run, in the process that owns it. */
struct run {
	struct options opt;
	struct sig_state sig;
	struct tree_skip skip;	/* children inherited at start */
	pid_t self;
	pid_t front;		/* in the supervisor: the front; else 0 */
	pid_t parent;		/* the watched parent, or 0 */
	enum run_state state;
	enum run_reason reason;
	int cancel_sig;		/* the signal that cancelled the run, or 0 */
	pid_t cancel_from;	/* who sent it, where known */
	bool cancel_relayed;	/* it came through the front */
	pid_t cmd_pid;		/* COMMAND, once started */
	bool cmd_alive;		/* started and not yet reaped */
	int cmd_wstatus;	/* valid once reaped */
	int exec_errno;
	uint64_t cmd_started;	/* monotonic ns */
	uint64_t timeout_at;	/* monotonic ns, UINT64_MAX for none */
	struct tree_stop stop;
	int exit_status;
};

/*
 * The front: waits for the supervisor, forwards the signals it acts on,
 * reports the death of its own parent, and stops the orphaned tree if the
 * supervisor dies.  Returns the status to exit with.  Never exits itself.
 */
int front_run(struct run *r, pid_t supervisor);

#endif
