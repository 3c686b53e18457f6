/*
 * lone_thread FILE: starts a thread and ends its main thread, so that the
 * process lives on in that thread alone (/proc shows it in state Z, the
 * state of its main thread).  The thread writes the pid to FILE, then
 * waits for a signal.
 */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static const char *file;

static void *
lone(void *arg)
{
	FILE *f = fopen(file, "w");

	if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 ||
	    fclose(f) != 0) {
		perror(file);
		_exit(1);
	}
	for (;;) {
		pause();
	}
	return arg;
}

int
main(int argc, char **argv)
{
	pthread_t t;

	if (argc != 2) {
		fprintf(stderr, "usage: lone_thread FILE\n");
		return 2;
	}
	file = argv[1];
	if (pthread_create(&t, NULL, lone, NULL) != 0) {
		fprintf(stderr, "lone_thread: cannot start a thread\n");
		return 1;
	}
	pthread_exit(NULL);
}
