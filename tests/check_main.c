/*
 * The unit test runner: every suite in one SRunner.  The fork mode is
 * Check's default (CK_FORK from the environment, else fork), so that each
 * test runs in a process of its own and CK_FORK=no serves valgrind.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_suites.h"

bool
test_forks(void)
{
	const char *mode = getenv("CK_FORK");

	return mode == NULL || strcmp(mode, "no") != 0;
}

/* The signals the tests and sig_setup() touch; fault signals included. */
static bool
is_saved(int sig)
{
	if (sig == SIGKILL || sig == SIGSTOP) {
		return false;
	}
	/* glibc keeps 32 and 33 for itself; above, only what we use. */
	return sig < 32 || (sig >= SIGRTMIN && sig <= SIGRTMIN + 5);
}

void
signals_save(struct saved_signals *saved)
{
	int sig;

	memset(saved, 0, sizeof(*saved));
	sigprocmask(SIG_SETMASK, NULL, &saved->mask);
	for (sig = 1; sig < NSIG; sig++) {
		if (is_saved(sig)) {
			sigaction(sig, NULL, &saved->act[sig]);
		}
	}
}

void
signals_restore(const struct saved_signals *saved)
{
	const struct timespec zero = { 0, 0 };
	sigset_t pending, one;
	int sig;

	if (sigpending(&pending) == 0) {
		for (sig = 1; sig < NSIG; sig++) {
			if (is_saved(sig) && sigismember(&pending, sig) == 1) {
				sigemptyset(&one);
				sigaddset(&one, sig);
				while (sigtimedwait(&one, NULL, &zero) == sig) {
					continue;
				}
			}
		}
	}
	for (sig = 1; sig < NSIG; sig++) {
		if (is_saved(sig)) {
			sigaction(sig, &saved->act[sig], NULL);
		}
	}
	sigprocmask(SIG_SETMASK, &saved->mask, NULL);
}

int
main(void)
{
	SRunner *sr = srunner_create(parse_suite());
	int failed;

	srunner_add_suite(sr, options_suite());
	srunner_add_suite(sr, child_suite());
	srunner_add_suite(sr, signals_suite());
	srunner_add_suite(sr, tree_suite());
	srunner_add_suite(sr, teardown_suite());
	srunner_add_suite(sr, lock_suite());
	srunner_add_suite(sr, status_suite());
	srunner_add_suite(sr, caps_suite());
	srunner_add_suite(sr, run_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
