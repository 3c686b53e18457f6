/*
 * crit_probe: a test helper, the critical section of a lock test that
 * detects overlap by itself.
 *
 *   crit_probe FILE LOG SECONDS
 *       Takes flock(LOCK_EX | LOCK_NB) on FILE.  If another process holds
 *       it, two holders of the lock under test are alive at once: appends
 *       "overlap PID TOKEN\n" to LOG and exits 3.  Else appends
 *       "enter PID TOKEN\n", waits SECONDS, appends "leave PID TOKEN\n"
 *       and exits 0.  TOKEN is $SUPERVISE_FENCING_TOKEN (or "-").  The
 *       kernel drops the flock when the process dies, even of SIGKILL, so
 *       a killed holder leaves nothing stale behind: only two live holders
 *       count as an overlap.  Each line is one write(2) with O_APPEND.
 */
#include <sys/file.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
put(int fd, const char *what, const char *token)
{
	char line[256];
	int len;

	len = snprintf(line, sizeof(line), "%s %ld %s\n", what, (long)getpid(),
		       token);
	if (write(fd, line, (size_t)len) != len) {
		exit(2);
	}
}

int
main(int argc, char **argv)
{
	const char *token = getenv("SUPERVISE_FENCING_TOKEN");
	struct timespec ts;
	double secs;
	int fd, log;

	if (argc != 4) {
		fprintf(stderr, "usage: crit_probe FILE LOG SECONDS\n");
		return 2;
	}
	if (token == NULL || *token == '\0') {
		token = "-";
	}
	secs = strtod(argv[3], NULL);
	fd = open(argv[1], O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	log = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || log < 0) {
		perror("crit_probe: open");
		return 2;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		put(log, "overlap", token);
		return 3;
	}
	put(log, "enter", token);
	ts.tv_sec = (time_t)secs;
	ts.tv_nsec = (long)((secs - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0) {
		continue;
	}
	put(log, "leave", token);
	return 0;
}
