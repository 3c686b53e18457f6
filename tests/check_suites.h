#ifndef SUPERVISE_CHECK_SUITES_H
#define SUPERVISE_CHECK_SUITES_H

#include <check.h>
#include <signal.h>
#include <stdbool.h>

Suite *parse_suite(void);
Suite *options_suite(void);
Suite *child_suite(void);
Suite *signals_suite(void);
Suite *tree_suite(void);
Suite *teardown_suite(void);
Suite *lockfile_suite(void);
Suite *status_suite(void);
Suite *caps_suite(void);
Suite *run_suite(void);
Suite *loop_suite(void);
Suite *front_suite(void);
Suite *lockwait_suite(void);
Suite *holder_suite(void);
Suite *remotelock_suite(void);

/*
 * Whether Check runs each test in a process of its own.  Under CK_FORK=no
 * (as with valgrind) a test that must die, or that would leave the runner
 * changed for good, skips itself.
 */
bool test_forks(void);

/*
 * Sends our stderr to a memory file until test_capture_end(), which puts
 * it back and returns what was written (a static buffer, up to 4 KiB).
 */
void test_capture_begin(void);
const char *test_capture_end(void);

/*
 * The signal state that sig_setup() and the tests change, saved so that a
 * fixture can put it back: under CK_FORK=no every test shares one process.
 */
struct saved_signals {
	sigset_t mask;
	struct sigaction act[NSIG];
};

void signals_save(struct saved_signals *saved);

/* Discards pending signals first: unblocked, they could end the runner. */
void signals_restore(const struct saved_signals *saved);

#endif
