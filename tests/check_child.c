/* child.c: exit statuses, and forking and exec'ing COMMAND. */
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_suites.h"
#include "child.h"
#include "options.h"
#include "signals.h"

static struct saved_signals saved;
static struct sig_state ss;
static char dir[256];
static char file[300];
static pid_t started = -1;

/*
 * Each test gets a scratch directory, and whatever it started is killed:
 * under CK_FORK=no a leftover "sleep" would outlive the test.
 */
static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	signals_save(&saved);
	memset(&ss, 0, sizeof(ss));
	ss.fd = -1;
	started = -1;
	snprintf(dir, sizeof(dir), "%s/check_child.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/file", dir);
}

static void
teardown(void)
{
	char sub[320];

	if (started > 0) {
		kill(started, SIGKILL);
		waitpid(started, NULL, 0);
	}
	if (ss.fd >= 0) {
		close(ss.fd);
	}
	signals_restore(&saved);
	snprintf(sub, sizeof(sub), "%s/dir", dir);
	rmdir(sub);
	unlink(file);
	rmdir(dir);
}

static int
reap(pid_t pid, int options)
{
	int status = 0;
	pid_t r;

	do {
		r = waitpid(pid, &status, options);
	} while (r < 0 && errno == EINTR);
	ck_assert_int_eq(r, pid);
	if (pid == started && !WIFSTOPPED(status)) {
		started = -1;
	}
	return status;
}

/* A child that ends as told, with nothing inherited in the way. */
static pid_t
fork_child(int code, int sig)
{
	pid_t pid = fork();
	sigset_t none;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (sig != 0) {
			signal(sig, SIG_DFL);
			/* No core file for a signal that would dump one. */
			prctl(PR_SET_DUMPABLE, 0);
			raise(sig);
		}
		_exit(code);
	}
	return pid;
}

static const int exit_codes[] = { 0, 1, 255 };

START_TEST(test_child_exit_status_passes_an_exit_code_through)
{
	int code = exit_codes[_i];

	ck_assert_int_eq(child_exit_status(reap(fork_child(code, 0), 0)),
			 code);
}
END_TEST

static const int death_signals[] = { SIGTERM, SIGKILL, SIGINT, SIGSEGV };

START_TEST(test_child_exit_status_is_128_plus_the_signal)
{
	int sig = death_signals[_i];
	int status = reap(fork_child(0, sig), 0);

	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(child_exit_status(status), 128 + sig);
}
END_TEST

/* Neither an exit nor a death: supervise's own failure status. */
START_TEST(test_child_exit_status_of_a_stopped_child_is_125)
{
	pid_t pid = fork_child(0, SIGSTOP);
	int status;

	started = pid;
	status = reap(pid, WUNTRACED);
	ck_assert(WIFSTOPPED(status));
	ck_assert_int_eq(child_exit_status(status), EXIT_FAILURE_SUPERVISE);
}
END_TEST

START_TEST(test_child_exec_status_not_found_is_127)
{
	ck_assert_int_eq(child_exec_status(ENOENT), 127);
	ck_assert_int_eq(child_exec_status(ENOTDIR), 127);
}
END_TEST

START_TEST(test_child_exec_status_not_runnable_is_126)
{
	ck_assert_int_eq(child_exec_status(EACCES), 126);
	ck_assert_int_eq(child_exec_status(ENOEXEC), 126);
	ck_assert_int_eq(child_exec_status(EPERM), 126);
	ck_assert_int_eq(child_exec_status(E2BIG), 126);
}
END_TEST

static pid_t
start(char **argv, bool new_session, int *exec_errno)
{
	struct child_spec spec;
	pid_t pid;

	child_spec_init(&spec, argv, &ss);
	spec.new_session = new_session;
	*exec_errno = -1;
	pid = child_start(&spec, exec_errno);
	ck_assert_msg(pid > 0, "child_start: %s", strerror(errno));
	started = pid;
	return pid;
}

START_TEST(test_child_start_runs_the_command)
{
	int err;
	pid_t pid;

	ck_assert_int_eq(sig_setup(&ss), 0);
	pid = start((char *[]){ "sh", "-c", "exit 7", NULL }, false, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(child_exit_status(reap(pid, 0)), 7);
}
END_TEST

static void
ck_assert_exec_fails(char **argv, int want_errno)
{
	int err, status;
	pid_t pid;

	ck_assert_int_eq(sig_setup(&ss), 0);
	pid = start(argv, false, &err);
	ck_assert_msg(err == want_errno, "'%s': errno %d (%s), not %d (%s)",
		      argv[0], err, strerror(err), want_errno,
		      strerror(want_errno));
	/* The failed child has exited with the status supervise exits with. */
	status = reap(pid, 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), child_exec_status(want_errno));
}

START_TEST(test_child_start_reports_enoent_for_an_unknown_command)
{
	ck_assert_exec_fails((char *[]){ "supervise-test-no-such-command",
					 NULL },
			     ENOENT);
}
END_TEST

START_TEST(test_child_start_reports_enoent_for_a_missing_path)
{
	char path[320];

	snprintf(path, sizeof(path), "%s/missing", dir);
	ck_assert_exec_fails((char *[]){ path, NULL }, ENOENT);
}
END_TEST

START_TEST(test_child_start_reports_enotdir_for_a_path_through_a_file)
{
	char path[320];
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);

	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/x", file);
	ck_assert_exec_fails((char *[]){ path, NULL }, ENOTDIR);
}
END_TEST

START_TEST(test_child_start_reports_eacces_for_a_directory)
{
	char path[320];

	snprintf(path, sizeof(path), "%s/dir", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	ck_assert_exec_fails((char *[]){ path, NULL }, EACCES);
}
END_TEST

/* Even root may not exec a file that has no execute bit at all. */
START_TEST(test_child_start_reports_eacces_for_a_file_not_executable)
{
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	ck_assert_exec_fails((char *[]){ file, NULL }, EACCES);
}
END_TEST

/* The line the kernel shows for a set, as in /proc/PID/status. */
static void
proc_line(const char *name, const sigset_t *set, char *buf, size_t len)
{
	unsigned long long bits = 0;
	int sig;

	for (sig = 1; sig <= 64; sig++) {
		if (sigismember(set, sig) == 1) {
			bits |= 1ULL << (sig - 1);
		}
	}
	snprintf(buf, len, "%s:\t%016llx\n", name, bits);
}

/* The line of /proc/PID/status that starts with name. */
static void
read_status_line(pid_t pid, const char *name, char *buf, size_t len)
{
	char path[64], line[256];
	size_t n = strlen(name);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	buf[0] = '\0';
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			snprintf(buf, len, "%s", line);
			break;
		}
	}
	fclose(f);
	ck_assert_msg(buf[0] != '\0', "no %s in %s", name, path);
}

START_TEST(test_child_start_restores_the_signal_mask)
{
	char cmd[512], want[64], got[256] = "";
	sigset_t orig, now;
	int err;
	pid_t pid;
	FILE *f;

	/* Something blocked that sig_setup() does not block itself. */
	sigemptyset(&orig);
	sigaddset(&orig, SIGPROF);
	sigaddset(&orig, SIGRTMIN + 3);
	ck_assert_int_eq(sigprocmask(SIG_SETMASK, &orig, NULL), 0);
	proc_line("SigBlk", &orig, want, sizeof(want));

	ck_assert_int_eq(sig_setup(&ss), 0);
	/* Else the test would pass without anything to restore. */
	sigprocmask(SIG_SETMASK, NULL, &now);
	ck_assert(sigismember(&now, SIGTERM) == 1);

	snprintf(cmd, sizeof(cmd), "exec grep SigBlk /proc/self/status > %s",
		 file);
	pid = start((char *[]){ "sh", "-c", cmd, NULL }, false, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(child_exit_status(reap(pid, 0)), 0);
	f = fopen(file, "re");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(got, sizeof(got), f));
	fclose(f);
	ck_assert_str_eq(got, want);
}
END_TEST

/* Whether sig is in the "SigIgn:\tHEX\n" line of /proc/PID/status. */
static bool
in_proc_set(const char *line, int sig)
{
	const char *hex = strchr(line, '\t');

	ck_assert_ptr_nonnull(hex);
	return (strtoull(hex + 1, NULL, 16) >> (sig - 1)) & 1;
}

/*
 * What COMMAND inherits ignored is what supervise inherited ignored: an
 * ignored SIGCHLD and SIGINT (a background job) stay so, and SIGPIPE, which
 * supervise ignores for itself, is back to its default.
 */
START_TEST(test_child_start_restores_the_inherited_ignored_signals)
{
	char got[256];
	int err;
	pid_t pid;

	signal(SIGCHLD, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	ck_assert_int_eq(sig_setup(&ss), 0);
	pid = start((char *[]){ "sleep", "30", NULL }, false, &err);
	ck_assert_int_eq(err, 0);
	/* exec keeps SIG_IGN: the running command shows what it was given. */
	read_status_line(pid, "SigIgn", got, sizeof(got));
	ck_assert_msg(in_proc_set(got, SIGCHLD), "SIGCHLD not ignored: %s",
		      got);
	ck_assert_msg(in_proc_set(got, SIGINT), "SIGINT not ignored: %s", got);
	ck_assert_msg(!in_proc_set(got, SIGPIPE), "SIGPIPE ignored: %s", got);
	ck_assert_msg(!in_proc_set(got, SIGTERM), "SIGTERM ignored: %s", got);
}
END_TEST

/* Field 6 of /proc/PID/stat, after the command name in parentheses. */
static pid_t
session_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int sid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p + 1, " %*c %*d %*d %d", &sid), 1);
	return sid;
}

START_TEST(test_child_start_new_session_makes_a_session_leader)
{
	int err;
	pid_t pid;

	ck_assert_int_eq(sig_setup(&ss), 0);
	pid = start((char *[]){ "sleep", "30", NULL }, true, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(session_of(pid), pid);
}
END_TEST

START_TEST(test_child_start_without_new_session_stays_in_ours)
{
	int err;
	pid_t pid;

	ck_assert_int_eq(sig_setup(&ss), 0);
	pid = start((char *[]){ "sleep", "30", NULL }, false, &err);
	ck_assert_int_eq(err, 0);
	ck_assert_int_eq(session_of(pid), getsid(0));
}
END_TEST

/*
 * A parent that died between recording its pid and the fork must not get
 * a COMMAND nobody supervises: with die_with_parent, the child exits 125
 * without exec'ing.
 */
START_TEST(test_child_start_does_not_exec_for_a_parent_already_gone)
{
	struct child_spec spec;
	char cmd[512];
	int err = -1;
	pid_t pid;

	ck_assert_int_eq(sig_setup(&ss), 0);
	snprintf(cmd, sizeof(cmd), "echo ran > %s", file);
	child_spec_init(&spec, (char *[]){ "sh", "-c", cmd, NULL }, &ss);
	spec.die_with_parent = true;
	spec.parent = getppid();
	pid = child_start(&spec, &err);
	ck_assert_int_gt(pid, 0);
	started = pid;
	ck_assert_int_eq(child_exit_status(reap(pid, 0)),
			 EXIT_FAILURE_SUPERVISE);
	ck_assert_int_eq(access(file, F_OK), -1);
}
END_TEST

/*
 * With die_with_parent, COMMAND is armed with PR_SET_PDEATHSIG(SIGKILL):
 * when the process that started it dies, so does it.  We are a subreaper,
 * so the orphan comes to us and we can see how it ended.
 */
START_TEST(test_child_start_command_dies_with_its_parent)
{
	int fds[2], status;
	pid_t mid, cmd = -1;

	if (!test_forks()) {
		return;	/* would make the shared runner a subreaper */
	}
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	mid = fork();
	ck_assert_int_ge(mid, 0);
	if (mid == 0) {
		struct child_spec spec;
		int err;
		pid_t pid;

		if (sig_setup(&ss) < 0) {
			_exit(1);
		}
		child_spec_init(&spec, (char *[]){ "sleep", "30", NULL }, &ss);
		spec.die_with_parent = true;
		pid = child_start(&spec, &err);
		if (pid < 0 || err != 0 ||
		    write(fds[1], &pid, sizeof(pid)) != sizeof(pid)) {
			_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &cmd, sizeof(cmd)), sizeof(cmd));
	close(fds[0]);
	started = cmd;
	ck_assert_int_eq(child_exit_status(reap(mid, 0)), 0);
	status = reap(cmd, 0);
	ck_assert(WIFSIGNALED(status));
	ck_assert_int_eq(WTERMSIG(status), SIGKILL);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *
child_suite(void)
{
	Suite *s = suite_create("child");
	TCase *tc;

	tc = tcase_create("status");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc,
	                    test_child_exit_status_passes_an_exit_code_through,
	                    0, N(exit_codes));
	tcase_add_loop_test(tc, test_child_exit_status_is_128_plus_the_signal,
	                    0, N(death_signals));
	tcase_add_test(tc, test_child_exit_status_of_a_stopped_child_is_125);
	tcase_add_test(tc, test_child_exec_status_not_found_is_127);
	tcase_add_test(tc, test_child_exec_status_not_runnable_is_126);
	suite_add_tcase(s, tc);

	tc = tcase_create("start");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_child_start_runs_the_command);
	tcase_add_test(tc,
	               test_child_start_reports_enoent_for_an_unknown_command);
	tcase_add_test(tc, test_child_start_reports_enoent_for_a_missing_path);
	tcase_add_test(
	    tc, test_child_start_reports_enotdir_for_a_path_through_a_file);
	tcase_add_test(tc, test_child_start_reports_eacces_for_a_directory);
	tcase_add_test(
	    tc, test_child_start_reports_eacces_for_a_file_not_executable);
	tcase_add_test(tc, test_child_start_restores_the_signal_mask);
	tcase_add_test(tc,
	               test_child_start_restores_the_inherited_ignored_signals);
	tcase_add_test(tc, test_child_start_new_session_makes_a_session_leader);
	tcase_add_test(tc, test_child_start_without_new_session_stays_in_ours);
	tcase_add_test(
	    tc, test_child_start_does_not_exec_for_a_parent_already_gone);
	tcase_add_test(tc, test_child_start_command_dies_with_its_parent);
	suite_add_tcase(s, tc);
	return s;
}
