/*
 * opts_parse(), the whole command line: the input is split at NUL bytes
 * into arguments after argv[0] (each in a heap block of its own, exactly
 * sized), its first byte choosing the size of the error buffer (1 to 256
 * bytes; supervise passes 256).  Whatever the arguments, opts_parse()
 * returns one of its four results and leaves a consistent struct options:
 * an error has a NUL-terminated one-line reason; a run has COMMAND inside
 * argv, a valid stop signal, at most OPTS_MAX_LOCKS locks, and every
 * option value within its range.  It is run twice on the same argv, as
 * getopt_long() keeps state between calls, and must give the same answer.
 */
#include <signal.h>

#include "fuzz.h"
#include "options.h"
#include "parse.h"

#define MAX_ARGS 512

static void
check(const struct options *o, enum opts_result r, char **argv, int argc,
      const char *err, size_t errlen)
{
	size_t i;

	fuzz_assert(memchr(err, '\0', errlen) != NULL);
	switch (r) {
	case OPTS_HELP:
	case OPTS_VERSION:
		return;
	case OPTS_ERROR:
		fuzz_assert(errlen == 1 || err[0] != '\0');
		/*
		 * Not checked to be one line: a newline in a bad value is
		 * repeated in the message as it is (see log_vmsg()).
		 */
		return;
	case OPTS_RUN:
		break;
	default:
		fuzz_fail("unexpected result %d", (int)r);
	}
	fuzz_assert(o->command != NULL && o->command >= argv + 1 &&
		    o->command < argv + argc && o->command[0] != NULL);
	fuzz_assert(o->stop_signal > 0 && o->stop_signal <= SIGRTMAX);
	fuzz_assert(o->stop_signal != SIGSTOP && o->stop_signal != SIGTSTP &&
		    o->stop_signal != SIGTTIN && o->stop_signal != SIGTTOU &&
		    o->stop_signal != SIGCONT);
	fuzz_assert(o->verbosity >= -1 && o->verbosity <= 1);
	fuzz_assert(o->parent_pid >= 0);
	fuzz_assert(o->teardown_on != 0 &&
		    (o->teardown_on & ~(unsigned)EVENT_ALL) == 0);
	fuzz_assert(o->nlocks <= OPTS_MAX_LOCKS);
	for (i = 0; i < o->nlocks; i++) {
		fuzz_assert(o->locks[i] != NULL && o->locks[i][0] != '\0');
	}
	fuzz_assert(o->status_file == NULL || o->status_file[0] != '\0');
	fuzz_assert(o->teardown_log == NULL || o->teardown_log[0] != '\0');
	fuzz_assert(!o->caps_given || o->no_new_privs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 2], *err, *err2;
	size_t errlen = size > 0 ? 1 + data[0] : 256, start, i;
	struct options o, o2;
	enum opts_result r, r2;
	int argc = 1;

	argv[0] = strdup("supervise");
	fuzz_assert(argv[0] != NULL);
	if (size > 0) {
		data++;
		size--;
		for (start = 0, i = 0; i <= size && argc <= MAX_ARGS; i++) {
			if (i == size || data[i] == '\0') {
				argv[argc++] = fuzz_cstr(data + start,
							 i - start);
				start = i + 1;
			}
		}
	}
	argv[argc] = NULL;
	err = malloc(errlen);
	err2 = malloc(errlen);
	fuzz_assert(err != NULL && err2 != NULL);
	r = opts_parse(&o, argc, argv, err, errlen);
	check(&o, r, argv, argc, err, errlen);
	r2 = opts_parse(&o2, argc, argv, err2, errlen);
	fuzz_assert(r2 == r && strcmp(err, err2) == 0);
	if (r == OPTS_RUN) {
		fuzz_assert(o2.command == o.command &&
			    o2.stop_signal == o.stop_signal &&
			    o2.timeout_ns == o.timeout_ns &&
			    o2.nlocks == o.nlocks && o2.caps == o.caps);
	}
	free(err);
	free(err2);
	for (i = 0; i < (size_t)argc; i++) {
		free(argv[i]);
	}
	return 0;
}
