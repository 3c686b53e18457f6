#ifndef SUPERVISE_HOLDER_H
#define SUPERVISE_HOLDER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "lockfile.h"

/*
 * Who holds a lock that we wait for, from the kernel (/proc/locks, and
 * /proc/PID for each process named there) and from the holder record in
 * the lock file.  A pid from either source is only believed once /proc
 * shows a live process of that number that can be its holder.
 */

/* What a pid named as a lock's holder turned out to be. */
enum holder_state {
	HOLDER_NONE,	    /* no pid named */
	HOLDER_GONE,	    /* no such process any more (or a zombie) */
	HOLDER_REUSED,	    /* a process started after the record was written */
	HOLDER_NOT_HOLDING, /* there, and /proc shows it holds no such lock */
	HOLDER_UNCHECKED,   /* there; /proc does not show its descriptors */
	HOLDER_HOLDS,	    /* there, and /proc shows it holds the lock */
	HOLDER_ELSEWHERE,   /* named by a record written on another host */
};

/* A live process that the kernel shows holding the lock. */
struct holder_proc {
	pid_t pid;
	time_t started;	   /* wall-clock start, 0 when unknown */
	char cmdline[128]; /* printable, shortened with "…" */
};

/* Everything learnt about who holds one lock. */
struct holder_view {
	bool has_record;
	struct lock_holder record;
	enum holder_state record_state;
	bool record_named;	 /* /proc/locks names the record's pid */
	size_t nprocs;		 /* live holders found through the kernel */
	struct holder_proc proc; /* the likeliest of them */
	bool proc_seen;		 /* /proc shows proc holding the lock */
	pid_t kernel_pid;	 /* a pid /proc/locks names, not a holder */
	enum holder_state kernel_state; /* what kernel_pid is */
};

/* One lock, as a line of /proc/locks or of /proc/PID/fdinfo/FD shows it. */
struct holder_entry {
	pid_t pid;
	unsigned major, minor;
	unsigned long long ino;
};

/*
 * Fills *v with what the lock file's record, /proc/locks and /proc say
 * about the holder of l (open).  Reads only /proc and the lock file;
 * never blocks on anything else.  Never fails: what cannot be read is
 * left unknown.
 */
void holder_look(const struct lock *l, struct holder_view *v);

/*
 * The holder, in words, into buf (see LOCKS in supervise(1)): the
 * record's "pid N on HOST since T: COMMAND" where the kernel agrees,
 * "pid N (CMDLINE), started T (from /proc/locks)" where only the kernel
 * knows, the record with "(from the lock file's record)" where only it
 * does, else "an unknown process"; each with a note on a record or a
 * /proc/locks entry that names a process that is not the holder.
 * Returns buf.
 */
const char *holder_describe(const struct holder_view *v, char *buf, size_t len);

/*
 * Parses one line of /proc/locks, or a "lock:" line of /proc/PID/fdinfo.
 * Returns 0 for a flock() lock that is held (not one waited for), -1 for
 * anything else.
 */
int holder_parse_line(const char *line, struct holder_entry *e);

/*
 * A command line as /proc/PID/cmdline has it (arguments each ended by a
 * NUL) into buf as one printable line: arguments joined with spaces,
 * other bytes as '?', and a long one cut, at an argument's boundary where
 * one is near, with "…".  Returns buf.
 */
const char *holder_cmdline(const char *raw, size_t n, char *buf, size_t len);

#endif
