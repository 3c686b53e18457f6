#ifndef SUPERVISE_SUPERVISE_H
#define SUPERVISE_SUPERVISE_H

/*
 * What every module may need to know about the program as a whole: its
 * version and its exit statuses (EXIT STATUS in supervise.1 and --help
 * list the same).  The program's clock is loop_now() in loop.h.
 */

#define SUPERVISE_VERSION "0.1.0"

enum {
	EXIT_TEMPFAIL = 75,	    /* gave up waiting for a lock */
	EXIT_LOCK_LOST = 121,	    /* an etcd lock's lease was lost */
	EXIT_UNSTOPPABLE = 122,	    /* a process of the run refused to stop */
	EXIT_TEARDOWN_FAILED = 123, /* the run succeeded, its teardown not */
	EXIT_TIMEDOUT = 124,
	EXIT_FAILURE_SUPERVISE = 125, /* supervise itself failed */
	EXIT_CANNOT_INVOKE = 126,
	EXIT_ENOENT = 127,
};

#endif
