/*
 * caps_probe: a test helper that reports the privileges it runs with.
 *
 *   caps_probe [--bind PORT] [--out FILE]
 *       Writes, one per line, to FILE (created 0644, truncated) or stdout:
 *         pid N
 *         uid RUID EUID
 *         pdeathsig N          (prctl(PR_GET_PDEATHSIG); 0 = none)
 *         CapInh: ... CapPrm: ... CapEff: ... CapBnd: ... CapAmb: ...
 *         NoNewPrivs: N        (the lines of /proc/self/status)
 *         bind E               (with --bind: 0 when a TCP socket could be
 *                               bound to 127.0.0.1:PORT, else the errno)
 *       and exits 0 (2 on a usage or I/O error).  The socket has
 *       SO_REUSEADDR and is never listened on, so probes that run at the
 *       same time do not conflict.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
try_bind(int port)
{
	struct sockaddr_in sa;
	int fd, one = 1, err = 0;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return errno;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		err = errno;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (err == 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
	}
	close(fd);
	return err;
}

int
main(int argc, char **argv)
{
	const char *out = NULL;
	char line[512];
	FILE *st, *o = stdout;
	int i, port = -1, sig = -1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc) {
			port = atoi(argv[++i]);
		} else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
			out = argv[++i];
		} else {
			fprintf(stderr,
				"usage: caps_probe [--bind PORT] [--out FILE]\n");
			return 2;
		}
	}
	if (out != NULL && (o = fopen(out, "w")) == NULL) {
		perror("caps_probe: fopen");
		return 2;
	}
	if (prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) < 0) {
		sig = -1;
	}
	fprintf(o, "pid %ld\n", (long)getpid());
	fprintf(o, "uid %ld %ld\n", (long)getuid(), (long)geteuid());
	fprintf(o, "pdeathsig %d\n", sig);
	st = fopen("/proc/self/status", "r");
	if (st == NULL) {
		perror("caps_probe: /proc/self/status");
		return 2;
	}
	while (fgets(line, sizeof(line), st) != NULL) {
		if (strncmp(line, "Cap", 3) == 0 ||
		    strncmp(line, "NoNewPrivs:", 11) == 0) {
			fputs(line, o);
		}
	}
	fclose(st);
	if (port >= 0) {
		fprintf(o, "bind %d\n", try_bind(port));
	}
	if (fclose(o) != 0) {
		perror("caps_probe: write");
		return 2;
	}
	return 0;
}
