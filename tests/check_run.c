/*
 * run.c: how the end of a run maps to --teardown-on events, to
 * SUPERVISE_REASON and to SUPERVISE_COMMAND_STATUS.
 */
#include <sys/resource.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check_suites.h"
#include "parse.h"
#include "run.h"

/* ---- run_event ---- */

struct event_case {
	enum run_reason reason;
	int exit_status;
	unsigned event;
};

static const struct event_case event_cases[] = {
	{ REASON_TIMEOUT, 124, EVENT_TIMEOUT },
	/* --preserve-status: still a timeout, whatever COMMAND said. */
	{ REASON_TIMEOUT, 0, EVENT_TIMEOUT },
	{ REASON_TIMEOUT, 143, EVENT_TIMEOUT },
	{ REASON_CANCEL, 143, EVENT_CANCEL },
	{ REASON_CANCEL, 130, EVENT_CANCEL },
	{ REASON_CANCEL, 137, EVENT_CANCEL },
	{ REASON_CANCEL, 0, EVENT_CANCEL },
	/* The parent's death counts as a cancel. */
	{ REASON_PARENT_DEATH, 129, EVENT_CANCEL },
	{ REASON_EXIT, 0, EVENT_SUCCESS },
	{ REASON_EXIT, 1, EVENT_FAILURE },
	{ REASON_EXIT, 3, EVENT_FAILURE },
	{ REASON_EXIT, 255, EVENT_FAILURE },
	/* Death by a signal is a failure. */
	{ REASON_EXIT, 137, EVENT_FAILURE },
	{ REASON_EXIT, 143, EVENT_FAILURE },
	/* An exec failure is a failure. */
	{ REASON_EXEC_FAILED, 127, EVENT_FAILURE },
	{ REASON_EXEC_FAILED, 126, EVENT_FAILURE },
	{ REASON_ERROR, 125, EVENT_FAILURE },
	{ REASON_LOCK_TIMEOUT, 75, EVENT_FAILURE },
};

START_TEST(test_run_event_for_each_reason_and_status)
{
	const struct event_case *c = &event_cases[_i];
	unsigned got = run_event(c->reason, c->exit_status);

	ck_assert_msg(got == c->event, "reason %d, status %d: event %u, not %u",
		      (int)c->reason, c->exit_status, got, c->event);
}
END_TEST

/* Exactly one EVENT_* bit, whatever the reason. */
START_TEST(test_run_event_is_always_one_event)
{
	int reason, status;
	unsigned e;

	for (reason = REASON_NONE; reason <= REASON_LOCK_TIMEOUT; reason++) {
		for (status = 0; status < 256; status++) {
			e = run_event((enum run_reason)reason, status);
			ck_assert_msg(e == EVENT_TIMEOUT || e == EVENT_CANCEL ||
					      e == EVENT_FAILURE ||
					      e == EVENT_SUCCESS,
				      "reason %d, status %d: %u", reason,
				      status, e);
		}
	}
}
END_TEST

/* ---- run_reason_name ---- */

START_TEST(test_run_reason_name_gives_the_supervise_reason_values)
{
	int reason;
	const char *name;

	ck_assert_str_eq(run_reason_name(REASON_TIMEOUT), "timeout");
	ck_assert_str_eq(run_reason_name(REASON_CANCEL), "cancel");
	ck_assert_str_eq(run_reason_name(REASON_PARENT_DEATH), "parent-death");
	ck_assert_str_eq(run_reason_name(REASON_EXIT), "exit");
	/* A COMMAND that could not run ended the run by itself too. */
	ck_assert_str_eq(run_reason_name(REASON_EXEC_FAILED), "exit");
	/* Never anything but the four documented values. */
	for (reason = REASON_NONE; reason <= REASON_LOCK_TIMEOUT; reason++) {
		name = run_reason_name((enum run_reason)reason);
		ck_assert_ptr_nonnull(name);
		ck_assert_msg(strcmp(name, "timeout") == 0 ||
				      strcmp(name, "cancel") == 0 ||
				      strcmp(name, "parent-death") == 0 ||
				      strcmp(name, "exit") == 0,
			      "reason %d is '%s'", reason, name);
	}
}
END_TEST

/* ---- run_command_status ---- */

/* A real wait status: a child that exits with code, or dies of sig. */
static int
wait_status_of(int code, int sig)
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (sig != 0) {
			struct rlimit none = { 0, 0 };
			sigset_t all;

			setrlimit(RLIMIT_CORE, &none);
			signal(sig, SIG_DFL);
			sigfillset(&all);
			sigprocmask(SIG_UNBLOCK, &all, NULL);
			kill(getpid(), sig);
			_exit(99);
		}
		_exit(code);
	}
	while (waitpid(pid, &status, 0) < 0) {
		ck_assert_int_eq(errno, EINTR);
	}
	return status;
}

START_TEST(test_run_command_status_not_started)
{
	char buf[64];

	ck_assert_ptr_eq(run_command_status(CMD_NOT_STARTED, 0, buf,
					    sizeof(buf)),
			 buf);
	ck_assert_str_eq(buf, "not started");
}
END_TEST

/* Still running when its supervisor died: it got SIGKILL with it. */
START_TEST(test_run_command_status_running_is_killed_by_sigkill)
{
	char buf[64];

	ck_assert_str_eq(run_command_status(CMD_RUNNING, 0, buf, sizeof(buf)),
			 "killed by SIGKILL");
	ck_assert_str_eq(run_command_status(CMD_RUNNING, 3 << 8, buf,
					    sizeof(buf)),
			 "killed by SIGKILL");
}
END_TEST

static const int exit_codes[] = { 0, 1, 3, 42, 124, 255 };

START_TEST(test_run_command_status_exited)
{
	char buf[64], want[64];
	int code = exit_codes[_i];

	snprintf(want, sizeof(want), "exited %d", code);
	ck_assert_str_eq(run_command_status(CMD_ENDED, wait_status_of(code, 0),
					    buf, sizeof(buf)),
			 want);
}
END_TEST

START_TEST(test_run_command_status_signaled)
{
	char buf[64], want[64];

	ck_assert_str_eq(run_command_status(CMD_ENDED,
					    wait_status_of(0, SIGTERM), buf,
					    sizeof(buf)),
			 "killed by SIGTERM");
	ck_assert_str_eq(run_command_status(CMD_ENDED,
					    wait_status_of(0, SIGKILL), buf,
					    sizeof(buf)),
			 "killed by SIGKILL");
	ck_assert_str_eq(run_command_status(CMD_ENDED,
					    wait_status_of(0, SIGINT), buf,
					    sizeof(buf)),
			 "killed by SIGINT");
	/* A core dump changes nothing. */
	ck_assert_str_eq(run_command_status(CMD_ENDED, SIGSEGV | 0x80, buf,
					    sizeof(buf)),
			 "killed by SIGSEGV");
	snprintf(want, sizeof(want), "killed by SIGRTMIN+3");
	ck_assert_str_eq(run_command_status(CMD_ENDED, SIGRTMIN + 3, buf,
					    sizeof(buf)),
			 want);
}
END_TEST

START_TEST(test_run_command_status_truncates_to_the_buffer)
{
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	run_command_status(CMD_ENDED, SIGTERM, buf, sizeof(buf));
	ck_assert_str_eq(buf, "killed ");
	run_command_status(CMD_NOT_STARTED, 0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "not sta");
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *
run_suite(void)
{
	Suite *s = suite_create("run");
	TCase *tc;

	tc = tcase_create("event");
	tcase_add_loop_test(tc, test_run_event_for_each_reason_and_status, 0,
			    N(event_cases));
	tcase_add_test(tc, test_run_event_is_always_one_event);
	tcase_add_test(tc,
		       test_run_reason_name_gives_the_supervise_reason_values);
	suite_add_tcase(s, tc);

	tc = tcase_create("command_status");
	tcase_add_test(tc, test_run_command_status_not_started);
	tcase_add_test(tc,
		       test_run_command_status_running_is_killed_by_sigkill);
	tcase_add_loop_test(tc, test_run_command_status_exited, 0,
			    N(exit_codes));
	tcase_add_test(tc, test_run_command_status_signaled);
	tcase_add_test(tc, test_run_command_status_truncates_to_the_buffer);
	suite_add_tcase(s, tc);
	return s;
}
