/*
 * caps.c: the --caps list, and whether exec'ing a file changes the
 * caller's credentials (and so clears its parent-death signal).
 */
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caps.h"
#include "check_suites.h"

#define BIT(n) (UINT64_C(1) << (n))

/* Numbers from <linux/capability.h>, fixed by the kernel's ABI. */
enum {
	NUM_CAP_CHOWN = 0,
	NUM_CAP_KILL = 5,
	NUM_CAP_SETPCAP = 8,
	NUM_CAP_NET_BIND_SERVICE = 10,
	NUM_CAP_NET_RAW = 13,
	NUM_CAP_SYS_ADMIN = 21,
};

static char dir[256];
static char copy[300];
static char script[300];

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(dir, sizeof(dir), "%s/check_caps.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(copy, sizeof(copy), "%s/true", dir);
	snprintf(script, sizeof(script), "%s/script", dir);
}

static void
teardown(void)
{
	unlink(copy);
	unlink(script);
	rmdir(dir);
}

/* ---- caps_parse ---- */

struct caps_case {
	const char *text;
	uint64_t mask;
};

static const struct caps_case valid_caps[] = {
	{ "none", 0 },
	{ "NONE", 0 },
	{ "None", 0 },
	{ "cap_net_raw", BIT(NUM_CAP_NET_RAW) },
	{ "CAP_NET_RAW", BIT(NUM_CAP_NET_RAW) },
	{ "Cap_Net_Raw", BIT(NUM_CAP_NET_RAW) },
	{ "cap_net_raw,cap_net_bind_service",
	  BIT(NUM_CAP_NET_RAW) | BIT(NUM_CAP_NET_BIND_SERVICE) },
	{ "cap_net_bind_service,cap_net_raw",
	  BIT(NUM_CAP_NET_RAW) | BIT(NUM_CAP_NET_BIND_SERVICE) },
	{ "cap_net_raw,cap_net_raw", BIT(NUM_CAP_NET_RAW) },
	{ "cap_chown", BIT(NUM_CAP_CHOWN) },
	{ "cap_chown,cap_kill,cap_setpcap,cap_sys_admin",
	  BIT(NUM_CAP_CHOWN) | BIT(NUM_CAP_KILL) | BIT(NUM_CAP_SETPCAP) |
		  BIT(NUM_CAP_SYS_ADMIN) },
};

START_TEST(test_caps_parse_accepts_names_in_any_case)
{
	const struct caps_case *c = &valid_caps[_i];
	uint64_t mask = UINT64_C(0xdeadbeef);
	char bad[64] = "untouched";

	ck_assert_msg(caps_parse(c->text, &mask, bad, sizeof(bad)) == 0,
		      "'%s' was refused (bad word '%s')", c->text, bad);
	ck_assert_msg(mask == c->mask, "'%s' gave mask %#llx, not %#llx",
		      c->text, (unsigned long long)mask,
		      (unsigned long long)c->mask);
}
END_TEST

struct bad_caps_case {
	const char *text;
	const char *bad; /* the word reported */
};

static const struct bad_caps_case invalid_caps[] = {
	{ "cap_bogus", "cap_bogus" },
	{ "", "" },
	{ "cap_net_raw,", "" },
	{ ",cap_net_raw", "" },
	{ "cap_net_raw,,cap_chown", "" },
	{ "13", "13" },
	{ "0", "0" },
	{ "cap_net_raw,13", "13" },
	{ "cap_net_raw,cap_bogus", "cap_bogus" },
	{ "cap_bogus,cap_net_raw", "cap_bogus" },
	{ "net_raw", "net_raw" },
	{ "all", "all" },
	{ "none,cap_net_raw", "none" },
	{ "cap_net_raw,none", "none" },
	{ " cap_net_raw", " cap_net_raw" },
	/* libcap's text forms are not names: no flags, no trailing text. */
	{ "cap_net_raw=ep", "cap_net_raw=ep" },
	{ "cap_net_raw+ep", "cap_net_raw+ep" },
	{ "cap_net_raw ", "cap_net_raw " },
	{ "cap_net_raw-x", "cap_net_raw-x" },
};

START_TEST(test_caps_parse_refuses_and_reports_the_bad_word)
{
	const struct bad_caps_case *c = &invalid_caps[_i];
	uint64_t mask = 0;
	char bad[64];

	memset(bad, 'x', sizeof(bad) - 1);
	bad[sizeof(bad) - 1] = '\0';
	ck_assert_msg(caps_parse(c->text, &mask, bad, sizeof(bad)) == -1,
		      "'%s' was accepted (mask %#llx)", c->text,
		      (unsigned long long)mask);
	ck_assert_msg(strcmp(bad, c->bad) == 0, "'%s': bad word '%s', not '%s'",
		      c->text, bad, c->bad);
}
END_TEST

START_TEST(test_caps_parse_cuts_a_long_bad_word_to_the_buffer)
{
	char text[200], bad[8];
	uint64_t mask = 0;

	memset(text, 'z', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	ck_assert_int_eq(caps_parse(text, &mask, bad, sizeof(bad)), -1);
	ck_assert_str_eq(bad, "zzzzzzz");
}
END_TEST

/* ---- caps_exec_changes_creds ---- */

START_TEST(test_caps_exec_changes_creds_not_for_a_plain_binary)
{
	ck_assert_ptr_null(caps_exec_changes_creds("/bin/true", false));
	ck_assert_ptr_null(caps_exec_changes_creds("/bin/true", true));
}
END_TEST

START_TEST(test_caps_exec_changes_creds_not_for_a_missing_file)
{
	ck_assert_ptr_null(caps_exec_changes_creds("/nonexistent/x", false));
}
END_TEST

static void
copy_file(const char *from, const char *to)
{
	char buf[65536];
	ssize_t n;
	int in = open(from, O_RDONLY | O_CLOEXEC);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

	ck_assert_int_ge(in, 0);
	ck_assert_int_ge(out, 0);
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		ck_assert_int_eq(write(out, buf, (size_t)n), n);
	}
	ck_assert_int_eq(n, 0);
	close(in);
	ck_assert_int_eq(close(out), 0);
}

static uid_t
nobody_uid(void)
{
	struct passwd *pw = getpwnam("nobody");

	return pw != NULL ? pw->pw_uid : 65534;
}

static gid_t
nogroup_gid(void)
{
	struct group *gr = getgrnam("nogroup");

	if (gr == NULL) {
		gr = getgrnam("nobody");
	}
	return gr != NULL ? gr->gr_gid : 65534;
}

/* The kernel ignores set-ID bits on a nosuid mount, and so does caps.c. */
static bool
dir_honours_set_id(void)
{
	struct statvfs vfs;

	return statvfs(dir, &vfs) == 0 && !(vfs.f_flag & ST_NOSUID);
}

START_TEST(test_caps_exec_changes_creds_for_a_setuid_file_of_another_user)
{
	if (geteuid() != 0 || !dir_honours_set_id()) {
		return; /* needs chown to another user, and set-ID bits */
	}
	copy_file("/bin/true", copy);
	ck_assert_int_eq(chown(copy, nobody_uid(), 0), 0);
	/* chown clears the set-user-ID bit: set it afterwards. */
	ck_assert_int_eq(chmod(copy, 04755), 0);
	ck_assert_str_eq(caps_exec_changes_creds(copy, false), "set-user-ID");
	/* no_new_privs: the kernel ignores the bit at the exec. */
	ck_assert_ptr_null(caps_exec_changes_creds(copy, true));
}
END_TEST

START_TEST(test_caps_exec_changes_creds_not_for_a_setuid_file_of_our_own)
{
	copy_file("/bin/true", copy);
	ck_assert_int_eq(chmod(copy, 04755), 0);
	/* Set-user-ID to the user we already are changes nothing. */
	ck_assert_ptr_null(caps_exec_changes_creds(copy, false));
}
END_TEST

START_TEST(test_caps_exec_changes_creds_for_a_setgid_file_of_another_group)
{
	if (geteuid() != 0 || !dir_honours_set_id()) {
		return;
	}
	copy_file("/bin/true", copy);
	ck_assert_int_eq(chown(copy, 0, nogroup_gid()), 0);
	ck_assert_int_eq(chmod(copy, 02755), 0);
	ck_assert_str_eq(caps_exec_changes_creds(copy, false), "set-group-ID");
	ck_assert_ptr_null(caps_exec_changes_creds(copy, true));
	/* Without group execute the bit means mandatory locking, not exec. */
	ck_assert_int_eq(chmod(copy, 02745), 0);
	ck_assert_ptr_null(caps_exec_changes_creds(copy, false));
}
END_TEST

static void
write_script(const char *interpreter, mode_t mode)
{
	char text[400];
	int fd = open(script, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);

	ck_assert_int_ge(fd, 0);
	snprintf(text, sizeof(text), "#! %s -x\nexit 0\n", interpreter);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	ck_assert_int_eq(chmod(script, mode), 0);
}

/* For a "#!" script only its interpreter's bits count, as in the kernel. */
START_TEST(test_caps_exec_changes_creds_follows_a_script_to_its_interpreter)
{
	if (geteuid() != 0 || !dir_honours_set_id()) {
		return;
	}
	copy_file("/bin/true", copy);
	ck_assert_int_eq(chown(copy, nobody_uid(), 0), 0);
	ck_assert_int_eq(chmod(copy, 04755), 0);
	write_script(copy, 0755);
	ck_assert_str_eq(caps_exec_changes_creds(script, false), "set-user-ID");
	ck_assert_ptr_null(caps_exec_changes_creds(script, true));
	/* A set-user-ID script of another user, run by a plain shell. */
	write_script("/bin/sh", 0755);
	ck_assert_int_eq(chown(script, nobody_uid(), 0), 0);
	ck_assert_int_eq(chmod(script, 04755), 0);
	ck_assert_ptr_null(caps_exec_changes_creds(script, false));
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *
caps_suite(void)
{
	Suite *s = suite_create("caps");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_loop_test(tc, test_caps_parse_accepts_names_in_any_case, 0,
			    N(valid_caps));
	tcase_add_loop_test(tc,
			    test_caps_parse_refuses_and_reports_the_bad_word, 0,
			    N(invalid_caps));
	tcase_add_test(tc, test_caps_parse_cuts_a_long_bad_word_to_the_buffer);
	suite_add_tcase(s, tc);

	tc = tcase_create("exec");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_caps_exec_changes_creds_not_for_a_plain_binary);
	tcase_add_test(tc, test_caps_exec_changes_creds_not_for_a_missing_file);
	tcase_add_test(
		tc,
		test_caps_exec_changes_creds_for_a_setuid_file_of_another_user);
	tcase_add_test(
		tc,
		test_caps_exec_changes_creds_not_for_a_setuid_file_of_our_own);
	tcase_add_test(
		tc,
		test_caps_exec_changes_creds_for_a_setgid_file_of_another_group);
	tcase_add_test(
		tc,
		test_caps_exec_changes_creds_follows_a_script_to_its_interpreter);
	suite_add_tcase(s, tc);
	return s;
}
