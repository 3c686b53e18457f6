/* options.c: the command line, parsed without printing or exiting. */
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check_suites.h"
#include "options.h"
#include "parse.h"

#define SEC UINT64_C(1000000000)

/*
 * An argv as main() gets it: "supervise", the arguments, then NULL.  The
 * array lives as long as the innermost enclosing block, and ck_assert_*()
 * opens one: where opts.command is looked at afterwards, the argv is kept
 * in a variable of the test's own block.
 */
#define ARGV(...) ((char *[]){ "supervise", __VA_ARGS__, NULL })

static struct options opts;
static char err[256];

static int
count_args(char **argv)
{
	int argc = 0;

	while (argv[argc] != NULL) {
		argc++;
	}
	return argc;
}

static enum opts_result
parse(char **argv)
{
	/* A stale message must not pass for the one under test. */
	memset(err, 'x', sizeof(err) - 1);
	err[sizeof(err) - 1] = '\0';
	return opts_parse(&opts, count_args(argv), argv, err, sizeof(err));
}

/* The run must fail with exactly this message (no "supervise: " prefix). */
#define ck_assert_usage_error(argv, message)                                   \
	do {                                                                   \
		ck_assert_int_eq(parse(argv), OPTS_ERROR);                     \
		ck_assert_str_eq(err, message);                                \
	} while (0)

static void
ck_assert_command(char **want)
{
	int i;

	ck_assert_ptr_nonnull(opts.command);
	for (i = 0; want[i] != NULL; i++) {
		ck_assert_ptr_nonnull(opts.command[i]);
		ck_assert_str_eq(opts.command[i], want[i]);
	}
	ck_assert_ptr_null(opts.command[i]);
}

START_TEST(test_options_defaults_without_options)
{
	char **argv = ARGV("sleep", "1");

	ck_assert_int_eq(parse(argv), OPTS_RUN);
	ck_assert_str_eq(err, "");
	ck_assert_uint_eq(opts.timeout_ns, 0);
	ck_assert_uint_eq(opts.kill_after_ns, 10 * SEC);
	ck_assert_int_eq(opts.stop_signal, SIGTERM);
	ck_assert(!opts.foreground);
	ck_assert(!opts.preserve_status);
	ck_assert(!opts.ignore_parent_death);
	ck_assert_int_eq(opts.parent_pid, 0);
	ck_assert_int_eq(opts.verbosity, 0);
	/* COMMAND is argv itself, not a copy. */
	ck_assert_ptr_eq(opts.command, argv + 1);
	ck_assert_command((char *[]){ "sleep", "1", NULL });
}
END_TEST

START_TEST(test_options_timeout_short_and_long)
{
	ck_assert_int_eq(parse(ARGV("-t", "5", "cmd")), OPTS_RUN);
	ck_assert_uint_eq(opts.timeout_ns, 5 * SEC);
	ck_assert_int_eq(parse(ARGV("-t1.5", "cmd")), OPTS_RUN);
	ck_assert_uint_eq(opts.timeout_ns, 1500 * (SEC / 1000));
	ck_assert_int_eq(parse(ARGV("--timeout=2m", "cmd")), OPTS_RUN);
	ck_assert_uint_eq(opts.timeout_ns, 120 * SEC);
	ck_assert_int_eq(parse(ARGV("--timeout", "10ms", "cmd")), OPTS_RUN);
	ck_assert_uint_eq(opts.timeout_ns, 10 * (SEC / 1000));
}
END_TEST

START_TEST(test_options_kill_after_short_and_long)
{
	ck_assert_int_eq(parse(ARGV("-k", "0", "cmd")), OPTS_RUN);
	ck_assert_uint_eq(opts.kill_after_ns, 0);
	ck_assert_int_eq(parse(ARGV("-k3", "cmd")), OPTS_RUN);
	ck_assert_uint_eq(opts.kill_after_ns, 3 * SEC);
	ck_assert_int_eq(parse(ARGV("--kill-after=1.5", "cmd")), OPTS_RUN);
	ck_assert_uint_eq(opts.kill_after_ns, 1500 * (SEC / 1000));
	ck_assert_int_eq(parse(ARGV("--kill-after", "1h", "cmd")), OPTS_RUN);
	ck_assert_uint_eq(opts.kill_after_ns, 3600 * SEC);
}
END_TEST

START_TEST(test_options_signal_short_and_long)
{
	ck_assert_int_eq(parse(ARGV("-s", "KILL", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.stop_signal, SIGKILL);
	ck_assert_int_eq(parse(ARGV("-sINT", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.stop_signal, SIGINT);
	ck_assert_int_eq(parse(ARGV("--signal=9", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.stop_signal, SIGKILL);
	ck_assert_int_eq(parse(ARGV("--signal", "sighup", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.stop_signal, SIGHUP);
	ck_assert_int_eq(parse(ARGV("-s", "RTMIN+1", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.stop_signal, SIGRTMIN + 1);
}
END_TEST

START_TEST(test_options_flags_short_and_long)
{
	ck_assert_int_eq(parse(ARGV("--foreground", "cmd")), OPTS_RUN);
	ck_assert(opts.foreground);
	ck_assert_int_eq(parse(ARGV("--preserve-status", "cmd")), OPTS_RUN);
	ck_assert(opts.preserve_status);
	ck_assert_int_eq(parse(ARGV("--ignore-parent-death", "cmd")), OPTS_RUN);
	ck_assert(opts.ignore_parent_death);
	ck_assert_int_eq(parse(ARGV("-q", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.verbosity, -1);
	ck_assert_int_eq(parse(ARGV("--quiet", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.verbosity, -1);
	ck_assert_int_eq(parse(ARGV("-v", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.verbosity, 1);
	ck_assert_int_eq(parse(ARGV("--verbose", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.verbosity, 1);
	/* The last of -q and -v wins, clustered or not. */
	ck_assert_int_eq(parse(ARGV("-qv", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.verbosity, 1);
	ck_assert_int_eq(parse(ARGV("-v", "-q", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.verbosity, -1);
}
END_TEST

START_TEST(test_options_parent_pid_long)
{
	ck_assert_int_eq(parse(ARGV("--parent-pid=123", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.parent_pid, 123);
	ck_assert_int_eq(parse(ARGV("--parent-pid", "1", "cmd")), OPTS_RUN);
	ck_assert_int_eq(opts.parent_pid, 1);
}
END_TEST

START_TEST(test_options_all_together)
{
	char **argv = ARGV("-qt", "3", "-k1", "--signal=HUP", "--foreground",
			   "--preserve-status", "--parent-pid=42",
			   "--ignore-parent-death", "--", "cmd", "arg");

	ck_assert_int_eq(parse(argv), OPTS_RUN);
	ck_assert_int_eq(opts.verbosity, -1);
	ck_assert_uint_eq(opts.timeout_ns, 3 * SEC);
	ck_assert_uint_eq(opts.kill_after_ns, 1 * SEC);
	ck_assert_int_eq(opts.stop_signal, SIGHUP);
	ck_assert(opts.foreground);
	ck_assert(opts.preserve_status);
	ck_assert_int_eq(opts.parent_pid, 42);
	ck_assert(opts.ignore_parent_death);
	ck_assert_command((char *[]){ "cmd", "arg", NULL });
}
END_TEST

START_TEST(test_options_double_dash_ends_the_options)
{
	char **first = ARGV("--", "-t", "5");
	char **second = ARGV("-t", "1", "--", "cmd", "--");
	char **third = ARGV("--", "--", "x");

	ck_assert_int_eq(parse(first), OPTS_RUN);
	ck_assert_uint_eq(opts.timeout_ns, 0);
	ck_assert_command((char *[]){ "-t", "5", NULL });

	ck_assert_int_eq(parse(second), OPTS_RUN);
	ck_assert_uint_eq(opts.timeout_ns, 1 * SEC);
	ck_assert_command((char *[]){ "cmd", "--", NULL });

	/* Only the first "--" belongs to supervise. */
	ck_assert_int_eq(parse(third), OPTS_RUN);
	ck_assert_command((char *[]){ "--", "x", NULL });
}
END_TEST

START_TEST(test_options_after_command_reach_the_command_untouched)
{
	char **argv = ARGV("sleep", "-t", "5", "--help", "-x", "--bogus");

	ck_assert_int_eq(parse(argv), OPTS_RUN);
	ck_assert_uint_eq(opts.timeout_ns, 0);
	ck_assert_command((char *[]){ "sleep", "-t", "5", "--help", "-x",
				      "--bogus", NULL });
	/* Not permuted either: argv is still in the caller's order. */
	ck_assert_str_eq(argv[1], "sleep");
	ck_assert_str_eq(argv[2], "-t");
}
END_TEST

START_TEST(test_options_single_dash_is_a_command)
{
	char **argv = ARGV("-");

	ck_assert_int_eq(parse(argv), OPTS_RUN);
	ck_assert_command((char *[]){ "-", NULL });
}
END_TEST

START_TEST(test_options_missing_command_is_an_error)
{
	ck_assert_usage_error(((char *[]){ "supervise", NULL }),
			      "missing command");
	ck_assert_usage_error(ARGV("-t", "5"), "missing command");
	ck_assert_usage_error(ARGV("--"), "missing command");
	ck_assert_usage_error(ARGV("-v", "--"), "missing command");
}
END_TEST

START_TEST(test_options_unknown_short_option_is_named)
{
	ck_assert_usage_error(ARGV("-x", "cmd"), "unknown option '-x'");
	ck_assert_usage_error(ARGV("-qx", "cmd"), "unknown option '-x'");
	ck_assert_usage_error(ARGV("-xq", "cmd"), "unknown option '-x'");
	ck_assert_usage_error(ARGV("-t", "5", "-xq", "cmd"),
			      "unknown option '-x'");
}
END_TEST

/*
 * An unknown letter inside a cluster ("-xq") leaves optind on the cluster
 * itself, so the argument before it is not the one that was typed: it must
 * not be taken for a long option.
 */
START_TEST(test_options_unknown_short_option_after_a_long_one_is_named)
{
	ck_assert_usage_error(ARGV("--foreground", "-xq", "cmd"),
			      "unknown option '-x'");
	ck_assert_usage_error(ARGV("--timeout=5", "-xv", "cmd"),
			      "unknown option '-x'");
}
END_TEST

START_TEST(test_options_unknown_long_option_is_named)
{
	ck_assert_usage_error(ARGV("--bogus", "cmd"),
			      "unknown option '--bogus'");
	ck_assert_usage_error(ARGV("--bogus=1", "cmd"),
			      "unknown option '--bogus'");
	ck_assert_usage_error(ARGV("-v", "--bogus", "cmd"),
			      "unknown option '--bogus'");
}
END_TEST

/* Every long option that takes no argument, as the user may give it. */
static const char *const flag_options[] = {
	"foreground",
	"help",
	"ignore-parent-death",
	"no-new-privs",
	"preserve-status",
	"quiet",
	"verbose",
	"version",
};

/*
 * "--quiet=1" is neither unknown nor a missing argument: the option is
 * named as typed, and the value is not taken for a command.
 */
START_TEST(test_options_argument_to_a_flag_is_refused)
{
	const char *name = flag_options[_i];
	char arg[64], want[128];

	snprintf(arg, sizeof(arg), "--%s=1", name);
	snprintf(want, sizeof(want), "option '--%s' doesn't allow an argument",
		 name);
	ck_assert_usage_error(ARGV(arg, "cmd"), want);
	/* An empty value is a value too. */
	snprintf(arg, sizeof(arg), "--%s=", name);
	ck_assert_usage_error(ARGV(arg, "cmd"), want);
	ck_assert_usage_error(ARGV("-v", "--timeout=5", arg, "cmd"), want);
}
END_TEST

/* An abbreviation is named as typed, up to the '='. */
START_TEST(test_options_argument_to_an_abbreviated_flag_is_named_as_typed)
{
	ck_assert_usage_error(ARGV("--qui=1", "cmd"),
			      "option '--qui' doesn't allow an argument");
	ck_assert_usage_error(ARGV("--fore=yes", "cmd"),
			      "option '--fore' doesn't allow an argument");
	ck_assert_usage_error(ARGV("--preserve=a=b", "cmd"),
			      "option '--preserve' doesn't allow an argument");
	ck_assert_usage_error(ARGV("--ign=1", "cmd"),
			      "option '--ign' doesn't allow an argument");
	/* Still ambiguous (--verbose, --version): not named as either. */
	ck_assert_usage_error(ARGV("--ver=1", "cmd"), "unknown option '--ver'");
}
END_TEST

START_TEST(test_options_missing_argument_short)
{
	ck_assert_usage_error(ARGV("-t"), "option '-t' requires an argument");
	ck_assert_usage_error(ARGV("-k"), "option '-k' requires an argument");
	ck_assert_usage_error(ARGV("-s"), "option '-s' requires an argument");
	ck_assert_usage_error(ARGV("-qt"), "option '-t' requires an argument");
	ck_assert_usage_error(ARGV("--foreground", "-t"),
			      "option '-t' requires an argument");
}
END_TEST

START_TEST(test_options_missing_argument_long)
{
	ck_assert_usage_error(ARGV("--timeout"),
			      "option '--timeout' requires an argument");
	ck_assert_usage_error(ARGV("--kill-after"),
			      "option '--kill-after' requires an argument");
	ck_assert_usage_error(ARGV("--signal"),
			      "option '--signal' requires an argument");
	ck_assert_usage_error(ARGV("--parent-pid"),
			      "option '--parent-pid' requires an argument");
	ck_assert_usage_error(ARGV("-v", "--timeout"),
			      "option '--timeout' requires an argument");
}
END_TEST

START_TEST(test_options_invalid_duration_is_quoted)
{
	ck_assert_usage_error(ARGV("-t", "abc", "cmd"),
			      "invalid duration 'abc'");
	ck_assert_usage_error(ARGV("--timeout=-1", "cmd"),
			      "invalid duration '-1'");
	ck_assert_usage_error(ARGV("-k", "1x", "cmd"), "invalid duration '1x'");
	ck_assert_usage_error(ARGV("--kill-after", "", "cmd"),
			      "invalid duration ''");
}
END_TEST

START_TEST(test_options_invalid_signal_is_quoted)
{
	ck_assert_usage_error(ARGV("-s", "foo", "cmd"), "invalid signal 'foo'");
	ck_assert_usage_error(ARGV("--signal=65", "cmd"),
			      "invalid signal '65'");
	ck_assert_usage_error(ARGV("-s", "", "cmd"), "invalid signal ''");
}
END_TEST

START_TEST(test_options_invalid_pid_is_quoted)
{
	ck_assert_usage_error(ARGV("--parent-pid=x", "cmd"),
			      "invalid process id 'x'");
	ck_assert_usage_error(ARGV("--parent-pid", "0", "cmd"),
			      "invalid process id '0'");
	ck_assert_usage_error(ARGV("--parent-pid=-5", "cmd"),
			      "invalid process id '-5'");
}
END_TEST

/* The stop signal must end processes, not just pause or resume them. */
static const char *const refused_signals[] = {
	"STOP", "SIGSTOP", "19", "0", "CONT", "cont", "TSTP", "TTIN", "TTOU",
};

START_TEST(test_options_signal_that_cannot_stop_is_refused)
{
	const char *name = refused_signals[_i];
	char want[128];

	snprintf(want, sizeof(want), "signal '%s' cannot be the stop signal",
		 name);
	ck_assert_usage_error(ARGV("-s", (char *)name, "cmd"), want);
}
END_TEST

START_TEST(test_options_help_wins_over_a_command)
{
	ck_assert_int_eq(parse(ARGV("--help", "cmd")), OPTS_HELP);
	ck_assert_int_eq(parse(ARGV("-h")), OPTS_HELP);
	ck_assert_int_eq(parse(ARGV("-t", "5", "--help")), OPTS_HELP);
	ck_assert(strncmp(opts_usage, "Usage: supervise ", 17) == 0);
}
END_TEST

START_TEST(test_options_version_wins_over_a_command)
{
	ck_assert_int_eq(parse(ARGV("--version", "cmd")), OPTS_VERSION);
	ck_assert_int_eq(parse(ARGV("-V")), OPTS_VERSION);
	ck_assert_str_eq(SUPERVISE_VERSION, "0.1.0");
}
END_TEST

/* The first error ends the parse: later arguments are not looked at. */
START_TEST(test_options_first_error_is_reported)
{
	ck_assert_usage_error(ARGV("-t", "abc", "-s", "foo", "cmd"),
			      "invalid duration 'abc'");
	ck_assert_usage_error(ARGV("-x", "--help"), "unknown option '-x'");
}
END_TEST

START_TEST(test_options_parse_twice_in_one_process)
{
	char **first = ARGV("-t", "5", "-q", "first");
	char **second = ARGV("-k", "1", "second", "x");

	ck_assert_int_eq(parse(first), OPTS_RUN);
	ck_assert_command((char *[]){ "first", NULL });
	ck_assert_int_eq(parse(second), OPTS_RUN);
	/* Nothing of the first parse is left over. */
	ck_assert_uint_eq(opts.timeout_ns, 0);
	ck_assert_int_eq(opts.verbosity, 0);
	ck_assert_uint_eq(opts.kill_after_ns, 1 * SEC);
	ck_assert_command((char *[]){ "second", "x", NULL });
}
END_TEST

/* An error in the middle of "-xq" leaves getopt inside the cluster. */
START_TEST(test_options_parse_after_an_error_mid_cluster)
{
	char **argv = ARGV("-v", "other");

	ck_assert_int_eq(parse(ARGV("-xq", "cmd")), OPTS_ERROR);
	ck_assert_int_eq(parse(argv), OPTS_RUN);
	ck_assert_int_eq(opts.verbosity, 1);
	ck_assert_command((char *[]){ "other", NULL });
}
END_TEST

START_TEST(test_options_error_text_fits_a_small_buffer)
{
	char small[8];
	char **argv = ARGV("--bogus", "cmd");

	memset(small, 'x', sizeof(small));
	ck_assert_int_eq(opts_parse(&opts, count_args(argv), argv, small,
				    sizeof(small)),
			 OPTS_ERROR);
	ck_assert_str_eq(small, "unknown");
}
END_TEST

/* opts_parse() never prints: the caller owns the one line of stderr. */
START_TEST(test_options_never_print)
{
	char buf[256];
	int fds[2], saved;
	ssize_t n;

	ck_assert_int_eq(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fds[1], STDERR_FILENO), 0);
	parse(ARGV("-x", "cmd"));
	parse(ARGV("--bogus", "cmd"));
	parse(ARGV("--timeout"));
	parse(ARGV("-t"));
	parse(ARGV("-s", "STOP", "cmd"));
	parse(ARGV("--help"));
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fds[1]);
	/* Every write end is closed: end of file at once if nothing came. */
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	ck_assert_msg(n == 0, "printed: %.*s", (int)(n > 0 ? n : 0), buf);
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *
options_suite(void)
{
	Suite *s = suite_create("options");
	TCase *tc;

	tc = tcase_create("accepted");
	tcase_add_test(tc, test_options_defaults_without_options);
	tcase_add_test(tc, test_options_timeout_short_and_long);
	tcase_add_test(tc, test_options_kill_after_short_and_long);
	tcase_add_test(tc, test_options_signal_short_and_long);
	tcase_add_test(tc, test_options_flags_short_and_long);
	tcase_add_test(tc, test_options_parent_pid_long);
	tcase_add_test(tc, test_options_all_together);
	tcase_add_test(tc, test_options_double_dash_ends_the_options);
	tcase_add_test(tc,
		       test_options_after_command_reach_the_command_untouched);
	tcase_add_test(tc, test_options_single_dash_is_a_command);
	tcase_add_test(tc, test_options_help_wins_over_a_command);
	tcase_add_test(tc, test_options_version_wins_over_a_command);
	tcase_add_test(tc, test_options_parse_twice_in_one_process);
	tcase_add_test(tc, test_options_parse_after_an_error_mid_cluster);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_add_test(tc, test_options_missing_command_is_an_error);
	tcase_add_test(tc, test_options_unknown_short_option_is_named);
	tcase_add_test(
		tc,
		test_options_unknown_short_option_after_a_long_one_is_named);
	tcase_add_test(tc, test_options_unknown_long_option_is_named);
	tcase_add_loop_test(tc, test_options_argument_to_a_flag_is_refused, 0,
			    N(flag_options));
	tcase_add_test(
		tc,
		test_options_argument_to_an_abbreviated_flag_is_named_as_typed);
	tcase_add_test(tc, test_options_missing_argument_short);
	tcase_add_test(tc, test_options_missing_argument_long);
	tcase_add_test(tc, test_options_invalid_duration_is_quoted);
	tcase_add_test(tc, test_options_invalid_signal_is_quoted);
	tcase_add_test(tc, test_options_invalid_pid_is_quoted);
	tcase_add_loop_test(tc, test_options_signal_that_cannot_stop_is_refused,
			    0, N(refused_signals));
	tcase_add_test(tc, test_options_first_error_is_reported);
	tcase_add_test(tc, test_options_error_text_fits_a_small_buffer);
	tcase_add_test(tc, test_options_never_print);
	suite_add_tcase(s, tc);
	return s;
}
