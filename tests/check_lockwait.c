/*
 * lockwait.c: taking the locks, and the wait's state machine on the
 * event engine (a held lock, a cancel, the deadline, a lock freed
 * meanwhile, two names of one file).  Each test that blocks signals runs
 * in a forked Check process of its own.
 */
#include <sys/file.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_suites.h"
#include "lockwait.h"
#include "log.h"
#include "loop.h"
#include "run.h"

#define MS UINT64_C(1000000)

static struct run run;
static char dir[64], path[96], alias[96];

static void
setup(void)
{
	memset(&run, 0, sizeof(run));
	run.sig.fd = -1;
	log_init(0);
	snprintf(dir, sizeof(dir), "/tmp/check_lockwait.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/a.lock", dir);
	snprintf(alias, sizeof(alias), "%s/b.lock", dir);
}

static void
teardown(void)
{
	unlink(path);
	unlink(alias);
	rmdir(dir);
}

static struct run *
new_run(uint64_t wait_ns)
{
	static char *command[] = { "true", NULL };
	struct run *r = &run;

	ck_assert_int_eq(sig_setup(&r->sig), 0);
	ck_assert_int_eq(run_init(r), 0);
	r->opt.command = command;
	r->opt.lock_wait_ns = wait_ns;
	r->opt.locks[r->opt.nlocks++] = path;
	return r;
}

/* Another open file description holding the lock, as another run's. */
static int
hold(const char *p)
{
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
	return fd;
}

static bool
is_free(const char *p)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	bool free_ = flock(fd, LOCK_EX | LOCK_NB) == 0;

	close(fd);
	return free_;
}

START_TEST(test_lockwait_gives_up_at_the_deadline)
{
	const char *err;
	struct run *r;
	int other;

	if (!test_forks()) {
		return;
	}
	other = hold(path);
	r = new_run(200 * MS);
	test_capture_begin();
	ck_assert_int_eq(lockwait_acquire(r), EXIT_TEMPFAIL);
	err = test_capture_end();
	ck_assert_int_eq(r->sh->reason, REASON_LOCK_TIMEOUT);
	ck_assert_ptr_nonnull(strstr(err, "supervise: waiting for lock "));
	ck_assert_ptr_nonnull(
		strstr(err, "supervise: gave up waiting for lock "));
	ck_assert_uint_ge(r->locks[0].wait_ns, 200 * MS);
	close(other);
}
END_TEST

START_TEST(test_lockwait_cancel_ends_the_wait)
{
	const char *err;
	struct run *r;
	int other;

	if (!test_forks()) {
		return;
	}
	other = hold(path);
	r = new_run(UINT64_MAX);
	/* Blocked: read by the wait's first turn. */
	ck_assert_int_eq(kill(getpid(), SIGINT), 0);
	test_capture_begin();
	ck_assert_int_eq(lockwait_acquire(r), 128 + SIGINT);
	err = test_capture_end();
	ck_assert_int_eq(r->sh->reason, REASON_CANCEL);
	ck_assert_int_eq(r->sh->cancel_sig, SIGINT);
	ck_assert_ptr_nonnull(strstr(err,
				     "supervise: cancelled by SIGINT while "
				     "waiting for lock "));
	close(other);
}
END_TEST

/* SIGALRM and forward signals have nobody to go to yet: the wait goes on. */
START_TEST(test_lockwait_ignores_what_is_not_a_cancel)
{
	struct run *r;
	int other;

	if (!test_forks()) {
		return;
	}
	other = hold(path);
	r = new_run(300 * MS);
	ck_assert_int_eq(kill(getpid(), SIGUSR1), 0);
	ck_assert_int_eq(kill(getpid(), SIGALRM), 0);
	test_capture_begin();
	ck_assert_int_eq(lockwait_acquire(r), EXIT_TEMPFAIL);
	test_capture_end();
	close(other);
}
END_TEST

START_TEST(test_lockwait_takes_a_lock_freed_meanwhile)
{
	struct run *r;
	pid_t holder;
	int p[2];
	char c;

	if (!test_forks()) {
		return;
	}
	ck_assert_int_eq(pipe(p), 0);
	holder = fork();
	if (holder == 0) {
		int fd = hold(path);

		if (write(p[1], "x", 1) != 1) {
			_exit(1);
		}
		usleep(200000);
		close(fd);
		_exit(0);
	}
	close(p[1]);
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	r = new_run(UINT64_MAX);
	test_capture_begin();
	ck_assert_int_eq(lockwait_acquire(r), -1);
	test_capture_end();
	ck_assert(!is_free(path));
	ck_assert_int_eq(r->sh->reason, REASON_NONE);
	waitpid(holder, NULL, 0);
}
END_TEST

START_TEST(test_lockwait_two_names_of_one_file_are_one_lock)
{
	const char *err;
	struct run *r;
	size_t i;

	if (!test_forks()) {
		return;
	}
	close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
	ck_assert_int_eq(link(path, alias), 0);
	r = new_run(UINT64_MAX);
	r->opt.locks[r->opt.nlocks++] = alias;
	test_capture_begin();
	ck_assert_int_eq(lockwait_acquire(r), -1);
	err = test_capture_end();
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(r->nlocks, 2);
	for (i = 0; i < 2; i++) {
		if (r->locks[i].same_as != NULL) {
			ck_assert_ptr_eq(r->locks[i].same_as, &r->locks[1 - i]);
			ck_assert_int_eq(r->locks[i].fd, -1);
		}
	}
	ck_assert(r->locks[0].same_as != NULL || r->locks[1].same_as != NULL);
	ck_assert(!is_free(path));
}
END_TEST

/*
 * The give-up line: the lock, the time waited, -w as the user wrote it
 * (or, without that text, as a duration), and the holder: here this very
 * process, named from /proc/locks.
 */
START_TEST(test_lockwait_give_up_line_quotes_the_wait_asked_for)
{
	char want[256], waited[16], *end;
	const char *err, *p;
	double secs;
	struct run *r;
	int other, pid, n = 0;

	if (!test_forks()) {
		return;
	}
	other = hold(path);
	r = new_run(200 * MS);
	r->opt.lock_wait_text = "0.2";
	test_capture_begin();
	ck_assert_int_eq(lockwait_acquire(r), EXIT_TEMPFAIL);
	err = test_capture_end();
	snprintf(want, sizeof(want),
		 "supervise: gave up waiting for lock %s after ", path);
	p = strstr(err, want);
	ck_assert_msg(p != NULL, "%s", err);
	p += strlen(want);
	/* At least 200ms ("200ms", or "1.2s" on a slow day). */
	ck_assert_int_eq(sscanf(p, "%15[0-9.ms] (-w 0.2); held by pid %d (%n",
				waited, &pid, &n),
			 2);
	ck_assert_msg(n > 0, "%s", err);
	secs = strtod(waited, &end);
	if (strcmp(end, "ms") == 0) {
		secs /= 1000;
	} else {
		ck_assert_str_eq(end, "s");
	}
	ck_assert_msg(secs >= 0.2, "%s", waited);
	ck_assert_int_eq(pid, getpid());
	ck_assert_ptr_nonnull(strstr(p + n, " (from /proc/locks)\n"));
	close(other);
}
END_TEST

START_TEST(test_lockwait_give_up_line_without_the_text_shows_the_duration)
{
	const char *err;
	struct run *r;
	int other;

	if (!test_forks()) {
		return;
	}
	other = hold(path);
	r = new_run(0);
	test_capture_begin();
	ck_assert_int_eq(lockwait_acquire(r), EXIT_TEMPFAIL);
	err = test_capture_end();
	ck_assert_msg(strstr(err, " after 0s (-w 0ns); held by pid ") != NULL,
		      "%s", err);
	close(other);
}
END_TEST

START_TEST(test_lockwait_fmt_waited_rounds_down_and_reads_like_w)
{
	static const struct {
		uint64_t ns;
		const char *text;
	} cases[] = {
		{ 0, "0ms" },
		{ 999999, "0ms" },
		{ 500 * MS + 999, "500ms" },
		{ 999 * MS, "999ms" },
		{ 1000 * MS, "1s" },
		{ 1500 * MS, "1.5s" },
		{ 12034 * MS, "12.034s" },
		{ 59999 * MS, "59.999s" },
		{ 60000 * MS, "1m0s" },
		{ 600002 * MS, "10m0s" },
		{ 754 * 1000 * MS, "12m34s" },
		{ 3600 * 1000 * MS, "1h0m0s" },
		{ 3725 * 1000 * MS + 999 * MS, "1h2m5s" },
		{ UINT64_C(90000) * 1000 * MS, "25h0m0s" },
	};
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_str_eq(lockwait_fmt_waited(cases[i].ns, buf,
						     sizeof(buf)),
				 cases[i].text);
	}
}
END_TEST

Suite *
lockwait_suite(void)
{
	Suite *s = suite_create("lockwait");
	TCase *tc = tcase_create("wait");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_lockwait_gives_up_at_the_deadline);
	tcase_add_test(tc, test_lockwait_cancel_ends_the_wait);
	tcase_add_test(tc, test_lockwait_ignores_what_is_not_a_cancel);
	tcase_add_test(tc, test_lockwait_takes_a_lock_freed_meanwhile);
	tcase_add_test(tc, test_lockwait_two_names_of_one_file_are_one_lock);
	tcase_add_test(tc,
		       test_lockwait_give_up_line_quotes_the_wait_asked_for);
	tcase_add_test(
		tc,
		test_lockwait_give_up_line_without_the_text_shows_the_duration);
	tcase_add_test(tc,
		       test_lockwait_fmt_waited_rounds_down_and_reads_like_w);
	suite_add_tcase(s, tc);
	return s;
}
