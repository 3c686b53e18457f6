/*
 * sigprobe: a test helper that reports the signals it receives.
 *
 *   sigprobe [FILE] [--ignore SIG[,SIG]...] [--exit-on SIG=CODE]...
 *       Sets the --ignore signals to SIG_IGN, then writes "ready PID\n" to
 *       FILE (appended to; standard output when FILE is absent or "-").
 *       From then on, writes one line per signal received ("SIGTERM\n"),
 *       each in one write(2), and exits with CODE on an --exit-on signal.
 *       Every other signal is only logged: sigprobe runs until killed.
 *   sigprobe [FILE] --status
 *       Writes the SigBlk, SigIgn, SigPnd and ShdPnd lines of
 *       /proc/self/status (the signal state it inherited) and exits 0.
 *
 * SIG is a name with or without "SIG" (TERM, SIGTERM) or a number.
 * Signals 1 to 31 are watched, except SIGKILL and SIGSTOP; they are
 * blocked and read with sigwaitinfo(), so nothing runs in a handler.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAXSIG 32

static void __attribute__((noreturn)) usage(const char *why)
{
	fprintf(stderr, "sigprobe: %s\n", why);
	exit(2);
}

static int
parse_sig(const char *s)
{
	char *end;
	long v;
	int sig;

	if (strncasecmp(s, "SIG", 3) == 0) {
		s += 3;
	}
	v = strtol(s, &end, 10);
	if (end != s && *end == '\0' && v > 0 && v < MAXSIG) {
		return (int)v;
	}
	for (sig = 1; sig < MAXSIG; sig++) {
		const char *abbrev = sigabbrev_np(sig);
		if (abbrev != NULL && strcasecmp(s, abbrev) == 0) {
			return sig;
		}
	}
	usage("unknown signal");
}

static void
put(int fd, const char *line)
{
	size_t len = strlen(line);

	if (write(fd, line, len) != (ssize_t)len) {
		exit(3);
	}
}

static int
print_status(int out)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL) {
		return 1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "SigBlk:", 7) == 0 ||
		    strncmp(line, "SigIgn:", 7) == 0 ||
		    strncmp(line, "SigPnd:", 7) == 0 ||
		    strncmp(line, "ShdPnd:", 7) == 0) {
			put(out, line);
		}
	}
	fclose(f);
	return 0;
}

int
main(int argc, char **argv)
{
	int exit_code[MAXSIG], out = STDOUT_FILENO, status = 0, sig, i;
	const char *file = NULL;
	char line[64], *list, *tok, *eq;
	bool ignored[MAXSIG] = { false };
	sigset_t wait_set;
	siginfo_t si;

	for (i = 0; i < MAXSIG; i++) {
		exit_code[i] = -1;
	}
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--status") == 0) {
			status = 1;
		} else if (strcmp(argv[i], "--ignore") == 0 && i + 1 < argc) {
			list = argv[++i];
			for (tok = strtok(list, ","); tok;
			     tok = strtok(NULL, ",")) {
				ignored[parse_sig(tok)] = true;
			}
		} else if (strcmp(argv[i], "--exit-on") == 0 && i + 1 < argc) {
			eq = strchr(argv[++i], '=');
			if (eq == NULL) {
				usage("--exit-on needs SIG=CODE");
			}
			*eq = '\0';
			exit_code[parse_sig(argv[i])] = atoi(eq + 1);
		} else if (strncmp(argv[i], "--", 2) != 0 && file == NULL) {
			file = argv[i];
		} else {
			usage("usage: sigprobe [FILE] [--ignore SIGS] "
			      "[--exit-on SIG=CODE]... | [FILE] --status");
		}
	}
	if (file != NULL && strcmp(file, "-") != 0) {
		out = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			   0644);
		if (out < 0) {
			perror(file);
			return 2;
		}
	}
	if (status) {
		return print_status(out);
	}

	sigemptyset(&wait_set);
	for (sig = 1; sig < MAXSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP) {
			continue;
		}
		if (ignored[sig]) {
			signal(sig, SIG_IGN);
		} else {
			sigaddset(&wait_set, sig);
		}
	}
	sigprocmask(SIG_BLOCK, &wait_set, NULL);
	snprintf(line, sizeof(line), "ready %d\n", (int)getpid());
	put(out, line);

	for (;;) {
		sig = sigwaitinfo(&wait_set, &si);
		if (sig <= 0) {
			continue;
		}
		snprintf(line, sizeof(line), "SIG%s\n", sigabbrev_np(sig));
		put(out, line);
		if (exit_code[sig] >= 0) {
			return exit_code[sig];
		}
	}
}
