/*
 * lock_probe: a test helper that records when it holds a lock.
 *
 *   lock_probe SECONDS FILE...
 *       Appends "enter PID TIME\n" to every FILE, waits SECONDS, then
 *       appends "leave PID TIME\n" to every FILE and exits 0.  TIME is the
 *       wall clock as SECONDS.NANOSECONDS.  Each line is one write(2) on a
 *       descriptor opened with O_APPEND, so lines of several probes never
 *       mix.  SIGTERM, SIGINT and SIGHUP are blocked from the start and
 *       waited for with sigtimedwait(): one that arrives ends the wait
 *       early, the "leave" lines are still written (the probe still runs
 *       inside the lock until it exits), then the probe exits 128+N.
 *       So every "enter" has its "leave" unless the probe is SIGKILLed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXFILES 16

static int fds[MAXFILES];
static int nfds;

static void
put(const char *what)
{
	struct timespec ts;
	char line[128];
	int i, len;

	clock_gettime(CLOCK_REALTIME, &ts);
	len = snprintf(line, sizeof(line), "%s %ld %lld.%09ld\n", what,
		       (long)getpid(), (long long)ts.tv_sec, ts.tv_nsec);
	for (i = 0; i < nfds; i++) {
		if (write(fds[i], line, (size_t)len) != len) {
			perror("lock_probe: write");
			exit(2);
		}
	}
}

int
main(int argc, char **argv)
{
	struct timespec wait, until, now;
	sigset_t set;
	double secs;
	char *end;
	int i, sig = 0;

	if (argc < 3 || argc - 2 > MAXFILES) {
		fprintf(stderr, "usage: lock_probe SECONDS FILE...\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	secs = strtod(argv[1], &end);
	if (*end != '\0' || secs < 0) {
		fprintf(stderr, "lock_probe: bad duration '%s'\n", argv[1]);
		return 2;
	}
	for (i = 2; i < argc; i++) {
		fds[nfds] = open(argv[i],
				 O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
				 0644);
		if (fds[nfds] < 0) {
			fprintf(stderr, "lock_probe: %s: %s\n", argv[i],
				strerror(errno));
			return 2;
		}
		nfds++;
	}
	put("enter");
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)secs;
	until.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		wait.tv_sec = until.tv_sec - now.tv_sec;
		wait.tv_nsec = until.tv_nsec - now.tv_nsec;
		if (wait.tv_nsec < 0) {
			wait.tv_sec--;
			wait.tv_nsec += 1000000000L;
		}
		if (wait.tv_sec < 0) {
			break;
		}
		sig = sigtimedwait(&set, NULL, &wait);
		if (sig > 0) {
			break;
		}
		sig = 0;
		if (errno != EINTR) {
			break;
		}
	}
	put("leave");
	return sig > 0 ? 128 + sig : 0;
}
