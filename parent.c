#include <sys/prctl.h>
#include <sys/syscall.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "parent.h"

/* The parent pid of pid from /proc/PID/stat, or -1. */
static pid_t
ppid_of(pid_t pid)
{
	char path[32], buf[512], *p;
	int fd, ppid;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0) {
		return -1;
	}
	buf[n] = '\0';
	/* The command name may hold anything, ")" included: skip to the last. */
	p = strrchr(buf, ')');
	/* NOLINTNEXTLINE(cert-err34-c): the kernel writes these numbers. */
	if (p == NULL || sscanf(p + 1, " %*c %d", &ppid) != 1) {
		return -1;
	}
	return (pid_t)ppid;
}

bool
parent_is_ancestor(pid_t pid)
{
	pid_t p = getppid();
	int depth;

	/* A chain longer than this is a loop we misread, not a tree. */
	for (depth = 0; p > 0 && depth < 4096; depth++) {
		if (p == pid) {
			return true;
		}
		p = ppid_of(p);
	}
	return false;
}

/* Whether the process behind a pidfd has exited (the pidfd polls readable). */
static bool
pidfd_exited(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1;
}

/*
 * --parent-pid names an ancestor above the direct parent: a pidfd makes
 * its death an event of the loop.  Opened first, then checked: a process
 * that is an ancestor after the watch is armed is the one watched, and
 * its death cannot go unnoticed (a pid reused before the open is no
 * ancestor, and is refused).
 */
static int
watch_ancestor(struct run *r, pid_t pid)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd < 0 && errno == ESRCH) {
		log_info("parent process %d died before the command started",
			 (int)pid);
		run_set_reason(r, REASON_PARENT_DEATH, 0);
		r->sh->cause_pid = pid;
		r->sh->cause_ancestor = true;
		return 128 + SIGHUP;
	}
	if (fd < 0) {
		log_error("cannot watch process %d: %s%s", (int)pid,
			  strerror(errno),
			  errno == ENOSYS ? " (pidfd_open needs Linux 5.3)" :
					    "");
		return EXIT_FAILURE_SUPERVISE;
	}
	if (!parent_is_ancestor(pid)) {
		bool gone = pidfd_exited(fd);

		close(fd);
		if (gone) {
			log_info("parent process %d died before the command "
				 "started",
				 (int)pid);
			run_set_reason(r, REASON_PARENT_DEATH, 0);
			r->sh->cause_pid = pid;
			r->sh->cause_ancestor = true;
			return 128 + SIGHUP;
		}
		log_error("--parent-pid: process %d is not an ancestor of "
			  "supervise",
			  (int)pid);
		return EXIT_FAILURE_SUPERVISE;
	}
	r->ancestor = pid;
	r->ancestor_fd = fd;
	log_debug("watching ancestor process %d", (int)pid);
	return -1;
}

int
parent_watch(struct run *r)
{
	pid_t ppid = getppid();

	r->ancestor_fd = -1;
	if (r->opt.ignore_parent_death) {
		return -1;
	}
	if (ppid == 0) {
		/*
		 * PID 1 of a PID namespace: the parent is outside and cannot be
		 * told apart from a thread of it that ended (a container
		 * runtime's), and the kernel ends the namespace with us anyway.
		 */
		log_debug("parent is outside the PID namespace; not watched");
	} else {
		r->parent = ppid;
		if (prctl(PR_SET_PDEATHSIG, SIG_PARENT_DEATH) < 0) {
			log_error("cannot watch the parent process: %s",
				  strerror(errno));
			return EXIT_FAILURE_SUPERVISE;
		}
		if (getppid() != r->parent) {
			log_info("parent process %d died before the command "
				 "started",
				 (int)r->parent);
			run_set_reason(r, REASON_PARENT_DEATH, 0);
			r->sh->cause_pid = r->parent;
			return 128 + SIGHUP;
		}
	}
	if (r->opt.parent_pid != 0 && r->opt.parent_pid != r->parent) {
		return watch_ancestor(r, r->opt.parent_pid);
	}
	return -1;
}
