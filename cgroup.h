#ifndef SUPERVISE_CGROUP_H
#define SUPERVISE_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Containment by the kernel: a cgroup v2 of the run's own.  Where one can
 * be made (root on a host with a writable v2 hierarchy, unified or
 * hybrid, or a subtree delegated to the user), COMMAND starts in one from
 * its first instruction (clone3 with CLONE_INTO_CGROUP) and the teardown
 * in another, under a parent named after the front:
 *
 *	<our cgroup>/supervise.<pid ns>.<front pid>.<its start time>/run
 *	<our cgroup>/supervise.<pid ns>.<front pid>.<its start time>/teardown
 *
 * SIGKILL is then cgroup.kill, which no fork storm and no escapee can
 * outrun, and "everything is gone" is cgroup.events saying populated 0,
 * which poll() reports (POLLPRI): no pid is guessed.
 */

struct cgroup {
	int dir_fd;    /* the cgroup's directory, or -1 */
	int events_fd; /* its cgroup.events, polled for POLLPRI */
	char path[4096];
	char rel[4096]; /* as /proc/PID/cgroup names it ("0::rel") */
};

/* The run's pair and their parent, all under one directory. */
struct cgroup_set {
	char parent[4096];     /* the directory holding run/ and teardown/ */
	char base[4096];       /* our own cgroup's directory, which holds it */
	unsigned long long ns; /* our PID namespace's inode */
	struct cgroup run, teardown;
	bool active;   /* made; the run is contained */
	char why[512]; /* otherwise: why not, for -v and require */
};

/*
 * Makes the run's cgroups; the teardown's only with teardown (a run
 * without a teardown command has no use for it).  front and its start
 * time name the parent.  Returns 0 with set->active, or -1 with set->why
 * saying why not (nothing made; set->base and set->ns are kept, for
 * cgroup_remove_leftovers(), once the hierarchy was found).
 */
int cgroup_make_set(struct cgroup_set *set, pid_t front, bool teardown);

/*
 * Removes the empty cgroups of earlier runs whose front is provably dead
 * (its pid gone, or now naming a process started at another time), from
 * the directory the set was made in.  Runs of other PID namespaces are
 * never judged; a cgroup with processes is never touched (rmdir refuses
 * it).  Off the start-up path: the front calls it once the run is on.
 */
void cgroup_remove_leftovers(const struct cgroup_set *set);

/* Whether a cgroup still has processes (cgroup.events, populated 1). */
bool cgroup_populated(const struct cgroup *cg);

/* Whether process pid is in the cgroup now (/proc/PID/cgroup). */
bool cgroup_has(const struct cgroup *cg, pid_t pid);

/*
 * The pids in the cgroup (cgroup.procs), into a malloc'd array.  Returns
 * their number, or -1.
 */
int cgroup_procs(const struct cgroup *cg, pid_t **out);

/* The number of processes in the cgroup (cgroup.procs), or 0. */
int cgroup_count(const struct cgroup *cg);

/* Kills every process in the cgroup (cgroup.kill).  Returns 0 or -1. */
int cgroup_kill(const struct cgroup *cg);

/*
 * Removes the set's cgroups that are empty, and the parent when both
 * are gone; whoever finishes last succeeds.  Closes the descriptors.
 */
void cgroup_remove_set(struct cgroup_set *set);

/*
 * Freezes (frozen true) or thaws the cgroup (cgroup.freeze): job control
 * without a signal that a fork could outrun.  Returns 0 or -1.
 */
int cgroup_freeze(const struct cgroup *cg, bool frozen);

/* A set that is not active, with no descriptor open. */
void cgroup_set_init(struct cgroup_set *set);

#endif
