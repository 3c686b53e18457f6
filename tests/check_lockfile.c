/*
 * lock.c: the canonical order of --lock files, opening them safely,
 * taking them, noticing a replaced file, waiting for one in a process of
 * its own, and the holder record written into the file.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_suites.h"
#include "lockfile.h"
#include "log.h"

static char dir[256];
static char real[PATH_MAX]; /* dir, resolved */
static char path[300];	    /* dir/lk */
static struct lock *locks;
static int nlocks;
static struct lock one; /* a lock made by hand, or by lock_prepare */
static int other = -1;	/* another open file description */
static pid_t waiter = -1;
static mode_t saved_umask;

/* Removes dir and everything in it (one level of subdirectories). */
static void
remove_tree(const char *top)
{
	char sub[PATH_MAX];
	struct dirent *e;
	struct stat st;
	DIR *d = opendir(top);

	if (d == NULL) {
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0) {
			continue;
		}
		snprintf(sub, sizeof(sub), "%s/%s", top, e->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode)) {
			remove_tree(sub);
		} else {
			unlink(sub);
		}
	}
	closedir(d);
	rmdir(top);
}

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	log_init(0);
	saved_umask = umask(022);
	umask(saved_umask);
	snprintf(dir, sizeof(dir), "%s/check_lock.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_ptr_nonnull(realpath(dir, real));
	snprintf(path, sizeof(path), "%s/lk", dir);
	locks = NULL;
	nlocks = 0;
	memset(&one, 0, sizeof(one));
	one.path = path;
	one.fd = -1;
	other = -1;
	waiter = -1;
}

static void
teardown(void)
{
	test_capture_end();
	if (waiter > 0) {
		kill(waiter, SIGKILL);
		waitpid(waiter, NULL, 0);
		waiter = -1;
	}
	if (locks != NULL) {
		lock_free(locks, nlocks > 0 ? (size_t)nlocks : 0);
		locks = NULL;
	}
	if (one.fd >= 0) {
		close(one.fd);
		one.fd = -1;
	}
	if (other >= 0) {
		close(other);
		other = -1;
	}
	umask(saved_umask);
	remove_tree(dir);
}

static void
make_file(const char *p, const char *text)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

#define ck_assert_contains(text, want)                                         \
	ck_assert_msg(strstr((text), (want)) != NULL,                          \
		      "'%s' not found in:\n%s", (want), (text))

/* ---- lock_prepare ---- */

START_TEST(test_lock_prepare_sorts_by_absolute_path)
{
	char a[320], b[320], c[320], want[3][PATH_MAX + 8];
	char *paths[3];

	snprintf(a, sizeof(a), "%s/zeta", dir);
	snprintf(b, sizeof(b), "%s/alpha", dir);
	snprintf(c, sizeof(c), "%s/mid", dir);
	paths[0] = a;
	paths[1] = b;
	paths[2] = c;
	snprintf(want[0], sizeof(want[0]), "%s/alpha", real);
	snprintf(want[1], sizeof(want[1]), "%s/mid", real);
	snprintf(want[2], sizeof(want[2]), "%s/zeta", real);
	nlocks = lock_prepare(paths, 3, &locks);
	ck_assert_int_eq(nlocks, 3);
	ck_assert_str_eq(locks[0].key, want[0]);
	ck_assert_str_eq(locks[1].key, want[1]);
	ck_assert_str_eq(locks[2].key, want[2]);
	/* The paths stay as given, each with its own key. */
	ck_assert_ptr_eq(locks[0].path, b);
	ck_assert_ptr_eq(locks[1].path, c);
	ck_assert_ptr_eq(locks[2].path, a);
	/* Nothing is opened or created yet. */
	ck_assert_int_eq(locks[0].fd, -1);
	ck_assert_int_eq(locks[1].fd, -1);
	ck_assert_int_eq(locks[2].fd, -1);
	ck_assert_int_eq(access(a, F_OK), -1);
}
END_TEST

/* "../../tmp/x" from the current directory, without changing it. */
static void
relative_to_cwd(char *buf, size_t len, const char *abs)
{
	char cwd[PATH_MAX];
	const char *p;
	size_t used = 0;

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	buf[0] = '\0';
	for (p = cwd; *p != '\0'; p++) {
		if (*p == '/' && p[1] != '\0') {
			used += (size_t)snprintf(buf + used, len - used, "../");
		}
	}
	if (strcmp(cwd, "/") == 0) {
		used = 0;
	}
	snprintf(buf + used, len - used, "%s", abs + 1);
}

START_TEST(test_lock_prepare_drops_duplicates_named_differently)
{
	char abs[PATH_MAX + 8], rel[PATH_MAX], dot[340], linkp[320], via[340];
	char other_p[320];
	char want[2][PATH_MAX + 8];
	char *paths[6];

	snprintf(abs, sizeof(abs), "%s/lk", real);
	relative_to_cwd(rel, sizeof(rel), abs);
	snprintf(dot, sizeof(dot), "%s/./lk", dir);
	snprintf(linkp, sizeof(linkp), "%s/link", dir);
	ck_assert_int_eq(symlink(real, linkp), 0);
	snprintf(via, sizeof(via), "%s/link/lk", dir);
	snprintf(other_p, sizeof(other_p), "%s/other", dir);
	paths[0] = rel;
	paths[1] = other_p;
	paths[2] = abs;
	paths[3] = dot;
	paths[4] = via;
	paths[5] = rel;
	snprintf(want[0], sizeof(want[0]), "%s/lk", real);
	snprintf(want[1], sizeof(want[1]), "%s/other", real);
	nlocks = lock_prepare(paths, 6, &locks);
	ck_assert_msg(nlocks == 2, "%d locks for 2 files (relative path %s)",
		      nlocks, rel);
	ck_assert_str_eq(locks[0].key, want[0]);
	ck_assert_str_eq(locks[1].key, want[1]);
}
END_TEST

START_TEST(test_lock_prepare_of_nothing_is_an_empty_list)
{
	nlocks = lock_prepare(NULL, 0, &locks);
	ck_assert_int_eq(nlocks, 0);
	ck_assert_ptr_nonnull(locks);
}
END_TEST

START_TEST(test_lock_prepare_fails_for_a_missing_directory)
{
	char good[320], bad[320], want[512];
	char *paths[2];
	struct lock *out = NULL;
	const char *err;
	int n;

	snprintf(good, sizeof(good), "%s/lk", dir);
	snprintf(bad, sizeof(bad), "%s/nodir/lk", dir);
	snprintf(want, sizeof(want),
		 "supervise: cannot open lock file '%s': "
		 "No such file or directory\n",
		 bad);
	paths[0] = good;
	paths[1] = bad;
	test_capture_begin();
	n = lock_prepare(paths, 2, &out);
	err = test_capture_end();
	ck_assert_int_eq(n, -1);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(access(bad, F_OK), -1);
}
END_TEST

/* ---- lock_open ---- */

START_TEST(test_lock_open_creates_a_missing_file_with_mode_0644)
{
	struct stat st;

	umask(022);
	ck_assert_int_eq(lock_open(&one), 0);
	ck_assert_int_gt(one.fd, 2);
	ck_assert_int_eq(fstat(one.fd, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_msg((st.st_mode & 07777) == 0644, "mode %o",
		      (unsigned)(st.st_mode & 07777));
	ck_assert_int_eq(st.st_size, 0);
	/* Close-on-exec, and blocking again for the waiter's flock(). */
	ck_assert(fcntl(one.fd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(fcntl(one.fd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_eq(fcntl(one.fd, F_GETFL) & O_ACCMODE, O_RDWR);
}
END_TEST

START_TEST(test_lock_open_keeps_an_existing_file_and_its_text)
{
	char buf[16] = "";

	make_file(path, "keep me");
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(lock_open(&one), 0);
	ck_assert_int_eq(pread(one.fd, buf, sizeof(buf) - 1, 0), 7);
	ck_assert_str_eq(buf, "keep me");
}
END_TEST

START_TEST(test_lock_open_refuses_a_symbolic_link)
{
	char target[320], want[512];
	const char *err;
	int r, saved_errno;

	snprintf(target, sizeof(target), "%s/target", dir);
	ck_assert_int_eq(symlink(target, path), 0);
	snprintf(want, sizeof(want),
		 "supervise: lock file '%s' is a symbolic link\n", path);
	test_capture_begin();
	errno = 0;
	r = lock_open(&one);
	saved_errno = errno;
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_int_eq(saved_errno, ELOOP);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(one.fd, -1);
	/* Nothing was created through it. */
	ck_assert_int_eq(access(target, F_OK), -1);
}
END_TEST

START_TEST(test_lock_open_refuses_a_symbolic_link_to_a_regular_file)
{
	char target[320];
	int r;

	snprintf(target, sizeof(target), "%s/target", dir);
	make_file(target, "");
	ck_assert_int_eq(symlink(target, path), 0);
	test_capture_begin();
	r = lock_open(&one);
	test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_int_eq(one.fd, -1);
}
END_TEST

START_TEST(test_lock_open_refuses_a_fifo_without_hanging)
{
	char want[512];
	const char *err;
	int r;

	ck_assert_int_eq(mkfifo(path, 0644), 0);
	snprintf(want, sizeof(want),
		 "supervise: lock file '%s' is not a regular file\n", path);
	test_capture_begin();
	r = lock_open(&one);
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(one.fd, -1);
}
END_TEST

START_TEST(test_lock_open_refuses_a_device)
{
	const char *err;
	int r;

	one.path = "/dev/null";
	test_capture_begin();
	r = lock_open(&one);
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err,
			 "supervise: lock file '/dev/null' is not a "
			 "regular file\n");
	ck_assert_int_eq(one.fd, -1);
}
END_TEST

/* open(2) itself refuses a directory for writing (EISDIR). */
START_TEST(test_lock_open_refuses_a_directory)
{
	char want[512];
	const char *err;
	int r;

	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(want, sizeof(want),
		 "supervise: lock file '%s' is not a regular file\n", path);
	test_capture_begin();
	r = lock_open(&one);
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_int_eq(one.fd, -1);
	ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(test_lock_open_fails_for_a_missing_directory)
{
	char bad[320], want[512];
	const char *err;
	int r;

	snprintf(bad, sizeof(bad), "%s/nodir/lk", dir);
	one.path = bad;
	snprintf(want, sizeof(want),
		 "supervise: cannot open lock file '%s': "
		 "No such file or directory\n",
		 bad);
	test_capture_begin();
	r = lock_open(&one);
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err, want);
}
END_TEST

/* ---- lock_try, lock_is_current ---- */

START_TEST(test_lock_try_fails_while_another_description_holds_it)
{
	ck_assert_int_eq(lock_open(&one), 0);
	other = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(other, 0);
	ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), 0);
	ck_assert_int_eq(lock_try(&one), 0);
	ck_assert_int_eq(lock_try(&one), 0);
	ck_assert_int_eq(flock(other, LOCK_UN), 0);
	ck_assert_int_eq(lock_try(&one), 1);
	/* Now ours: the other description cannot take it... */
	ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	/* ...and taking it again on ours is no error. */
	ck_assert_int_eq(lock_try(&one), 1);
	/* Closing our descriptor releases it. */
	close(one.fd);
	one.fd = -1;
	ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), 0);
}
END_TEST

START_TEST(test_lock_try_is_taken_once_the_holder_closes_its_file)
{
	ck_assert_int_eq(lock_open(&one), 0);
	other = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(other, 0);
	ck_assert_int_eq(flock(other, LOCK_EX), 0);
	ck_assert_int_eq(lock_try(&one), 0);
	close(other);
	other = -1;
	ck_assert_int_eq(lock_try(&one), 1);
}
END_TEST

START_TEST(test_lock_try_on_a_bad_descriptor_is_an_error)
{
	one.fd = -1;
	errno = 0;
	ck_assert_int_eq(lock_try(&one), -1);
	ck_assert_int_eq(errno, EBADF);
}
END_TEST

START_TEST(test_lock_is_current_until_the_file_is_unlinked)
{
	ck_assert_int_eq(lock_open(&one), 0);
	ck_assert_int_eq(lock_try(&one), 1);
	ck_assert_int_eq(lock_is_current(&one), 1);
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(lock_is_current(&one), 0);
	/* A new file at the path is not the one we hold either. */
	make_file(path, "");
	ck_assert_int_eq(lock_is_current(&one), 0);
}
END_TEST

START_TEST(test_lock_is_current_until_a_file_is_renamed_over_it)
{
	char fresh[320];

	ck_assert_int_eq(lock_open(&one), 0);
	ck_assert_int_eq(lock_try(&one), 1);
	ck_assert_int_eq(lock_is_current(&one), 1);
	snprintf(fresh, sizeof(fresh), "%s/fresh", dir);
	make_file(fresh, "");
	ck_assert_int_eq(rename(fresh, path), 0);
	ck_assert_int_eq(lock_is_current(&one), 0);
}
END_TEST

START_TEST(test_lock_is_current_not_for_a_symlink_to_it)
{
	char moved[320];

	ck_assert_int_eq(lock_open(&one), 0);
	snprintf(moved, sizeof(moved), "%s/moved", dir);
	ck_assert_int_eq(rename(path, moved), 0);
	ck_assert_int_eq(symlink(moved, path), 0);
	ck_assert_int_eq(lock_is_current(&one), 0);
}
END_TEST

/* ---- lock_start_waiter ---- */

/* Waits up to limit_ms for pid to end; returns its status, or -1. */
static int
wait_ms(pid_t pid, int limit_ms)
{
	int status, i;

	for (i = 0; i < limit_ms; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid) {
			return status;
		}
		ck_assert_int_eq(r, 0);
		usleep(1000);
	}
	return -1;
}

START_TEST(test_lock_start_waiter_exits_0_once_the_holder_releases)
{
	int third, status;

	ck_assert_int_eq(lock_open(&one), 0);
	other = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(other, 0);
	ck_assert_int_eq(flock(other, LOCK_EX), 0);
	waiter = lock_start_waiter(&one);
	ck_assert_int_gt(waiter, 0);
	/* It waits as long as the competing holder holds on. */
	ck_assert_int_eq(wait_ms(waiter, 200), -1);
	ck_assert_int_eq(flock(other, LOCK_UN), 0);
	status = wait_ms(waiter, 10000);
	ck_assert_msg(status != -1, "the waiter did not take the lock");
	waiter = -1;
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	/* The lock is now held by our description, the waiter gone. */
	ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), -1);
	ck_assert_int_eq(errno, EWOULDBLOCK);
	third = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(third, 0);
	ck_assert_int_eq(flock(third, LOCK_EX | LOCK_NB), -1);
	close(third);
	ck_assert_int_eq(lock_try(&one), 1);
	close(one.fd);
	one.fd = -1;
	ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), 0);
}
END_TEST

START_TEST(test_lock_start_waiter_of_a_free_lock_exits_0_at_once)
{
	int status;

	ck_assert_int_eq(lock_open(&one), 0);
	waiter = lock_start_waiter(&one);
	ck_assert_int_gt(waiter, 0);
	status = wait_ms(waiter, 10000);
	ck_assert_int_ne(status, -1);
	waiter = -1;
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	other = open(path, O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(other, 0);
	ck_assert_int_eq(flock(other, LOCK_EX | LOCK_NB), -1);
}
END_TEST

/* ---- the holder record ---- */

START_TEST(test_lock_holder_round_trip_through_the_file)
{
	char *paths[1] = { path };
	char *command[] = { "sh", "-c", "echo run1", NULL };
	char host[256] = "";
	struct lock_holder h;
	time_t before, after;

	nlocks = lock_prepare(paths, 1, &locks);
	ck_assert_int_eq(nlocks, 1);
	ck_assert_int_eq(lock_open(&locks[0]), 0);
	ck_assert_int_eq(lock_try(&locks[0]), 1);
	before = time(NULL);
	lock_write_holder(&locks[0], 4242, command);
	after = time(NULL);
	memset(&h, 'x', sizeof(h));
	ck_assert_int_eq(lock_read_holder(&locks[0], &h), 0);
	ck_assert_int_eq(h.pid, 4242);
	ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
	ck_assert_str_eq(h.host, host);
	ck_assert_msg(h.since >= before && h.since <= after,
		      "since %lld, not in [%lld, %lld]", (long long)h.since,
		      (long long)before, (long long)after);
	ck_assert_str_eq(h.command, "sh -c echo run1");
}
END_TEST

START_TEST(test_lock_holder_record_is_in_the_documented_format)
{
	char *command[] = { "sleep", "30", NULL };
	char host[256] = "", want[1024], text[1024] = "";
	time_t before;
	ssize_t n;

	ck_assert_int_eq(lock_open(&one), 0);
	ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
	before = time(NULL);
	lock_write_holder(&one, 77, command);
	n = pread(one.fd, text, sizeof(text) - 1, 0);
	ck_assert_int_gt(n, 0);
	snprintf(
		want, sizeof(want),
		"supervise-lock 1\npid 77\nhost %s\nsince %lld\ncommand sleep 30\n",
		host, (long long)before);
	/* The second may have ticked over: compare around it. */
	if (strcmp(text, want) != 0) {
		snprintf(want, sizeof(want),
			 "supervise-lock 1\npid 77\nhost %s\nsince %lld\n"
			 "command sleep 30\n",
			 host, (long long)before + 1);
	}
	ck_assert_str_eq(text, want);
}
END_TEST

START_TEST(test_lock_holder_record_replaces_a_longer_one)
{
	char *longer[] = { "a-rather-long-command",
			   "with",
			   "many",
			   "words",
			   "to",
			   "leave",
			   "a",
			   "tail",
			   NULL };
	char *shorter[] = { "x", NULL };
	struct lock_holder h;
	struct stat st;
	char text[1024] = "";

	ck_assert_int_eq(lock_open(&one), 0);
	lock_write_holder(&one, 1, longer);
	lock_write_holder(&one, 2, shorter);
	ck_assert_int_eq(lock_read_holder(&one, &h), 0);
	ck_assert_int_eq(h.pid, 2);
	ck_assert_str_eq(h.command, "x");
	ck_assert_int_eq(fstat(one.fd, &st), 0);
	ck_assert_int_eq(pread(one.fd, text, sizeof(text) - 1, 0), st.st_size);
	ck_assert_msg(strstr(text, "tail") == NULL, "left over: %s", text);
}
END_TEST

START_TEST(test_lock_holder_command_non_printables_become_question_marks)
{
	char *command[] = { "a\tb",	   "c\nd", "\x01\x7f",
			    "caf\xc3\xa9", "e\rf", NULL };
	struct lock_holder h;

	ck_assert_int_eq(lock_open(&one), 0);
	lock_write_holder(&one, 5, command);
	ck_assert_int_eq(lock_read_holder(&one, &h), 0);
	/* A newline in an argument cannot break the record into lines. */
	ck_assert_int_eq(h.pid, 5);
	ck_assert_str_eq(h.command, "a?b c?d ?? caf?? e?f");
}
END_TEST

START_TEST(test_lock_holder_very_long_command_is_cut)
{
	char arg[1000], *command[] = { arg, arg, NULL };
	struct lock_holder h;

	memset(arg, 'c', sizeof(arg) - 1);
	arg[sizeof(arg) - 1] = '\0';
	ck_assert_int_eq(lock_open(&one), 0);
	lock_write_holder(&one, 6, command);
	ck_assert_int_eq(lock_read_holder(&one, &h), 0);
	ck_assert_int_eq(h.pid, 6);
	ck_assert_uint_gt(strlen(h.command), 100);
	ck_assert_uint_lt(strlen(h.command), sizeof(h.command));
	ck_assert_uint_eq(strspn(h.command, "c"), strlen(h.command));
}
END_TEST

START_TEST(test_lock_read_holder_of_an_empty_file_is_nothing)
{
	struct lock_holder h;

	ck_assert_int_eq(lock_open(&one), 0);
	ck_assert_int_eq(lock_read_holder(&one, &h), -1);
}
END_TEST

START_TEST(test_lock_parse_holder_reads_a_full_record)
{
	static const char rec[] = "supervise-lock 1\npid 9805\nhost vm\n"
				  "since 1700000000\ncommand sh -c echo run1\n";
	struct lock_holder h;

	ck_assert_int_eq(lock_parse_holder(rec, sizeof(rec) - 1, &h), 0);
	ck_assert_int_eq(h.pid, 9805);
	ck_assert_str_eq(h.host, "vm");
	ck_assert_int_eq(h.since, 1700000000);
	ck_assert_str_eq(h.command, "sh -c echo run1");
}
END_TEST

START_TEST(test_lock_parse_holder_does_not_read_past_len)
{
	static const char rec[] = "supervise-lock 1\npid 42\nhost abcdef\n";
	struct lock_holder h;
	char *copy;
	size_t len = strlen("supervise-lock 1\npid 42\nhost abc");

	/* Exactly len bytes, with nothing after them to run into. */
	copy = malloc(len);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, rec, len);
	ck_assert_int_eq(lock_parse_holder(copy, len, &h), 0);
	free(copy);
	ck_assert_int_eq(h.pid, 42);
	ck_assert_str_eq(h.host, "abc");
}
END_TEST

struct bad_record {
	const char *text;
	size_t len;
};

#define REC(s)                                                                 \
	{                                                                      \
		s, sizeof(s) - 1                                               \
	}

static const struct bad_record bad_records[] = {
	REC(""),
	REC("hello world\n"),
	REC("\x00\x01\x02\xff\xfe garbage \x00 pid 5\n"),
	/* No magic line, or another one. */
	REC("pid 42\nhost vm\nsince 1700000000\ncommand x\n"),
	REC("\nsupervise-lock 1\npid 42\nhost vm\n"),
	REC(" supervise-lock 1\npid 42\nhost vm\n"),
	REC("supervise-lock 2\npid 42\nhost vm\n"),
	REC("SUPERVISE-LOCK 1\npid 42\nhost vm\n"),
	REC("supervise-lock 1 pid 42 host vm\n"),
	/* The magic line cut short. */
	REC("s"),
	REC("supervise-lock"),
	REC("supervise-lock 1"),
	/* The magic line alone, or with nothing it knows. */
	REC("supervise-lock 1\n"),
	REC("supervise-lock 1\n\n\n"),
	REC("supervise-lock 1\nfoo bar\nbaz\n"),
	REC("supervise-lock 1\npid"),
	REC("supervise-lock 1\npid\nhost\n"),
	/* A record cut before the first digit of its pid. */
	REC("supervise-lock 1\npid "),
	/* A pid with no number in it is no holder. */
	REC("supervise-lock 1\npid x\n"),
};

START_TEST(test_lock_parse_holder_refuses_text_that_is_no_record)
{
	const struct bad_record *b = &bad_records[_i];
	struct lock_holder h;
	int r;

	r = lock_parse_holder(b->text, b->len, &h);
	ck_assert_msg(r == -1,
		      "record %d (%zu bytes) parsed: pid %ld, "
		      "host '%s'",
		      _i, b->len, h.pid, h.host);
}
END_TEST

START_TEST(test_lock_parse_holder_every_cut_of_a_record_is_safe)
{
	static const char rec[] = "supervise-lock 1\npid 4242\nhost vm\n"
				  "since 1700000000\ncommand sh -c echo run1\n";
	size_t len, pid_digit = strlen("supervise-lock 1\npid ");
	struct lock_holder h;
	char *copy;
	int r;

	for (len = 0; len <= sizeof(rec) - 1; len++) {
		copy = malloc(len ? len : 1);
		ck_assert_ptr_nonnull(copy);
		memcpy(copy, rec, len);
		r = lock_parse_holder(copy, len, &h);
		free(copy);
		if (len > pid_digit) {
			ck_assert_msg(r == 0, "cut at %zu: refused", len);
			ck_assert_int_gt(h.pid, 0);
		} else if (len < pid_digit) {
			/* (Cut right after "pid ": a case of bad_records.) */
			ck_assert_msg(r == -1, "cut at %zu: pid %ld", len,
				      h.pid);
		}
		ck_assert_uint_lt(strlen(h.host), sizeof(h.host));
		ck_assert_uint_lt(strlen(h.command), sizeof(h.command));
	}
}
END_TEST

START_TEST(test_lock_parse_holder_missing_fields_are_empty)
{
	static const char pid_only[] = "supervise-lock 1\npid 42\n";
	static const char no_since[] = "supervise-lock 1\npid 42\nhost vm\n"
				       "command make\n";
	static const char no_command[] = "supervise-lock 1\nhost vm\n"
					 "pid 42\nsince 1700000000\n";
	struct lock_holder h;

	ck_assert_int_eq(lock_parse_holder(pid_only, sizeof(pid_only) - 1, &h),
			 0);
	ck_assert_int_eq(h.pid, 42);
	ck_assert_str_eq(h.host, "");
	ck_assert_int_eq(h.since, 0);
	ck_assert_str_eq(h.command, "");

	ck_assert_int_eq(lock_parse_holder(no_since, sizeof(no_since) - 1, &h),
			 0);
	ck_assert_int_eq(h.pid, 42);
	ck_assert_str_eq(h.host, "vm");
	ck_assert_int_eq(h.since, 0);
	ck_assert_str_eq(h.command, "make");

	/* In any order; the last line without its newline counts too. */
	ck_assert_int_eq(lock_parse_holder(no_command, sizeof(no_command) - 2,
					   &h),
			 0);
	ck_assert_int_eq(h.pid, 42);
	ck_assert_str_eq(h.host, "vm");
	ck_assert_int_eq(h.since, 1700000000);
	ck_assert_str_eq(h.command, "");
}
END_TEST

START_TEST(test_lock_parse_holder_unknown_lines_are_skipped)
{
	static const char rec[] = "supervise-lock 1\nversion 7\nnoise\n"
				  "pid 42\nhostname nope\nhost vm\n";
	struct lock_holder h;

	ck_assert_int_eq(lock_parse_holder(rec, sizeof(rec) - 1, &h), 0);
	ck_assert_int_eq(h.pid, 42);
	ck_assert_str_eq(h.host, "vm");
}
END_TEST

START_TEST(test_lock_parse_holder_non_printables_become_question_marks)
{
	static const char rec[] =
		"supervise-lock 1\npid 42\nhost a\0b\x1b[31m\n"
		"command x\ty\xff\r\n";
	struct lock_holder h;

	ck_assert_int_eq(lock_parse_holder(rec, sizeof(rec) - 1, &h), 0);
	ck_assert_str_eq(h.host, "a?b?[31m");
	ck_assert_str_eq(h.command, "x?y??");
}
END_TEST

START_TEST(test_lock_parse_holder_cuts_very_long_fields)
{
	struct lock_holder h;
	char rec[4096];
	char longhost[1001], longcmd[1501];
	int len;

	memset(longhost, 'h', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = '\0';
	memset(longcmd, 'c', sizeof(longcmd) - 1);
	longcmd[sizeof(longcmd) - 1] = '\0';
	len = snprintf(rec, sizeof(rec),
		       "supervise-lock 1\npid 42\nhost %s\n"
		       "command %s\nsince 1700000000\n",
		       longhost, longcmd);
	ck_assert_int_lt(len, (int)sizeof(rec));
	memset(&h, 'x', sizeof(h));
	ck_assert_int_eq(lock_parse_holder(rec, (size_t)len, &h), 0);
	ck_assert_int_eq(h.pid, 42);
	ck_assert_uint_eq(strlen(h.host), sizeof(h.host) - 1);
	ck_assert_uint_eq(strspn(h.host, "h"), sizeof(h.host) - 1);
	ck_assert_uint_eq(strlen(h.command), sizeof(h.command) - 1);
	ck_assert_uint_eq(strspn(h.command, "c"), sizeof(h.command) - 1);
	/* The line after the long ones is still read. */
	ck_assert_int_eq(h.since, 1700000000);
}
END_TEST

/* ---- lock_describe_holder ---- */

/* The time as the messages show it: local date, time and UTC offset. */
static void
hhmmss(time_t t, char *buf, size_t len)
{
	struct tm tm;

	tzset();
	ck_assert_ptr_nonnull(localtime_r(&t, &tm));
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm);
}

/* Runs with TZ set to zone (NULL: unset), then restores it. */
static const char *
format_in_zone(const char *zone, time_t t, char *buf, size_t len)
{
	const char *was = getenv("TZ");
	char saved[64] = "";

	if (was != NULL) {
		snprintf(saved, sizeof(saved), "%s", was);
	}
	if (zone != NULL) {
		setenv("TZ", zone, 1);
	} else {
		unsetenv("TZ");
	}
	lock_format_time(t, buf, len);
	if (was != NULL) {
		setenv("TZ", saved, 1);
	} else {
		unsetenv("TZ");
	}
	tzset();
	return buf;
}

START_TEST(test_lock_format_time_has_date_time_and_utc_offset)
{
	char buf[64];

	ck_assert_str_eq(format_in_zone("UTC0", 1700000000, buf, sizeof(buf)),
			 "2023-11-14 22:13:20 +0000");
	/* POSIX TZ: five and a half hours east of UTC, no tz database. */
	ck_assert_str_eq(format_in_zone("XYZ-5:30", 1700000000, buf,
					sizeof(buf)),
			 "2023-11-15 03:43:20 +0530");
	ck_assert_str_eq(format_in_zone("ABC+7", 0, buf, sizeof(buf)),
			 "1969-12-31 17:00:00 -0700");
}
END_TEST

START_TEST(test_lock_format_time_truncates_to_the_buffer)
{
	char buf[8];

	memset(buf, 'x', sizeof(buf));
	format_in_zone("UTC0", 1700000000, buf, sizeof(buf));
	ck_assert_ptr_nonnull(memchr(buf, '\0', sizeof(buf)));
}
END_TEST

START_TEST(test_lock_describe_holder_formats_pid_host_since_command)
{
	struct lock_holder h = { .pid = 4242, .since = 1700000000 };
	char buf[512], want[512], when[40];

	snprintf(h.host, sizeof(h.host), "host-a");
	snprintf(h.command, sizeof(h.command), "abra app deploy");
	hhmmss(h.since, when, sizeof(when));
	snprintf(want, sizeof(want),
		 "pid 4242 on host-a since %s: "
		 "abra app deploy",
		 when);
	ck_assert_ptr_eq(lock_describe_holder(&h, buf, sizeof(buf)), buf);
	ck_assert_str_eq(buf, want);
}
END_TEST

START_TEST(test_lock_describe_holder_leaves_out_what_is_unknown)
{
	struct lock_holder h = { .pid = 7 };
	char buf[512], want[512], when[40];

	ck_assert_str_eq(lock_describe_holder(&h, buf, sizeof(buf)),
			 "pid 7 on ?");
	snprintf(h.host, sizeof(h.host), "vm");
	ck_assert_str_eq(lock_describe_holder(&h, buf, sizeof(buf)),
			 "pid 7 on vm");
	snprintf(h.command, sizeof(h.command), "make");
	ck_assert_str_eq(lock_describe_holder(&h, buf, sizeof(buf)),
			 "pid 7 on vm: make");
	h.command[0] = '\0';
	h.since = 1700000000;
	hhmmss(h.since, when, sizeof(when));
	snprintf(want, sizeof(want), "pid 7 on vm since %s", when);
	ck_assert_str_eq(lock_describe_holder(&h, buf, sizeof(buf)), want);
}
END_TEST

START_TEST(test_lock_describe_holder_truncates_to_the_buffer)
{
	struct lock_holder h = { .pid = 4242 };
	char buf[8];

	snprintf(h.host, sizeof(h.host), "host-a");
	memset(buf, 'x', sizeof(buf));
	lock_describe_holder(&h, buf, sizeof(buf));
	ck_assert_str_eq(buf, "pid 424");
}
END_TEST

START_TEST(test_lock_describe_holder_of_a_written_record)
{
	char *command[] = { "sh", "-c", "echo run1", NULL };
	char host[256] = "", buf[1024], want[1024], when[40];
	struct lock_holder h;

	ck_assert_int_eq(lock_open(&one), 0);
	lock_write_holder(&one, 9805, command);
	ck_assert_int_eq(lock_read_holder(&one, &h), 0);
	ck_assert_int_eq(gethostname(host, sizeof(host) - 1), 0);
	hhmmss(h.since, when, sizeof(when));
	snprintf(want, sizeof(want), "pid 9805 on %s since %s: sh -c echo run1",
		 host, when);
	ck_assert_str_eq(lock_describe_holder(&h, buf, sizeof(buf)), want);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *
lockfile_suite(void)
{
	Suite *s = suite_create("lockfile");
	TCase *tc;

	tc = tcase_create("prepare");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lock_prepare_sorts_by_absolute_path);
	tcase_add_test(tc,
		       test_lock_prepare_drops_duplicates_named_differently);
	tcase_add_test(tc, test_lock_prepare_of_nothing_is_an_empty_list);
	tcase_add_test(tc, test_lock_prepare_fails_for_a_missing_directory);
	suite_add_tcase(s, tc);

	tc = tcase_create("open");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
		       test_lock_open_creates_a_missing_file_with_mode_0644);
	tcase_add_test(tc, test_lock_open_keeps_an_existing_file_and_its_text);
	tcase_add_test(tc, test_lock_open_refuses_a_symbolic_link);
	tcase_add_test(
		tc, test_lock_open_refuses_a_symbolic_link_to_a_regular_file);
	tcase_add_test(tc, test_lock_open_refuses_a_fifo_without_hanging);
	tcase_add_test(tc, test_lock_open_refuses_a_device);
	tcase_add_test(tc, test_lock_open_refuses_a_directory);
	tcase_add_test(tc, test_lock_open_fails_for_a_missing_directory);
	suite_add_tcase(s, tc);

	tc = tcase_create("take");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc,
		       test_lock_try_fails_while_another_description_holds_it);
	tcase_add_test(tc,
		       test_lock_try_is_taken_once_the_holder_closes_its_file);
	tcase_add_test(tc, test_lock_try_on_a_bad_descriptor_is_an_error);
	tcase_add_test(tc, test_lock_is_current_until_the_file_is_unlinked);
	tcase_add_test(tc,
		       test_lock_is_current_until_a_file_is_renamed_over_it);
	tcase_add_test(tc, test_lock_is_current_not_for_a_symlink_to_it);
	tcase_add_test(tc,
		       test_lock_start_waiter_exits_0_once_the_holder_releases);
	tcase_add_test(tc,
		       test_lock_start_waiter_of_a_free_lock_exits_0_at_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("holder");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_lock_holder_round_trip_through_the_file);
	tcase_add_test(tc, test_lock_holder_record_is_in_the_documented_format);
	tcase_add_test(tc, test_lock_holder_record_replaces_a_longer_one);
	tcase_add_test(
		tc,
		test_lock_holder_command_non_printables_become_question_marks);
	tcase_add_test(tc, test_lock_holder_very_long_command_is_cut);
	tcase_add_test(tc, test_lock_read_holder_of_an_empty_file_is_nothing);
	tcase_add_test(tc, test_lock_describe_holder_of_a_written_record);
	suite_add_tcase(s, tc);

	/* Text only: no scratch directory. */
	tc = tcase_create("record");
	tcase_add_test(tc, test_lock_parse_holder_reads_a_full_record);
	tcase_add_test(tc, test_lock_parse_holder_does_not_read_past_len);
	tcase_add_loop_test(
		tc, test_lock_parse_holder_refuses_text_that_is_no_record, 0,
		N(bad_records));
	tcase_add_test(tc,
		       test_lock_parse_holder_every_cut_of_a_record_is_safe);
	tcase_add_test(tc, test_lock_parse_holder_missing_fields_are_empty);
	tcase_add_test(tc, test_lock_parse_holder_unknown_lines_are_skipped);
	tcase_add_test(
		tc,
		test_lock_parse_holder_non_printables_become_question_marks);
	tcase_add_test(tc, test_lock_parse_holder_cuts_very_long_fields);
	tcase_add_test(
		tc, test_lock_describe_holder_formats_pid_host_since_command);
	tcase_add_test(tc,
		       test_lock_describe_holder_leaves_out_what_is_unknown);
	tcase_add_test(tc, test_lock_describe_holder_truncates_to_the_buffer);
	tcase_add_test(tc, test_lock_format_time_has_date_time_and_utc_offset);
	tcase_add_test(tc, test_lock_format_time_truncates_to_the_buffer);
	suite_add_tcase(s, tc);
	return s;
}
