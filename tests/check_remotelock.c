/* remotelock.c: etcd lock URLs, base64, the options that go with them. */
#include <string.h>

#include "check_suites.h"
#include "options.h"
#include "remotelock.h"

START_TEST(test_remotelock_parses_endpoints_and_name)
{
	struct remote_url u;
	char err[128];

	ck_assert_int_eq(remote_parse_url("etcd://10.0.0.1:2379,db-2,[::1]:23/"
					  "deploy/staging",
					  &u, err, sizeof(err)),
			 0);
	ck_assert(!u.tls);
	ck_assert_uint_eq(u.n, 3);
	ck_assert_str_eq(u.ep[0], "10.0.0.1:2379");
	/* The port defaults to etcd's 2379. */
	ck_assert_str_eq(u.ep[1], "db-2:2379");
	ck_assert_str_eq(u.ep[2], "[::1]:23");
	ck_assert_str_eq(u.name, "deploy/staging");
	ck_assert_int_eq(remote_parse_url("etcds://h:1/x", &u, err,
					  sizeof(err)),
			 0);
	ck_assert(u.tls);
}
END_TEST

START_TEST(test_remotelock_refuses_bad_urls)
{
	static const char *const bad[][2] = {
		{ "etcd://", "missing lock name after the endpoints" },
		{ "etcd://h", "missing lock name after the endpoints" },
		{ "etcd://h/", "missing lock name after the endpoints" },
		{ "etcd:///x", "missing endpoint" },
		{ "etcd://,h/x", "empty endpoint" },
		{ "etcd://h,/x", "empty endpoint" },
		{ "etcd://h:/x", "invalid port in endpoint 'h:'" },
		{ "etcd://h:-1/x", "invalid port in endpoint 'h:-1'" },
		{ "etcd://h:1x/x", "invalid port in endpoint 'h:1x'" },
		{ "etcd://[]:1/x", "invalid endpoint '[]:1'" },
		{ "etcd://[::1]x/x", "invalid endpoint '[::1]x'" },
		{ "etcd://h%/x", "invalid endpoint 'h%'" },
		{ "etcd://u@h/x",
		  "credentials do not belong in the URL (use "
		  "--etcd-user-file)" },
		{ "etcd://h/a\tb",
		  "lock name with a blank or a non-ASCII "
		  "character" },
		{ "http://h/x", "not an etcd:// or etcds:// URL" },
	};
	struct remote_url u;
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(remote_parse_url(bad[i][0], &u, err,
					       sizeof(err)) < 0,
			      "%s", bad[i][0]);
		ck_assert_str_eq(err, bad[i][1]);
	}
}
END_TEST

START_TEST(test_remotelock_only_etcd_schemes_are_remote)
{
	ck_assert(remote_is_url("etcd://h/x"));
	ck_assert(remote_is_url("etcds://h/x"));
	ck_assert(!remote_is_url("/run/lock/etcd://x"));
	ck_assert(!remote_is_url("etcd:/h/x"));
	ck_assert(!remote_is_url("ETCD://h/x"));
}
END_TEST

START_TEST(test_remotelock_base64_round_trips)
{
	static const char *const plain[] = { "",     "f",     "fo",    "foo",
					     "foob", "fooba", "foobar" };
	static const char *const coded[] = {
		"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"
	};
	char out[64], back[64];
	size_t i;
	long n;

	for (i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		remote_b64_encode(plain[i], strlen(plain[i]), out, sizeof(out));
		ck_assert_str_eq(out, coded[i]);
		n = remote_b64_decode(out, strlen(out), back, sizeof(back));
		ck_assert_int_eq(n, (long)strlen(plain[i]));
		ck_assert(memcmp(back, plain[i], (size_t)n) == 0);
	}
	/* Bad input and no room are refused, never overrun. */
	ck_assert_int_lt(remote_b64_decode("Zm9", 3, back, sizeof(back)), 0);
	ck_assert_int_lt(remote_b64_decode("Z=9v", 4, back, sizeof(back)), 0);
	ck_assert_int_lt(remote_b64_decode("Zm!v", 4, back, sizeof(back)), 0);
	ck_assert_int_lt(remote_b64_decode("Zm9vYmFy", 8, back, 5), 0);
	ck_assert_uint_eq(remote_b64_encode("foo", 3, out, 4), 0);
}
END_TEST

START_TEST(test_remotelock_options)
{
	char *ok[] = { "supervise",	"-l",
		       "etcd://h/app",	"--lock-ttl=5s",
		       "--etcd-cacert", "ca.pem",
		       "true",		NULL };
	char *bad[] = { "supervise", "-l", "etcd://h:99999/app", "true", NULL };
	struct options o;
	char err[256];

	ck_assert_int_eq(opts_parse(&o, 7, ok, err, sizeof(err)), OPTS_RUN);
	ck_assert_uint_eq(o.lock_ttl_ns, UINT64_C(5000000000));
	ck_assert_str_eq(o.etcd_cacert, "ca.pem");
	ck_assert_uint_eq(o.nlocks, 1);
	ck_assert_int_eq(opts_parse(&o, 4, bad, err, sizeof(err)), OPTS_ERROR);
	ck_assert_str_eq(err,
			 "invalid lock URL 'etcd://h:99999/app': invalid "
			 "port in endpoint 'h:99999'");
	ck_assert_int_eq(opts_parse(&o, 2, (char *[]){ "s", "true", NULL }, err,
				    sizeof(err)),
			 OPTS_RUN);
	/* The default lease: a few tens of seconds. */
	ck_assert_uint_eq(o.lock_ttl_ns, UINT64_C(30000000000));
}
END_TEST

Suite *
remotelock_suite(void)
{
	Suite *s = suite_create("remotelock");
	TCase *tc = tcase_create("url");

	tcase_add_test(tc, test_remotelock_parses_endpoints_and_name);
	tcase_add_test(tc, test_remotelock_refuses_bad_urls);
	tcase_add_test(tc, test_remotelock_only_etcd_schemes_are_remote);
	tcase_add_test(tc, test_remotelock_base64_round_trips);
	tcase_add_test(tc, test_remotelock_options);
	suite_add_tcase(s, tc);
	return s;
}
