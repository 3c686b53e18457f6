/* signals.c: the blocked set, the signalfd, and what COMMAND gets back. */
#include <sys/prctl.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "check_suites.h"
#include "loop.h"
#include "signals.h"

static void
note_ready(void *ctx, int fd, short revents)
{
	*(int *)ctx = 1;
}

/*
 * The signalfd waited for on the event engine, as every role does: 1
 * when a signal is pending, 0 at the deadline, -1 on error.
 */
static int
sig_wait(const struct sig_state *ss, uint64_t deadline)
{
	struct loop lp;
	int ready = 0, r;

	loop_init(&lp);
	loop_add(&lp, ss->fd, POLLIN, note_ready, &ready);
	r = loop_turn(&lp, deadline);
	return r < 0 ? -1 : ready;
}

#define MS UINT64_C(1000000)

static struct saved_signals saved;
static struct sig_state ss;

static void
setup(void)
{
	sigset_t none;

	signals_save(&saved);
	memset(&ss, 0, sizeof(ss));
	ss.fd = -1;
	/*
	 * Start from what a shell gives a command: nothing blocked, default
	 * dispositions (Check's runner catches SIGINT, SIGTERM and SIGALRM).
	 */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
}

static void
teardown(void)
{
	if (ss.fd >= 0) {
		close(ss.fd);
	}
	signals_restore(&saved);
}

static bool
is_blocked(int sig)
{
	sigset_t now;

	sigprocmask(SIG_SETMASK, NULL, &now);
	return sigismember(&now, sig) == 1;
}

static sighandler_t
handler_of(int sig)
{
	struct sigaction sa;

	ck_assert_int_eq(sigaction(sig, NULL, &sa), 0);
	return sa.sa_handler;
}

START_TEST(test_signals_setup_blocks_and_handles_the_handled_set)
{
	const int sigs[] = {
		SIGTERM, SIGINT,	   SIGHUP,	    SIGQUIT,
		SIGALRM, SIGUSR1,	   SIGUSR2,	    SIGWINCH,
		SIGCHLD, SIG_PARENT_DEATH, SIG_FRONT_DEATH,
	};
	size_t i;

	ck_assert_int_eq(sig_setup(&ss), 0);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		ck_assert_msg(sig_is_handled(&ss, sigs[i]),
			      "signal %d is not handled", sigs[i]);
		ck_assert_msg(is_blocked(sigs[i]), "signal %d is not blocked",
			      sigs[i]);
	}
}
END_TEST

/* A fault blocked or read from a queue would hang or loop, not crash. */
START_TEST(test_signals_setup_leaves_fault_signals_unblocked)
{
	const int faults[] = {
		SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS,
	};
	size_t i;

	ck_assert_int_eq(sig_setup(&ss), 0);
	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		ck_assert_msg(!sig_is_handled(&ss, faults[i]),
			      "fault %d is handled", faults[i]);
		ck_assert_msg(!is_blocked(faults[i]), "fault %d is blocked",
			      faults[i]);
	}
	ck_assert(!sig_is_handled(&ss, SIGPIPE));
	ck_assert(!sig_is_handled(&ss, SIGKILL));
}
END_TEST

START_TEST(test_signals_setup_leaves_sigsegv_fatal)
{
	if (!test_forks()) {
		return; /* would kill the runner */
	}
	signal(SIGSEGV, SIG_DFL);
	ck_assert_int_eq(sig_setup(&ss), 0);
	/* No core file from the expected death. */
	prctl(PR_SET_DUMPABLE, 0);
	raise(SIGSEGV);
	ck_abort_msg("SIGSEGV did not end the process");
}
END_TEST

START_TEST(test_signals_setup_opens_a_nonblocking_cloexec_signalfd)
{
	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert_int_ge(ss.fd, 0);
	ck_assert(fcntl(ss.fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(ss.fd, F_GETFL) & O_NONBLOCK);
}
END_TEST

/* As with GNU timeout: "supervise cmd &" must not be cancelled by ^C. */
START_TEST(test_signals_ignored_sigint_is_not_handled)
{
	signal(SIGINT, SIG_IGN);
	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert(!sig_is_handled(&ss, SIGINT));
	ck_assert(!is_blocked(SIGINT));
	ck_assert(handler_of(SIGINT) == SIG_IGN);
	/* The others are still read. */
	ck_assert(sig_is_handled(&ss, SIGTERM));
}
END_TEST

START_TEST(test_signals_every_ignored_optional_signal_stays_ignored)
{
	const int optional[] = {
		SIGTERM, SIGINT,  SIGHUP,  SIGQUIT,
		SIGALRM, SIGUSR1, SIGUSR2, SIGWINCH,
	};
	size_t i;

	for (i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
		signal(optional[i], SIG_IGN);
	}
	ck_assert_int_eq(sig_setup(&ss), 0);
	for (i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
		ck_assert_msg(!sig_is_handled(&ss, optional[i]),
			      "ignored signal %d is handled", optional[i]);
		ck_assert(handler_of(optional[i]) == SIG_IGN);
	}
	/* What supervise needs for itself is read all the same. */
	ck_assert(sig_is_handled(&ss, SIGCHLD));
	ck_assert(sig_is_handled(&ss, SIG_PARENT_DEATH));
	ck_assert(sig_is_handled(&ss, SIG_FRONT_DEATH));
}
END_TEST

/* An inherited SIG_IGN for SIGCHLD would make the kernel reap for us. */
START_TEST(test_signals_setup_makes_an_ignored_sigchld_default)
{
	int status = 0;
	pid_t pid;

	signal(SIGCHLD, SIG_IGN);
	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert(ss.chld_was_ignored);
	ck_assert(handler_of(SIGCHLD) == SIG_DFL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		_exit(7);
	}
	/* With SIG_IGN this would fail with ECHILD: no status to report. */
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7);

	sig_restore(&ss);
	ck_assert(handler_of(SIGCHLD) == SIG_IGN);
}
END_TEST

START_TEST(test_signals_default_sigchld_is_left_alone)
{
	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert(!ss.chld_was_ignored);
	sig_restore(&ss);
	ck_assert(handler_of(SIGCHLD) == SIG_DFL);
}
END_TEST

/* A broken stderr must not kill supervise, but COMMAND gets the default. */
START_TEST(test_signals_setup_ignores_sigpipe_and_restore_resets_it)
{
	int fds[2];

	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert(ss.pipe_was_default);
	ck_assert(handler_of(SIGPIPE) == SIG_IGN);
	ck_assert_int_eq(pipe(fds), 0);
	close(fds[0]);
	errno = 0;
	ck_assert_int_eq(write(fds[1], "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	close(fds[1]);

	sig_restore(&ss);
	ck_assert(handler_of(SIGPIPE) == SIG_DFL);
}
END_TEST

START_TEST(test_signals_ignored_sigpipe_stays_ignored_after_restore)
{
	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert(!ss.pipe_was_default);
	sig_restore(&ss);
	ck_assert(handler_of(SIGPIPE) == SIG_IGN);
}
END_TEST

START_TEST(test_signals_restore_makes_sigpipe_fatal_again)
{
	int fds[2];

	if (!test_forks()) {
		return; /* would kill the runner */
	}
	ck_assert_int_eq(sig_setup(&ss), 0);
	sig_restore(&ss);
	ck_assert_int_eq(pipe(fds), 0);
	close(fds[0]);
	if (write(fds[1], "x", 1) < 0) {
		ck_abort_msg("write to a broken pipe failed: %s",
			     strerror(errno));
	}
	ck_abort_msg("write to a broken pipe succeeded");
}
END_TEST

START_TEST(test_signals_restore_puts_back_the_original_mask)
{
	sigset_t orig, now;
	int sig;

	sigemptyset(&orig);
	sigaddset(&orig, SIGPROF);
	sigaddset(&orig, SIGUSR2);
	sigprocmask(SIG_SETMASK, &orig, NULL);
	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert(is_blocked(SIGTERM));
	sig_restore(&ss);
	sigprocmask(SIG_SETMASK, NULL, &now);
	for (sig = 1; sig < NSIG; sig++) {
		ck_assert_msg(sigismember(&now, sig) == sigismember(&orig, sig),
			      "signal %d: blocked %d, was %d", sig,
			      sigismember(&now, sig), sigismember(&orig, sig));
	}
}
END_TEST

/* A signal held pending by sig_setup() takes effect once restored. */
START_TEST(test_signals_restore_delivers_a_pending_signal)
{
	if (!test_forks()) {
		return; /* would kill the runner */
	}
	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert_int_eq(kill(getpid(), SIGTERM), 0);
	/* Blocked, so still alive, and pending. */
	ck_assert_int_eq(sig_wait(&ss, loop_now() + 5000 * MS), 1);
	sig_restore(&ss);
	ck_abort_msg("SIGTERM did not end the process");
}
END_TEST

START_TEST(test_signals_read_returns_0_with_nothing_pending)
{
	struct signalfd_siginfo si;

	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert_int_eq(sig_read(&ss, &si), 0);
}
END_TEST

START_TEST(test_signals_read_returns_a_raised_signal)
{
	struct signalfd_siginfo si;

	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert_int_eq(raise(SIGUSR1), 0);
	memset(&si, 0, sizeof(si));
	ck_assert_int_eq(sig_read(&ss, &si), 1);
	ck_assert_uint_eq(si.ssi_signo, SIGUSR1);
	ck_assert_uint_eq(si.ssi_pid, (uint32_t)getpid());
	/* Read once only. */
	ck_assert_int_eq(sig_read(&ss, &si), 0);
}
END_TEST

/* The sender's pid is what "cancelled by SIGTERM from pid N" reports. */
START_TEST(test_signals_read_tells_who_sent_the_signal)
{
	struct signalfd_siginfo si;
	int status;
	pid_t pid;

	ck_assert_int_eq(sig_setup(&ss), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		_exit(kill(getppid(), SIGHUP) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (;;) {
		ck_assert_int_eq(sig_wait(&ss, loop_now() + 5000 * MS), 1);
		ck_assert_int_eq(sig_read(&ss, &si), 1);
		if (si.ssi_signo != SIGCHLD) {
			break;
		}
	}
	ck_assert_uint_eq(si.ssi_signo, SIGHUP);
	ck_assert_uint_eq(si.ssi_pid, (uint32_t)pid);
}
END_TEST

START_TEST(test_signals_read_returns_sigchld_of_an_exited_child)
{
	struct signalfd_siginfo si;
	pid_t pid;

	ck_assert_int_eq(sig_setup(&ss), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		_exit(3);
	}
	ck_assert_int_eq(sig_wait(&ss, loop_now() + 5000 * MS), 1);
	ck_assert_int_eq(sig_read(&ss, &si), 1);
	ck_assert_uint_eq(si.ssi_signo, SIGCHLD);
	ck_assert_uint_eq(si.ssi_pid, (uint32_t)pid);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}
END_TEST

START_TEST(test_signals_wait_with_a_past_deadline_returns_0)
{
	uint64_t now;

	ck_assert_int_eq(sig_setup(&ss), 0);
	now = loop_now();
	ck_assert_int_eq(sig_wait(&ss, now - 1), 0);
	ck_assert_int_eq(sig_wait(&ss, 0), 0);
	ck_assert_int_eq(sig_wait(&ss, now), 0);
}
END_TEST

START_TEST(test_signals_wait_with_a_pending_signal_returns_1)
{
	struct signalfd_siginfo si;
	uint64_t start;

	ck_assert_int_eq(sig_setup(&ss), 0);
	ck_assert_int_eq(raise(SIGUSR2), 0);
	start = loop_now();
	ck_assert_int_eq(sig_wait(&ss, start + 10000 * MS), 1);
	ck_assert_uint_lt(loop_now() - start, 5000 * MS);
	/* Safe: the signal is pending, so this does not wait forever. */
	ck_assert_int_eq(sig_wait(&ss, UINT64_MAX), 1);
	/* Waiting does not consume it. */
	ck_assert_int_eq(sig_read(&ss, &si), 1);
	ck_assert_uint_eq(si.ssi_signo, SIGUSR2);
}
END_TEST

START_TEST(test_signals_wait_sleeps_until_the_deadline)
{
	uint64_t start, end;

	ck_assert_int_eq(sig_setup(&ss), 0);
	start = loop_now();
	ck_assert_int_eq(sig_wait(&ss, start + 50 * MS), 0);
	end = loop_now();
	/* Never early: the caller's deadline has really come. */
	ck_assert_uint_ge(end - start, 50 * MS);
	ck_assert_uint_lt(end - start, 5000 * MS);
}
END_TEST

START_TEST(test_signals_wait_wakes_for_a_signal_sent_later)
{
	struct signalfd_siginfo si;
	uint64_t start;
	pid_t pid;

	ck_assert_int_eq(sig_setup(&ss), 0);
	start = loop_now();
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		usleep(50 * 1000);
		_exit(kill(getppid(), SIGUSR1) == 0 ? 0 : 1);
	}
	ck_assert_int_eq(sig_wait(&ss, start + 20000 * MS), 1);
	ck_assert_uint_lt(loop_now() - start, 10000 * MS);
	ck_assert_int_eq(sig_read(&ss, &si), 1);
	ck_assert(si.ssi_signo == SIGUSR1 || si.ssi_signo == SIGCHLD);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
}
END_TEST

Suite *
signals_suite(void)
{
	Suite *s = suite_create("signals");
	TCase *tc;

	tc = tcase_create("setup");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
		       test_signals_setup_blocks_and_handles_the_handled_set);
	tcase_add_test(tc, test_signals_setup_leaves_fault_signals_unblocked);
	tcase_add_test_raise_signal(tc, test_signals_setup_leaves_sigsegv_fatal,
				    SIGSEGV);
	tcase_add_test(tc,
		       test_signals_setup_opens_a_nonblocking_cloexec_signalfd);
	tcase_add_test(tc, test_signals_ignored_sigint_is_not_handled);
	tcase_add_test(
		tc, test_signals_every_ignored_optional_signal_stays_ignored);
	tcase_add_test(tc, test_signals_setup_makes_an_ignored_sigchld_default);
	tcase_add_test(tc, test_signals_default_sigchld_is_left_alone);
	tcase_add_test(
		tc, test_signals_setup_ignores_sigpipe_and_restore_resets_it);
	tcase_add_test(
		tc, test_signals_ignored_sigpipe_stays_ignored_after_restore);
	tcase_add_test_raise_signal(
		tc, test_signals_restore_makes_sigpipe_fatal_again, SIGPIPE);
	tcase_add_test(tc, test_signals_restore_puts_back_the_original_mask);
	tcase_add_test_raise_signal(
		tc, test_signals_restore_delivers_a_pending_signal, SIGTERM);
	suite_add_tcase(s, tc);

	tc = tcase_create("read_wait");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_signals_read_returns_0_with_nothing_pending);
	tcase_add_test(tc, test_signals_read_returns_a_raised_signal);
	tcase_add_test(tc, test_signals_read_tells_who_sent_the_signal);
	tcase_add_test(tc,
		       test_signals_read_returns_sigchld_of_an_exited_child);
	tcase_add_test(tc, test_signals_wait_with_a_past_deadline_returns_0);
	tcase_add_test(tc, test_signals_wait_with_a_pending_signal_returns_1);
	tcase_add_test(tc, test_signals_wait_sleeps_until_the_deadline);
	tcase_add_test(tc, test_signals_wait_wakes_for_a_signal_sent_later);
	suite_add_tcase(s, tc);
	return s;
}
