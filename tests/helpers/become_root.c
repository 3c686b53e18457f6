/*
 * become_root: a test helper for a process that supervise may not signal.
 *
 *   become_root PIDFILE
 *       Installed set-user-ID root and started by another user, it makes
 *       all its user ids root (setresuid), so that its starter may no
 *       longer signal it, writes "PID\n" to PIDFILE and waits.  It ends
 *       itself after 120 s (SIGALRM), should a test fail to kill it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	char buf[32];
	int fd, n;

	if (argc != 2) {
		fprintf(stderr, "usage: become_root PIDFILE\n");
		return 2;
	}
	if (setresuid(0, 0, 0) < 0) {
		perror("become_root: setresuid");
		return 2;
	}
	alarm(120);
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, (size_t)n) != n || close(fd) < 0) {
		perror("become_root: pid file");
		return 2;
	}
	for (;;) {
		pause();
	}
}
