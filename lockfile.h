#ifndef SUPERVISE_LOCKFILE_H
#define SUPERVISE_LOCKFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* One --lock FILE. */
struct lock {
	const char *path;	    /* as the user gave it */
	char *key;		    /* absolute path: the canonical order */
	int fd;			    /* open, close-on-exec; -1 until opened */
	uint64_t wait_ns;	    /* how long taking it took */
	const struct lock *same_as; /* another name of this lock, held */
	bool created;		    /* lock_open() made the file */
};

/* Who holds a lock, as its holder wrote into the file. */
struct lock_holder {
	long pid;
	char host[256];
	time_t since;	   /* 0 when unknown */
	char command[256]; /* printable, shortened */
};

/*
 * Builds the canonical order of the given lock paths: each path's
 * directory is resolved to an absolute path (the directory must exist),
 * the list is sorted by it and duplicates are dropped, so that two runs
 * naming the same locks in any order take them in the same order.
 * Returns the number of locks in *out (malloc'd), or -1 after logging why.
 */
int lock_prepare(char *const *paths, size_t n, struct lock **out);

/* Closes and frees what lock_prepare() and lock_open() made. */
void lock_free(struct lock *locks, size_t n);

/*
 * Opens (creating with mode 0644 if missing) the lock file without
 * following a symbolic link at its last component and refuses anything
 * but a regular file.  Returns 0, or -1 after logging why.
 */
int lock_open(struct lock *l);

/*
 * Tries to take the lock without waiting.  Returns 1 when taken, 0 when
 * another holds it, -1 on error (errno set).
 */
int lock_try(struct lock *l);

/*
 * After taking the lock: whether the path still names the file we locked.
 * A janitor may have unlinked or replaced it meanwhile, and a lock on a
 * file nobody can open any more excludes nobody.  Returns 1 if so, 0 if
 * not (the caller reopens and tries again), -1 on error.
 */
int lock_is_current(const struct lock *l);

/*
 * Forks a process that takes the lock on the shared open file description
 * with a blocking flock() and exits 0 once it has it (the lock then
 * belongs to our descriptor too).  Lets the caller wait for a lock in its
 * event loop, as a SIGCHLD, without polling.  Returns its pid or -1.
 */
pid_t lock_start_waiter(const struct lock *l);

/*
 * The holder record of a lock (our pid, host, time, command), as written
 * into lock files and etcd keys, into rec.  Returns 0, or -1.
 */
int lock_format_holder(char *rec, size_t len, pid_t pid, char *const *command);

/* Writes who holds it into the lock file: our pid, host, time, command. */
void lock_write_holder(const struct lock *l, pid_t pid, char *const *command);

/* Reads back what the holder wrote.  Returns 0, or -1 if nothing usable. */
int lock_read_holder(const struct lock *l, struct lock_holder *h);

/*
 * Parses a holder record (what lock_write_holder() writes).  Returns 0 and
 * fills *h, or -1 when the text holds no record.  Any bytes are safe.
 */
int lock_parse_holder(const char *buf, size_t len, struct lock_holder *h);

/*
 * "pid 4242 on host-a since 2026-12-07 10:15:02 +0000: abra app deploy"
 * into buf (what is unknown is left out).  Returns buf.
 */
const char *lock_describe_holder(const struct lock_holder *h, char *buf,
				 size_t len);

/*
 * A wall-clock time as "2026-12-07 10:15:02 +0000": local time (TZ is
 * honoured) with its offset from UTC.  Returns buf.
 */
const char *lock_format_time(time_t t, char *buf, size_t len);

#endif
