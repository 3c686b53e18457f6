#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "loop.h"

#define NS_PER_MS UINT64_C(1000000)
/* After a poll error: the longest sleep before the caller looks again. */
#define ERROR_BACKOFF (50 * NS_PER_MS)

uint64_t
loop_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) +
		(uint64_t)ts.tv_nsec;
}

void
loop_init(struct loop *lp)
{
	memset(lp, 0, sizeof(*lp));
}

int
loop_add(struct loop *lp, int fd, short events, loop_fn *fn, void *ctx)
{
	size_t i;

	for (i = 0; i < lp->n && lp->src[i].fd != fd; i++) {
		continue;
	}
	if (i == LOOP_MAX_SOURCES) {
		errno = ENOSPC;
		return -1;
	}
	lp->src[i] = (struct loop_source){ fd, events, fn, ctx };
	if (i == lp->n) {
		lp->n++;
	}
	return 0;
}

void
loop_remove(struct loop *lp, int fd)
{
	size_t i;

	for (i = 0; i < lp->n; i++) {
		if (lp->src[i].fd == fd) {
			lp->src[i] = lp->src[--lp->n];
			return;
		}
	}
}

/* Milliseconds until deadline, rounded up so we never wake just before. */
static int
timeout_ms(uint64_t deadline, uint64_t now)
{
	uint64_t ms;

	if (deadline == LOOP_NEVER) {
		return -1;
	}
	ms = (deadline - now + NS_PER_MS - 1) / NS_PER_MS;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void
sleep_until(uint64_t deadline, uint64_t now)
{
	uint64_t ns = deadline - now < ERROR_BACKOFF ? deadline - now :
						       ERROR_BACKOFF;
	struct timespec ts = {
		.tv_sec = (time_t)(ns / 1000000000),
		.tv_nsec = (long)(ns % 1000000000),
	};

	nanosleep(&ts, NULL);
}

int
loop_turn(struct loop *lp, uint64_t deadline)
{
	struct pollfd pfd[LOOP_MAX_SOURCES];
	struct loop_source src[LOOP_MAX_SOURCES];
	size_t i, n = lp->n;
	uint64_t now;
	int r, called = 0;

	/*
	 * A copy: a callback may add or remove sources, which then take
	 * effect from the next turn on.
	 */
	memcpy(src, lp->src, n * sizeof(*src));
	for (i = 0; i < n; i++) {
		pfd[i] = (struct pollfd){ .fd = src[i].fd,
					  .events = src[i].events };
	}
	for (;;) {
		now = loop_now();
		if (deadline != LOOP_NEVER && now >= deadline) {
			return 0;
		}
		r = poll(pfd, (nfds_t)n, timeout_ms(deadline, now));
		if (r > 0) {
			break;
		}
		if (r < 0 && errno != EINTR) {
			if (!lp->failed) {
				log_error("cannot wait for events: %s",
					  strerror(errno));
				lp->failed = true;
			}
			sleep_until(deadline, now);
			return -1;
		}
		/* EINTR, or a far deadline waited for in slices of INT_MAX ms. */
	}
	for (i = 0; i < n; i++) {
		if (pfd[i].revents != 0) {
			src[i].fn(src[i].ctx, src[i].fd, pfd[i].revents);
			called++;
		}
	}
	return called;
}
