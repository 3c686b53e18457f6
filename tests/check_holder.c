/*
 * holder.c: who holds a lock, from /proc/locks, /proc/PID and the lock
 * file's record; the lines it reads, the command lines it shows, and the
 * words for every combination of what the two sources say.  The tests of
 * holder_look() hold locks in child processes of their own.
 */
#include <sys/file.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_suites.h"
#include "holder.h"
#include "lockfile.h"

static char dir[64], path[96];
static struct lock lk;
static pid_t kids[4];
static size_t nkids;

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/check_holder.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/lk", dir);
	memset(&lk, 0, sizeof(lk));
	lk.path = path;
	lk.fd = -1;
	nkids = 0;
}

static void
teardown(void)
{
	int st;

	while (nkids > 0) {
		kill(kids[--nkids], SIGKILL);
		waitpid(kids[nkids], &st, 0);
	}
	if (lk.fd >= 0) {
		close(lk.fd);
	}
	unlink(path);
	rmdir(dir);
}

/* Our own open file description of the lock file, as a waiter's. */
static void
open_ours(void)
{
	lk.fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(lk.fd, 0);
}

static void
write_record(long pid, const char *host, long long since)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fprintf(f,
		"supervise-lock 1\npid %ld\nhost %s\nsince %lld\n"
		"command deploy it\n",
		pid, host, since);
	fclose(f);
}

static void
our_host(char *buf, size_t len)
{
	memset(buf, 0, len);
	ck_assert_int_eq(gethostname(buf, len - 1), 0);
}

/*
 * A child that holds the lock on a description of its own until it is
 * killed.  With handed_on, a grandchild takes the lock on the child's
 * description and exits: /proc/locks then names the gone grandchild,
 * and the child holds the lock.  Returns the child's pid once it holds.
 */
static pid_t
start_holder(bool handed_on)
{
	int p[2], fd;
	char c;
	pid_t pid, g;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		fd = open(path, O_RDONLY | O_CREAT, 0644);
		if (fd < 0) {
			_exit(1);
		}
		if (!handed_on) {
			if (flock(fd, LOCK_EX) < 0) {
				_exit(1);
			}
		} else {
			g = fork();
			if (g == 0) {
				_exit(flock(fd, LOCK_EX) == 0 ? 0 : 1);
			}
			if (g < 0 || waitpid(g, NULL, 0) != g) {
				_exit(1);
			}
		}
		if (write(p[1], "x", 1) != 1) {
			_exit(1);
		}
		for (;;) {
			pause();
		}
	}
	close(p[1]);
	kids[nkids++] = pid;
	ck_assert_int_eq(read(p[0], &c, 1), 1);
	close(p[0]);
	return pid;
}

/* A child that exited and was reaped: its pid names nobody now. */
static pid_t
gone_pid(void)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	return pid;
}

/*
 * What holder_cmdline() makes of process pid's command line (read by pid:
 * valgrind shows a program its own command line, not what others see).
 */
static void
cmdline_of(pid_t pid, char *buf, size_t len)
{
	char raw[4096], file[64];
	ssize_t n;
	int fd;

	snprintf(file, sizeof(file), "/proc/%d/cmdline", (int)pid);
	fd = open(file, O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	n = read(fd, raw, sizeof(raw));
	close(fd);
	ck_assert_int_gt(n, 0);
	holder_cmdline(raw, (size_t)n, buf, len);
}

/* ---- holder_parse_line ---- */

START_TEST(test_holder_parse_line_reads_a_flock_entry)
{
	struct holder_entry e;

	ck_assert_int_eq(
		holder_parse_line(
			"1: FLOCK  ADVISORY  WRITE 4711 fe:00:10952883 0 EOF\n",
			&e),
		0);
	ck_assert_int_eq(e.pid, 4711);
	ck_assert_uint_eq(e.major, 0xfe);
	ck_assert_uint_eq(e.minor, 0);
	ck_assert_uint_eq(e.ino, 10952883);
	/* A shared lock; a device of more than two hex digits. */
	ck_assert_int_eq(
		holder_parse_line(
			"12: FLOCK  ADVISORY  READ  7 103:1a2:99 0 EOF", &e),
		0);
	ck_assert_uint_eq(e.major, 0x103);
	ck_assert_uint_eq(e.minor, 0x1a2);
	ck_assert_uint_eq(e.ino, 99);
	/* fdinfo's form. */
	ck_assert_int_eq(
		holder_parse_line(
			"lock:\t1: FLOCK  ADVISORY  WRITE 14805 00:28:11 0 EOF",
			&e),
		0);
	ck_assert_int_eq(e.pid, 14805);
	ck_assert_uint_eq(e.minor, 0x28);
}
END_TEST

START_TEST(test_holder_parse_line_refuses_what_is_no_held_flock)
{
	static const char *const lines[] = {
		/* Waited for, not held. */
		"1: -> FLOCK  ADVISORY  WRITE 4712 fe:00:10952883 0 EOF",
		"2: POSIX  ADVISORY  WRITE 14595 fe:00:408224 0 EOF",
		"3: OFDLCK ADVISORY  WRITE -1 fe:00:408224 0 EOF",
		"4: LEASE  ACTIVE    READ  55 fe:00:1 0 EOF",
		"5: FLOCK  ADVISORY  WRITE 9 <none>:0 0 EOF",
		"6: FLOCK  ADVISORY  WRITE",
		"",
		"garbage",
	};
	struct holder_entry e;
	size_t i;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		ck_assert_msg(holder_parse_line(lines[i], &e) == -1, "%s",
			      lines[i]);
	}
}
END_TEST

/* ---- holder_cmdline ---- */

#define CMD(s) (s), sizeof(s) - 1

START_TEST(test_holder_cmdline_joins_arguments_with_spaces)
{
	char buf[128];

	ck_assert_str_eq(holder_cmdline(CMD("flock\0-w\0"
					    "600\0/tmp/x\0"),
					buf, sizeof(buf)),
			 "flock -w 600 /tmp/x");
	/* An empty argument stays visible as two spaces. */
	ck_assert_str_eq(holder_cmdline(CMD("a\0\0b\0"), buf, sizeof(buf)),
			 "a  b");
	/* A process that rewrote its title without NULs. */
	ck_assert_str_eq(holder_cmdline(CMD("nginx: worker"), buf, sizeof(buf)),
			 "nginx: worker");
	ck_assert_str_eq(holder_cmdline("", 0, buf, sizeof(buf)), "");
}
END_TEST

START_TEST(test_holder_cmdline_non_printables_become_question_marks)
{
	char buf[128];

	ck_assert_str_eq(
		holder_cmdline(CMD("sh\0-c\0a\nb\tc\x1b[2J\0caf\xc3\xa9\0"),
			       buf, sizeof(buf)),
		"sh -c a?b?c?[2J caf??");
}
END_TEST

START_TEST(test_holder_cmdline_cuts_a_long_one_at_an_argument)
{
	char raw[512], buf[128];
	size_t n;

	/* "flock -w 600 /tmp/x -c " then a 200-byte script. */
	n = (size_t)snprintf(raw, sizeof(raw), "flock%c-w%c600%c/tmp/x%c-c%c",
			     0, 0, 0, 0, 0);
	memset(raw + n, 's', 200);
	raw[n + 200] = '\0';
	n += 201;
	/* The script's own words: cut where one ends. */
	memset(raw + n - 201 + 50, ' ', 1);
	ck_assert_str_eq(holder_cmdline(raw, n, buf, sizeof(buf)),
			 "flock -w 600 /tmp/x -c "
			 "ssssssssssssssssssssssssssssssssssssssssssssssssss "
			 "\xe2\x80\xa6");
	/* One long word: cut in it. */
	memset(raw, 'w', 300);
	holder_cmdline(raw, 300, buf, sizeof(buf));
	ck_assert_uint_eq(strlen(buf), 80 + 3);
	ck_assert_uint_eq(strspn(buf, "w"), 80);
	ck_assert_str_eq(buf + 80, "\xe2\x80\xa6");
	/* Cut right where an argument ends: " …". */
	memset(raw, 'a', 80);
	raw[80] = '\0';
	memcpy(raw + 81, "b", 2);
	holder_cmdline(raw, 83, buf, sizeof(buf));
	ck_assert_uint_eq(strspn(buf, "a"), 80);
	ck_assert_str_eq(buf + 80, " \xe2\x80\xa6");
	/* Exactly 80: nothing cut. */
	holder_cmdline(raw, 81, buf, sizeof(buf));
	ck_assert_uint_eq(strlen(buf), 80);
}
END_TEST

START_TEST(test_holder_cmdline_fits_any_buffer)
{
	char raw[300], buf[32];
	size_t len;

	memset(raw, 'x', sizeof(raw));
	for (len = 0; len <= sizeof(buf); len++) {
		memset(buf, '#', sizeof(buf));
		holder_cmdline(raw, sizeof(raw), buf, len);
		if (len > 0) {
			ck_assert_ptr_nonnull(memchr(buf, '\0', len));
		}
		if (len < sizeof(buf)) {
			ck_assert_int_eq(buf[len], '#');
		}
	}
}
END_TEST

/* ---- holder_describe ---- */

static struct holder_view
view_with_record(enum holder_state st)
{
	struct holder_view v;

	memset(&v, 0, sizeof(v));
	v.has_record = true;
	v.record.pid = 4242;
	snprintf(v.record.host, sizeof(v.record.host), "host-a");
	snprintf(v.record.command, sizeof(v.record.command), "./deploy.sh");
	v.record_state = st;
	return v;
}

static void
with_proc(struct holder_view *v, size_t n)
{
	v->nprocs = n;
	v->proc.pid = 4711;
	snprintf(v->proc.cmdline, sizeof(v->proc.cmdline),
		 "flock -w 600 /x -c sleep 100");
}

START_TEST(test_holder_describe_shows_the_record_where_the_kernel_agrees)
{
	struct holder_view v = view_with_record(HOLDER_HOLDS);
	char buf[1024];

	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "pid 4242 on host-a: ./deploy.sh");
	/* Named by /proc/locks, its descriptors out of sight. */
	v.record_state = HOLDER_UNCHECKED;
	v.record_named = true;
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "pid 4242 on host-a: ./deploy.sh");
}
END_TEST

START_TEST(test_holder_describe_names_the_kernels_holder)
{
	struct holder_view v;
	char buf[1024];

	memset(&v, 0, sizeof(v));
	with_proc(&v, 1);
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "pid 4711 (flock -w 600 /x -c sleep 100) "
			 "(from /proc/locks)");
	with_proc(&v, 2);
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "pid 4711 (flock -w 600 /x -c sleep 100), and 1 other "
			 "process (from /proc/locks)");
	with_proc(&v, 3);
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "pid 4711 (flock -w 600 /x -c sleep 100), and 2 other "
			 "processes (from /proc/locks)");
}
END_TEST

START_TEST(test_holder_describe_says_why_a_record_is_not_the_holder)
{
	static const struct {
		enum holder_state st;
		const char *note;
	} cases[] = {
		{ HOLDER_GONE,
		  "; the lock file names pid 4242, which is gone" },
		{ HOLDER_REUSED,
		  "; the lock file names pid 4242, which is "
		  "now another process" },
		{ HOLDER_NOT_HOLDING,
		  "; the lock file names pid 4242, which "
		  "does not hold it" },
		{ HOLDER_UNCHECKED,
		  "; the lock file names pid 4242, which "
		  "/proc/locks does not name" },
		{ HOLDER_ELSEWHERE,
		  "; the lock file names pid 4242 on host-a" },
	};
	struct holder_view v;
	char buf[1024], want[1024];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = view_with_record(cases[i].st);
		with_proc(&v, 1);
		snprintf(want, sizeof(want),
			 "pid 4711 (flock -w 600 /x -c sleep 100) "
			 "(from /proc/locks)%s",
			 cases[i].note);
		ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)), want);
	}
}
END_TEST

START_TEST(test_holder_describe_shows_an_unconfirmed_record_as_such)
{
	struct holder_view v = view_with_record(HOLDER_UNCHECKED);
	char buf[1024];

	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "pid 4242 on host-a: ./deploy.sh (from the lock "
			 "file's record)");
	v.record_state = HOLDER_ELSEWHERE;
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "pid 4242 on host-a: ./deploy.sh (from the lock "
			 "file's record)");
}
END_TEST

START_TEST(test_holder_describe_unknown_says_what_was_ruled_out)
{
	struct holder_view v;
	char buf[1024];

	memset(&v, 0, sizeof(v));
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "an unknown process");
	v.kernel_pid = 77;
	v.kernel_state = HOLDER_GONE;
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "an unknown process; /proc/locks names pid 77, which "
			 "is gone");
	v.kernel_state = HOLDER_NOT_HOLDING;
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "an unknown process; /proc/locks names pid 77, which "
			 "does not hold it");
	v = view_with_record(HOLDER_REUSED);
	v.kernel_pid = 77;
	v.kernel_state = HOLDER_GONE;
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "an unknown process; the lock file names pid 4242, "
			 "which is now another process; /proc/locks names pid "
			 "77, which is gone");
	/* One pid named by both is said once. */
	v = view_with_record(HOLDER_GONE);
	v.record_named = true;
	v.kernel_pid = 4242;
	v.kernel_state = HOLDER_GONE;
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "an unknown process; the lock file names pid 4242, "
			 "which is gone");
}
END_TEST

START_TEST(test_holder_describe_shows_the_start_in_local_time)
{
	const char *was = getenv("TZ");
	char saved[64] = "", buf[1024];
	struct holder_view v;

	if (was != NULL) {
		snprintf(saved, sizeof(saved), "%s", was);
	}
	memset(&v, 0, sizeof(v));
	with_proc(&v, 1);
	v.proc.started = 1700000000;
	setenv("TZ", "XYZ-5:30", 1);
	holder_describe(&v, buf, sizeof(buf));
	if (was != NULL) {
		setenv("TZ", saved, 1);
	} else {
		unsetenv("TZ");
	}
	tzset();
	ck_assert_str_eq(buf,
			 "pid 4711 (flock -w 600 /x -c sleep 100), "
			 "started 2023-11-15 03:43:20 +0530 "
			 "(from /proc/locks)");
}
END_TEST

/* ---- holder_look, on real processes ---- */

START_TEST(test_holder_look_names_a_process_holding_the_lock)
{
	char buf[1024], want[1024], cmd[128];
	struct holder_view v;
	pid_t pid;

	pid = start_holder(false);
	open_ours();
	holder_look(&lk, &v);
	ck_assert(!v.has_record);
	ck_assert_uint_eq(v.nprocs, 1);
	ck_assert_int_eq(v.proc.pid, pid);
	ck_assert(v.proc_seen);
	/* Started within the last minute or so (whole seconds, btime). */
	ck_assert_int_le(v.proc.started, time(NULL) + 2);
	ck_assert_int_ge(v.proc.started, time(NULL) - 60);
	cmdline_of(pid, cmd, sizeof(cmd));
	ck_assert_str_ne(cmd, "");
	ck_assert_str_eq(v.proc.cmdline, cmd);
	snprintf(want, sizeof(want), "pid %d (%s), started ", (int)pid, cmd);
	holder_describe(&v, buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, want, strlen(want)) == 0, "%s", buf);
	ck_assert_msg(strstr(buf, " (from /proc/locks)") != NULL, "%s", buf);
}
END_TEST

START_TEST(test_holder_look_finds_who_holds_a_lock_its_taker_left)
{
	struct holder_view v;
	pid_t pid;

	pid = start_holder(true);
	open_ours();
	holder_look(&lk, &v);
	/* /proc/locks names the grandchild; the child holds the lock. */
	ck_assert_uint_eq(v.nprocs, 1);
	ck_assert_int_eq(v.proc.pid, pid);
	ck_assert(v.proc_seen);
	ck_assert_int_gt(v.kernel_pid, 0);
	ck_assert_int_ne(v.kernel_pid, pid);
	ck_assert_int_eq(v.kernel_state, HOLDER_GONE);
}
END_TEST

START_TEST(test_holder_look_believes_a_record_the_kernel_confirms)
{
	char host[256], buf[1024];
	struct holder_view v;
	pid_t pid;

	our_host(host, sizeof(host));
	pid = start_holder(false);
	write_record(pid, host, (long long)time(NULL));
	open_ours();
	holder_look(&lk, &v);
	ck_assert(v.has_record);
	ck_assert_int_eq(v.record_state, HOLDER_HOLDS);
	ck_assert(v.record_named);
	holder_describe(&v, buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "pid ", 4) == 0 &&
			      strstr(buf, " (from ") == NULL &&
			      strstr(buf, ": deploy it") != NULL,
		      "%s", buf);
}
END_TEST

START_TEST(test_holder_look_never_believes_a_record_of_a_gone_pid)
{
	char host[256], buf[1024], want[128];
	struct holder_view v;
	pid_t pid, gone;

	our_host(host, sizeof(host));
	gone = gone_pid();
	write_record(gone, host, (long long)time(NULL));
	pid = start_holder(false);
	open_ours();
	holder_look(&lk, &v);
	ck_assert_int_eq(v.record_state, HOLDER_GONE);
	ck_assert_int_eq(v.proc.pid, pid);
	snprintf(want, sizeof(want),
		 "; the lock file names pid %d, which is gone", (int)gone);
	holder_describe(&v, buf, sizeof(buf));
	ck_assert_msg(strstr(buf, want) != NULL, "%s", buf);
}
END_TEST

START_TEST(test_holder_look_sees_a_reused_pid_by_its_start_time)
{
	char host[256];
	struct holder_view v;
	pid_t holder, other;

	our_host(host, sizeof(host));
	holder = start_holder(false);
	other = fork();
	ck_assert_int_ge(other, 0);
	if (other == 0) {
		for (;;) {
			pause();
		}
	}
	kids[nkids++] = other;
	open_ours();
	/* A live process that started long after the record was written. */
	write_record(other, host, 1000000000);
	holder_look(&lk, &v);
	ck_assert_int_eq(v.record_state, HOLDER_REUSED);
	/* The holder itself, but started after the record: not its writer. */
	write_record(holder, host, 1000000000);
	holder_look(&lk, &v);
	ck_assert_int_eq(v.record_state, HOLDER_REUSED);
	ck_assert(v.record_named);
	ck_assert_int_eq(v.proc.pid, holder);
	/* One that started before it, and holds nothing. */
	write_record(other, host, (long long)time(NULL) + 60);
	holder_look(&lk, &v);
	ck_assert_int_eq(v.record_state, HOLDER_NOT_HOLDING);
}
END_TEST

START_TEST(test_holder_look_takes_a_record_from_another_host_as_told)
{
	char buf[1024];
	struct holder_view v;

	write_record(1, "elsewhere.example", 1700000000);
	open_ours();
	holder_look(&lk, &v);
	ck_assert_int_eq(v.record_state, HOLDER_ELSEWHERE);
	ck_assert_uint_eq(v.nprocs, 0);
	holder_describe(&v, buf, sizeof(buf));
	ck_assert_msg(strncmp(buf, "pid 1 on elsewhere.example since ", 33) ==
				      0 &&
			      strstr(buf,
				     ": deploy it (from the lock file's "
				     "record)") != NULL,
		      "%s", buf);
}
END_TEST

START_TEST(test_holder_look_of_a_free_lock_names_nobody)
{
	char buf[1024];
	struct holder_view v;

	open_ours();
	holder_look(&lk, &v);
	ck_assert_uint_eq(v.nprocs, 0);
	ck_assert_int_eq(v.kernel_pid, 0);
	ck_assert_str_eq(holder_describe(&v, buf, sizeof(buf)),
			 "an unknown process");
}
END_TEST

Suite *
holder_suite(void)
{
	Suite *s = suite_create("holder");
	TCase *tc;

	tc = tcase_create("text");
	tcase_add_test(tc, test_holder_parse_line_reads_a_flock_entry);
	tcase_add_test(tc,
		       test_holder_parse_line_refuses_what_is_no_held_flock);
	tcase_add_test(tc, test_holder_cmdline_joins_arguments_with_spaces);
	tcase_add_test(
		tc, test_holder_cmdline_non_printables_become_question_marks);
	tcase_add_test(tc, test_holder_cmdline_cuts_a_long_one_at_an_argument);
	tcase_add_test(tc, test_holder_cmdline_fits_any_buffer);
	tcase_add_test(
		tc,
		test_holder_describe_shows_the_record_where_the_kernel_agrees);
	tcase_add_test(tc, test_holder_describe_names_the_kernels_holder);
	tcase_add_test(
		tc, test_holder_describe_says_why_a_record_is_not_the_holder);
	tcase_add_test(
		tc, test_holder_describe_shows_an_unconfirmed_record_as_such);
	tcase_add_test(tc,
		       test_holder_describe_unknown_says_what_was_ruled_out);
	tcase_add_test(tc, test_holder_describe_shows_the_start_in_local_time);
	suite_add_tcase(s, tc);

	tc = tcase_create("look");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_holder_look_names_a_process_holding_the_lock);
	tcase_add_test(tc,
		       test_holder_look_finds_who_holds_a_lock_its_taker_left);
	tcase_add_test(tc,
		       test_holder_look_believes_a_record_the_kernel_confirms);
	tcase_add_test(tc,
		       test_holder_look_never_believes_a_record_of_a_gone_pid);
	tcase_add_test(tc,
		       test_holder_look_sees_a_reused_pid_by_its_start_time);
	tcase_add_test(
		tc, test_holder_look_takes_a_record_from_another_host_as_told);
	tcase_add_test(tc, test_holder_look_of_a_free_lock_names_nobody);
	suite_add_tcase(s, tc);
	return s;
}
