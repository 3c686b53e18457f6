#ifndef SUPERVISE_STATUS_H
#define SUPERVISE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "lockfile.h"
#include "teardown.h"

/* Where --status-file goes: its directory is held from the start. */
struct status_target {
	const char *path; /* as given, or NULL: no status file */
	int dir_fd;	  /* its directory (O_PATH), or -1 */
	char *base;	  /* its last component */
};

/* What happened, as the JSON record tells it. */
struct status_info {
	char *const *command;
	pid_t pid;		 /* the front's: what the caller started */
	pid_t command_pid;	 /* 0: never started */
	struct timespec started; /* CLOCK_REALTIME at start */
	uint64_t started_mono;	 /* CLOCK_MONOTONIC ns at start */
	const char *reason;	 /* exit, timeout, cancel, ... */
	int signal;		 /* the cancel signal, or 0 */
	int exit_status;
	bool command_ended; /* command_wstatus is valid */
	int command_wstatus;
	bool stopped; /* the stop sequence ran */
	int stop_signal;
	bool escalated;
	int signalled;
	int leftovers;
	int unstoppable;	   /* processes given up on */
	const char *containment;   /* "cgroup" or "sweep" */
	pid_t cause_pid;	   /* parent-death: who died, or 0 */
	bool cause_ancestor;	   /* that was --parent-pid's ancestor */
	int cause_fd;		   /* hangup: 1 or 2, else 0 */
	uint64_t dropped;	   /* bytes of our output dropped */
	const struct teardown *td; /* NULL or TD_IDLE: none ran */
	const struct lock *locks;
	size_t nlocks;
};

/*
 * At start, before COMMAND: opens the directory of path (so that a
 * relative path still works after the working directory is removed),
 * checks that what is at path now may be replaced (nothing, or a regular
 * file that is empty or holds a record; never a symbolic link) and that
 * the kernel lets us make a file in the directory.  NULL: no status file.
 * Returns 0, or -1 after logging why in one line; the target is then
 * unset (t->path NULL), so that nothing is ever written to it.
 */
int status_prepare(struct status_target *t, const char *path);

/*
 * Writes the record as one JSON object, atomically and durably: a
 * temporary file in the same directory, synced, then rename(2), then the
 * directory synced.  Just before the rename, what is at the path is
 * checked again as at start: something that is not ours is left alone.
 * Returns 0, or -1 after logging why; a failure before the rename leaves
 * neither the temporary file nor a descriptor behind.
 */
int status_write(const struct status_target *t, const struct status_info *si);

/*
 * Appends s (len bytes, any bytes at all) to buf as a JSON string:
 * quotes, backslashes and control characters escaped, invalid UTF-8
 * replaced by U+FFFD.  buf is a growable buffer (see struct json_buf).
 */
struct json_buf {
	char *data;
	size_t len, cap;
	bool failed; /* out of memory: the result is unusable */
};

void json_string(struct json_buf *b, const char *s, size_t len);

/* Builds the record into b (data must be freed by the caller). */
void status_json(struct json_buf *b, const struct status_info *si);

#endif
