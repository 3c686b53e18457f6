#ifndef SUPERVISE_TREE_H
#define SUPERVISE_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"

/*
 * The process tree below the calling process.  The caller is a child
 * subreaper, so every orphaned descendant (one that called setsid() or
 * double-forked included) is reparented to it and stays in this tree.
 */

/* A growable list of pids. */
struct pid_vec {
	pid_t *v;
	size_t n, cap;
};

/* Pids the sweep leaves alone (children supervise did not start). */
struct tree_skip {
	pid_t *pids;
	size_t n;
};

/*
 * Sends sig, followed by SIGCONT when cont is set, to every live (not
 * zombie) descendant of the calling process, except the skipped children
 * and their subtrees, and except members of process group pgid when pgid
 * is not 0 (the caller signals that group itself).  sig 0 only counts.
 * Parents are signalled before their children.  Each descendant is
 * signalled through a pidfd opened, and checked to still be a child of
 * the process it was listed under, before that process was signalled: a
 * pid reused after a grandchild was reaped elsewhere is never signalled,
 * and a child is reached even if its parent died of the signal.
 * Returns the number of live descendants found, or -1 on error.
 */
int tree_signal(int sig, bool cont, pid_t pgid, const struct tree_skip *skip);

/* A process that refused our signal (EPERM), as first seen. */
struct tree_refusal {
	pid_t pid;
	int err;
	char name[16]; /* its command name (comm) */
};

struct tree_refusals {
	struct tree_refusal *v;
	size_t n, cap;
};

/* The stop sequence: stop signal, grace, SIGKILL, until nothing is left. */
enum tree_phase {
	TREE_IDLE,  /* not stopping */
	TREE_GRACE, /* stop signal sent, waiting for the grace to pass */
	TREE_KILL,  /* SIGKILL sent, waiting for the last one to go */
	TREE_DONE,  /* no descendant left */
};

struct tree_stop {
	enum tree_phase phase;
	int sig;	   /* the stop signal */
	uint64_t grace_ns; /* grace before SIGKILL */
	pid_t group;	   /* a process group to signal as a whole, or 0 */
	const struct tree_skip *skip;
	uint64_t grace_end;  /* monotonic ns */
	uint64_t next_check; /* monotonic ns of the next re-check */
	uint64_t check_step; /* back-off of the re-checks */
	int signalled;	     /* processes sent the stop signal */
	int killed;	     /* processes sent SIGKILL */
	bool escalated;
	struct pid_vec told; /* our children sent the stop signal */
	/*
	 * Processes that refused a signal, each listed once (the caller
	 * reports the new ones), and how many the stop gave up on: once
	 * SIGKILL is due and nothing but refusers is left, the stop is over.
	 */
	struct tree_refusals refusals;
	int abandoned;
	/*
	 * The cgroup the processes are in, or NULL.  With one, SIGKILL is
	 * cgroup.kill and the stop is over when it is empty (and nothing of
	 * the tree is left outside it): no /proc walk while it drains.
	 */
	const struct cgroup *cg;
	struct pid_vec members; /* with cg: every process told */
};

/* Frees what a stop sequence allocated. */
void tree_stop_free(struct tree_stop *ts);

/*
 * Starts the stop sequence at time now: sends the stop signal (and SIGCONT)
 * to the tree, or SIGKILL at once when the grace is 0 or the signal is
 * SIGKILL.  Returns the number of processes signalled.
 */
int tree_stop_begin(struct tree_stop *ts, uint64_t now);

/*
 * Skips the rest of the grace: SIGKILL to everything now.  Returns the
 * number of processes signalled.
 */
int tree_stop_hurry(struct tree_stop *ts, uint64_t now);

/*
 * Advances the stop sequence after a child was reaped or a deadline came:
 * checks whether anything is left, escalates to SIGKILL when the grace is
 * over.  Returns true when nothing is left (phase TREE_DONE).
 */
bool tree_stop_step(struct tree_stop *ts, uint64_t now);

/*
 * The next time tree_stop_step() must run even if no child is reaped (the
 * end of the grace, or a re-check for grandchildren that exit without
 * telling us), or UINT64_MAX.
 */
uint64_t tree_stop_deadline(const struct tree_stop *ts);

/*
 * Fills skip with the current children of the calling process (children
 * it inherited from the process that exec'd it, which are not part of the
 * run).  Returns 0, or -1 with errno set.  The list is freed by
 * tree_skip_free().
 */
int tree_skip_init(struct tree_skip *skip);

/* Forgets a skipped child once it is reaped (its pid may be reused). */
void tree_skip_remove(struct tree_skip *skip, pid_t pid);

void tree_skip_free(struct tree_skip *skip);

#endif
