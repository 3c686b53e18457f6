/*
 * The unit test runner: every suite in one SRunner.  The fork mode is
 * Check's default (CK_FORK from the environment, else fork), so that each
 * test runs in a process of its own and CK_FORK=no serves valgrind.
 */
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
	srunner_add_suite(sr, lockfile_suite());
	srunner_add_suite(sr, status_suite());
	srunner_add_suite(sr, caps_suite());
	srunner_add_suite(sr, run_suite());
	srunner_add_suite(sr, loop_suite());
	srunner_add_suite(sr, front_suite());
	srunner_add_suite(sr, lockwait_suite());
	srunner_add_suite(sr, holder_suite());
	srunner_add_suite(sr, remotelock_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int saved_stderr = -1;
static int capture_fd = -1;

void
test_capture_begin(void)
{
	capture_fd = memfd_create("stderr", MFD_CLOEXEC);
	ck_assert_int_ge(capture_fd, 0);
	saved_stderr = dup(STDERR_FILENO);
	ck_assert_int_ge(saved_stderr, 0);
	ck_assert_int_eq(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

const char *
test_capture_end(void)
{
	static char text[4096];
	ssize_t n = -1;

	text[0] = '\0';
	if (saved_stderr >= 0) {
		dup2(saved_stderr, STDERR_FILENO);
		close(saved_stderr);
		saved_stderr = -1;
	}
	if (capture_fd >= 0) {
		n = pread(capture_fd, text, sizeof(text) - 1, 0);
		close(capture_fd);
		capture_fd = -1;
	}
	text[n > 0 ? n : 0] = '\0';
	return text;
}
