/* child.c: exit statuses, and forking and exec'ing COMMAND. */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
	/* What the tests of how the process is made leave. */
	snprintf(sub, sizeof(sub), "%s/slot", dir);
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/out", dir);
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/ran", dir);
	unlink(sub);
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

	ck_assert_int_eq(child_exit_status(reap(fork_child(code, 0), 0)), code);
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

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

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
		return; /* would make the shared runner a subreaper */
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

/* ---- how the process is made: clone3, or fork() where it is missing ---- */

/*
 * fork() counts its calls in the parent, and while after_fork is set,
 * runs it there right after the child is made: the moment between the
 * fork and the parent's storing the pid, made long (a sleep) or fatal (an
 * exit) on purpose.
 */
static void (*after_fork)(void);
static int fork_calls;

/* The C library's fork(), found before main(). */
static pid_t (*real_fork)(void);

static void __attribute__((constructor)) find_real_fork(void)
{
	real_fork = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
}

pid_t
fork(void)
{
	pid_t pid = real_fork();

	if (pid > 0) {
		fork_calls++;
		if (after_fork != NULL) {
			after_fork();
		}
	}
	return pid;
}

static void
sleep_a_while(void)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 300 * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
		continue;
	}
}

static void
die_at_once(void)
{
	_exit(0);
}

/*
 * Makes clone3 fail with err in this process and what it starts, as a
 * seccomp filter of a container runtime does.  Only this architecture's
 * own system call numbers are looked at: the process makes no other kind
 * of call.  Returns 0 or -1; never asserts (it runs in a process of the
 * test's own).
 */
static int
refuse_clone3(int err)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		/* clone3: on to the refusal; anything else: past it. */
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1),
		BPF_STMT(BPF_RET | BPF_K,
			 SECCOMP_RET_ERRNO |
				 ((unsigned)err & SECCOMP_RET_DATA)),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof(f) / sizeof(f[0])),
		.filter = f,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		return -1;
	}
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* Whether this kernel (and whatever filters us) has clone3. */
static bool
have_clone3(void)
{
	/* A size below the first version's: EINVAL where clone3 exists. */
	return syscall(SYS_clone3, NULL, 0) < 0 && errno != ENOSYS &&
		errno != EPERM;
}

enum way {
	WAY_CLONE3,	 /* as the system is: clone3 must be there */
	WAY_FORK_ENOSYS, /* clone3 refused with ENOSYS (Linux < 5.3) */
	WAY_FORK_EPERM,	 /* clone3 refused with EPERM (some runtimes) */
};

/*
 * What a child_start() in a process of the test's own did.  The slot is
 * in a shared file mapping: the kernel or the parent stores into it, and
 * COMMAND can read it through the file.
 */
struct started {
	pid_t slot;
	pid_t pid;	 /* child_start()'s answer */
	int start_errno; /* errno when pid < 0 */
	int exec_errno;
	int wstatus;	 /* COMMAND's */
	int forks;	 /* fork() calls child_start() made */
	int setup_errno; /* 0, or why the process could not be set up */
};

static struct started *
map_slot_file(const char *path)
{
	struct started *st;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)sizeof(*st)), 0);
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert_ptr_ne(st, MAP_FAILED);
	return st;
}

/*
 * Refuses clone3 as way says, then starts argv; in a process of its own.
 * The refusal is inherited by COMMAND, which may still fork.
 */
static void __attribute__((noreturn))
start_one_way(enum way way, char **argv, struct started *st, void (*hook)(void))
{
	struct child_spec spec;
	int r = 0;

	if (way != WAY_CLONE3) {
		r = refuse_clone3(way == WAY_FORK_ENOSYS ? ENOSYS : EPERM);
	}
	if (r < 0 || sig_setup(&ss) < 0) {
		st->setup_errno = errno;
		_exit(1);
	}
	child_spec_init(&spec, argv, &ss);
	spec.pid_slot = &st->slot;
	after_fork = hook;
	fork_calls = 0;
	st->exec_errno = -1;
	st->pid = child_start(&spec, &st->exec_errno);
	st->start_errno = errno;
	st->forks = fork_calls;
	after_fork = NULL;
	if (st->pid > 0) {
		while (waitpid(st->pid, &st->wstatus, 0) < 0 &&
		       errno == EINTR) {
			continue;
		}
	}
	_exit(0);
}

static void
run_one_way(enum way way, char **argv, struct started *st)
{
	pid_t mid;

	mid = fork();
	ck_assert_int_ge(mid, 0);
	if (mid == 0) {
		/* fork() sleeps before the parent stores the pid. */
		start_one_way(way, argv, st, sleep_a_while);
	}
	ck_assert_int_eq(reap(mid, 0), 0);
	ck_assert_msg(st->setup_errno == 0, "cannot set up: %s",
		      strerror(st->setup_errno));
	ck_assert_msg(st->pid > 0, "child_start: %s",
		      strerror(st->start_errno));
	/* The way asked for is the way taken. */
	ck_assert_int_eq(st->forks, way == WAY_CLONE3 ? 0 : 1);
}

static const enum way ways[] = {
	WAY_CLONE3,
	WAY_FORK_ENOSYS,
	WAY_FORK_EPERM,
};

static const char *const way_names[] = {
	"clone3",
	"fork after ENOSYS",
	"fork after EPERM",
};

/*
 * COMMAND finds its own pid in the slot when it runs: with clone3 the
 * kernel put it there before the child ran; with fork(), the child waited
 * until the parent had, which a parent slow to do so (after_fork sleeps)
 * shows.
 */
START_TEST(test_child_start_puts_the_pid_in_the_slot_before_the_command_runs)
{
	enum way way = ways[_i];
	char slot_file[320], out[320], cmd[1024], got[128] = "";
	struct started *st;
	int self = 0, seen = -1;
	FILE *f;

	if (way == WAY_CLONE3 && !have_clone3()) {
		return; /* nothing to test: child_start() uses fork() here */
	}
	snprintf(slot_file, sizeof(slot_file), "%s/slot", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	st = map_slot_file(slot_file);
	snprintf(cmd, sizeof(cmd),
		 "slot=$(od -An -td4 -N4 %s) && echo $$ $slot > %s", slot_file,
		 out);
	run_one_way(way, (char *[]){ "sh", "-c", cmd, NULL }, st);
	ck_assert_int_eq(st->exec_errno, 0);
	ck_assert_int_eq(st->slot, st->pid);
	ck_assert_int_eq(child_exit_status(st->wstatus), 0);
	f = fopen(out, "re");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(got, sizeof(got), f));
	fclose(f);
	ck_assert_int_eq(sscanf(got, "%d %d", &self, &seen), 2);
	ck_assert_int_eq(self, st->pid);
	ck_assert_msg(seen == self, "%s: COMMAND %d saw %d in the slot",
		      way_names[_i], self, seen);
	munmap(st, sizeof(*st));
}
END_TEST

/* Whichever way the process was made, a failed exec is reported. */
START_TEST(test_child_start_reports_a_failed_exec_either_way)
{
	enum way way = ways[_i];
	char slot_file[320];
	struct started *st;

	if (way == WAY_CLONE3 && !have_clone3()) {
		return;
	}
	snprintf(slot_file, sizeof(slot_file), "%s/slot", dir);
	st = map_slot_file(slot_file);
	run_one_way(way, (char *[]){ "supervise-test-no-such-command", NULL },
		    st);
	ck_assert_msg(st->exec_errno == ENOENT, "%s: exec errno %d (%s)",
		      way_names[_i], st->exec_errno, strerror(st->exec_errno));
	ck_assert_int_eq(st->slot, st->pid);
	ck_assert(WIFEXITED(st->wstatus));
	ck_assert_int_eq(WEXITSTATUS(st->wstatus), 127);
	munmap(st, sizeof(*st));
}
END_TEST

/*
 * With fork(), a parent that dies before it has stored the pid leaves a
 * child nobody knows of: that child must run nothing.  It reads end of
 * file, exits 125, and the slot stays empty.  We are a subreaper, so the
 * orphan comes to us and we can see how it ended.
 */
START_TEST(test_child_start_fork_child_of_a_dead_parent_runs_nothing)
{
	char slot_file[320], marker[320], cmd[512];
	struct started *st;
	int status;
	pid_t mid, orphan;

	if (!test_forks()) {
		return; /* would make the shared runner a subreaper */
	}
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	snprintf(slot_file, sizeof(slot_file), "%s/slot", dir);
	snprintf(marker, sizeof(marker), "%s/ran", dir);
	snprintf(cmd, sizeof(cmd), "echo ran > %s", marker);
	st = map_slot_file(slot_file);
	mid = fork();
	ck_assert_int_ge(mid, 0);
	if (mid == 0) {
		start_one_way(WAY_FORK_ENOSYS,
			      (char *[]){ "sh", "-c", cmd, NULL }, st,
			      die_at_once);
	}
	ck_assert_int_eq(reap(mid, 0), 0);
	ck_assert_int_eq(st->setup_errno, 0);
	do {
		orphan = waitpid(-1, &status, 0);
	} while (orphan < 0 && errno == EINTR);
	ck_assert_int_gt(orphan, 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), EXIT_FAILURE_SUPERVISE);
	ck_assert_int_eq(st->slot, 0);
	ck_assert_int_eq(access(marker, F_OK), -1);
	munmap(st, sizeof(*st));
}
END_TEST

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
	tcase_add_loop_test(
		tc,
		test_child_start_puts_the_pid_in_the_slot_before_the_command_runs,
		0, N(ways));
	tcase_add_loop_test(tc,
			    test_child_start_reports_a_failed_exec_either_way,
			    0, N(ways));
	tcase_add_test(
		tc, test_child_start_fork_child_of_a_dead_parent_runs_nothing);
	suite_add_tcase(s, tc);
	return s;
}
