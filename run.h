#ifndef SUPERVISE_RUN_H
#define SUPERVISE_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "caps.h"
#include "lock.h"
#include "options.h"
#include "signals.h"
#include "status.h"
#include "teardown.h"
#include "tree.h"

/* Where the loop of the process that owns the run is. */
enum run_state {
	RUN_RUNNING,	/* COMMAND runs */
	RUN_STOPPING,	/* the tree is being stopped */
	RUN_TEARDOWN,	/* the tree is gone; the teardown runs */
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
	REASON_LOCK_TIMEOUT,	/* gave up waiting for a lock */
};

/*
 * One anonymous shared page, mapped before the supervisor is forked: what
 * the front needs to know if the supervisor dies, and the word on which
 * the two agree that the teardown runs once.  The supervisor writes it;
 * the front reads it only after it has reaped the supervisor.
 */
struct shared {
	int teardown_claim;	/* TEARDOWN_* */
	int reason;		/* enum run_reason, once the run has ended */
	int cancel_sig;
	int exit_status;	/* the run's status, once it has ended */
	int cmd_state;		/* CMD_* */
	int cmd_wstatus;	/* once CMD_ENDED */
	pid_t cmd_pid;		/* once started */
	uint64_t kill_at;	/* while stopping: when SIGKILL is due */
	int status_written;	/* the supervisor wrote --status-file */
	struct teardown_record td;
};

enum {
	CMD_NOT_STARTED,
	CMD_RUNNING,
	CMD_ENDED,
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
	struct teardown td;
	struct shared *shared;
	struct lock *locks;	/* in the order taken */
	size_t nlocks;
	size_t nlocks_tried;	/* taken, or the last one being waited for */
	struct status_target status;
	struct caps_keep caps;
	struct timespec started_rt;	/* CLOCK_REALTIME at start */
	uint64_t started;		/* monotonic ns at start */
	int exit_status;
};

/*
 * Writes --status-file, if given, from the run's state; called by the
 * process that ends last knowing the most (see status_written).
 */
void run_write_status(struct run *r);

/*
 * The next deadline of the state the run is in: the timeout while
 * running, the stop sequence's while stopping, the teardown's; or
 * UINT64_MAX.
 */
uint64_t run_next_deadline(const struct run *r);

/*
 * While stopping, after a reap or at a deadline: advances the stop
 * sequence and reports an escalation to SIGKILL.  Returns true when
 * nothing of the tree is left.
 */
bool run_stop_step(struct run *r, uint64_t now, bool reaped);

/* Frees what the run allocated (before exit, for leak checkers). */
void run_free(struct run *r);

/* The EVENT_* bit for how the run ended (for --teardown-on). */
unsigned run_event(enum run_reason reason, int exit_status);

/* SUPERVISE_REASON for a reason: timeout, cancel, parent-death or exit. */
const char *run_reason_name(enum run_reason reason);

/* SUPERVISE_COMMAND_STATUS: "exited N", "killed by SIGNAME", "not started". */
const char *run_command_status(int cmd_state, int wstatus, char *buf,
			       size_t len);

/*
 * The front: waits for the supervisor, forwards the signals it acts on,
 * reports the death of its own parent, and stops the orphaned tree if the
 * supervisor dies.  Returns the status to exit with.  Never exits itself.
 */
int front_run(struct run *r, pid_t supervisor);

#endif
