/*
 * loop.c: the event engine every role runs on.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check_suites.h"
#include "log.h"
#include "loop.h"

#define MS UINT64_C(1000000)

/*
 * poll() in front of the C library's, for this test binary: passes
 * through unless a test asks it to fail with fail_poll_errno.
 */
static int fail_poll_errno;
static int (*real_poll)(struct pollfd *, nfds_t, int);

int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (fail_poll_errno != 0) {
		errno = fail_poll_errno;
		return -1;
	}
	if (real_poll == NULL) {
		real_poll = (int (*)(struct pollfd *, nfds_t,
				     int))dlsym(RTLD_NEXT, "poll");
	}
	return real_poll(fds, n, timeout);
}

static int calls[4];
static int fds[2][2];

static void
count(void *ctx, int fd, short revents)
{
	calls[(intptr_t)ctx]++;
}

/* Removes the source of the other pipe: takes effect next turn. */
static struct loop *the_loop;
static void
remove_other(void *ctx, int fd, short revents)
{
	calls[(intptr_t)ctx]++;
	loop_remove(the_loop, fds[1][0]);
}

static void
setup(void)
{
	memset(calls, 0, sizeof(calls));
	ck_assert_int_eq(pipe2(fds[0], O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(fds[1], O_CLOEXEC), 0);
	fail_poll_errno = 0;
	log_init(0);
}

static void
teardown(void)
{
	int i, j;

	fail_poll_errno = 0;
	for (i = 0; i < 2; i++) {
		for (j = 0; j < 2; j++) {
			close(fds[i][j]);
		}
	}
}

START_TEST(test_loop_turn_returns_0_at_the_deadline)
{
	struct loop lp;
	uint64_t t0 = loop_now();

	loop_init(&lp);
	ck_assert_int_eq(loop_add(&lp, fds[0][0], POLLIN, count, (void *)0), 0);
	ck_assert_int_eq(loop_turn(&lp, t0 + 30 * MS), 0);
	ck_assert_uint_ge(loop_now(), t0 + 30 * MS);
	ck_assert_int_eq(calls[0], 0);
	/* A deadline in the past: at once. */
	ck_assert_int_eq(loop_turn(&lp, t0), 0);
}
END_TEST

START_TEST(test_loop_turn_calls_only_the_ready_callbacks_once)
{
	struct loop lp;

	loop_init(&lp);
	loop_add(&lp, fds[0][0], POLLIN, count, (void *)0);
	loop_add(&lp, fds[1][0], POLLIN, count, (void *)1);
	ck_assert_int_eq(write(fds[1][1], "x", 1), 1);
	ck_assert_int_eq(loop_turn(&lp, LOOP_NEVER), 1);
	ck_assert_int_eq(calls[0], 0);
	ck_assert_int_eq(calls[1], 1);
	ck_assert_int_eq(write(fds[0][1], "x", 1), 1);
	ck_assert_int_eq(loop_turn(&lp, LOOP_NEVER), 2);
	ck_assert_int_eq(calls[0], 1);
	ck_assert_int_eq(calls[1], 2);
}
END_TEST

START_TEST(test_loop_add_replaces_and_remove_forgets)
{
	struct loop lp;

	loop_init(&lp);
	loop_add(&lp, fds[0][0], POLLIN, count, (void *)0);
	loop_add(&lp, fds[0][0], POLLIN, count, (void *)2);
	ck_assert_uint_eq(lp.n, 1);
	ck_assert_int_eq(write(fds[0][1], "x", 1), 1);
	ck_assert_int_eq(loop_turn(&lp, LOOP_NEVER), 1);
	ck_assert_int_eq(calls[0], 0);
	ck_assert_int_eq(calls[2], 1);
	loop_remove(&lp, 12345);
	ck_assert_uint_eq(lp.n, 1);
	loop_remove(&lp, fds[0][0]);
	ck_assert_uint_eq(lp.n, 0);
	ck_assert_int_eq(loop_turn(&lp, loop_now() + MS), 0);
}
END_TEST

START_TEST(test_loop_add_refuses_past_the_table)
{
	struct loop lp;
	int i;

	loop_init(&lp);
	for (i = 0; i < LOOP_MAX_SOURCES; i++) {
		ck_assert_int_eq(loop_add(&lp, 100 + i, POLLIN, count, NULL),
				 0);
	}
	errno = 0;
	ck_assert_int_eq(loop_add(&lp, 99, POLLIN, count, NULL), -1);
	ck_assert_int_eq(errno, ENOSPC);
	/* Replacing a registered one still works. */
	ck_assert_int_eq(loop_add(&lp, 100, POLLOUT, count, NULL), 0);
}
END_TEST

START_TEST(test_loop_callback_may_remove_a_source)
{
	struct loop lp;

	the_loop = &lp;
	loop_init(&lp);
	loop_add(&lp, fds[0][0], POLLIN, remove_other, (void *)0);
	loop_add(&lp, fds[1][0], POLLIN, count, (void *)1);
	ck_assert_int_eq(write(fds[0][1], "x", 1), 1);
	ck_assert_int_eq(write(fds[1][1], "x", 1), 1);
	/* This turn's copy still has both. */
	ck_assert_int_eq(loop_turn(&lp, LOOP_NEVER), 2);
	ck_assert_int_eq(loop_turn(&lp, LOOP_NEVER), 1);
	ck_assert_int_eq(calls[0], 2);
	ck_assert_int_eq(calls[1], 1);
}
END_TEST

/*
 * A persistent poll error is said once, and each turn then sleeps for a
 * while instead of spinning (and flooding stderr every 10 ms).
 */
START_TEST(test_loop_poll_error_is_logged_once_and_backs_off)
{
	struct loop lp;
	const char *err;
	uint64_t t0, t1;

	loop_init(&lp);
	loop_add(&lp, fds[0][0], POLLIN, count, (void *)0);
	fail_poll_errno = EINVAL;
	test_capture_begin();
	t0 = loop_now();
	ck_assert_int_eq(loop_turn(&lp, LOOP_NEVER), -1);
	t1 = loop_now();
	ck_assert_int_eq(loop_turn(&lp, t1 + 10 * 1000 * MS), -1);
	ck_assert_int_eq(loop_turn(&lp, LOOP_NEVER), -1);
	err = test_capture_end();
	fail_poll_errno = 0;
	ck_assert_str_eq(err,
			 "supervise: cannot wait for events: Invalid "
			 "argument\n");
	/* Backed off each time, but no longer than 50 ms past a deadline. */
	ck_assert_uint_ge(t1 - t0, 40 * MS);
	ck_assert_uint_ge(loop_now() - t1, 80 * MS);
	ck_assert_int_eq(calls[0], 0);
}
END_TEST

Suite *
loop_suite(void)
{
	Suite *s = suite_create("loop");
	TCase *tc = tcase_create("engine");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_loop_turn_returns_0_at_the_deadline);
	tcase_add_test(tc, test_loop_turn_calls_only_the_ready_callbacks_once);
	tcase_add_test(tc, test_loop_add_replaces_and_remove_forgets);
	tcase_add_test(tc, test_loop_add_refuses_past_the_table);
	tcase_add_test(tc, test_loop_callback_may_remove_a_source);
	tcase_add_test(tc, test_loop_poll_error_is_logged_once_and_backs_off);
	suite_add_tcase(s, tc);
	return s;
}
