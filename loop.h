#ifndef SUPERVISE_LOOP_H
#define SUPERVISE_LOOP_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The one event engine that every role of supervise runs on: the front,
 * the supervisor and the lock wait.  A role registers its descriptors (the
 * signalfd, pipes, later pidfds and timers), each with a callback, and
 * then turns the loop once per event batch with the deadline its state
 * calls for.  Callbacks only record what happened; after each turn the
 * role looks at its state and decides the next step.  Every wait in
 * supervise is either a descriptor here or a deadline given to
 * loop_turn(): nothing else may block.
 */

/* Monotonic clock in nanoseconds: the one clock of every deadline. */
uint64_t loop_now(void);

#define LOOP_NEVER UINT64_MAX

/* For a callback's parameters that it does not need. */
#define LOOP_UNUSED __attribute__((unused))

/* Called with the descriptor's poll revents (never 0). */
typedef void loop_fn(void *ctx, int fd, short revents);

/* Ours (signalfd, pidfd, cgroup events, stdout and stderr, the teardown's
 * output) and the sockets of the etcd locks' requests. */
#define LOOP_MAX_SOURCES 24

struct loop_source {
	int fd;
	short events;
	loop_fn *fn;
	void *ctx;
};

struct loop {
	struct loop_source src[LOOP_MAX_SOURCES];
	size_t n;
	bool failed; /* poll failed and was reported once */
};

void loop_init(struct loop *lp);

/*
 * Registers fd (POLLIN, POLLOUT...) with its callback.  A descriptor may
 * be registered once; registering it again replaces its entry.  Returns
 * 0, or -1 (errno ENOSPC) when the table is full.
 */
int loop_add(struct loop *lp, int fd, short events, loop_fn *fn, void *ctx);

/* Forgets fd (not registered: nothing happens).  Does not close it. */
void loop_remove(struct loop *lp, int fd);

/*
 * Waits until a registered descriptor is ready or the monotonic clock
 * reaches deadline (LOOP_NEVER: no deadline), then calls the callback of
 * each ready descriptor once.  Returns the number of callbacks called, 0
 * at the deadline, or -1 when poll() failed: the failure is logged once
 * per loop, and the call then sleeps until the deadline or for 50 ms,
 * whichever comes first, so that a persistent error never spins nor
 * floods the log.  Never wakes up otherwise: an idle loop sleeps here.
 */
int loop_turn(struct loop *lp, uint64_t deadline);

#endif
