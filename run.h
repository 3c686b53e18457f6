#ifndef SUPERVISE_RUN_H
#define SUPERVISE_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "caps.h"
#include "cgroup.h"
#include "loop.h"
#include "lockfile.h"
#include "options.h"
#include "remotelock.h"
#include "signals.h"
#include "status.h"
#include "teardown.h"
#include "tree.h"

/*
 * The state of one run, common to its roles: main() sets it up, the lock
 * wait takes the locks, then the front and the supervisor each run their
 * loop on it (supervisor.h, front.h).
 */

/* Where the loop of the process that owns the run is. */
enum run_state {
	RUN_RUNNING,   /* COMMAND runs */
	RUN_STOPPING,  /* the tree is being stopped */
	RUN_TREE_GONE, /* the tree is gone: the role's decide step settles
			 * the end and starts the teardown if it is due */
	RUN_TEARDOWN,  /* the teardown runs */
	RUN_DONE,      /* nothing left: leave the loop */
};

/* What ended the run: the first such event decides. */
enum run_reason {
	REASON_NONE,
	REASON_EXIT, /* COMMAND exited by itself */
	REASON_TIMEOUT,
	REASON_CANCEL, /* a cancel signal, or the front died */
	REASON_PARENT_DEATH,
	REASON_EXEC_FAILED,
	REASON_ERROR,	     /* supervise itself failed */
	REASON_LOCK_TIMEOUT, /* gave up waiting for a lock */
	REASON_HANGUP,	     /* nobody reads our output (--cancel-on-hangup) */
	REASON_LOCK_LOST,    /* an etcd lock's lease could not be kept */
};

enum cmd_state {
	CMD_NOT_STARTED,
	CMD_RUNNING,
	CMD_ENDED,
};

/*
 * One anonymous shared page, mapped at start: the single place for what
 * both processes must know about the run (what ended it, COMMAND, the
 * teardown's progress), so that the front can finish the run if the
 * supervisor dies, and the word on which the two agree that the teardown
 * runs once.  Nothing else keeps a copy of these fields.  While both
 * live, only the supervisor writes (the front reads after reaping it);
 * in a one-process run (--foreground) the page is that process's own.
 */
struct shared {
	int teardown_claim;	/* TEARDOWN_* */
	enum run_reason reason; /* once the run has ended */
	int cancel_sig;		/* the signal that cancelled it, or 0 */
	int exit_status;	/* the run's status, once settled */
	enum cmd_state cmd_state;
	int cmd_wstatus;     /* once CMD_ENDED */
	pid_t cmd_pid;	     /* once forked (before it runs) */
	uint64_t kill_at;    /* while stopping: when SIGKILL is due */
	bool status_written; /* --status-file was written */
	/*
	 * The supervisor's last word, just before it exits: the run is over
	 * (nothing of it lives that it could stop), the status settled and
	 * written, its cgroups and locks let go.
	 */
	bool final;
	int abandoned;	     /* processes that could not be stopped */
	pid_t cause_pid;     /* parent-death: the process that died */
	bool cause_ancestor; /* it was --parent-pid, not the parent */
	int cause_fd;	     /* hangup: 1 or 2 */
	uint64_t dropped;    /* bytes of our output dropped */
	struct teardown_record td;
};

/* The whole state of one run, in the process that owns it. */
struct run {
	struct options opt;
	struct sig_state sig;
	struct shared *sh;
	struct tree_skip skip; /* children inherited at start */
	pid_t self;	       /* our pid (the front's, before the fork) */
	pid_t front;	       /* in the supervisor: the front; else 0 */
	pid_t parent;	       /* the watched parent, or 0 */
	pid_t ancestor;	       /* --parent-pid above the parent, or 0 */
	int ancestor_fd;       /* a pidfd of it, or -1 */
	enum run_state state;
	pid_t cancel_from;   /* who sent the cancel, where known */
	bool cancel_relayed; /* it came through the front */
	int exec_errno;
	uint64_t cmd_started; /* monotonic ns */
	uint64_t timeout_at;  /* monotonic ns, LOOP_NEVER for none */
	bool paused;	      /* stopped by job control (SIGTSTP) */
	uint64_t paused_at;   /* then: since when */
	struct tree_stop stop;
	size_t refusals_reported; /* of stop's, logged so far */
	struct teardown td;
	struct lock *locks; /* in the order taken */
	size_t nlocks;
	size_t nlocks_tried;	   /* taken, or the last one being waited for */
	struct remote_set *remote; /* the etcd:// locks among them, or NULL */
	struct status_target status;
	struct caps_keep caps;
	struct cgroup_set cgs;	    /* the run's cgroups, if active */
	struct timespec started_rt; /* CLOCK_REALTIME at start */
	uint64_t started;	    /* monotonic ns at start */
};

/*
 * Maps the shared page and fills what is known before options are read,
 * in a zeroed struct whose signals may already be set up.  Returns 0, or
 * -1 with errno set.
 */
int run_init(struct run *r);

/* Whether COMMAND was started and is not yet reaped. */
bool run_cmd_alive(const struct run *r);

/*
 * The run is over for reason (the first one counts; later calls change
 * nothing but return false).  Returns true when this call decided it.
 */
bool run_set_reason(struct run *r, enum run_reason reason, int sig);

/*
 * Starts stopping the run's tree (stop signal, grace, SIGKILL), sparing
 * the children inherited at start; group, if not 0, is signalled as a
 * whole first.  grace_ns is the grace before SIGKILL.  Returns the number
 * of processes signalled.
 */
int run_begin_stop(struct run *r, pid_t group, uint64_t grace_ns, uint64_t now);

/*
 * While stopping, after a reap or at a deadline: advances the stop
 * sequence, reports an escalation to SIGKILL and processes that refuse
 * our signals.  Returns true when nothing of the tree is left that can
 * be stopped.
 */
bool run_stop_step(struct run *r, uint64_t now, bool reaped);

/* Logs, once each, the processes a stop found it may not signal. */
void run_report_refusals(struct run *r, struct tree_stop *ts, size_t *reported);

/*
 * The next deadline of the state the run is in: the timeout while
 * running, the stop sequence's while stopping, the teardown's; or
 * LOOP_NEVER.
 */
uint64_t run_next_deadline(const struct run *r);

/*
 * Writes --status-file, if given, from the run's state; called by the
 * process that ends last knowing the most (see status_written).
 */
void run_write_status(struct run *r);

/* Frees what the run allocated (before exit, for leak checkers). */
void run_free(struct run *r);

/* The EVENT_* bit for how the run ended (for --teardown-on). */
unsigned run_event(enum run_reason reason, int exit_status);

/* SUPERVISE_REASON for a reason: timeout, cancel, parent-death or exit. */
const char *run_reason_name(enum run_reason reason);

/* SUPERVISE_COMMAND_STATUS: "exited N", "killed by SIGNAME", "not started". */
const char *run_command_status(int cmd_state, int wstatus, char *buf,
			       size_t len);

#endif
