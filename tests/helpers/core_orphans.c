/*
 * core_orphans N: double-forks N times; each grandchild exits at once,
 * orphaned (its parent is gone before or just after it).  Then writes
 * "done\n" to standard output and waits for end of file on standard input
 * before it exits 0, so that the test decides when the command ends.
 */
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000, i, ws;
	char buf[256];
	pid_t pid;

	for (i = 0; i < n; i++) {
		pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			if (fork() < 0) {
				_exit(1);
			}
			_exit(0); /* grandchild and middle child alike */
		}
		if (waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) ||
		    WEXITSTATUS(ws) != 0) {
			fprintf(stderr, "core_orphans: fork %d failed\n", i);
			return 1;
		}
	}
	printf("done\n");
	fflush(stdout);
	while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
		continue;
	}
	return 0;
}
