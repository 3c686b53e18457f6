#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "caps.h"
#include "options.h"
#include "parse.h"
#include "remotelock.h"

enum {
	OPT_CANCEL_ON_HANGUP = 256,
	OPT_CAPS,
	OPT_CGROUP,
	OPT_ETCD_CACERT,
	OPT_ETCD_CERT,
	OPT_ETCD_KEY,
	OPT_ETCD_USER_FILE,
	OPT_FOREGROUND,
	OPT_IGNORE_PARENT_DEATH,
	OPT_LOCK_TTL,
	OPT_NO_NEW_PRIVS,
	OPT_PARENT_PID,
	OPT_PRESERVE_STATUS,
	OPT_STATUS_FILE,
	OPT_TEARDOWN_LOG,
	OPT_TEARDOWN_ON,
	OPT_TEARDOWN_TIMEOUT,
};

/* Sorted by name, as the short options in the getopt string are. */
static const struct option long_options[] = {
	{ "cancel-on-hangup", no_argument, NULL, OPT_CANCEL_ON_HANGUP },
	{ "caps", required_argument, NULL, OPT_CAPS },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "etcd-cacert", required_argument, NULL, OPT_ETCD_CACERT },
	{ "etcd-cert", required_argument, NULL, OPT_ETCD_CERT },
	{ "etcd-key", required_argument, NULL, OPT_ETCD_KEY },
	{ "etcd-user-file", required_argument, NULL, OPT_ETCD_USER_FILE },
	{ "foreground", no_argument, NULL, OPT_FOREGROUND },
	{ "help", no_argument, NULL, 'h' },
	{ "ignore-parent-death", no_argument, NULL, OPT_IGNORE_PARENT_DEATH },
	{ "kill-after", required_argument, NULL, 'k' },
	{ "lock", required_argument, NULL, 'l' },
	{ "lock-ttl", required_argument, NULL, OPT_LOCK_TTL },
	{ "lock-wait", required_argument, NULL, 'w' },
	{ "no-new-privs", no_argument, NULL, OPT_NO_NEW_PRIVS },
	{ "parent-pid", required_argument, NULL, OPT_PARENT_PID },
	{ "preserve-status", no_argument, NULL, OPT_PRESERVE_STATUS },
	{ "quiet", no_argument, NULL, 'q' },
	{ "signal", required_argument, NULL, 's' },
	{ "status-file", required_argument, NULL, OPT_STATUS_FILE },
	{ "teardown", required_argument, NULL, 'T' },
	{ "teardown-log", required_argument, NULL, OPT_TEARDOWN_LOG },
	{ "teardown-on", required_argument, NULL, OPT_TEARDOWN_ON },
	{ "teardown-timeout", required_argument, NULL, OPT_TEARDOWN_TIMEOUT },
	{ "timeout", required_argument, NULL, 't' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

/*
 * "+" stops at the first non-option, so COMMAND's own options reach it;
 * ":" makes a missing argument distinguishable from an unknown option.
 */
static const char short_options[] = "+:hk:l:qs:T:t:vVw:";

/* clang-format off: the text as --help prints it. */
const char opts_usage[] =
	"Usage: supervise [OPTION]... [--] COMMAND [ARG]...\n"
	"Run COMMAND in a session of its own; on a timeout or cancel, stop its whole\n"
	"process tree and exit with a status that says what happened.\n"
	"\n"
	"  -t, --timeout=DURATION     stop the run DURATION after COMMAND starts\n"
	"                             (default: no timeout; 0: none)\n"
	"  -k, --kill-after=DURATION  grace between the stop signal and SIGKILL\n"
	"                             (default 10s; 0: SIGKILL at once)\n"
	"  -s, --signal=SIGNAL        the stop signal (default TERM)\n"
	"      --foreground           keep COMMAND in supervise's process group, so\n"
	"                             it can use the terminal (one process; no\n"
	"                             protection against a process-group SIGKILL)\n"
	"      --preserve-status      on timeout, exit with COMMAND's own status\n"
	"      --parent-pid=PID       an ancestor supervise must outlive, besides\n"
	"                             its parent (e.g. $PPID under 'sh -c')\n"
	"      --ignore-parent-death  do not cancel the run when the parent dies\n"
	"      --cancel-on-hangup     cancel the run when nobody reads its stdout or\n"
	"                             stderr any more (the reader closed the pipe)\n"
	"      --cgroup=MODE          contain the run in a cgroup v2 of its own:\n"
	"                             auto (default: where one can be made), off,\n"
	"                             or require (exit 125 where none can be)\n"
	"  -T, --teardown=COMMAND     run the shell command COMMAND once, after the\n"
	"                             run's tree is gone, when the run ends by an\n"
	"                             event in --teardown-on\n"
	"      --teardown-on=EVENTS   comma list of timeout, cancel, failure, success,\n"
	"                             always (default: timeout,cancel)\n"
	"      --teardown-timeout=DURATION  the teardown's own deadline (default 5m;\n"
	"                             0: none)\n"
	"      --teardown-log=FILE    also append the teardown's output to FILE\n"
	"                             (never truncated)\n"
	"  -l, --lock=FILE            hold an exclusive lock on FILE from before\n"
	"                             COMMAND starts until the run and its teardown\n"
	"                             are over (repeatable)\n"
	"  -l, --lock=etcd://HOST:PORT[,HOST:PORT...]/NAME  (etcds:// for TLS) the\n"
	"                             lock NAME in an etcd cluster, for runs on\n"
	"                             several machines\n"
	"  -w, --lock-wait=DURATION   give up waiting for a lock after DURATION\n"
	"                             (default: wait as long as needed; 0: no wait)\n"
	"      --lock-ttl=DURATION    lease of etcd locks: how long one outlives a\n"
	"                             supervise killed with SIGKILL (default 30s)\n"
	"      --etcd-cacert=FILE     CA certificates to verify etcd's (etcds://)\n"
	"      --etcd-cert=FILE       client certificate for etcd, with --etcd-key\n"
	"      --etcd-key=FILE        the client certificate's private key\n"
	"      --etcd-user-file=FILE  etcd user: a first line USER:PASSWORD\n"
	"      --caps=LIST            run COMMAND with only these capabilities\n"
	"                             (comma list such as cap_net_bind_service, or\n"
	"                             none) in all its sets; implies --no-new-privs\n"
	"      --no-new-privs         set no_new_privs for COMMAND\n"
	"      --status-file=FILE     write a JSON record of the run to FILE when\n"
	"                             supervise ends (atomically); FILE must be\n"
	"                             missing, empty or such a record: anything\n"
	"                             else, a symlink included, is not replaced\n"
	"  -q, --quiet                print errors only\n"
	"  -v, --verbose              also print start, exit and timing details\n"
	"  -h, --help                 print this help and exit\n"
	"  -V, --version              print the version and exit\n"
	"\n"
	"DURATION is a number with an optional fraction and unit: ms, s (default),\n"
	"m, h or d.  SIGNAL is a name (TERM, SIGTERM, term) or a number.\n"
	"SIGTERM, SIGINT, SIGHUP and SIGQUIT cancel the run; SIGALRM times it out\n"
	"now; SIGUSR1, SIGUSR2 and SIGWINCH are forwarded to COMMAND.\n"
	"\n"
	"Exit status:\n"
	"  N        COMMAND exited with N\n"
	"  75       gave up waiting for a lock (COMMAND not started)\n"
	"  121      an etcd lock was lost during the run (its lease could not be\n"
	"           kept); the run was stopped\n"
	"  122      a process of the run refused to stop and was left running\n"
	"  123      the run succeeded but its teardown failed or timed out\n"
	"  124      the run timed out (COMMAND's status with --preserve-status)\n"
	"  125      supervise itself failed (bad usage, a file it cannot or may not\n"
	"           write, setup, lost supervisor)\n"
	"  126      COMMAND was found but could not be run\n"
	"  127      COMMAND was not found\n"
	"  128+N    COMMAND died of signal N, or the run was cancelled by signal N\n"
	"  129      the parent of supervise died\n";
/* clang-format on */

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return OPTS_ERROR;
}

/*
 * True when a '?' from getopt_long() is for a long option that takes no
 * argument but was given one ("--quiet=1"): glibc then sets optopt to the
 * option's val instead of 0.  An unknown short option cannot be mistaken
 * for this, as every short letter that is also a val here ('h', 'q', 'v',
 * 'V') is a known short option, and the other vals are not chars.
 */
static bool
is_unwanted_argument(int c)
{
	const struct option *o;

	if (c != '?' || optopt == 0) {
		return false;
	}
	for (o = long_options; o->name != NULL; o++) {
		if (o->val == optopt && o->has_arg == no_argument) {
			return true;
		}
	}
	return false;
}

/*
 * The option's name as the user typed it, for messages.  getopt_long()
 * sets optopt to 0 for an unknown long option, which it has moved optind
 * past; an unknown short one may sit in a cluster ("-xq") that optind has
 * not passed yet, so argv cannot name it.  A missing argument is always
 * for the last option of argv[optind - 1], and so is an argument given to
 * a long option that takes none.
 */
static const char *
typed_name(char **argv, int c, char *buf, size_t len)
{
	const char *arg = optind > 0 ? argv[optind - 1] : NULL;
	bool is_long = c == ':' ? arg != NULL && strncmp(arg, "--", 2) == 0 :
				  optopt == 0 || is_unwanted_argument(c);

	if (is_long && arg != NULL) {
		snprintf(buf, len, "%.*s", (int)strcspn(arg, "="), arg);
	} else {
		snprintf(buf, len, "-%c", optopt);
	}
	return buf;
}

static int
parse_stop_signal(const char *arg, int *sig, char *err, size_t errlen)
{
	int s = parse_signal(arg);

	if (s < 0) {
		return fail(err, errlen, "invalid signal '%s'", arg);
	}
	/*
	 * A stop signal must end processes, or at least ask them to: 0 does
	 * nothing, and the job-control signals would only suspend a tree that
	 * supervise then resumes with SIGCONT.
	 */
	if (s == 0 || s == SIGSTOP || s == SIGTSTP || s == SIGTTIN ||
	    s == SIGTTOU || s == SIGCONT) {
		return fail(err, errlen,
			    "signal '%s' cannot be the stop signal", arg);
	}
	*sig = s;
	return OPTS_RUN;
}

/* --etcd-cacert, --etcd-cert, --etcd-key, --etcd-user-file: a file name. */
static int
parse_etcd_file(struct options *o, int c, char *err, size_t errlen)
{
	const char **slot = c == OPT_ETCD_CACERT ? &o->etcd_cacert :
		c == OPT_ETCD_CERT		 ? &o->etcd_cert :
		c == OPT_ETCD_KEY		 ? &o->etcd_key :
						   &o->etcd_user_file;

	if (*optarg == '\0') {
		return fail(err, errlen, "invalid etcd credential file ''");
	}
	*slot = optarg;
	return OPTS_RUN;
}

static int
parse_one(struct options *o, int c, char **argv, char *err, size_t errlen)
{
	struct remote_url url;
	char name[160];

	switch (c) {
	case 'k':
		if (parse_duration(optarg, &o->kill_after_ns) < 0) {
			return fail(err, errlen, "invalid duration '%s'",
				    optarg);
		}
		return OPTS_RUN;
	case 'l':
		if (*optarg == '\0') {
			return fail(err, errlen, "invalid lock file ''");
		}
		if (o->nlocks == OPTS_MAX_LOCKS) {
			return fail(err, errlen, "too many locks (at most %d)",
				    OPTS_MAX_LOCKS);
		}
		if (remote_is_url(optarg) &&
		    remote_parse_url(optarg, &url, name, sizeof(name)) < 0) {
			return fail(err, errlen, "invalid lock URL '%s': %s",
				    optarg, name);
		}
		o->locks[o->nlocks++] = optarg;
		return OPTS_RUN;
	case 'q':
		o->verbosity = -1;
		return OPTS_RUN;
	case 's':
		return parse_stop_signal(optarg, &o->stop_signal, err, errlen);
	case 't':
		if (parse_duration(optarg, &o->timeout_ns) < 0) {
			return fail(err, errlen, "invalid duration '%s'",
				    optarg);
		}
		return OPTS_RUN;
	case 'v':
		o->verbosity = 1;
		return OPTS_RUN;
	case 'w':
		if (parse_duration(optarg, &o->lock_wait_ns) < 0) {
			return fail(err, errlen, "invalid duration '%s'",
				    optarg);
		}
		/* The give-up line quotes it as the user wrote it. */
		o->lock_wait_text = optarg;
		return OPTS_RUN;
	case OPT_CANCEL_ON_HANGUP:
		o->cancel_on_hangup = true;
		return OPTS_RUN;
	case OPT_CGROUP:
		if (strcmp(optarg, "auto") == 0) {
			o->cgroup = CGROUP_AUTO;
		} else if (strcmp(optarg, "off") == 0) {
			o->cgroup = CGROUP_OFF;
		} else if (strcmp(optarg, "require") == 0) {
			o->cgroup = CGROUP_REQUIRE;
		} else {
			return fail(err, errlen,
				    "invalid cgroup mode '%s' "
				    "(auto, off or require)",
				    optarg);
		}
		return OPTS_RUN;
	case OPT_CAPS:
		switch (caps_parse(optarg, &o->caps, name, sizeof(name))) {
		case -1:
			return fail(err, errlen, "invalid capability '%s'",
				    name);
		case -2:
			return fail(err, errlen, "cannot load libcap: %s",
				    name);
		default:
			break;
		}
		o->caps_given = true;
		o->no_new_privs = true;
		return OPTS_RUN;
	case OPT_ETCD_CACERT:
	case OPT_ETCD_CERT:
	case OPT_ETCD_KEY:
	case OPT_ETCD_USER_FILE:
		return parse_etcd_file(o, c, err, errlen);
	case OPT_FOREGROUND:
		o->foreground = true;
		return OPTS_RUN;
	case OPT_NO_NEW_PRIVS:
		o->no_new_privs = true;
		return OPTS_RUN;
	case OPT_IGNORE_PARENT_DEATH:
		o->ignore_parent_death = true;
		return OPTS_RUN;
	case OPT_LOCK_TTL:
		/* etcd counts leases in whole seconds; a day is plenty. */
		if (parse_duration(optarg, &o->lock_ttl_ns) < 0 ||
		    o->lock_ttl_ns < UINT64_C(1000000000) ||
		    o->lock_ttl_ns > UINT64_C(86400000000000)) {
			return fail(err, errlen,
				    "invalid lock TTL '%s' (1s to 1d)", optarg);
		}
		return OPTS_RUN;
	case OPT_PARENT_PID:
		o->parent_pid = parse_pid(optarg);
		if (o->parent_pid < 0) {
			return fail(err, errlen, "invalid process id '%s'",
				    optarg);
		}
		return OPTS_RUN;
	case OPT_PRESERVE_STATUS:
		o->preserve_status = true;
		return OPTS_RUN;
	case OPT_STATUS_FILE:
		if (*optarg == '\0') {
			return fail(err, errlen, "invalid status file ''");
		}
		o->status_file = optarg;
		return OPTS_RUN;
	case 'T':
		o->teardown = optarg;
		return OPTS_RUN;
	case OPT_TEARDOWN_LOG:
		if (*optarg == '\0') {
			return fail(err, errlen,
				    "invalid teardown log file ''");
		}
		o->teardown_log = optarg;
		return OPTS_RUN;
	case OPT_TEARDOWN_ON:
		if (parse_events(optarg, &o->teardown_on, name, sizeof(name)) <
		    0) {
			return fail(err, errlen, "invalid teardown event '%s'",
				    name);
		}
		return OPTS_RUN;
	case OPT_TEARDOWN_TIMEOUT:
		if (parse_duration(optarg, &o->teardown_timeout_ns) < 0) {
			return fail(err, errlen, "invalid duration '%s'",
				    optarg);
		}
		return OPTS_RUN;
	case ':':
		return fail(err, errlen, "option '%s' requires an argument",
			    typed_name(argv, c, name, sizeof(name)));
	default:
		if (is_unwanted_argument(c)) {
			return fail(err, errlen,
				    "option '%s' doesn't allow an argument",
				    typed_name(argv, c, name, sizeof(name)));
		}
		return fail(err, errlen, "unknown option '%s'",
			    typed_name(argv, c, name, sizeof(name)));
	}
}

enum opts_result
opts_parse(struct options *o, int argc, char **argv, char *err, size_t errlen)
{
	int c, r;

	memset(o, 0, sizeof(*o));
	o->kill_after_ns = UINT64_C(10000000000);
	o->stop_signal = SIGTERM;
	o->teardown_on = EVENT_TIMEOUT | EVENT_CANCEL;
	o->teardown_timeout_ns = UINT64_C(300) * 1000000000;
	o->lock_wait_ns = DURATION_FOREVER;
	o->lock_ttl_ns = UINT64_C(30000000000);
	err[0] = '\0';

	/* optind 0 makes glibc reinitialise getopt, so this can run twice. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, short_options, long_options,
				NULL)) != -1) {
		if (c == 'h') {
			return OPTS_HELP;
		}
		if (c == 'V') {
			return OPTS_VERSION;
		}
		r = parse_one(o, c, argv, err, errlen);
		if (r != OPTS_RUN) {
			return (enum opts_result)r;
		}
	}
	if (optind >= argc) {
		snprintf(err, errlen, "missing command");
		return OPTS_ERROR;
	}
	o->command = argv + optind;
	return OPTS_RUN;
}
