/*
 * teardown.c: the once-only claim, which events call for the teardown,
 * what teardown_prepare() holds from the start, and whole teardowns run
 * as the supervisor's loop runs them (start, reap, step, pump, NULL).
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_suites.h"
#include "loop.h"
#include "log.h"
#include "options.h"
#include "parse.h"
#include "signals.h"
#include "teardown.h"
#include "tree.h"

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

static char dir[256];
static char logpath[300];
static char outpath[300];
static struct options opt;
static struct teardown td;
static bool td_prepared;
static struct sig_state ss;
static struct saved_signals saved;

/* stderr, redirected into a memory file while a test reads what it says. */

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* What teardown_prepare() and a teardown leave open or allocated. */
static void
td_release(struct teardown *t)
{
	/*
	 * Once started, the read end of the pipe is out_fd, closed by the
	 * teardown itself at its end; pipe_r then names a closed descriptor.
	 */
	if (t->state == TD_IDLE) {
		close_fd(&t->pipe_r);
	} else {
		close_fd(&t->out_fd);
		t->pipe_r = -1;
	}
	close_fd(&t->pipe_w);
	close_fd(&t->cwd_fd);
	close_fd(&t->sh_fd);
	close_fd(&t->log_fd);
	tree_stop_free(&t->stop);
}

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	signals_save(&saved);
	log_init(0);
	snprintf(dir, sizeof(dir), "%s/check_teardown.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(logpath, sizeof(logpath), "%s/teardown.log", dir);
	snprintf(outpath, sizeof(outpath), "%s/out", dir);
	memset(&opt, 0, sizeof(opt));
	opt.kill_after_ns = 2 * SEC;
	opt.stop_signal = SIGTERM;
	opt.teardown_on = EVENT_TIMEOUT | EVENT_CANCEL;
	opt.teardown_timeout_ns = 20 * SEC;
	memset(&td, 0, sizeof(td));
	td.pipe_r = td.pipe_w = td.cwd_fd = td.sh_fd = td.log_fd = -1;
	td.out_fd = -1;
	td_prepared = false;
	/* COMMAND's signal state: ours as it is, SIGPIPE back to default. */
	memset(&ss, 0, sizeof(ss));
	sigprocmask(SIG_SETMASK, NULL, &ss.orig_mask);
	ss.pipe_was_default = true;
	ss.fd = -1;
}

static void
teardown(void)
{
	test_capture_end();
	if (td_prepared && teardown_alive(&td) && td.rec->pid > 0) {
		kill(-td.rec->pid, SIGKILL);
		kill(td.rec->pid, SIGKILL);
		waitpid(td.rec->pid, NULL, 0);
	}
	td_release(&td);
	signals_restore(&saved);
	unlink(logpath);
	unlink(outpath);
	rmdir(dir);
}

/* The whole text of a file (static buffer), or "" if it cannot be read. */
static const char *
slurp(const char *path)
{
	static char text[16384];
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	text[0] = '\0';
	if (fd >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
	}
	text[n > 0 ? n : 0] = '\0';
	return text;
}

#define ck_assert_contains(text, want)                                         \
	ck_assert_msg(strstr((text), (want)) != NULL,                          \
		      "'%s' not found in:\n%s", (want), (text))

/*
 * Runs a started teardown to its end as the supervisor's loop does: reaps
 * children, steps at each wake-up and at the deadline, copies its output.
 * Fails the test if it takes longer than limit.
 */
static void
run_to_end(struct teardown *t, uint64_t limit)
{
	uint64_t begin = loop_now(), now, next;
	struct pollfd pfd;
	pid_t pid;
	int ws;

	for (;;) {
		teardown_pump(t);
		while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
			teardown_reaped(t, pid, ws);
		}
		now = loop_now();
		if (teardown_step(t, now)) {
			return;
		}
		ck_assert_msg(now - begin < limit, "the teardown did not end");
		next = teardown_deadline(t);
		pfd.fd = t->out_fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		/* No SIGCHLD here: look for the reap every few ms. */
		poll(&pfd, 1,
		     next <= now		 ? 0 :
			     next - now < 5 * MS ? (int)((next - now) / MS) :
						   5);
	}
}

/* The tests that run a teardown make the test process a subreaper, as the
 * supervisor is, so that nothing of the teardown's tree escapes it. */
static bool
forked_supervisor(void)
{
	if (!test_forks()) {
		return false;
	}
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	return true;
}

static void
prepare(const char *command)
{
	opt.teardown = command;
	ck_assert_int_eq(teardown_prepare(&td, &opt, NULL), 0);
	td_prepared = true;
}

/* ---- the claim ---- */

START_TEST(test_teardown_claim_first_caller_wins_supervisor_first)
{
	int claim = TEARDOWN_UNCLAIMED;

	ck_assert(teardown_claim(&claim, TEARDOWN_BY_SUPERVISOR));
	ck_assert_int_eq(claim, TEARDOWN_BY_SUPERVISOR);
	ck_assert(!teardown_claim(&claim, TEARDOWN_BY_FRONT));
	ck_assert_int_eq(claim, TEARDOWN_BY_SUPERVISOR);
	/* Not even the winner gets it twice. */
	ck_assert(!teardown_claim(&claim, TEARDOWN_BY_SUPERVISOR));
	ck_assert_int_eq(claim, TEARDOWN_BY_SUPERVISOR);
}
END_TEST

START_TEST(test_teardown_claim_first_caller_wins_front_first)
{
	int claim = TEARDOWN_UNCLAIMED;

	ck_assert(teardown_claim(&claim, TEARDOWN_BY_FRONT));
	ck_assert_int_eq(claim, TEARDOWN_BY_FRONT);
	ck_assert(!teardown_claim(&claim, TEARDOWN_BY_FRONT));
	ck_assert(!teardown_claim(&claim, TEARDOWN_BY_SUPERVISOR));
	ck_assert_int_eq(claim, TEARDOWN_BY_FRONT);
}
END_TEST

/* The page front and supervisor share: a claim word, a start line. */
struct race {
	int claim;
	int ready;
	int go;
};

/* A racer: waits for the start, claims, exits 1 if it won, 0 if not. */
static void __attribute__((noreturn)) racer(struct race *r, int who)
{
	__atomic_add_fetch(&r->ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&r->go, __ATOMIC_SEQ_CST)) {
		continue;
	}
	_exit(teardown_claim(&r->claim, who) ? 1 : 0);
}

START_TEST(test_teardown_claim_two_processes_race_exactly_one_wins)
{
	struct race *r;
	int round, k, status, wins, who;
	pid_t pids[2];

	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(r, MAP_FAILED);
	for (round = 0; round < 200; round++) {
		memset(r, 0, sizeof(*r));
		for (k = 0; k < 2; k++) {
			pids[k] = fork();
			if (pids[k] == 0) {
				racer(r,
				      k == 0 ? TEARDOWN_BY_SUPERVISOR :
					       TEARDOWN_BY_FRONT);
			}
			ck_assert_int_gt(pids[k], 0);
		}
		while (__atomic_load_n(&r->ready, __ATOMIC_SEQ_CST) < 2) {
			sched_yield();
		}
		__atomic_store_n(&r->go, 1, __ATOMIC_SEQ_CST);
		wins = 0;
		who = TEARDOWN_UNCLAIMED;
		for (k = 0; k < 2; k++) {
			ck_assert_int_eq(waitpid(pids[k], &status, 0), pids[k]);
			ck_assert(WIFEXITED(status));
			if (WEXITSTATUS(status) == 1) {
				wins++;
				who = k == 0 ? TEARDOWN_BY_SUPERVISOR :
					       TEARDOWN_BY_FRONT;
			}
		}
		ck_assert_msg(wins == 1, "round %d: %d winners", round, wins);
		ck_assert_int_eq(r->claim, who);
	}
	munmap(r, sizeof(*r));
}
END_TEST

/* ---- teardown_is_due ---- */

static const unsigned events[] = {
	EVENT_TIMEOUT,
	EVENT_CANCEL,
	EVENT_FAILURE,
	EVENT_SUCCESS,
};

START_TEST(test_teardown_is_due_for_exactly_the_events_asked)
{
	unsigned on = events[_i], e;
	size_t k;

	opt.teardown = "true";
	opt.teardown_on = on;
	td.opt = &opt;
	for (k = 0; k < sizeof(events) / sizeof(events[0]); k++) {
		e = events[k];
		ck_assert_msg(teardown_is_due(&td, e) == (e == on),
			      "--teardown-on=%u, event %u", on, e);
	}
	opt.teardown_on = EVENT_ALL;
	for (k = 0; k < sizeof(events) / sizeof(events[0]); k++) {
		ck_assert(teardown_is_due(&td, events[k]));
	}
	opt.teardown_on = EVENT_ALL & ~on;
	for (k = 0; k < sizeof(events) / sizeof(events[0]); k++) {
		e = events[k];
		ck_assert(teardown_is_due(&td, e) == (e != on));
	}
}
END_TEST

START_TEST(test_teardown_is_due_never_without_a_teardown_command)
{
	size_t k;

	opt.teardown = NULL;
	opt.teardown_on = EVENT_ALL;
	ck_assert_int_eq(teardown_prepare(&td, &opt, NULL), 0);
	td_prepared = true;
	for (k = 0; k < sizeof(events) / sizeof(events[0]); k++) {
		ck_assert(!teardown_is_due(&td, events[k]));
	}
	/* A zeroed teardown (never prepared) is not due either. */
	memset(&td, 0, sizeof(td));
	td.pipe_r = td.pipe_w = td.cwd_fd = td.sh_fd = td.log_fd = -1;
	td.out_fd = -1;
	td.rec = &td.own;
	ck_assert(!teardown_is_due(&td, EVENT_TIMEOUT));
}
END_TEST

/* ---- teardown_prepare ---- */

START_TEST(test_teardown_prepare_without_a_command_holds_nothing)
{
	opt.teardown = NULL;
	ck_assert_int_eq(teardown_prepare(&td, &opt, NULL), 0);
	td_prepared = true;
	ck_assert_ptr_eq(td.opt, &opt);
	ck_assert_int_eq(td.state, TD_IDLE);
	ck_assert_int_eq(td.sh_fd, -1);
	ck_assert_int_eq(td.cwd_fd, -1);
	ck_assert_int_eq(td.log_fd, -1);
	ck_assert_int_eq(td.pipe_r, -1);
	ck_assert_int_eq(td.pipe_w, -1);
	ck_assert_int_eq(td.out_fd, -1);
}
END_TEST

/* A bad --teardown-log is reported at the start, -T or not. */
START_TEST(test_teardown_prepare_without_a_command_still_checks_the_log)
{
	char path[320], want[512];
	const char *err;
	int r;

	opt.teardown = NULL;
	opt.teardown_log = logpath;
	ck_assert_int_eq(teardown_prepare(&td, &opt, NULL), 0);
	td_prepared = true;
	ck_assert_int_eq(td.sh_fd, -1);
	ck_assert_int_eq(td.pipe_r, -1);
	close_fd(&td.log_fd);

	snprintf(path, sizeof(path), "%s/nodir/teardown.log", dir);
	snprintf(want, sizeof(want),
		 "supervise: cannot open teardown log '%s': "
		 "No such file or directory\n",
		 path);
	opt.teardown_log = path;
	test_capture_begin();
	r = teardown_prepare(&td, &opt, NULL);
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err, want);
}
END_TEST

static void
ck_assert_same_file(int fd, const char *path)
{
	struct stat a, b;

	ck_assert_int_eq(fstat(fd, &a), 0);
	ck_assert_int_eq(stat(path, &b), 0);
	ck_assert_msg(a.st_dev == b.st_dev && a.st_ino == b.st_ino,
		      "descriptor %d is not %s", fd, path);
}

START_TEST(test_teardown_prepare_opens_the_shell_the_cwd_and_the_log)
{
	struct stat st;

	opt.teardown_log = logpath;
	prepare("true");
	ck_assert_int_eq(td.state, TD_IDLE);
	ck_assert_int_gt(td.sh_fd, 2);
	ck_assert_same_file(td.sh_fd, "/bin/sh");
	ck_assert_int_gt(td.cwd_fd, 2);
	ck_assert_same_file(td.cwd_fd, ".");
	ck_assert_int_gt(td.log_fd, 2);
	ck_assert_same_file(td.log_fd, logpath);
	ck_assert_int_gt(td.pipe_r, 2);
	ck_assert_int_gt(td.pipe_w, 2);
	/* None of them leaks into COMMAND. */
	ck_assert(fcntl(td.sh_fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(td.cwd_fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(td.log_fd, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(td.pipe_r, F_GETFD) & FD_CLOEXEC);
	ck_assert(fcntl(td.pipe_w, F_GETFD) & FD_CLOEXEC);
	/* The log is appended to. */
	ck_assert(fcntl(td.log_fd, F_GETFL) & O_APPEND);
	ck_assert_int_eq(stat(logpath, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
}
END_TEST

START_TEST(test_teardown_prepare_appends_to_an_existing_log)
{
	int fd = open(logpath, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "before\n", 7), 7);
	close(fd);
	opt.teardown_log = logpath;
	prepare("true");
	ck_assert_int_eq(write(td.log_fd, "after\n", 6), 6);
	ck_assert_str_eq(slurp(logpath), "before\nafter\n");
}
END_TEST

START_TEST(test_teardown_prepare_fails_for_a_log_it_cannot_open)
{
	char path[320], want[512];
	const char *err;
	int r;

	snprintf(path, sizeof(path), "%s/nodir/teardown.log", dir);
	snprintf(want, sizeof(want),
		 "supervise: cannot open teardown log '%s': "
		 "No such file or directory\n",
		 path);
	opt.teardown = "true";
	opt.teardown_log = path;
	test_capture_begin();
	r = teardown_prepare(&td, &opt, NULL);
	td_prepared = true;
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(td.log_fd, -1);
}
END_TEST

START_TEST(test_teardown_prepare_fails_for_a_log_that_is_a_directory)
{
	char want[512];
	const char *err;
	int r;

	snprintf(want, sizeof(want),
		 "supervise: cannot open teardown log '%s': Is a directory\n",
		 dir);
	opt.teardown = "true";
	opt.teardown_log = dir;
	test_capture_begin();
	r = teardown_prepare(&td, &opt, NULL);
	td_prepared = true;
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err, want);
}
END_TEST

/* ---- teardown_failed, from the recorded outcome alone ---- */

START_TEST(test_teardown_failed_only_for_a_bad_outcome)
{
	struct teardown t;

	memset(&t, 0, sizeof(t));
	t.rec = &t.own;
	t.rec->wstatus = 0; /* exit 0 */
	ck_assert(!teardown_failed(&t));
	t.rec->wstatus = 3 << 8; /* exit 3 */
	ck_assert(teardown_failed(&t));
	t.rec->wstatus = SIGKILL; /* killed by SIGKILL */
	ck_assert(teardown_failed(&t));
	t.rec->wstatus = 0;
	t.rec->timed_out = true;
	ck_assert(teardown_failed(&t));
	t.rec->timed_out = false;
	t.rec->start_errno = ENOENT;
	ck_assert(teardown_failed(&t));
}
END_TEST

/* ---- whole teardowns ---- */

START_TEST(test_teardown_runs_a_failing_command_and_logs_its_output)
{
	const char *err, *log;
	uint64_t now;

	if (!forked_supervisor()) {
		return; /* reaps any child: not in the shared runner */
	}
	opt.teardown_log = logpath;
	prepare("echo hi; exit 3");
	test_capture_begin();
	now = loop_now();
	ck_assert_int_eq(teardown_start(&td, "timeout", 124,
					"killed by SIGTERM", 4242, &ss, now),
			 0);
	ck_assert_int_eq(td.state, TD_RUNNING);
	ck_assert_int_gt(td.rec->pid, 0);
	ck_assert(teardown_alive(&td));
	ck_assert_uint_eq(teardown_deadline(&td), now + 20 * SEC);
	/* Only the teardown's tree holds the writer now. */
	ck_assert_int_eq(td.pipe_w, -1);
	run_to_end(&td, 10 * SEC);
	err = test_capture_end();
	ck_assert_int_eq(td.state, TD_DONE);
	ck_assert(!teardown_alive(&td));
	ck_assert(!td.rec->timed_out);
	ck_assert(WIFEXITED(td.rec->wstatus));
	ck_assert_int_eq(WEXITSTATUS(td.rec->wstatus), 3);
	ck_assert(teardown_failed(&td));
	ck_assert_int_eq(td.out_fd, -1);
	ck_assert_uint_eq(teardown_deadline(&td), UINT64_MAX);
	ck_assert_contains(err,
			   "supervise: teardown started (reason: timeout)\n");
	ck_assert_contains(err, "\nhi\n");
	ck_assert_contains(err, "supervise: teardown failed in ");
	ck_assert_contains(err, " (exit 3)\n");

	log = slurp(logpath);
	ck_assert_msg(strncmp(log, "supervise: teardown started at ", 31) == 0,
		      "log: %s", log);
	ck_assert_contains(log,
			   "Z (reason: timeout, pid 4242, command killed "
			   "by SIGTERM)\nhi\nsupervise: teardown failed in ");
	ck_assert_contains(log, " (exit 3)\n");
	/* The log ends with the result line. */
	ck_assert_str_eq(log + strlen(log) - 9, "(exit 3)\n");
}
END_TEST

START_TEST(test_teardown_that_exits_0_has_not_failed)
{
	const char *err;

	if (!forked_supervisor()) {
		return;
	}
	prepare("true");
	test_capture_begin();
	ck_assert_int_eq(teardown_start(&td, "cancel", 143, "killed by SIGTERM",
					getpid(), &ss, loop_now()),
			 0);
	run_to_end(&td, 10 * SEC);
	err = test_capture_end();
	ck_assert(WIFEXITED(td.rec->wstatus));
	ck_assert_int_eq(WEXITSTATUS(td.rec->wstatus), 0);
	ck_assert(!td.rec->timed_out);
	ck_assert(!teardown_failed(&td));
	ck_assert_contains(err, "supervise: teardown finished in ");
	ck_assert_contains(err, " (exit 0)\n");
}
END_TEST

START_TEST(test_teardown_gets_the_supervise_environment)
{
	char command[400], line[300];
	int reason = 0, exit_status = 0, cmd_status = 0, pid = 0, mark = 0;
	FILE *f;

	if (!forked_supervisor()) {
		return; /* changes the environment */
	}
	/* A stale value from an outer supervise is replaced, not doubled. */
	ck_assert_int_eq(setenv("SUPERVISE_REASON", "stale", 1), 0);
	ck_assert_int_eq(setenv("CHECK_TEARDOWN_MARK", "kept", 1), 0);
	snprintf(command, sizeof(command), "env > '%s'", outpath);
	prepare(command);
	test_capture_begin();
	ck_assert_int_eq(teardown_start(&td, "timeout", 124,
					"killed by SIGTERM", 4242, &ss,
					loop_now()),
			 0);
	run_to_end(&td, 10 * SEC);
	test_capture_end();
	ck_assert(!teardown_failed(&td));
	f = fopen(outpath, "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "SUPERVISE_REASON=", 17) == 0) {
			ck_assert_str_eq(line, "SUPERVISE_REASON=timeout\n");
			reason++;
		} else if (strncmp(line, "SUPERVISE_EXIT_STATUS=", 22) == 0) {
			ck_assert_str_eq(line, "SUPERVISE_EXIT_STATUS=124\n");
			exit_status++;
		} else if (strncmp(line, "SUPERVISE_COMMAND_STATUS=", 25) ==
			   0) {
			ck_assert_str_eq(line,
					 "SUPERVISE_COMMAND_STATUS="
					 "killed by SIGTERM\n");
			cmd_status++;
		} else if (strncmp(line, "SUPERVISE_PID=", 14) == 0) {
			ck_assert_str_eq(line, "SUPERVISE_PID=4242\n");
			pid++;
		} else if (strcmp(line, "CHECK_TEARDOWN_MARK=kept\n") == 0) {
			mark++;
		}
	}
	fclose(f);
	ck_assert_int_eq(reason, 1);
	ck_assert_int_eq(exit_status, 1);
	ck_assert_int_eq(cmd_status, 1);
	ck_assert_int_eq(pid, 1);
	ck_assert_int_eq(mark, 1);
}
END_TEST

/* The directory of teardown_prepare(), whatever the cwd is at the start. */
START_TEST(test_teardown_runs_in_the_directory_of_prepare_with_no_stdin)
{
	char command[400], real[PATH_MAX], want[PATH_MAX + 16];

	if (!forked_supervisor()) {
		return; /* changes the working directory */
	}
	ck_assert_ptr_nonnull(realpath(dir, real));
	ck_assert_int_eq(chdir(dir), 0);
	snprintf(command, sizeof(command),
		 "{ pwd -P; read x && echo input || echo eof; } > '%s'",
		 outpath);
	prepare(command);
	ck_assert_int_eq(chdir("/"), 0);
	test_capture_begin();
	ck_assert_int_eq(teardown_start(&td, "cancel", 130, "killed by SIGINT",
					getpid(), &ss, loop_now()),
			 0);
	run_to_end(&td, 10 * SEC);
	test_capture_end();
	ck_assert(!teardown_failed(&td));
	snprintf(want, sizeof(want), "%s\neof\n", real);
	ck_assert_str_eq(slurp(outpath), want);
}
END_TEST

START_TEST(test_teardown_timeout_stops_it_and_counts_as_failed)
{
	const char *err;
	uint64_t begin;
	pid_t pid;

	if (!forked_supervisor()) {
		return;
	}
	opt.teardown_timeout_ns = 200 * MS;
	opt.teardown_log = logpath;
	prepare("sleep 10");
	test_capture_begin();
	begin = loop_now();
	ck_assert_int_eq(teardown_start(&td, "timeout", 124,
					"killed by SIGTERM", getpid(), &ss,
					begin),
			 0);
	ck_assert_uint_eq(teardown_deadline(&td), begin + 200 * MS);
	pid = td.rec->pid;
	run_to_end(&td, 8 * SEC);
	err = test_capture_end();
	ck_assert_msg(loop_now() - begin < 5 * SEC, "took %llu ms",
		      (unsigned long long)((loop_now() - begin) / MS));
	ck_assert(td.rec->timed_out);
	ck_assert(teardown_failed(&td));
	ck_assert(!teardown_alive(&td));
	ck_assert(WIFSIGNALED(td.rec->wstatus));
	ck_assert_int_eq(WTERMSIG(td.rec->wstatus), SIGTERM);
	/* Gone and reaped, and nothing of its tree is left. */
	ck_assert_int_eq(kill(pid, 0), -1);
	ck_assert_int_eq(errno, ESRCH);
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 0);
	ck_assert_contains(err,
			   "supervise: teardown timed out after 200ms; "
			   "stopping it with SIGTERM\n");
	ck_assert_contains(err, "supervise: teardown timed out in ");
	ck_assert_contains(err, " (killed by SIGTERM)\n");
	ck_assert_contains(slurp(logpath), " (killed by SIGTERM)\n");
}
END_TEST

START_TEST(test_teardown_timeout_with_kill_after_0_uses_sigkill)
{
	const char *err;

	if (!forked_supervisor()) {
		return;
	}
	opt.teardown_timeout_ns = 100 * MS;
	opt.kill_after_ns = 0;
	prepare("trap '' TERM; sleep 10");
	test_capture_begin();
	ck_assert_int_eq(teardown_start(&td, "timeout", 124,
					"killed by SIGTERM", getpid(), &ss,
					loop_now()),
			 0);
	run_to_end(&td, 8 * SEC);
	err = test_capture_end();
	ck_assert(td.rec->timed_out);
	ck_assert(WIFSIGNALED(td.rec->wstatus));
	ck_assert_int_eq(WTERMSIG(td.rec->wstatus), SIGKILL);
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 0);
	ck_assert_contains(err, "stopping it with SIGKILL\n");
}
END_TEST

/* Its leftovers go once its main process has exited. */
START_TEST(test_teardown_leftovers_are_stopped_when_it_exits)
{
	if (!forked_supervisor()) {
		return;
	}
	prepare("sleep 10 & exit 0");
	test_capture_begin();
	ck_assert_int_eq(teardown_start(&td, "exit", 1, "exited 1", getpid(),
					&ss, loop_now()),
			 0);
	run_to_end(&td, 8 * SEC);
	test_capture_end();
	ck_assert(!teardown_failed(&td));
	ck_assert_int_eq(tree_signal(0, false, 0, NULL), 0);
}
END_TEST

START_TEST(test_teardown_that_cannot_start_is_done_and_failed)
{
	char path[320];
	const char *err;
	int fd;

	snprintf(path, sizeof(path), "%s/not-a-shell", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	prepare("true");
	/* As if /bin/sh had lost its execute bit. */
	close(td.sh_fd);
	td.sh_fd = open(path, O_PATH | O_CLOEXEC);
	ck_assert_int_ge(td.sh_fd, 0);
	test_capture_begin();
	ck_assert_int_eq(teardown_start(&td, "timeout", 124, "exited 0",
					getpid(), &ss, loop_now()),
			 -1);
	err = test_capture_end();
	unlink(path);
	ck_assert_int_eq(td.state, TD_DONE);
	ck_assert(!teardown_alive(&td));
	ck_assert_int_eq(td.rec->start_errno, EACCES);
	ck_assert(teardown_failed(&td));
	ck_assert_contains(err,
			   "supervise: cannot start the teardown command: "
			   "Permission denied\n");
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *
teardown_suite(void)
{
	Suite *s = suite_create("teardown");
	TCase *tc;

	tc = tcase_create("claim");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc,
		       test_teardown_claim_first_caller_wins_supervisor_first);
	tcase_add_test(tc, test_teardown_claim_first_caller_wins_front_first);
	tcase_add_test(tc,
		       test_teardown_claim_two_processes_race_exactly_one_wins);
	suite_add_tcase(s, tc);

	tc = tcase_create("prepare");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc,
			    test_teardown_is_due_for_exactly_the_events_asked,
			    0, N(events));
	tcase_add_test(tc,
		       test_teardown_is_due_never_without_a_teardown_command);
	tcase_add_test(tc,
		       test_teardown_prepare_without_a_command_holds_nothing);
	tcase_add_test(
		tc,
		test_teardown_prepare_without_a_command_still_checks_the_log);
	tcase_add_test(
		tc, test_teardown_prepare_opens_the_shell_the_cwd_and_the_log);
	tcase_add_test(tc, test_teardown_prepare_appends_to_an_existing_log);
	tcase_add_test(tc,
		       test_teardown_prepare_fails_for_a_log_it_cannot_open);
	tcase_add_test(
		tc, test_teardown_prepare_fails_for_a_log_that_is_a_directory);
	tcase_add_test(tc, test_teardown_failed_only_for_a_bad_outcome);
	suite_add_tcase(s, tc);

	tc = tcase_create("run");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(
		tc, test_teardown_runs_a_failing_command_and_logs_its_output);
	tcase_add_test(tc, test_teardown_that_exits_0_has_not_failed);
	tcase_add_test(tc, test_teardown_gets_the_supervise_environment);
	tcase_add_test(
		tc,
		test_teardown_runs_in_the_directory_of_prepare_with_no_stdin);
	tcase_add_test(tc, test_teardown_timeout_stops_it_and_counts_as_failed);
	tcase_add_test(tc,
		       test_teardown_timeout_with_kill_after_0_uses_sigkill);
	tcase_add_test(tc, test_teardown_leftovers_are_stopped_when_it_exits);
	tcase_add_test(tc, test_teardown_that_cannot_start_is_done_and_failed);
	suite_add_tcase(s, tc);
	return s;
}
