#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
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
		path = "/bin:/usr/bin";	/* glibc's execvp() default */
	}
	for (p = path;; p = end + 1) {
		end = strchrnul(p, ':');
		dlen = (size_t)(end - p);
		snprintf(buf, len, "%.*s%s%s", (int)dlen, p, dlen ? "/" : "", name);
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
	return err == ENOENT || err == ENOTDIR ? EXIT_ENOENT : EXIT_CANNOT_INVOKE;
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
	spec->cwd_fd = -1;
	spec->stdio[0] = spec->stdio[1] = spec->stdio[2] = -1;
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

static void __attribute__((noreturn))
run_child(const struct child_spec *spec, int report_fd)
{
	static char *empty_path = "";
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
		execveat(spec->exec_fd, empty_path, spec->argv,
			 spec->envp != NULL ? spec->envp : environ,
			 AT_EMPTY_PATH);
	} else if (spec->envp != NULL) {
		execvpe(spec->argv[0], spec->argv, spec->envp);
	} else {
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

pid_t
child_start(const struct child_spec *spec, int *exec_errno)
{
	int fds[2], err = 0;
	ssize_t n;
	pid_t pid;

	*exec_errno = 0;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		return -1;
	}
	if (spec->pid_slot != NULL) {
		/*
		 * The kernel stores the pid (CLONE_PARENT_SETTID) before
		 * either process runs on: should we die right after, the
		 * front, which shares the slot, knows that the child exists.
		 * Without a stack and CLONE_VM this is fork() itself, minus
		 * glibc's bookkeeping, which the child (async-signal-safe
		 * calls, then exec) does not need.  Of the arguments after
		 * the slot, the order differs between architectures; both
		 * are unused (0).
		 */
		pid = (pid_t)syscall(SYS_clone, CLONE_PARENT_SETTID | SIGCHLD,
				     NULL, spec->pid_slot, NULL, 0);
	} else {
		pid = fork();
	}
	if (pid == 0) {
		close(fds[0]);
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
	if (n == (ssize_t)sizeof(err)) {
		*exec_errno = err != 0 ? err : EIO;
	}
	return pid;
}
