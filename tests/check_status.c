/*
 * status.c: JSON strings from any bytes, the --status-file record, and
 * writing it atomically next to its final name.
 */
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check_suites.h"
#include "loop.h"
#include "lockfile.h"
#include "log.h"
#include "status.h"
#include "teardown.h"
#include "tree.h"

#define MS UINT64_C(1000000)
#define SEC UINT64_C(1000000000)

static char dir[256];
static char file[300]; /* dir/status.json */
static struct json_buf jb;
static struct status_target target;
static struct status_info info;
static struct teardown td;
static int saved_cwd = -1;

/*
 * fsync() and renameat() as status_write() calls them: while record_calls
 * is set, each call is noted (what it was on, in order), and a fsync() of
 * the kind named by fail_fsync ('f' a file, 'd' a directory) fails with
 * EIO instead of syncing.
 */
struct call {
	char what[16]; /* "fsync file", "fsync dir", "rename" */
	dev_t dev;     /* what was synced or renamed */
	ino_t ino;
};

static bool record_calls;
static char fail_fsync;
static int tmpfile_errno; /* see openat() below */
static int ntmpfiles, nprobes;
static struct call calls[8];
static int ncalls;

static char *const default_command[] = { "sh", "-c", "sleep 5", NULL };

static void
setup(void)
{
	const char *tmp = getenv("TMPDIR");

	log_init(0);
	snprintf(dir, sizeof(dir), "%s/check_status.XXXXXX",
		 tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/status.json", dir);
	memset(&jb, 0, sizeof(jb));
	memset(&target, 0, sizeof(target));
	target.dir_fd = -1;
	memset(&td, 0, sizeof(td));
	td.rec = &td.own;
	memset(&info, 0, sizeof(info));
	info.command = default_command;
	info.pid = 100;
	info.started.tv_sec = 1700000000;
	info.started.tv_nsec = 123456789;
	info.started_mono = loop_now();
	info.reason = "exit";
	saved_cwd = -1;
	record_calls = false;
	fail_fsync = 0;
	ncalls = 0;
	tmpfile_errno = 0;
	ntmpfiles = nprobes = 0;
}

static void
teardown(void)
{
	char sub[PATH_MAX];
	struct dirent *e;
	DIR *d;

	test_capture_end();
	record_calls = false;
	fail_fsync = 0;
	tmpfile_errno = 0;
	if (saved_cwd >= 0) {
		if (fchdir(saved_cwd) < 0) {
			perror("fchdir");
		}
		close(saved_cwd);
		saved_cwd = -1;
	}
	free(jb.data);
	jb.data = NULL;
	free(target.base);
	target.base = NULL;
	if (target.dir_fd >= 0) {
		close(target.dir_fd);
		target.dir_fd = -1;
	}
	d = opendir(dir);
	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
			/* Directories a test made are empty. */
			if (unlink(sub) < 0 && errno == EISDIR) {
				rmdir(sub);
			}
		}
		closedir(d);
	}
	rmdir(dir);
}

#define ck_assert_contains(text, want)                                         \
	ck_assert_msg(strstr((text), (want)) != NULL,                          \
		      "'%s' not found in:\n%s", (want), (text))

/* ---- json_string ---- */

struct json_case {
	const char *in;
	size_t len;
	const char *out; /* with its quotes */
};

#define J(in, out)                                                             \
	{                                                                      \
		in, sizeof(in) - 1, out                                        \
	}

static const struct json_case json_cases[] = {
	J("", "\"\""),
	J("abc", "\"abc\""),
	J("hello, world 123 ~!@#$%^&*()", "\"hello, world 123 ~!@#$%^&*()\""),
	J("/", "\"/\""),
	J("a\"b", "\"a\\\"b\""),
	J("a\\b", "\"a\\\\b\""),
	J("\"\\\"", "\"\\\"\\\\\\\"\""),
	J("\n", "\"\\n\""),
	J("\t", "\"\\t\""),
	J("a\nb\tc", "\"a\\nb\\tc\""),
	J("\x01", "\"\\u0001\""),
	J("\x00", "\"\\u0000\""),
	J("a\x00"
	  "b",
	  "\"a\\u0000b\""),
	J("\r", "\"\\u000d\""),
	J("\b\f", "\"\\u0008\\u000c\""),
	J("\x1b[0m", "\"\\u001b[0m\""),
	J("\x1f", "\"\\u001f\""),
	J("\x7f", "\"\\u007f\""),
	/* Valid UTF-8, kept as it is: 2, 3 and 4 bytes, and the edges. */
	J("caf\xc3\xa9", "\"caf\xc3\xa9\""),
	J("\xc2\x80", "\"\xc2\x80\""),
	J("\xdf\xbf", "\"\xdf\xbf\""),
	J("\xe2\x82\xac", "\"\xe2\x82\xac\""),
	J("\xe0\xa0\x80", "\"\xe0\xa0\x80\""),
	J("\xed\x9f\xbf", "\"\xed\x9f\xbf\""),
	J("\xee\x80\x80", "\"\xee\x80\x80\""),
	J("\xef\xbf\xbf", "\"\xef\xbf\xbf\""),
	J("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""),
	J("\xf0\x90\x80\x80", "\"\xf0\x90\x80\x80\""),
	J("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\""),
	J("\xe6\x97\xa5\xe6\x9c\xac", "\"\xe6\x97\xa5\xe6\x9c\xac\""),
	/* Invalid: each byte that is not part of a valid sequence. */
	J("\x80", "\"\\ufffd\""),
	J("a\xbf"
	  "b",
	  "\"a\\ufffdb\""),
	J("\xff", "\"\\ufffd\""),
	J("\xfe\xff", "\"\\ufffd\\ufffd\""),
	J("\xc0\xaf", "\"\\ufffd\\ufffd\""),
	J("\xc1\xbf", "\"\\ufffd\\ufffd\""),
	J("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\""),
	J("\xf0\x80\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""),
	J("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""),
	J("\xed\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\""),
	J("x\xe2\x82", "\"x\\ufffd\\ufffd\""),
	J("\xe2\x82x", "\"\\ufffd\\ufffdx\""),
	J("\xc3", "\"\\ufffd\""),
	J("\xc3"
	  "A",
	  "\"\\ufffdA\""),
	J("\xf0\x9f\x98", "\"\\ufffd\\ufffd\\ufffd\""),
	J("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""),
	J("\xf5\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""),
	J("\xf8\x88\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\""),
	/* A bad byte does not take a valid sequence after it along. */
	J("\xe2\xc3\xa9", "\"\\ufffd\xc3\xa9\""),
	J("\xc3\xc3\xa9", "\"\\ufffd\xc3\xa9\""),
};

START_TEST(test_status_json_string_escapes_and_replaces)
{
	const struct json_case *c = &json_cases[_i];

	json_string(&jb, c->in, c->len);
	ck_assert(!jb.failed);
	ck_assert_ptr_nonnull(jb.data);
	ck_assert_str_eq(jb.data, c->out);
	ck_assert_uint_eq(jb.len, strlen(c->out));
}
END_TEST

START_TEST(test_status_json_string_appends_to_the_buffer)
{
	char big[5000];

	json_string(&jb, "a", 1);
	json_string(&jb, "b\n", 2);
	ck_assert_str_eq(jb.data, "\"a\"\"b\\n\"");
	ck_assert_uint_eq(jb.len, 8);
	/* It grows as needed. */
	memset(big, '\x01', sizeof(big));
	json_string(&jb, big, sizeof(big));
	ck_assert(!jb.failed);
	ck_assert_uint_eq(jb.len, 8 + 2 + 6 * sizeof(big));
	ck_assert_uint_eq(strlen(jb.data), jb.len);
	ck_assert_uint_ge(jb.cap, jb.len + 1);
}
END_TEST

/* Only len bytes are read: no terminating NUL is needed. */
START_TEST(test_status_json_string_reads_only_len_bytes)
{
	char *p = malloc(3);

	ck_assert_ptr_nonnull(p);
	memcpy(p, "x\xe2\x82", 3);
	json_string(&jb, p, 3);
	free(p);
	ck_assert_str_eq(jb.data, "\"x\\ufffd\\ufffd\"");
}
END_TEST

/* ---- status_json ---- */

/* Each key comes once, in the documented order. */
static const char *const keys[] = {
	"{\"version\": ", "\"supervise_version\": ", "\"command\": ",
	"\"pid\": ",	  "\"command_pid\": ",	     "\"started_at\": ",
	"\"ended_at\": ", "\"duration_s\": ",	     "\"reason\": ",
	"\"signal\": ",	  "\"exit_status\": ",	     "\"command_status\": ",
	"\"stop\": ",	  "\"teardown\": ",	     "\"locks\": ",
};

static void
ck_assert_keys_in_order(const char *text)
{
	const char *at = text, *p;
	size_t k;

	for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		p = strstr(at, keys[k]);
		ck_assert_msg(p != NULL,
			      "key %s missing or out of order in:\n%s", keys[k],
			      text);
		at = p + strlen(keys[k]);
	}
}

/* Braces and brackets balance outside strings; strings all end. */
static void
ck_assert_balanced(const char *text)
{
	int depth = 0;
	bool in_string = false;
	const char *p;

	for (p = text; *p != '\0'; p++) {
		if (in_string) {
			if (*p == '\\') {
				p++;
				ck_assert(*p != '\0');
			} else if (*p == '"') {
				in_string = false;
			} else {
				ck_assert_msg((unsigned char)*p >= 0x20,
					      "raw control byte in a string");
			}
			continue;
		}
		if (*p == '"') {
			in_string = true;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			depth--;
			ck_assert_int_ge(depth, 0);
		}
	}
	ck_assert(!in_string);
	ck_assert_int_eq(depth, 0);
}

START_TEST(test_status_json_of_a_timeout_before_the_command_ended)
{
	info.command_pid = 0;
	info.reason = "timeout";
	info.signal = 0;
	info.exit_status = 124;
	info.command_ended = false;
	info.stopped = false;
	info.td = NULL;
	status_json(&jb, &info);
	ck_assert(!jb.failed);
	ck_assert_keys_in_order(jb.data);
	ck_assert_balanced(jb.data);
	ck_assert_contains(jb.data, "{\"version\": 1, ");
	ck_assert_contains(jb.data, "\"supervise_version\": \"0.1.0\"");
	ck_assert_contains(jb.data,
			   "\"command\": [\"sh\", \"-c\", \"sleep 5\"]");
	ck_assert_contains(jb.data, "\"pid\": 100, ");
	ck_assert_contains(jb.data, "\"command_pid\": null");
	ck_assert_contains(jb.data,
			   "\"started_at\": \"2023-11-14T22:13:20.123Z\"");
	ck_assert_contains(jb.data, "\"reason\": \"timeout\"");
	ck_assert_contains(jb.data, "\"signal\": null");
	ck_assert_contains(jb.data, "\"exit_status\": 124");
	ck_assert_contains(jb.data, "\"command_status\": null");
	ck_assert_contains(jb.data, "\"stop\": null");
	ck_assert_contains(jb.data, "\"teardown\": null");
	ck_assert_contains(jb.data, "\"locks\": []");
	ck_assert_str_eq(jb.data + jb.len - 27,
			 "\"output_dropped_bytes\": 0}\n");
}
END_TEST

START_TEST(test_status_json_times_are_rfc3339_utc_with_ms)
{
	struct timespec before, after;
	int y, mo, d, h, mi, s, ms, n = 0;
	const char *p;

	info.started_mono = loop_now() - 1500 * MS;
	clock_gettime(CLOCK_REALTIME, &before);
	status_json(&jb, &info);
	clock_gettime(CLOCK_REALTIME, &after);
	p = strstr(jb.data, "\"ended_at\": \"");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(
		sscanf(p, "\"ended_at\": \"%4d-%2d-%2dT%2d:%2d:%2d.%3dZ\"%n",
		       &y, &mo, &d, &h, &mi, &s, &ms, &n),
		7);
	ck_assert_int_eq(n,
			 (int)strlen(
				 "\"ended_at\": \"2026-11-27T00:17:15.439Z\""));
	/* Between the two readings of the clock, to the second. */
	{
		struct tm tm = { .tm_year = y - 1900,
				 .tm_mon = mo - 1,
				 .tm_mday = d,
				 .tm_hour = h,
				 .tm_min = mi,
				 .tm_sec = s };
		time_t t = timegm(&tm);

		ck_assert_int_ge(t, before.tv_sec);
		ck_assert_int_le(t, after.tv_sec);
	}
	/* The duration is the monotonic time since the start, in ms. */
	ck_assert_contains(jb.data, "\"duration_s\": 1.5");
	p = strstr(jb.data, "\"duration_s\": ");
	ck_assert_int_eq(sscanf(p, "\"duration_s\": %d.%3d,%n", &s, &ms, &n),
			 2);
	ck_assert_int_eq(s, 1);
	ck_assert_int_ge(ms, 500);
}
END_TEST

START_TEST(test_status_json_of_a_cancel_with_stop_teardown_and_locks)
{
	static char *const command[] = { "a\"b", "\xff", "x\ny", NULL };
	struct lock locks[2];

	memset(locks, 0, sizeof(locks));
	locks[0].path = "/tmp/a.lock";
	locks[0].wait_ns = 1500 * MS;
	locks[1].path = "rel\"q.lock";
	locks[1].wait_ns = 0;
	td.state = TD_DONE;
	td.rec->reason = "cancel";
	td.rec->wstatus = 0; /* exit 0 */
	td.rec->started = 10 * SEC;
	td.ended = 10 * SEC + 250 * MS;
	info.command = command;
	info.command_pid = 200;
	info.reason = "cancel";
	info.signal = SIGTERM;
	info.exit_status = 143;
	info.command_ended = true;
	info.command_wstatus = 3 << 8; /* exited 3 */
	info.stopped = true;
	info.stop_signal = SIGTERM;
	info.escalated = true;
	info.signalled = 3;
	info.leftovers = 0;
	info.td = &td;
	info.locks = locks;
	info.nlocks = 2;
	status_json(&jb, &info);
	ck_assert(!jb.failed);
	ck_assert_keys_in_order(jb.data);
	ck_assert_balanced(jb.data);
	ck_assert_contains(jb.data,
			   "\"command\": [\"a\\\"b\", \"\\ufffd\", \"x\\ny\"]");
	ck_assert_contains(jb.data, "\"command_pid\": 200");
	ck_assert_contains(
		jb.data,
		"\"reason\": \"cancel\", \"signal\": "
		"\"SIGTERM\", \"cause\": null, \"exit_status\": 143");
	ck_assert_contains(jb.data, "\"command_status\": {\"exited\": 3}");
	ck_assert_contains(
		jb.data,
		"\"stop\": {\"signal\": \"SIGTERM\", "
		"\"escalated_to_kill\": true, "
		"\"processes_signaled\": 3, \"leftovers\": 0, \"unstoppable\": 0}");
	ck_assert_contains(jb.data,
			   "\"teardown\": {\"reason\": \"cancel\", "
			   "\"exit\": 0, \"signaled\": null, "
			   "\"timed_out\": false, \"duration_s\": 0.250}");
	ck_assert_contains(
		jb.data,
		"\"locks\": [{\"path\": \"/tmp/a.lock\", "
		"\"wait_s\": 1.500}, {\"path\": \"rel\\\"q.lock\", "
		"\"wait_s\": 0.000}], \"output_dropped_bytes\": 0}\n");
}
END_TEST

START_TEST(test_status_json_of_a_signaled_command_and_a_killed_teardown)
{
	td.state = TD_DONE;
	td.rec->reason = "timeout";
	td.rec->wstatus = SIGKILL; /* killed by SIGKILL */
	td.rec->timed_out = true;
	td.rec->started = 5 * SEC;
	td.ended = 7 * SEC + 1 * MS;
	info.command_pid = 300;
	info.reason = "exit";
	info.exit_status = 137;
	info.command_ended = true;
	info.command_wstatus = SIGKILL;
	info.stopped = true;
	info.stop_signal = SIGINT;
	info.escalated = false;
	info.signalled = 1;
	info.leftovers = 2;
	info.td = &td;
	status_json(&jb, &info);
	ck_assert_keys_in_order(jb.data);
	ck_assert_balanced(jb.data);
	ck_assert_contains(jb.data,
			   "\"command_status\": {\"signaled\": "
			   "\"SIGKILL\"}");
	ck_assert_contains(jb.data, "\"reason\": \"exit\", \"signal\": null");
	ck_assert_contains(
		jb.data,
		"\"stop\": {\"signal\": \"SIGINT\", "
		"\"escalated_to_kill\": false, "
		"\"processes_signaled\": 1, \"leftovers\": 2, \"unstoppable\": 0}");
	ck_assert_contains(jb.data,
			   "\"teardown\": {\"reason\": \"timeout\", "
			   "\"exit\": null, \"signaled\": \"SIGKILL\", "
			   "\"timed_out\": true, \"duration_s\": 2.001}");
}
END_TEST

START_TEST(test_status_json_of_a_teardown_that_could_not_start)
{
	td.state = TD_DONE;
	td.rec->reason = "exit";
	td.rec->start_errno = ENOENT;
	td.rec->wstatus = 0;
	info.td = &td;
	status_json(&jb, &info);
	ck_assert_contains(jb.data,
			   "\"teardown\": {\"reason\": \"exit\", "
			   "\"exit\": null, \"signaled\": null, "
			   "\"timed_out\": false, \"duration_s\": 0.000}");
}
END_TEST

START_TEST(test_status_json_idle_teardown_is_null)
{
	td.state = TD_IDLE;
	info.td = &td;
	info.command = NULL;
	status_json(&jb, &info);
	ck_assert_contains(jb.data, "\"teardown\": null");
	ck_assert_contains(jb.data, "\"command\": []");
	ck_assert_balanced(jb.data);
}
END_TEST

/* ---- status_write ---- */

static const char *
slurp(const char *p)
{
	static char text[16384];
	ssize_t n = -1;
	int fd = open(p, O_RDONLY | O_CLOEXEC);

	text[0] = '\0';
	if (fd >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
	}
	text[n > 0 ? n : 0] = '\0';
	return text;
}

/* How many names in d (. and .. aside) begin with prefix (NULL: any). */
static int
count_entries(const char *d, const char *prefix)
{
	struct dirent *e;
	DIR *h = opendir(d);
	int n = 0;

	ck_assert_ptr_nonnull(h);
	while ((e = readdir(h)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 ||
		    strcmp(e->d_name, "..") == 0) {
			continue;
		}
		if (prefix == NULL ||
		    strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			n++;
		}
	}
	closedir(h);
	return n;
}

static void
ck_assert_status_file(const char *p)
{
	const char *text = slurp(p);
	size_t len = strlen(text);

	ck_assert_msg(len > 3, "'%s' is empty", p);
	ck_assert_msg(text[0] == '{', "'%s' starts with '%c'", p, text[0]);
	ck_assert_str_eq(text + len - 2, "}\n");
	ck_assert_keys_in_order(text);
	ck_assert_balanced(text);
}

START_TEST(test_status_write_writes_the_file_atomically)
{
	struct stat st;

	mode_t old = umask(022);

	ck_assert_int_eq(status_prepare(&target, file), 0);
	ck_assert_int_ge(target.dir_fd, 0);
	ck_assert_str_eq(target.base, "status.json");
	info.reason = "timeout";
	info.exit_status = 124;
	ck_assert_int_eq(status_write(&target, &info), 0);
	umask(old);
	ck_assert_int_eq(lstat(file, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0644);
	ck_assert_status_file(file);
	ck_assert_contains(slurp(file), "\"reason\": \"timeout\"");
	ck_assert_int_eq(count_entries(dir, ".supervise-status."), 0);
	ck_assert_int_eq(count_entries(dir, NULL), 1);
}
END_TEST

START_TEST(test_status_write_replaces_an_older_record)
{
	ck_assert_int_eq(status_prepare(&target, file), 0);
	info.reason = "timeout";
	ck_assert_int_eq(status_write(&target, &info), 0);
	info.reason = "cancel";
	ck_assert_int_eq(status_write(&target, &info), 0);
	ck_assert_status_file(file);
	ck_assert_contains(slurp(file), "\"reason\": \"cancel\"");
	ck_assert(strstr(slurp(file), "timeout") == NULL);
	ck_assert_int_eq(count_entries(dir, NULL), 1);
}
END_TEST

START_TEST(test_status_write_without_a_path_writes_nothing)
{
	ck_assert_int_eq(status_prepare(&target, NULL), 0);
	ck_assert_ptr_null(target.path);
	ck_assert_int_eq(target.dir_fd, -1);
	ck_assert_int_eq(status_write(&target, &info), 0);
	ck_assert_int_eq(count_entries(dir, NULL), 0);
}
END_TEST

/* The directory is held from the start: the cwd may change meanwhile. */
START_TEST(test_status_write_relative_path_survives_a_change_of_cwd)
{
	char p[320];

	saved_cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(saved_cwd, 0);
	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_int_eq(status_prepare(&target, "status.json"), 0);
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_int_eq(status_write(&target, &info), 0);
	snprintf(p, sizeof(p), "%s/status.json", dir);
	ck_assert_status_file(p);
}
END_TEST

/* ---- status_prepare: what may be replaced, and where ---- */

/*
 * openat() as status_prepare() calls it: an O_TMPFILE open fails with
 * tmpfile_errno when that is set (as on a file system without O_TMPFILE),
 * and unnamed files and named probes are counted.
 */
static int (*real_openat)(int, const char *, int, ...);

static void __attribute__((constructor)) find_real_openat(void)
{
	real_openat = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT,
								  "openat");
}

int
openat(int fd, const char *path, int flags, ...)
{
	bool unnamed = (flags & O_TMPFILE) == O_TMPFILE;
	mode_t mode = 0;
	va_list ap;

	if ((flags & O_CREAT) != 0 || unnamed) {
		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	if (unnamed) {
		ntmpfiles++;
		if (tmpfile_errno != 0) {
			errno = tmpfile_errno;
			return -1;
		}
	} else if ((flags & O_CREAT) != 0 && strstr(path, ".probe") != NULL) {
		nprobes++;
	}
	return real_openat(fd, path, flags, mode);
}

static void
put_file(const char *p, const char *text)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* A record at p, as status_write() makes it. */
static void
put_record(const char *p)
{
	struct status_target t;

	ck_assert_int_eq(status_prepare(&t, p), 0);
	ck_assert_int_eq(status_write(&t, &info), 0);
	close(t.dir_fd);
	free(t.base);
}

/* The prepared target is unset: nothing can be written through it. */
static void
ck_assert_unset(void)
{
	ck_assert_ptr_null(target.path);
	ck_assert_ptr_null(target.base);
	ck_assert_int_eq(target.dir_fd, -1);
	ck_assert_int_eq(status_write(&target, &info), 0);
}

START_TEST(test_status_prepare_fails_for_a_missing_directory)
{
	char bad[320], want[512];
	const char *err;
	int r;

	snprintf(bad, sizeof(bad), "%s/nodir/status.json", dir);
	snprintf(want, sizeof(want),
		 "supervise: cannot write status file "
		 "'%s': No such file or directory\n",
		 bad);
	test_capture_begin();
	r = status_prepare(&target, bad);
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err, want);
	ck_assert_unset();
	ck_assert_int_eq(count_entries(dir, NULL), 0);
}
END_TEST

/* What may be at the path at start: each is replaced by the record. */
enum { ACCEPT_NOTHING, ACCEPT_EMPTY, ACCEPT_RECORD, ACCEPT_LATER_FORMAT };

START_TEST(test_status_prepare_accepts_nothing_an_empty_file_or_a_record)
{
	switch (_i) {
	case ACCEPT_NOTHING:
		break;
	case ACCEPT_EMPTY:
		put_file(file, "");
		break;
	case ACCEPT_RECORD:
		put_record(file);
		break;
	case ACCEPT_LATER_FORMAT:
		put_file(file,
			 "{\"version\": 27, \"supervise_version\": "
			 "\"9.1\", \"what\": 1}\n");
		break;
	}
	info.reason = "cancel";
	ck_assert_int_eq(status_prepare(&target, file), 0);
	ck_assert_int_eq(count_entries(dir, NULL),
			 _i == ACCEPT_NOTHING ? 0 : 1);
	ck_assert_int_eq(status_write(&target, &info), 0);
	ck_assert_status_file(file);
	ck_assert_contains(slurp(file), "\"reason\": \"cancel\"");
	ck_assert_int_eq(count_entries(dir, NULL), 1);
}
END_TEST

/* A hard link is fine: the other name keeps the old contents. */
START_TEST(test_status_prepare_accepts_a_hard_linked_record)
{
	char other[320], old[4096];

	snprintf(other, sizeof(other), "%s/other", dir);
	put_record(file);
	snprintf(old, sizeof(old), "%s", slurp(file));
	ck_assert_int_eq(link(file, other), 0);
	info.reason = "timeout";
	ck_assert_int_eq(status_prepare(&target, file), 0);
	ck_assert_int_eq(status_write(&target, &info), 0);
	ck_assert_contains(slurp(file), "\"reason\": \"timeout\"");
	ck_assert_str_eq(slurp(other), old);
}
END_TEST

/* What is at the path, when it is not ours. */
struct foreign_case {
	const char *name;
	char kind;	     /* 'f' file, 'd' directory, 'p' FIFO, 'l' link */
	const char *content; /* of the file, or the link's target name */
	bool is_link;	     /* the message says so */
};

static const struct foreign_case foreign_cases[] = {
	{ "a script", 'f', "#!/bin/sh\necho deployed\n", false },
	{ "another program's JSON", 'f', "{\"version\": 1}\n", false },
	{ "a record's head cut short", 'f', "{\"version\": 1, \"supervise_v",
	  false },
	{ "no version number", 'f',
	  "{\"version\": , \"supervise_version\": \"0.1.0\"}\n", false },
	{ "one byte", 'f', "{", false },
	{ "a directory", 'd', NULL, false },
	{ "a FIFO", 'p', NULL, false },
	{ "a link to a record", 'l', "victim", true },
	{ "a dangling link", 'l', "nowhere", true },
};

/* Makes c at p (a record at dir/victim for a link to one). */
static void
make_foreign(const struct foreign_case *c, const char *p)
{
	char target_path[320];

	switch (c->kind) {
	case 'f':
		put_file(p, c->content);
		break;
	case 'd':
		ck_assert_int_eq(mkdir(p, 0755), 0);
		break;
	case 'p':
		ck_assert_int_eq(mkfifo(p, 0644), 0);
		break;
	case 'l':
		snprintf(target_path, sizeof(target_path), "%s/%s", dir,
			 c->content);
		if (strcmp(c->content, "victim") == 0) {
			put_record(target_path);
		}
		ck_assert_int_eq(symlink(target_path, p), 0);
		break;
	}
}

/* c is still at p as it was made, and dir holds nothing else. */
static void
ck_assert_foreign_intact(const struct foreign_case *c, const char *p)
{
	char target_path[320];
	struct stat st;

	ck_assert_int_eq(lstat(p, &st), 0);
	switch (c->kind) {
	case 'f':
		ck_assert(S_ISREG(st.st_mode));
		ck_assert_str_eq(slurp(p), c->content);
		break;
	case 'd':
		ck_assert(S_ISDIR(st.st_mode));
		ck_assert_int_eq(count_entries(p, NULL), 0);
		break;
	case 'p':
		ck_assert(S_ISFIFO(st.st_mode));
		break;
	case 'l':
		ck_assert(S_ISLNK(st.st_mode));
		snprintf(target_path, sizeof(target_path), "%s/%s", dir,
			 c->content);
		if (strcmp(c->content, "victim") == 0) {
			ck_assert_status_file(target_path);
			ck_assert_contains(slurp(target_path),
					   "\"reason\": \"exit\"");
		} else {
			ck_assert_int_eq(access(target_path, F_OK), -1);
		}
		break;
	}
	ck_assert_int_eq(count_entries(dir, NULL),
			 strcmp(c->content ? c->content : "", "victim") == 0 ?
				 2 :
				 1);
}

static void
want_refusal(char *want, size_t len, const struct foreign_case *c,
	     const char *p)
{
	if (c->is_link) {
		snprintf(want, len,
			 "supervise: status file '%s' is a symbolic link; "
			 "not replacing it\n",
			 p);
	} else {
		snprintf(want, len,
			 "supervise: status file '%s' exists and is not a "
			 "supervise status file; not replacing it\n",
			 p);
	}
}

START_TEST(test_status_prepare_refuses_what_is_not_ours)
{
	const struct foreign_case *c = &foreign_cases[_i];
	char want[512];
	const char *err;
	int r;

	make_foreign(c, file);
	want_refusal(want, sizeof(want), c, file);
	test_capture_begin();
	r = status_prepare(&target, file);
	err = test_capture_end();
	ck_assert_msg(r == -1, "%s was accepted", c->name);
	ck_assert_str_eq(err, want);
	ck_assert_unset();
	ck_assert_foreign_intact(c, file);
}
END_TEST

/* A device is refused, and never opened (opening one can do things). */
START_TEST(test_status_prepare_refuses_a_device)
{
	const char *err;
	int r;

	test_capture_begin();
	r = status_prepare(&target, "/dev/null");
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err,
			 "supervise: status file '/dev/null' exists and "
			 "is not a supervise status file; not replacing "
			 "it\n");
	ck_assert_unset();
}
END_TEST

/*
 * What appeared at the path during the run is checked again at the end,
 * as at start, and left as it is: no record, no temporary file.
 */
START_TEST(test_status_write_leaves_what_appeared_meanwhile)
{
	const struct foreign_case *c = &foreign_cases[_i];
	char want[512];
	const char *err;
	int r;

	ck_assert_int_eq(status_prepare(&target, file), 0);
	make_foreign(c, file);
	want_refusal(want, sizeof(want), c, file);
	test_capture_begin();
	r = status_write(&target, &info);
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err, want);
	ck_assert_foreign_intact(c, file);
	ck_assert_int_eq(count_entries(dir, ".supervise-status."), 0);
}
END_TEST

/* The kernel is asked with an unnamed file, which leaves nothing. */
START_TEST(test_status_prepare_probes_with_an_unnamed_file)
{
	ck_assert_int_eq(status_prepare(&target, file), 0);
	ck_assert_int_eq(ntmpfiles, 1);
	ck_assert_int_eq(nprobes, 0);
	ck_assert_int_eq(count_entries(dir, NULL), 0);
}
END_TEST

static const int no_tmpfile_errnos[] = { EOPNOTSUPP, EISDIR, EINVAL };

/*
 * A file system without O_TMPFILE: a named probe, removed at once; one
 * left by an earlier process of the same pid is stepped around.
 */
START_TEST(test_status_prepare_falls_back_to_a_named_probe)
{
	char stale[320];

	snprintf(stale, sizeof(stale), "%s/.supervise-status.%d.0.probe", dir,
		 (int)getpid());
	put_file(stale, "");
	tmpfile_errno = no_tmpfile_errnos[_i];
	ck_assert_int_eq(status_prepare(&target, file), 0);
	ck_assert_int_eq(ntmpfiles, 1);
	ck_assert_int_eq(nprobes, 2);
	ck_assert_int_eq(count_entries(dir, NULL), 1);
	ck_assert_int_eq(access(stale, F_OK), 0);
	ck_assert_int_eq(status_write(&target, &info), 0);
	ck_assert_status_file(file);
}
END_TEST

/* Any other refusal of the unnamed file is the answer: no probe. */
START_TEST(test_status_prepare_reports_the_unnamed_files_refusal)
{
	char want[512];
	const char *err;
	int r;

	tmpfile_errno = EROFS;
	snprintf(want, sizeof(want),
		 "supervise: cannot write status file '%s': Read-only file "
		 "system\n",
		 file);
	test_capture_begin();
	r = status_prepare(&target, file);
	err = test_capture_end();
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(nprobes, 0);
	ck_assert_unset();
}
END_TEST

/* What status_prepare() said in a process that is not root. */
struct prepare_result {
	int r;
	bool unreachable; /* that user cannot reach dir: nothing was tried */
	char err[512];
};

/*
 * Runs status_prepare(p) in a child that is not root (nobody, when we are
 * root), with tmpfile_errno as given.  Returns its result in *res.
 */
static void
prepare_as_non_root(const char *p, int no_tmpfile, struct prepare_result *res)
{
	int status;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct status_target t;

		if (geteuid() == 0 &&
		    (setgroups(0, NULL) < 0 || setgid(65534) < 0 ||
		     setuid(65534) < 0)) {
			_exit(1);
		}
		if (access(dir, X_OK) < 0) {
			res->unreachable = true;
			_exit(0);
		}
		tmpfile_errno = no_tmpfile;
		test_capture_begin();
		res->r = status_prepare(&t, p);
		snprintf(res->err, sizeof(res->err), "%s", test_capture_end());
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * The kernel's answer, not the mode bits': a directory without write
 * permission refuses the unnamed file and the named probe alike, and a
 * file that cannot be read cannot be shown to be ours.
 */
START_TEST(test_status_prepare_fails_where_no_file_can_be_made)
{
	struct prepare_result *res;
	char ro[320], p[340], want[512];

	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(res, MAP_FAILED);
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(ro, sizeof(ro), "%s/ro", dir);
	ck_assert_int_eq(mkdir(ro, 0555), 0);
	ck_assert_int_eq(chmod(ro, 0555), 0);
	snprintf(p, sizeof(p), "%s/status.json", ro);
	snprintf(want, sizeof(want),
		 "supervise: cannot write status file '%s': Permission "
		 "denied\n",
		 p);
	prepare_as_non_root(p, 0, res);
	if (!res->unreachable) {
		ck_assert_int_eq(res->r, -1);
		ck_assert_str_eq(res->err, want);
		prepare_as_non_root(p, EOPNOTSUPP, res);
		ck_assert_int_eq(res->r, -1);
		ck_assert_str_eq(res->err, want);
		/* Unreadable, in a directory anyone may write to. */
		ck_assert_int_eq(chmod(dir, 0777), 0);
		put_file(file,
			 "{\"version\": 1, \"supervise_version\": \"x\"}");
		ck_assert_int_eq(chmod(file, 0), 0);
		snprintf(want, sizeof(want),
			 "supervise: cannot read status file '%s': Permission "
			 "denied\n",
			 file);
		prepare_as_non_root(file, 0, res);
		ck_assert_int_eq(res->r, -1);
		ck_assert_str_eq(res->err, want);
	}
	ck_assert_int_eq(count_entries(ro, NULL), 0);
	rmdir(ro);
	munmap(res, sizeof(*res));
}
END_TEST

/* ---- status_write: durability and failures ---- */

/* The C library's own, found before main(). */
static int (*real_fsync)(int);
static int (*real_renameat)(int, const char *, int, const char *);

static void __attribute__((constructor)) find_real_fsync_and_renameat(void)
{
	real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	real_renameat = (int (*)(int, const char *, int,
				 const char *))dlsym(RTLD_NEXT, "renameat");
}

static void
note_call(const char *what, const struct stat *st)
{
	if (ncalls < (int)(sizeof(calls) / sizeof(calls[0]))) {
		snprintf(calls[ncalls].what, sizeof(calls[ncalls].what), "%s",
			 what);
		calls[ncalls].dev = st->st_dev;
		calls[ncalls].ino = st->st_ino;
	}
	ncalls++;
}

int
fsync(int fd)
{
	struct stat st;
	bool is_dir;

	if (record_calls && fstat(fd, &st) == 0) {
		is_dir = S_ISDIR(st.st_mode);
		note_call(is_dir ? "fsync dir" : "fsync file", &st);
		if (fail_fsync == (is_dir ? 'd' : 'f')) {
			errno = EIO;
			return -1;
		}
	}
	return real_fsync(fd);
}

int
renameat(int olddir, const char *oldpath, int newdir, const char *newpath)
{
	struct stat st;

	if (record_calls &&
	    fstatat(olddir, oldpath, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		note_call("rename", &st);
	}
	return real_renameat(olddir, oldpath, newdir, newpath);
}

static void
ck_assert_call(int i, const char *what, const char *path)
{
	struct stat st;

	ck_assert_int_gt(ncalls, i);
	ck_assert_str_eq(calls[i].what, what);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_msg(calls[i].dev == st.st_dev && calls[i].ino == st.st_ino,
		      "call %d (%s) was not on '%s'", i, what, path);
}

/*
 * The file's data reaches the disk before its new name does, and the new
 * name (a change to the directory) before status_write() returns: after a
 * crash the path holds the old record or the new one, never an empty file.
 */
START_TEST(test_status_write_syncs_the_file_then_renames_then_syncs_the_dir)
{
	ck_assert_int_eq(status_prepare(&target, file), 0);
	record_calls = true;
	ck_assert_int_eq(status_write(&target, &info), 0);
	record_calls = false;
	ck_assert_int_eq(ncalls, 3);
	ck_assert_call(0, "fsync file", file);
	ck_assert_call(1, "rename", file);
	ck_assert_call(2, "fsync dir", dir);
	ck_assert_status_file(file);
}
END_TEST

/* A record that may not be on the disk is not put in place. */
START_TEST(test_status_write_failed_file_sync_leaves_nothing)
{
	char want[512];
	const char *err;
	int r;

	snprintf(want, sizeof(want),
		 "supervise: cannot write status file "
		 "'%s': Input/output error\n",
		 file);
	ck_assert_int_eq(status_prepare(&target, file), 0);
	fail_fsync = 'f';
	record_calls = true;
	test_capture_begin();
	r = status_write(&target, &info);
	err = test_capture_end();
	record_calls = false;
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err, want);
	ck_assert_int_eq(ncalls, 1);
	ck_assert_int_eq(count_entries(dir, NULL), 0);
}
END_TEST

/* The record is in place, but it is said that it may not last. */
START_TEST(test_status_write_failed_directory_sync_is_reported)
{
	char want[512];
	const char *err;
	int r;

	snprintf(want, sizeof(want),
		 "supervise: cannot sync the directory of "
		 "status file '%s': Input/output error\n",
		 file);
	ck_assert_int_eq(status_prepare(&target, file), 0);
	fail_fsync = 'd';
	record_calls = true;
	test_capture_begin();
	r = status_write(&target, &info);
	err = test_capture_end();
	record_calls = false;
	ck_assert_int_eq(r, -1);
	ck_assert_str_eq(err, want);
	ck_assert_status_file(file);
	ck_assert_int_eq(count_entries(dir, NULL), 1);
}
END_TEST

/*
 * How many descriptors this process has open, or -1.  No ck_assert: it
 * runs in a process of the test's own.
 */
static int
open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = -1; /* the directory's own */

	if (d == NULL) {
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		n += e->d_name[0] != '.';
	}
	closedir(d);
	return n;
}

/* What status_write() did in the process that could not write. */
struct write_result {
	int r;
	int fds_before, fds_after;
	int setup_errno; /* 0, or why the limit could not be set */
};

/*
 * A write that fails half-way (the file size limit, with SIGXFSZ ignored,
 * makes write() fail with EFBIG after a first short write) leaves no
 * temporary file, no descriptor and no record, and says so in one line.
 * The limit stays with the process, so the write runs in a child of its
 * own; its stderr is a pipe, which the limit does not apply to.
 */
START_TEST(test_status_write_failed_write_leaves_no_file_and_no_descriptor)
{
	struct rlimit low = { 64, RLIM_INFINITY }, high;
	struct write_result *res;
	char want[512], got[1024];
	int fds[2], status;
	ssize_t n, len = 0;
	pid_t pid;

	res = mmap(NULL, sizeof(*res), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(res, MAP_FAILED);
	memset(res, 0, sizeof(*res));
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &high), 0);
	low.rlim_max = high.rlim_max; /* the soft limit only */
	ck_assert_int_eq(status_prepare(&target, file), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		signal(SIGXFSZ, SIG_IGN);
		if (dup2(fds[1], STDERR_FILENO) < 0 ||
		    setrlimit(RLIMIT_FSIZE, &low) < 0) {
			res->setup_errno = errno;
			_exit(1);
		}
		close(fds[0]);
		close(fds[1]);
		/* The log's own copy of the new stderr, opened beforehand. */
		log_init(0);
		res->fds_before = open_fds();
		res->r = status_write(&target, &info);
		res->fds_after = open_fds();
		/*
		 * The limit back, for what runs at exit (a coverage build
		 * writes its counts then).
		 */
		setrlimit(RLIMIT_FSIZE, &high);
		_exit(0);
	}
	close(fds[1]);
	while ((n = read(fds[0], got + len, sizeof(got) - 1 - (size_t)len)) >
	       0) {
		len += n;
	}
	got[len] = '\0';
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(res->setup_errno == 0, "setting up: %s",
		      strerror(res->setup_errno));
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	snprintf(want, sizeof(want),
		 "supervise: cannot write status file "
		 "'%s': File too large\n",
		 file);
	ck_assert_int_eq(res->r, -1);
	ck_assert_str_eq(got, want);
	ck_assert_int_ge(res->fds_before, 3);
	ck_assert_int_eq(res->fds_after, res->fds_before);
	ck_assert_int_eq(count_entries(dir, NULL), 0);
	munmap(res, sizeof(*res));
}
END_TEST

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

Suite *
status_suite(void)
{
	Suite *s = suite_create("status");
	TCase *tc;

	tc = tcase_create("json_string");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_status_json_string_escapes_and_replaces, 0,
			    N(json_cases));
	tcase_add_test(tc, test_status_json_string_appends_to_the_buffer);
	tcase_add_test(tc, test_status_json_string_reads_only_len_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("record");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
		       test_status_json_of_a_timeout_before_the_command_ended);
	tcase_add_test(tc, test_status_json_times_are_rfc3339_utc_with_ms);
	tcase_add_test(
		tc, test_status_json_of_a_cancel_with_stop_teardown_and_locks);
	tcase_add_test(
		tc,
		test_status_json_of_a_signaled_command_and_a_killed_teardown);
	tcase_add_test(tc, test_status_json_of_a_teardown_that_could_not_start);
	tcase_add_test(tc, test_status_json_idle_teardown_is_null);
	suite_add_tcase(s, tc);

	tc = tcase_create("write");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_status_write_writes_the_file_atomically);
	tcase_add_test(tc, test_status_write_replaces_an_older_record);
	tcase_add_test(tc, test_status_write_without_a_path_writes_nothing);
	tcase_add_test(
		tc, test_status_write_relative_path_survives_a_change_of_cwd);
	tcase_add_test(
		tc,
		test_status_write_syncs_the_file_then_renames_then_syncs_the_dir);
	tcase_add_test(tc, test_status_write_failed_file_sync_leaves_nothing);
	tcase_add_test(tc, test_status_write_failed_directory_sync_is_reported);
	tcase_add_test(
		tc,
		test_status_write_failed_write_leaves_no_file_and_no_descriptor);
	suite_add_tcase(s, tc);

	tc = tcase_create("prepare");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_status_prepare_fails_for_a_missing_directory);
	tcase_add_loop_test(
		tc,
		test_status_prepare_accepts_nothing_an_empty_file_or_a_record,
		0, ACCEPT_LATER_FORMAT + 1);
	tcase_add_test(tc, test_status_prepare_accepts_a_hard_linked_record);
	tcase_add_loop_test(tc, test_status_prepare_refuses_what_is_not_ours, 0,
			    N(foreign_cases));
	tcase_add_test(tc, test_status_prepare_refuses_a_device);
	tcase_add_loop_test(tc,
			    test_status_write_leaves_what_appeared_meanwhile, 0,
			    N(foreign_cases));
	tcase_add_test(tc, test_status_prepare_probes_with_an_unnamed_file);
	tcase_add_loop_test(tc, test_status_prepare_falls_back_to_a_named_probe,
			    0, N(no_tmpfile_errnos));
	tcase_add_test(tc,
		       test_status_prepare_reports_the_unnamed_files_refusal);
	tcase_add_test(tc, test_status_prepare_fails_where_no_file_can_be_made);
	suite_add_tcase(s, tc);
	return s;
}
