#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "options.h"

int
child_find_executable(const char *name, char *buf, size_t len)
{
	const char *path, *p, *end;
	struct stat st;
	size_t dlen;

	if (strchr(name, '/') != NULL) {
		snprintf(buf, len, "%s", name);
		return 0;
	}
	path = getenv("PATH");
	if (path == NULL) {
		path = "/bin:/usr/bin"; /* glibc's execvp() default */
	}
	for (p = path;; p = end + 1) {
		end = strchrnul(p, ':');
		dlen = (size_t)(end - p);
		snprintf(buf, len, "%.*s%s%s", (int)dlen, p, dlen ? "/" : "",
			 name);
		if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(buf, X_OK) == 0) {
			return 0;
		}
		if (*end == '\0') {
			break;
		}
	}
	return -1;
}

int
child_exit_status(int wstatus)
{
	if (WIFEXITED(wstatus)) {
		return WEXITSTATUS(wstatus);
	}
	if (WIFSIGNALED(wstatus)) {
		return 128 + WTERMSIG(wstatus);
	}
	return EXIT_FAILURE_SUPERVISE;
}

int
child_exec_status(int err)
{
	return err == ENOENT || err == ENOTDIR ? EXIT_ENOENT :
						 EXIT_CANNOT_INVOKE;
}

void
child_spec_init(struct child_spec *spec, char **argv,
		const struct sig_state *sig)
{
	spec->argv = argv;
	spec->sig = sig;
	spec->new_session = false;
	spec->die_with_parent = false;
	spec->caps = NULL;
	spec->no_new_privs = false;
	spec->parent = getpid();
	spec->pid_slot = NULL;
	spec->envp = NULL;
	spec->exec_fd = -1;
	spec->exec_path = NULL;
	spec->cwd_fd = -1;
	spec->stdio[0] = spec->stdio[1] = spec->stdio[2] = -1;
	spec->cgroup_fd = -1;
}

/* In the child: descriptors and directory.  Returns 0 or an errno. */
static int
set_up_files(const struct child_spec *spec)
{
	struct stat st;
	int i;

	for (i = 0; i < 3; i++) {
		if (spec->stdio[i] > 2 && dup2(spec->stdio[i], i) < 0) {
			return errno;
		}
	}
	if (spec->cwd_fd > 2) {
		/* A removed directory still has a descriptor, but no links. */
		if (fstat(spec->cwd_fd, &st) < 0 || st.st_nlink == 0 ||
		    fchdir(spec->cwd_fd) < 0) {
			if (chdir("/") < 0) {
				return errno;
			}
		}
	}
	return 0;
}

/*
 * A file without "#!" that the kernel will not execute (ENOEXEC) is run
 * by /bin/sh, as POSIX asks of execvp() and as glibc's does; musl's
 * execvp() does not, so the static build would refuse what the dynamic
 * one runs.  $0 is the file's path, as with glibc.  Returns only if the
 * shell cannot be executed either.
 */
static void
exec_script(const char *path, char *const argv[])
{
	size_t n = 0;

	while (argv[n] != NULL) {
		n++;
	}
	{
		char *sh_argv[n + 2];

		sh_argv[0] = (char *)"/bin/sh";
		sh_argv[1] = (char *)path;
		for (size_t i = 1; i <= n; i++) {
			sh_argv[i + 1] = argv[i];
		}
		execv("/bin/sh", sh_argv);
	}
	errno = ENOEXEC;
}

/*
 * execveat(2) with AT_EMPTY_PATH: runs the file open on fd.  musl (1.2.3)
 * has no wrapper for it, so there it is the system call; under glibc it is
 * the wrapper, which make coverage intercepts to write its counts first.
 */
static int
exec_fd(int fd, char *const argv[], char *const envp[])
{
	static char empty_path[] = "";

#ifdef __GLIBC__
	return execveat(fd, empty_path, argv, envp, AT_EMPTY_PATH);
#else
	return (int)syscall(SYS_execveat, fd, empty_path, argv, envp,
			    AT_EMPTY_PATH);
#endif
}

static void __attribute__((noreturn))
run_child(const struct child_spec *spec, int report_fd)
{
	int err;

	sig_restore(spec->sig);
	if (spec->new_session && setsid() < 0) {
		err = -errno;
		goto fail;
	}
	if (spec->caps != NULL && (err = caps_apply(spec->caps)) != 0) {
		err = -err;
		goto fail;
	}
	if (spec->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		err = -errno;
		goto fail;
	}
	/*
	 * Arm the parent-death signal first, then compare with the pid the
	 * parent recorded before the fork: a parent that died in between is
	 * caught by the comparison, one that dies later by the signal.
	 * getppid() taken here instead would already be the new parent.
	 */
	if (spec->die_with_parent) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
			err = -errno;
			goto fail;
		}
		if (getppid() != spec->parent) {
			_exit(EXIT_FAILURE_SUPERVISE);
		}
	}
	err = -set_up_files(spec);
	if (err != 0) {
		goto fail;
	}
	if (spec->exec_fd > 2) {
		exec_fd(spec->exec_fd, spec->argv,
			spec->envp != NULL ? spec->envp : environ);
	} else if (spec->envp != NULL) {
		execvpe(spec->argv[0], spec->argv, spec->envp);
	} else {
		/*
		 * The file was found before the fork: one exec, not one for
		 * each directory of PATH before it.  Should it fail (a script
		 * without "#!", a file gone meanwhile), execvp() decides as
		 * it always does.
		 */
		if (spec->exec_path != NULL) {
			execv(spec->exec_path, spec->argv);
			if (errno == ENOEXEC) {
				exec_script(spec->exec_path, spec->argv);
			}
		}
		execvp(spec->argv[0], spec->argv);
	}
	err = errno;
fail:
	/* The parent reads this; a short write only loses the detail. */
	if (write(report_fd, &err, sizeof(err)) < 0) {
		err = EIO;
	}
	_exit(err < 0 ? EXIT_FAILURE_SUPERVISE : child_exec_status(err));
}

/*
 * clone3(2) with CLONE_PARENT_SETTID: the kernel stores the child's pid in
 * *slot before either process runs on.  Without a stack and CLONE_VM this
 * is fork() itself, minus glibc's bookkeeping (its fork handlers do not
 * run), which the child, with async-signal-safe calls then exec, does not
 * need.  Unlike clone(2), whose argument order differs between
 * architectures (s390x swaps the first two), clone3 takes one struct of
 * one layout everywhere.  Returns as fork() does.
 */
static pid_t
clone3_settid(pid_t *slot, int cgroup_fd)
{
#ifdef SYS_clone3
	struct clone_args args = {
		.flags = slot != NULL ? CLONE_PARENT_SETTID : 0,
		.parent_tid = (uint64_t)(uintptr_t)slot,
		.exit_signal = SIGCHLD,
	};

	if (cgroup_fd > 2) {
		/* In the run's cgroup from its first instruction. */
		args.flags |= CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)cgroup_fd;
	}
	return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
#else
	(void)slot;
	(void)cgroup_fd;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * fork(), for where clone3 is missing: Linux before 5.3, or a seccomp
 * filter that refuses it (container runtimes answer ENOSYS or EPERM).
 * The parent stores the pid itself, so the child waits on a pipe until it
 * has: whoever shares the slot must know of every child that may run
 * COMMAND.  Should the parent die first, the child reads end of file
 * (it closed its own write end) and exits without running anything.
 * Returns as fork() does; in the parent, *go_err is 0, or the errno of a
 * failed release, after which the child exits as if the parent had died.
 */
static pid_t
fork_settid(pid_t *slot, int *go_err)
{
	int go[2], err;
	ssize_t n;
	char c = 0;
	pid_t pid;

	*go_err = 0;
	if (pipe2(go, O_CLOEXEC) < 0) {
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		close(go[1]);
		do {
			n = read(go[0], &c, 1);
		} while (n < 0 && errno == EINTR);
		if (n != 1) {
			_exit(EXIT_FAILURE_SUPERVISE);
		}
		close(go[0]);
		return 0;
	}
	err = errno;
	close(go[0]);
	if (pid > 0) {
		/*
		 * The write is a system call: the store is done before it.
		 * It fails only if the child was killed meanwhile (EPIPE:
		 * supervise ignores SIGPIPE).
		 */
		*slot = pid;
		while ((n = write(go[1], &c, 1)) < 0 && errno == EINTR) {
			continue;
		}
		if (n != 1) {
			*go_err = n < 0 ? errno : EIO;
		}
	}
	close(go[1]);
	errno = err;
	return pid;
}

/*
 * Starts the child process, as fork() does.  With a slot, the pid is in
 * *slot before the child runs on: should we die right after, the front,
 * which shares the slot, knows that the child exists.  *go_err as for
 * fork_settid().
 */
static pid_t
start_process(pid_t *slot, int cgroup_fd, bool *in_cgroup, int *go_err)
{
	pid_t pid;

	*go_err = 0;
	*in_cgroup = false;
	if (cgroup_fd > 2) {
		pid = clone3_settid(slot, cgroup_fd);
		if (pid >= 0) {
			*in_cgroup = true;
			return pid;
		}
		/*
		 * Without CLONE_INTO_CGROUP (before Linux 5.7, a seccomp
		 * filter) the child moves itself in before it execs.
		 */
	}
	if (slot == NULL) {
		return fork();
	}
	pid = clone3_settid(slot, -1);
	if (pid >= 0 || (errno != ENOSYS && errno != EPERM)) {
		return pid;
	}
	return fork_settid(slot, go_err);
}

/* In the child: joins the cgroup by writing "0" to its cgroup.procs. */
static int
join_cgroup(int dir)
{
	int fd = openat(dir, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0) {
		return errno;
	}
	if (write(fd, "0", 1) != 1) {
		err = errno != 0 ? errno : EIO;
	}
	close(fd);
	return err;
}

pid_t
child_start(const struct child_spec *spec, int *exec_errno)
{
	int fds[2], err = 0, go_err;
	bool in_cgroup;
	ssize_t n;
	pid_t pid;

	*exec_errno = 0;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		return -1;
	}
	pid = start_process(spec->pid_slot, spec->cgroup_fd, &in_cgroup,
			    &go_err);
	if (pid == 0) {
		close(fds[0]);
		if (spec->cgroup_fd > 2 && !in_cgroup &&
		    (err = join_cgroup(spec->cgroup_fd)) != 0) {
			err = -err;
			if (write(fds[1], &err, sizeof(err)) < 0) {
				_exit(EXIT_FAILURE_SUPERVISE);
			}
			_exit(EXIT_FAILURE_SUPERVISE);
		}
		run_child(spec, fds[1]);
	}
	if (pid < 0) {
		err = errno;
		close(fds[0]);
		close(fds[1]);
		errno = err;
		return -1;
	}
	close(fds[1]);
	/*
	 * The write end closes at the exec (close-on-exec) or carries the
	 * exec's errno: either comes at once, so this read does not stall
	 * the loop.  Our signals are blocked, so nothing interrupts it.
	 */
	do {
		n = read(fds[0], &err, sizeof(err));
	} while (n < 0 && errno == EINTR);
	close(fds[0]);
	if (go_err != 0) {
		/* The child was never released: it exits without a report. */
		*exec_errno = -go_err;
	} else if (n == (ssize_t)sizeof(err)) {
		*exec_errno = err != 0 ? err : EIO;
	}
	return pid;
}
