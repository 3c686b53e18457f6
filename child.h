#ifndef SUPERVISE_CHILD_H
#define SUPERVISE_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

#include "caps.h"
#include "signals.h"

struct child_spec {
	char **argv;		      /* COMMAND [ARG]..., NULL-terminated */
	const struct sig_state *sig;  /* what to restore before exec */
	bool new_session;	      /* setsid() in the child */
	bool die_with_parent;	      /* PR_SET_PDEATHSIG(SIGKILL) */
	const struct caps_keep *caps; /* capabilities to keep, or NULL */
	bool no_new_privs;
	pid_t parent;	 /* our pid, taken before the fork */
	pid_t *pid_slot; /* gets the pid right after the fork */
	/*
	 * The descriptors below are used only when above 2 (0, 1 and 2 are
	 * always open, so nothing we open gets them): a zeroed spec leaves
	 * them all off.
	 */
	char **envp; /* the environment, or NULL for ours */
	int exec_fd; /* execveat() this file, or -1: execvp() */
	/*
	 * With our environment: the file execvp() would run for argv[0]
	 * (child_find_executable()), tried first, or NULL.
	 */
	const char *exec_path;
	int cwd_fd;    /* a directory to start in, or -1; "/"
					 * when it was removed meanwhile */
	int stdio[3];  /* descriptors for 0, 1, 2, or -1 */
	int cgroup_fd; /* a cgroup v2 directory to start in,
					 * or -1 */
};

/* A spec with every optional field off. */
void child_spec_init(struct child_spec *spec, char **argv,
		     const struct sig_state *sig);

/*
 * Forks and execs a command.  The child restores the inherited signal
 * state, optionally starts a session, limits its capabilities and sets
 * no_new_privs (credential changes clear the parent-death signal, so they
 * come first), arms PR_SET_PDEATHSIG(SIGKILL) and only then checks that
 * its parent is still spec->parent, sets up its descriptors and
 * directory, then execs; it uses only async-signal-safe calls.  Returns
 * the child's pid with *exec_errno 0 when the exec succeeded, with
 * *exec_errno set when the exec failed, or with -errno when the set-up
 * before the exec failed (the child has then exited and is left to be
 * reaped), or -1 with errno set when the fork itself failed.
 */
pid_t child_start(const struct child_spec *spec, int *exec_errno);

/*
 * Finds the file execvp() would run for name (PATH search when it has no
 * slash) into buf.  Returns 0, or -1 when there is none.
 */
int child_find_executable(const char *name, char *buf, size_t len);

/* The status for a wait(2) status: N, or 128+N for death by signal N. */
int child_exit_status(int wstatus);

/* The status for an exec errno: 127 for not found, else 126. */
int child_exec_status(int err);

#endif
