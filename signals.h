#ifndef SUPERVISE_SIGNALS_H
#define SUPERVISE_SIGNALS_H

#include <signal.h>
#include <stdbool.h>
#include <sys/signalfd.h>
#include <stdint.h>

/*
 * Two real-time signals are reserved for parent-death notices: the front's
 * (its caller died) and the supervisor's (the front died).  They are above
 * glibc's own reserved range (SIGRTMIN is already past it).
 */
#define SIG_PARENT_DEATH (SIGRTMIN + 0)
#define SIG_FRONT_DEATH (SIGRTMIN + 1)

/* What supervise inherited, so that COMMAND gets it back. */
struct sig_state {
	sigset_t orig_mask;	/* the mask supervise was started with */
	sigset_t handled;	/* what supervise blocks and reads */
	bool chld_was_ignored;	/* SIGCHLD was SIG_IGN at start */
	bool pipe_was_default;	/* SIGPIPE was SIG_DFL at start */
	int fd;			/* signalfd, non-blocking, close-on-exec */
};

/*
 * Blocks every signal supervise acts on and opens a signalfd to read them.
 * A cancel or forward signal that was ignored at start stays ignored and is
 * not read, as with GNU timeout.  SIGCHLD is set to SIG_DFL (an inherited
 * SIG_IGN would make the kernel reap children behind our back) and SIGPIPE
 * to SIG_IGN (a broken stderr must not kill us).  Fault signals are left
 * alone.  Returns 0, or -1 with errno set and nothing changed.
 */
int sig_setup(struct sig_state *ss);

/* Whether sig is one that supervise reads through its signalfd. */
bool sig_is_handled(const struct sig_state *ss, int sig);

/*
 * In a forked child before exec: puts back the dispositions and the mask
 * supervise inherited.  Async-signal-safe.
 */
void sig_restore(const struct sig_state *ss);

/*
 * Reads one pending signal from the signalfd.  Returns 1 and fills *si,
 * 0 when none is pending, -1 on error.
 */
int sig_read(const struct sig_state *ss, struct signalfd_siginfo *si);

/*
 * Waits until a signal is pending on the signalfd or the monotonic clock
 * reaches deadline (nanoseconds, UINT64_MAX for never).  Returns 1 when a
 * signal is pending, 0 at the deadline, -1 on error.  Never wakes up
 * otherwise: an idle supervise sleeps here.
 */
int sig_wait(const struct sig_state *ss, uint64_t deadline);

enum {
	SIG_WAIT_SIGNAL = 1,
	SIG_WAIT_FD = 2,
};

/*
 * Like sig_wait(), and also wakes when fd (ignored if negative) is
 * readable or closed.  Returns a mask of SIG_WAIT_SIGNAL and SIG_WAIT_FD,
 * 0 at the deadline, -1 on error.
 */
int sig_wait_fd(const struct sig_state *ss, int fd, uint64_t deadline);

#endif
