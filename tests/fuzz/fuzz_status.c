/*
 * status_json(), the whole status-file record: the command, the lock
 * paths and the reason come from the input (split at NUL bytes), and so
 * do the numbers (pids, statuses, signals, times, counts), so that odd
 * values (negative, huge, unknown signals) are tried too.  The record
 * must be exactly one valid JSON object followed by a newline.
 */
#include <sys/wait.h>

#include "fuzz.h"
#include "json_check.h"
#include "status.h"

#define MAX_WORDS 64

struct input {
	const uint8_t *p;
	size_t n;
};

static uint64_t
take(struct input *in, size_t bytes)
{
	uint64_t v = 0;

	while (bytes-- > 0 && in->n > 0) {
		v = v << 8 | *in->p++;
		in->n--;
	}
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct status_info si;
	struct teardown td;
	struct lock locks[4];
	struct json_buf b = { 0 };
	char *words[MAX_WORDS + 1];
	size_t nwords = 0, i, start;
	uint64_t flags;

	memset(&si, 0, sizeof(si));
	memset(&td, 0, sizeof(td));
	memset(locks, 0, sizeof(locks));
	flags = take(&in, 2);
	si.pid = (pid_t)take(&in, 4);
	si.command_pid = (pid_t)take(&in, 4);
	si.started.tv_sec = (time_t)take(&in, 5);
	si.started.tv_nsec = (long)(take(&in, 4) % 1000000000);
	si.started_mono = take(&in, 8);
	si.signal = (int)(int8_t)take(&in, 1);
	si.exit_status = (int)take(&in, 4);
	si.command_ended = flags & 1;
	si.command_wstatus = (int)take(&in, 4);
	si.stopped = flags & 2;
	si.stop_signal = (int)(int8_t)take(&in, 1);
	si.escalated = flags & 4;
	si.signalled = (int)take(&in, 4);
	si.leftovers = (int)take(&in, 4);
	td.rec = &td.own;
	if (flags & 8) {
		td.state = (enum teardown_state)(1 + take(&in, 1) % 3);
		td.rec->wstatus = (int)take(&in, 4);
		td.rec->start_errno = (int)(take(&in, 1) % 4);
		td.rec->timed_out = flags & 16;
		td.rec->started = take(&in, 8);
		td.ended = take(&in, 8);
		si.td = &td;
	}
	/* The rest: NUL-separated words. */
	for (start = 0, i = 0; i <= in.n && nwords < MAX_WORDS; i++) {
		if (i == in.n || in.p[i] == '\0') {
			words[nwords++] = fuzz_cstr(in.p + start, i - start);
			start = i + 1;
		}
	}
	words[nwords] = NULL;
	si.reason = nwords > 0 && (flags & 32) ? words[0] : NULL;
	if (td.state != TD_IDLE) {
		td.rec->reason = nwords > 1 ? words[1] : "timeout";
	}
	si.nlocks = (flags >> 8) % 5;
	for (i = 0; i < si.nlocks; i++) {
		locks[i].path = nwords > i ? words[i] : "lock";
		locks[i].wait_ns = (uint64_t)i * 1234567891u * flags;
	}
	si.locks = locks;
	si.command = (flags & 64) ? NULL : words;
	status_json(&b, &si);
	fuzz_assert(!b.failed && b.data != NULL);
	fuzz_assert(b.len >= 3 && b.data[0] == '{');
	fuzz_assert(b.data[b.len - 1] == '\n' && strlen(b.data) == b.len);
	if (!json_is_valid(b.data, b.len)) {
		fuzz_fail("invalid JSON: %s", b.data);
	}
	free(b.data);
	for (i = 0; i < nwords; i++) {
		free(words[i]);
	}
	return 0;
}
