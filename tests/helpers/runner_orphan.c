/*
 * runner_orphan DELAY_US PROG [ARG]...
 *
 * A parent that dies right after starting its child: forks, the child
 * execs PROG with ARGs (every "%PARENT%" in an ARG replaced by this
 * helper's pid, taken before the fork), the helper writes the child's pid
 * and a newline to stdout, sleeps DELAY_US microseconds (0: not at all)
 * and exits 0 at once, leaving the child orphaned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "%PARENT%"

static char *
substitute(const char *arg, const char *pid)
{
	size_t tlen = strlen(TOKEN), plen = strlen(pid), n = 0;
	const char *p;
	char *out, *o;

	for (p = arg; (p = strstr(p, TOKEN)) != NULL; p += tlen) {
		n++;
	}
	out = malloc(strlen(arg) + n * plen + 1);
	if (out == NULL) {
		return NULL;
	}
	o = out;
	while ((p = strstr(arg, TOKEN)) != NULL) {
		memcpy(o, arg, (size_t)(p - arg));
		o += p - arg;
		memcpy(o, pid, plen);
		o += plen;
		arg = p + tlen;
	}
	strcpy(o, arg);
	return out;
}

int
main(int argc, char **argv)
{
	char pidbuf[32], line[32];
	char **args;
	long delay;
	pid_t child;
	int i, len;

	if (argc < 3) {
		fprintf(stderr,
			"usage: runner_orphan DELAY_US PROG [ARG]...\n");
		return 2;
	}
	delay = strtol(argv[1], NULL, 10);
	snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
	args = calloc((size_t)argc, sizeof(*args));
	if (args == NULL) {
		perror("runner_orphan: calloc");
		return 2;
	}
	for (i = 2; i < argc; i++) {
		args[i - 2] = substitute(argv[i], pidbuf);
		if (args[i - 2] == NULL) {
			perror("runner_orphan: malloc");
			return 2;
		}
	}
	child = fork();
	if (child < 0) {
		perror("runner_orphan: fork");
		return 2;
	}
	if (child == 0) {
		execv(args[0], args);
		fprintf(stderr, "runner_orphan: cannot run %s: %s\n", args[0],
			strerror(errno));
		_exit(127);
	}
	len = snprintf(line, sizeof(line), "%d\n", (int)child);
	if (write(STDOUT_FILENO, line, (size_t)len) != len) {
		_exit(3);
	}
	if (delay > 0) {
		usleep((useconds_t)delay);
	}
	_exit(0);
}
