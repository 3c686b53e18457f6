/*
 * forkstorm: a bounded fork storm for the tests.
 *
 *   forkstorm N [PIDFILE]
 *       Every process forks as fast as it can, and so does every child,
 *       until N processes have been made in all (a counter in shared
 *       memory); then each waits.  Writes "ready\n" to PIDFILE (or
 *       stdout) once N are made.  Every process ends itself after 120 s
 *       (alarm), should a test fail to stop it: never an unbounded bomb.
 */
#include <sys/mman.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	long n, got = 0, *made;
	int fd;
	pid_t pid;

	if (argc < 2 || (n = strtol(argv[1], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: forkstorm N [PIDFILE]\n");
		return 2;
	}
	made = mmap(NULL, sizeof(*made), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (made == MAP_FAILED) {
		return 2;
	}
	*made = 1;
	alarm(120);
	for (;;) {
		got = __atomic_add_fetch(made, 1, __ATOMIC_SEQ_CST);
		if (got > n) {
			break;
		}
		pid = fork();
		if (pid < 0) {
			break;
		}
		if (pid == 0) {
			alarm(120); /* fork cleared the parent's alarm */
		}
		/* Parent and child alike storm on. */
	}
	/* The one that found the count full first says so. */
	if (got == n + 1 && argc > 2) {
		fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			  0644);
		if (fd < 0 || write(fd, "ready\n", 6) != 6) {
			_exit(1);
		}
		close(fd);
	}
	for (;;) {
		pause();
	}
}
