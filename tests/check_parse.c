/* parse.c: DURATION and SIGNAL texts, signal names, durations for humans. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check_suites.h"
#include "parse.h"

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

struct duration_case {
	const char *text;
	uint64_t ns;
};

static const struct duration_case valid_durations[] = {
	{ "0", 0 },
	{ "00", 0 },
	{ "0.0", 0 },
	{ "0ms", 0 },
	{ "1", 1 * SEC },
	{ "1s", 1 * SEC },
	{ "007", 7 * SEC },
	{ "1.5", 1500 * MS },
	{ ".5", 500 * MS },
	{ "2.", 2 * SEC },
	/* Exact in decimal, inexact in binary floating point. */
	{ "0.1", 100 * MS },
	{ "10ms", 10 * MS },
	{ "1.5ms", 1500000 },
	{ "2m", 120 * SEC },
	{ "0.25m", 15 * SEC },
	{ "1h", 3600 * SEC },
	{ "1.5h", 5400 * SEC },
	{ "1d", 86400 * SEC },
	{ "0.000000001", 1 },
	{ "123456789.123456789", UINT64_C(123456789123456789) },
	/* The largest values below the saturation point stay exact. */
	{ "18446744073.709551614", UINT64_MAX - 1 },
	{ "213503d", UINT64_C(213503) * 86400 * SEC },
};

START_TEST(test_parse_duration_accepts_valid_text)
{
	const struct duration_case *c = &valid_durations[_i];
	uint64_t ns = 12345;

	ck_assert_msg(parse_duration(c->text, &ns) == 0, "'%s' was refused",
		      c->text);
	ck_assert_msg(ns == c->ns, "'%s' gave %llu ns, not %llu", c->text,
		      (unsigned long long)ns, (unsigned long long)c->ns);
}
END_TEST

/* Below a nanosecond: a timeout of "almost 0" must not mean "none". */
static const char *const tiny_durations[] = {
	"0.0000000001",
	"0.0000000009",
	"0.0000000000001ms",
	"0.000000000000000000000001",
	"0.000000000000000000000000000000000001d",
};

START_TEST(test_parse_duration_never_rounds_a_tiny_value_to_zero)
{
	const char *text = tiny_durations[_i];
	uint64_t ns = 0;

	ck_assert_msg(parse_duration(text, &ns) == 0, "'%s' was refused", text);
	ck_assert_msg(ns == 1, "'%s' gave %llu ns, not 1", text,
		      (unsigned long long)ns);
}
END_TEST

static const char *const invalid_durations[] = {
	"",    "abc", "-1",   "+1",   "-0",    "1e3", " 1", "1 ",
	"1s ", "1 s", "1x",   "1..2", "1.5.5", ".",   "ms", "s",
	"inf", "nan", "1sec", "1ms5", "0x10",  "1,5",
};

START_TEST(test_parse_duration_rejects_malformed_text)
{
	const char *text = invalid_durations[_i];
	uint64_t ns = 0;

	errno = 0;
	ck_assert_msg(parse_duration(text, &ns) == -1, "'%s' was accepted",
		      text);
	ck_assert_msg(errno == EINVAL, "'%s' set errno %d, not EINVAL", text,
		      errno);
}
END_TEST

/*
 * Each of these is at least 2^64 ns; a wrap-around would turn some of them
 * into a short timeout ("36893488147.419103232" is exactly 2^65 ns).
 */
static const char *const huge_durations[] = {
	"99999999999999999999999d",
	"18446744073.709551615",
	"18446744073.709551616",
	"18446744074",
	"36893488147.419103232",
	"213504d",
	"307445735m",
	"5124096h",
	"18446744073709551616ms",
	"100000000000000000000",
	"99999999999999999999.9",
	"1000000000000000000000000000000ms",
	"9999999999999999999999999999999999999999",
	"00000000000000000000000000000000000000018446744074",
};

START_TEST(test_parse_duration_saturates_huge_values_to_forever)
{
	const char *text = huge_durations[_i];
	uint64_t ns = 0;

	ck_assert_msg(parse_duration(text, &ns) == 0, "'%s' was refused", text);
	ck_assert_msg(ns == DURATION_FOREVER, "'%s' gave %llu ns, not forever",
		      text, (unsigned long long)ns);
}
END_TEST

struct signal_case {
	const char *text;
	int sig;
};

static const struct signal_case fixed_signals[] = {
	{ "TERM", SIGTERM },
	{ "term", SIGTERM },
	{ "SIGTERM", SIGTERM },
	{ "sigterm", SIGTERM },
	{ "SiGtErM", SIGTERM },
	{ "15", SIGTERM },
	{ "0", 0 },
	{ "64", 64 },
	{ "KILL", SIGKILL },
	{ "HUP", SIGHUP },
	{ "int", SIGINT },
	{ "SIGUSR1", SIGUSR1 },
	{ "STOP", SIGSTOP },
	{ "IOT", SIGABRT },
	{ "CLD", SIGCHLD },
	{ "CHLD", SIGCHLD },
};

START_TEST(test_parse_signal_accepts_names_and_numbers)
{
	const struct signal_case *c = &fixed_signals[_i];

	ck_assert_msg(parse_signal(c->text) == c->sig, "'%s' gave %d, not %d",
		      c->text, parse_signal(c->text), c->sig);
}
END_TEST

/* SIGRTMIN is a glibc function, not a constant: no table for these. */
START_TEST(test_parse_signal_accepts_realtime_names)
{
	char text[32];

	ck_assert_int_eq(parse_signal("RTMIN"), SIGRTMIN);
	ck_assert_int_eq(parse_signal("SIGRTMIN"), SIGRTMIN);
	ck_assert_int_eq(parse_signal("rtmin+2"), SIGRTMIN + 2);
	ck_assert_int_eq(parse_signal("RTMIN+2"), SIGRTMIN + 2);
	ck_assert_int_eq(parse_signal("RTMIN+0"), SIGRTMIN);
	ck_assert_int_eq(parse_signal("RTMAX"), SIGRTMAX);
	ck_assert_int_eq(parse_signal("SIGRTMAX-1"), SIGRTMAX - 1);
	snprintf(text, sizeof(text), "RTMIN+%d", SIGRTMAX - SIGRTMIN);
	ck_assert_int_eq(parse_signal(text), SIGRTMAX);
	snprintf(text, sizeof(text), "RTMAX-%d", SIGRTMAX - SIGRTMIN);
	ck_assert_int_eq(parse_signal(text), SIGRTMIN);
}
END_TEST

START_TEST(test_parse_signal_rejects_realtime_names_out_of_range)
{
	char text[32];

	snprintf(text, sizeof(text), "RTMIN+%d", SIGRTMAX - SIGRTMIN + 1);
	ck_assert_int_eq(parse_signal(text), -1);
	snprintf(text, sizeof(text), "RTMAX-%d", SIGRTMAX - SIGRTMIN + 1);
	ck_assert_int_eq(parse_signal(text), -1);
	ck_assert_int_eq(parse_signal("RTMIN-1"), -1);
	ck_assert_int_eq(parse_signal("RTMAX+1"), -1);
	ck_assert_int_eq(parse_signal("RTMIN+"), -1);
	ck_assert_int_eq(parse_signal("RTMIN+x"), -1);
	ck_assert_int_eq(parse_signal("RTMIN+-1"), -1);
}
END_TEST

/*
 * SIGIO is the name <signal.h> and kill(1) use for signal 29 (SIGPOLL is
 * its System V alias), so "IO" must be accepted as well as "POLL".
 */
START_TEST(test_parse_signal_accepts_io_and_poll_for_sigio)
{
	ck_assert_int_eq(parse_signal("POLL"), SIGIO);
	ck_assert_int_eq(parse_signal("SIGPOLL"), SIGIO);
	ck_assert_int_eq(parse_signal("IO"), SIGIO);
	ck_assert_int_eq(parse_signal("SIGIO"), SIGIO);
	ck_assert_int_eq(parse_signal("io"), SIGIO);
}
END_TEST

static const char *const invalid_signals[] = {
	"65",	      "",
	"SIG",	      "FOO",
	"SIGFOO",     "-1",
	"+15",	      "15x",
	" 15",	      "15 ",
	" TERM",      "TERM ",
	"SIGSIGTERM", "99999999999999999999",
	"0x0f",	      "signal 15",
};

START_TEST(test_parse_signal_rejects_invalid_text)
{
	const char *text = invalid_signals[_i];

	ck_assert_msg(parse_signal(text) == -1, "'%s' gave %d", text,
		      parse_signal(text));
}
END_TEST

START_TEST(test_sig_name_gives_the_usual_names)
{
	char buf[32];

	ck_assert_str_eq(sig_name(SIGTERM, buf, sizeof(buf)), "SIGTERM");
	ck_assert_str_eq(sig_name(SIGKILL, buf, sizeof(buf)), "SIGKILL");
	ck_assert_str_eq(sig_name(SIGCHLD, buf, sizeof(buf)), "SIGCHLD");
	ck_assert_str_eq(sig_name(SIGRTMIN, buf, sizeof(buf)), "SIGRTMIN");
	ck_assert_str_eq(sig_name(SIGRTMIN + 2, buf, sizeof(buf)),
			 "SIGRTMIN+2");
	ck_assert_str_eq(sig_name(0, buf, sizeof(buf)), "signal 0");
	ck_assert_str_eq(sig_name(SIGRTMAX + 1, buf, sizeof(buf)), "signal 65");
	ck_assert_str_eq(sig_name(-1, buf, sizeof(buf)), "signal -1");
}
END_TEST

/*
 * Every signal the kernel can send reads back as itself, so a name in a
 * message can be given to -s.  The two that glibc keeps for its threads
 * (32 and 33, below SIGRTMIN) have no name, and come out as "signal N"
 * as sig_name() documents for unknown numbers.
 */
START_TEST(test_sig_name_reads_back_with_parse_signal)
{
	char buf[32];
	int sig;

	for (sig = 1; sig <= SIGRTMAX; sig++) {
		sig_name(sig, buf, sizeof(buf));
		if (sig > 31 && sig < SIGRTMIN) {
			char want[32];

			snprintf(want, sizeof(want), "signal %d", sig);
			ck_assert_str_eq(buf, want);
			continue;
		}
		ck_assert_msg(strncmp(buf, "SIG", 3) == 0,
			      "signal %d is named '%s'", sig, buf);
		ck_assert_msg(parse_signal(buf) == sig,
			      "'%s' (signal %d) reads back as %d", buf, sig,
			      parse_signal(buf));
	}
}
END_TEST

START_TEST(test_sig_name_truncates_to_the_buffer)
{
	char buf[4];

	memset(buf, 'x', sizeof(buf));
	sig_name(SIGTERM, buf, sizeof(buf));
	ck_assert_str_eq(buf, "SIG");
}
END_TEST

static const struct duration_case formatted[] = {
	{ "10s", 10 * SEC },
	{ "1.5s", 1500 * MS },
	{ "1.25s", 1250 * MS },
	{ "2.001s", 2001 * MS },
	{ "250ms", 250 * MS },
	{ "1ms", 1 * MS },
	{ "1.5ms", 1500000 },
	{ "2m", 120 * SEC },
	{ "90s", 90 * SEC },
	{ "60.5s", 60500 * MS },
	{ "forever", DURATION_FOREVER },
};

START_TEST(test_fmt_duration_formats_for_humans)
{
	const struct duration_case *c = &formatted[_i];
	char buf[64];

	ck_assert_str_eq(fmt_duration(c->ns, buf, sizeof(buf)), c->text);
}
END_TEST

/* parse.h gives "2m30s" as an example of what fmt_duration() writes. */
START_TEST(test_fmt_duration_writes_minutes_and_seconds_as_in_parse_h)
{
	char buf[64];

	ck_assert_str_eq(fmt_duration(150 * SEC, buf, sizeof(buf)), "2m30s");
}
END_TEST

/*
 * Durations such as how long COMMAND ran ("command exited with status 0
 * after ...") can be any number of nanoseconds; printf's %g would write
 * "1e-06ms" or "1e+03ms", which is neither for humans nor a DURATION.
 */
static const uint64_t unround_durations[] = {
	1, 50, 12345, 999 * MS + 600 * 1000, 999999999,
};

START_TEST(test_fmt_duration_never_uses_exponent_notation)
{
	uint64_t ns = unround_durations[_i];
	char buf[64];

	fmt_duration(ns, buf, sizeof(buf));
	ck_assert_msg(strpbrk(buf, "eE") == NULL, "%llu ns came out as '%s'",
		      (unsigned long long)ns, buf);
}
END_TEST

START_TEST(test_fmt_duration_truncates_to_the_buffer)
{
	char buf[3];

	fmt_duration(250 * MS, buf, sizeof(buf));
	ck_assert_str_eq(buf, "25");
}
END_TEST

START_TEST(test_parse_pid_accepts_positive_numbers)
{
	ck_assert_int_eq(parse_pid("1"), 1);
	ck_assert_int_eq(parse_pid("12345"), 12345);
	ck_assert_int_eq(parse_pid("2147483647"), 2147483647);
}
END_TEST

static const char *const invalid_pids[] = {
	"0",	"-1", "",   "x",	  "12x",
	" 1",	"1 ", "+1", "2147483648", "99999999999999999999",
	"0x10",
};

START_TEST(test_parse_pid_rejects_invalid_text)
{
	const char *text = invalid_pids[_i];

	ck_assert_msg(parse_pid(text) == -1, "'%s' gave %d", text,
		      parse_pid(text));
}
END_TEST

/*
 * supervise names the classic signals from a table of its own (musl has no
 * sigabbrev_np()); built with glibc, the names are glibc's, and a number
 * glibc does not name is "signal N".
 */
#ifdef __GLIBC__
START_TEST(test_sig_name_names_signals_as_glibc_does)
{
	char buf[32], want[32];
	const char *abbrev;
	int sig;

	for (sig = 1; sig < SIGRTMIN; sig++) {
		abbrev = sigabbrev_np(sig);
		if (abbrev != NULL) {
			snprintf(want, sizeof(want), "SIG%s", abbrev);
		} else {
			snprintf(want, sizeof(want), "signal %d", sig);
		}
		ck_assert_str_eq(sig_name(sig, buf, sizeof(buf)), want);
	}
}
END_TEST
#endif

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *
parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *tc;

	tc = tcase_create("duration");
	tcase_add_loop_test(tc, test_parse_duration_accepts_valid_text, 0,
			    N(valid_durations));
	tcase_add_loop_test(
		tc, test_parse_duration_never_rounds_a_tiny_value_to_zero, 0,
		N(tiny_durations));
	tcase_add_loop_test(tc, test_parse_duration_rejects_malformed_text, 0,
			    N(invalid_durations));
	tcase_add_loop_test(
		tc, test_parse_duration_saturates_huge_values_to_forever, 0,
		N(huge_durations));
	suite_add_tcase(s, tc);

	tc = tcase_create("signal");
	tcase_add_loop_test(tc, test_parse_signal_accepts_names_and_numbers, 0,
			    N(fixed_signals));
	tcase_add_test(tc, test_parse_signal_accepts_realtime_names);
	tcase_add_test(tc,
		       test_parse_signal_rejects_realtime_names_out_of_range);
	tcase_add_test(tc, test_parse_signal_accepts_io_and_poll_for_sigio);
	tcase_add_loop_test(tc, test_parse_signal_rejects_invalid_text, 0,
			    N(invalid_signals));
	tcase_add_test(tc, test_sig_name_gives_the_usual_names);
	tcase_add_test(tc, test_sig_name_reads_back_with_parse_signal);
#ifdef __GLIBC__
	tcase_add_test(tc, test_sig_name_names_signals_as_glibc_does);
#endif
	tcase_add_test(tc, test_sig_name_truncates_to_the_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("fmt_duration");
	tcase_add_loop_test(tc, test_fmt_duration_formats_for_humans, 0,
			    N(formatted));
	tcase_add_test(
		tc, test_fmt_duration_writes_minutes_and_seconds_as_in_parse_h);
	tcase_add_loop_test(tc, test_fmt_duration_never_uses_exponent_notation,
			    0, N(unround_durations));
	tcase_add_test(tc, test_fmt_duration_truncates_to_the_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("pid");
	tcase_add_test(tc, test_parse_pid_accepts_positive_numbers);
	tcase_add_loop_test(tc, test_parse_pid_rejects_invalid_text, 0,
			    N(invalid_pids));
	suite_add_tcase(s, tc);
	return s;
}
