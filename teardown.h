#ifndef SUPERVISE_TEARDOWN_H
#define SUPERVISE_TEARDOWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "options.h"
#include "signals.h"
#include "tree.h"

/* Who ran the teardown: the claim word shared by front and supervisor. */
enum {
	TEARDOWN_UNCLAIMED = 0,
	TEARDOWN_BY_SUPERVISOR = 1,
	TEARDOWN_BY_FRONT = 2,
};

enum teardown_state {
	TD_IDLE,     /* not started */
	TD_RUNNING,  /* its main process runs */
	TD_STOPPING, /* stopping its leftovers, or all of it at the deadline */
	TD_DONE,
};

/*
 * The teardown's progress, kept in memory shared by the front and the
 * supervisor, so that the front can take over a teardown that is running
 * when the supervisor dies.
 */
struct teardown_record {
	pid_t pid;	/* its main process, once started */
	bool main_done; /* reaped, with wstatus */
	int wstatus;
	bool timed_out;
	bool done;	  /* over, nothing of it left */
	bool announced;	  /* "teardown started" was said */
	bool stopping;	  /* its tree is being stopped */
	uint64_t kill_at; /* then: when SIGKILL is due (monotonic ns) */
	int start_errno;
	uint64_t started, deadline;
	const char *reason; /* a static string, the same in both */
};

struct teardown {
	const struct options *opt;
	/*
	 * Its progress: the page shared with the other process once the
	 * run has one (set by the caller), else own.  Never copied.
	 */
	struct teardown_record *rec;
	struct teardown_record own;
	const struct tree_skip *skip; /* children the cleanup leaves alone */
	const struct cgroup *cg;      /* its cgroup, or NULL (set by caller) */
	int pipe_r, pipe_w;	      /* its output pipe, made at start */
	int cwd_fd;		      /* the directory supervise started in */
	int sh_fd;		      /* /bin/sh, resolved at start */
	int log_fd;		      /* --teardown-log, or -1 */
	int out_fd;		      /* read end of its output pipe, or -1 */
	enum teardown_state state;
	uint64_t ended;
	struct tree_stop stop;
	char envbuf[4][96]; /* its SUPERVISE_* variables */
};

/* Whether its main process was started and is not yet reaped. */
bool teardown_alive(const struct teardown *td);

/*
 * At start, while the working directory still exists: opens the directory,
 * /bin/sh and the log file, so that a workspace deleted after a cancel
 * cannot stop the teardown.  Without -T it only marks the teardown as not
 * configured.  td->rec points to td->own until the caller points it
 * elsewhere.  The cleanup of its leftovers spares skip (may be NULL).
 * Returns 0, or -1 after logging why.
 */
int teardown_prepare(struct teardown *td, const struct options *opt,
		     const struct tree_skip *skip);

/*
 * In the front, once the supervisor is forked: keeps only the read end of
 * the output pipe, so that the teardown's output has a reader even if the
 * supervisor dies (it would get SIGPIPE otherwise) and EOF comes when the
 * teardown's tree is gone.
 */
void teardown_keep_reader(struct teardown *td);

/*
 * In the front, when the supervisor died while running the teardown:
 * takes over from the shared record (its processes are now our children
 * or descendants: we are their subreaper).
 */
void teardown_adopt(struct teardown *td, uint64_t now);

/*
 * Whether the run's end calls for the teardown: -T was given and event
 * (an EVENT_* bit) is in --teardown-on.
 */
bool teardown_is_due(const struct teardown *td, unsigned event);

/*
 * Takes the one teardown of this supervise for who (TEARDOWN_BY_*), with
 * an atomic compare-and-swap on a word in memory shared by the front and
 * the supervisor.  Returns true for the one caller that gets it.
 */
bool teardown_claim(int *claim, int who);

/*
 * Starts the teardown in a session of its own, with stdin from /dev/null
 * and its output through a pipe that teardown_pump() copies to stderr and
 * the log.  reason, exit_status and command_status go into its
 * environment (SUPERVISE_REASON, ...), pid into SUPERVISE_PID.  Returns 0,
 * or -1 when it could not be started (reported; the state is then TD_DONE
 * and teardown_failed() is true).
 */
int teardown_start(struct teardown *td, const char *reason, int exit_status,
		   const char *command_status, pid_t pid,
		   const struct sig_state *sig, uint64_t now);

/* A child was reaped: notes it when it is the teardown's main process. */
void teardown_reaped(struct teardown *td, pid_t pid, int wstatus);

/*
 * Advances the teardown after a reap or at its deadline: stops the whole
 * teardown tree at the deadline, or its leftovers once the main process
 * has exited.  Returns true when it is over and nothing of it is left
 * (the result has then been logged).
 */
bool teardown_step(struct teardown *td, uint64_t now);

/* The next deadline of the teardown, or UINT64_MAX. */
uint64_t teardown_deadline(const struct teardown *td);

/*
 * Copies what the teardown wrote so far to stderr and the log, never
 * waiting for either: what cannot be written at once is dropped and
 * counted (log_output()).
 */
void teardown_pump(struct teardown *td);

/* Whether it failed: could not start, exited non-zero, died, timed out. */
bool teardown_failed(const struct teardown *td);

#endif
