/*
 * front.c: the front's state machine, driven by real processes: a forked
 * child stands in for the supervisor, and what it leaves behind is the
 * run.  Each test runs in a forked Check process of its own (a subreaper,
 * with its signals blocked and read by the engine).
 */
#include <sys/prctl.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_suites.h"
#include "front.h"
#include "log.h"
#include "loop.h"
#include "parse.h"
#include "run.h"

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

static struct run run;
static char dir[64], once[96];

static void
setup(void)
{
	memset(&run, 0, sizeof(run));
	run.sig.fd = -1;
	log_init(-1);
	snprintf(dir, sizeof(dir), "/tmp/check_front.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(once, sizeof(once), "%s/once", dir);
}

static void
teardown(void)
{
	unlink(once);
	rmdir(dir);
}

/* A run as main() sets it up, with options for a plain supervise. */
static struct run *
new_run(const char *teardown_cmd)
{
	struct run *r = &run;

	ck_assert_int_eq(sig_setup(&r->sig), 0);
	ck_assert_int_eq(run_init(r), 0);
	r->opt.kill_after_ns = 2 * SEC;
	r->opt.stop_signal = SIGTERM;
	r->opt.teardown = teardown_cmd;
	r->opt.teardown_on = EVENT_TIMEOUT | EVENT_CANCEL;
	r->opt.teardown_timeout_ns = 20 * SEC;
	ck_assert_int_eq(teardown_prepare(&r->td, &r->opt, &r->skip), 0);
	r->td.rec = &r->sh->td;
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(tree_skip_init(&r->skip), 0);
	return r;
}

static bool
gone(pid_t pid)
{
	char path[64], buf[512], *p;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return true;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	p = strrchr(buf, ')');
	return p == NULL || p[2] == 'Z' || p[2] == 'X';
}

START_TEST(test_front_returns_the_supervisors_exit_status)
{
	struct run *r;
	pid_t sup;

	if (!test_forks()) {
		return;
	}
	r = new_run(NULL);
	sup = fork();
	if (sup == 0) {
		_exit(7);
	}
	ck_assert_int_eq(front_run(r, sup), 7);
	/* The supervisor writes the record; nothing was lost. */
	ck_assert(r->sh->status_written || r->opt.status_file == NULL);
}
END_TEST

/*
 * The supervisor relays nothing itself: the front sends it what the front
 * hears, with sigqueue() and the original sender as the value.
 */
START_TEST(test_front_relays_a_cancel_to_the_supervisor)
{
	struct run *r;
	pid_t sup, me = getpid();

	if (!test_forks()) {
		return;
	}
	r = new_run(NULL);
	sup = fork();
	if (sup == 0) {
		siginfo_t si;
		sigset_t set;

		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		alarm(20);
		if (sigwaitinfo(&set, &si) != SIGTERM) {
			_exit(1);
		}
		_exit(si.si_code == SI_QUEUE && si.si_pid == me &&
				      si.si_value.sival_int == me ?
			      100 :
			      2);
	}
	/* Blocked, so pending until the front's loop reads it. */
	ck_assert_int_eq(kill(me, SIGTERM), 0);
	ck_assert_int_eq(front_run(r, sup), 100);
}
END_TEST

/*
 * The supervisor dies of SIGKILL while COMMAND runs, and COMMAND does not
 * die with it (its parent-death signal was cleared): the front stops
 * COMMAND itself, runs the teardown once, and exits 125.
 */
START_TEST(test_front_stops_the_run_when_the_supervisor_is_killed)
{
	char cmd[256], c;
	struct run *r;
	pid_t sup, command;
	int p[2];

	if (!test_forks()) {
		return;
	}
	snprintf(cmd, sizeof(cmd), "echo td >> %s", once);
	r = new_run(cmd);
	ck_assert_int_eq(pipe(p), 0);
	sup = fork();
	if (sup == 0) {
		pid_t k = fork();

		if (k == 0) {
			sigset_t none;

			/* As COMMAND would have them after its exec. */
			signal(SIGTERM, SIG_DFL);
			sigemptyset(&none);
			sigprocmask(SIG_SETMASK, &none, NULL);
			setsid();
			alarm(60);
			for (;;) {
				pause();
			}
		}
		r->sh->cmd_pid = k;
		r->sh->cmd_state = CMD_RUNNING;
		if (write(p[1], "x", 1) != 1) {
			_exit(1);
		}
		raise(SIGKILL);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	command = r->sh->cmd_pid;
	ck_assert_int_gt(command, 0);
	test_capture_begin();
	ck_assert_int_eq(front_run(r, sup), 125);
	snprintf(cmd, sizeof(cmd),
		 "supervise: supervisor process %d died "
		 "(SIGKILL); stopping 1 orphaned process with SIGTERM\n",
		 (int)sup);
	ck_assert_str_eq(test_capture_end(), cmd);
	ck_assert(gone(command));
	ck_assert_int_eq(r->sh->cmd_state, CMD_ENDED);
	ck_assert(WIFSIGNALED(r->sh->cmd_wstatus));
	ck_assert_int_eq(WTERMSIG(r->sh->cmd_wstatus), SIGTERM);
	ck_assert_int_eq(r->sh->teardown_claim, TEARDOWN_BY_FRONT);
	{
		char buf[16] = "";
		int fd = open(once, O_RDONLY | O_CLOEXEC);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(read(fd, buf, sizeof(buf) - 1), 3);
		close(fd);
		ck_assert_str_eq(buf, "td\n");
	}
}
END_TEST

/*
 * The supervisor exits after it gave up on a process it could not stop
 * (it said so): the front does not sweep again, and its status is the
 * supervisor's.
 */
START_TEST(test_front_leaves_what_the_supervisor_gave_up_on)
{
	struct run *r;
	pid_t sup, left;
	int p[2];
	char c;

	if (!test_forks()) {
		return;
	}
	r = new_run(NULL);
	ck_assert_int_eq(pipe(p), 0);
	sup = fork();
	if (sup == 0) {
		left = fork();
		if (left == 0) {
			alarm(60);
			for (;;) {
				pause();
			}
		}
		r->sh->abandoned = 1;
		r->sh->cmd_pid = left;
		if (write(p[1], "x", 1) != 1) {
			_exit(1);
		}
		_exit(EXIT_UNSTOPPABLE);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	left = r->sh->cmd_pid;
	ck_assert_int_eq(front_run(r, sup), EXIT_UNSTOPPABLE);
	ck_assert(!gone(left));
	kill(left, SIGKILL);
	waitpid(left, NULL, 0);
}
END_TEST

Suite *
front_suite(void)
{
	Suite *s = suite_create("front");
	TCase *tc = tcase_create("state machine");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_front_returns_the_supervisors_exit_status);
	tcase_add_test(tc, test_front_relays_a_cancel_to_the_supervisor);
	tcase_add_test(tc,
		       test_front_stops_the_run_when_the_supervisor_is_killed);
	tcase_add_test(tc, test_front_leaves_what_the_supervisor_gave_up_on);
	suite_add_tcase(s, tc);
	return s;
}
