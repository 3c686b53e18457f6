#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "caps.h"
#include "log.h"

int
caps_parse(const char *text, uint64_t *mask, char *bad, size_t badlen)
{
	const char *p = text;
	char word[64];
	uint64_t m = 0;
	cap_value_t v;
	size_t len;

	if (strcasecmp(text, "none") == 0) {
		*mask = 0;
		return 0;
	}
	for (;;) {
		len = strcspn(p, ",");
		snprintf(word, sizeof(word), "%.*s", (int)len, p);
		/*
		 * libcap also takes numbers, and text after a name's end
		 * ("cap_net_raw-x"); only plain names are documented, and a
		 * number past 63 would not fit the mask.
		 */
		if (len == 0 || len >= sizeof(word) ||
		    (word[0] >= '0' && word[0] <= '9') ||
		    word[strspn(word,
				"abcdefghijklmnopqrstuvwxyz"
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789")] !=
			    '\0' ||
		    cap_from_name(word, &v) < 0 || v < 0 || v > 63) {
			snprintf(bad, badlen, "%.*s", (int)len, p);
			return -1;
		}
		m |= UINT64_C(1) << v;
		if (p[len] == '\0') {
			break;
		}
		p += len + 1;
	}
	*mask = m;
	return 0;
}

int
caps_prepare(struct caps_keep *keep)
{
	cap_flag_value_t setpcap = CAP_CLEAR, have;
	char *name;
	cap_t cur;
	int c;

	if (!keep->active) {
		return 0;
	}
	keep->last_cap = (int)cap_max_bits() - 1;
	cur = cap_get_proc();
	if (cur == NULL) {
		log_error("cannot read capabilities: %s", strerror(errno));
		return -1;
	}
	cap_get_flag(cur, CAP_SETPCAP, CAP_EFFECTIVE, &setpcap);
	if (setpcap != CAP_SET) {
		cap_free(cur);
		log_error("cannot limit capabilities: CAP_SETPCAP is needed "
			  "(run as root)");
		return -1;
	}
	for (c = 0; c <= keep->last_cap && c < 64; c++) {
		if (!(keep->mask & (UINT64_C(1) << c))) {
			continue;
		}
		have = CAP_CLEAR;
		cap_get_flag(cur, (cap_value_t)c, CAP_PERMITTED, &have);
		if (have != CAP_SET) {
			name = cap_to_name((cap_value_t)c);
			log_error(
				"cannot keep capability %s: supervise does not "
				"hold it",
				name != NULL ? name : "?");
			cap_free(name);
			cap_free(cur);
			return -1;
		}
	}
	cap_free(cur);
	return 0;
}

int
caps_apply(const struct caps_keep *keep)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
		.pid = 0,
	};
	struct __user_cap_data_struct data[2];
	int c;

	if (!keep->active) {
		return 0;
	}
	/* The bounding set first: it needs CAP_SETPCAP, dropped below. */
	for (c = 0; c <= keep->last_cap; c++) {
		if (c < 64 && (keep->mask & (UINT64_C(1) << c))) {
			continue;
		}
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL) {
			return errno;
		}
	}
	data[0].effective = data[0].permitted = data[0].inheritable =
		(uint32_t)keep->mask;
	data[1].effective = data[1].permitted = data[1].inheritable =
		(uint32_t)(keep->mask >> 32);
	if (syscall(SYS_capset, &hdr, data) < 0) {
		return errno;
	}
	/* Ambient: what a non-root COMMAND keeps across its exec. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL) {
		return errno;
	}
	for (c = 0; c <= keep->last_cap && c < 64; c++) {
		if ((keep->mask & (UINT64_C(1) << c)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) {
			return errno;
		}
	}
	return 0;
}

/* Whether the file's capabilities would make the kernel change creds. */
static bool
file_caps_change_creds(const char *path, bool no_new_privs)
{
	cap_flag_value_t eff = CAP_CLEAR, file_perm, have;
	bool grows = false, any = false;
	cap_t fc, cur;
	int c, last = (int)cap_max_bits() - 1;

	/*
	 * Measured on Linux 6.x: for a caller whose real uid is 0 the signal
	 * is kept (root's permitted set already covers the file's); for
	 * others it is cleared when the file's effective bit is set (a
	 * "secure exec", even under no_new_privs) or when the permitted set
	 * grows (no_new_privs prevents that growth).
	 */
	if (getuid() == 0) {
		return false;
	}
	fc = cap_get_file(path);
	if (fc == NULL) {
		return false;
	}
	cur = cap_get_proc();
	for (c = 0; c <= last; c++) {
		file_perm = CAP_CLEAR;
		cap_get_flag(fc, (cap_value_t)c, CAP_PERMITTED, &file_perm);
		cap_get_flag(fc, (cap_value_t)c, CAP_INHERITABLE, &have);
		if (file_perm == CAP_SET || have == CAP_SET) {
			any = true;
		}
		cap_get_flag(fc, (cap_value_t)c, CAP_EFFECTIVE, &have);
		if (have == CAP_SET) {
			eff = CAP_SET;
		}
		have = CAP_CLEAR;
		if (cur != NULL) {
			cap_get_flag(cur, (cap_value_t)c, CAP_PERMITTED, &have);
		}
		if (file_perm == CAP_SET && have != CAP_SET) {
			grows = true;
		}
	}
	cap_free(cur);
	cap_free(fc);
	return any && (eff == CAP_SET || (grows && !no_new_privs));
}

/*
 * The interpreter of a "#!" script into buf, or an empty string for
 * anything else.  The kernel ignores a script's own set-ID bits and file
 * capabilities: only the interpreter's count.
 */
static void
script_interpreter(const char *path, char *buf, size_t len)
{
	char head[256];
	ssize_t n;
	size_t i, j = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	buf[0] = '\0';
	if (fd < 0) {
		return;
	}
	n = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (n < 3 || head[0] != '#' || head[1] != '!') {
		return;
	}
	head[n] = '\0';
	for (i = 2; head[i] == ' ' || head[i] == '\t'; i++) {
		continue;
	}
	while (head[i] != '\0' && head[i] != ' ' && head[i] != '\t' &&
	       head[i] != '\n' && j + 1 < len) {
		buf[j++] = head[i++];
	}
	buf[j] = '\0';
}

static const char *
changes_creds(const char *path, bool no_new_privs, int depth)
{
	char interp[256];
	struct statvfs vfs;
	struct stat st;

	if (stat(path, &st) < 0) {
		return NULL;
	}
	/* The kernel follows up to four levels of interpreters. */
	script_interpreter(path, interp, sizeof(interp));
	if (interp[0] != '\0') {
		return depth < 4 ?
			changes_creds(interp, no_new_privs, depth + 1) :
			NULL;
	}
	/* On a nosuid mount, set-ID bits and file capabilities are ignored. */
	if (statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_NOSUID)) {
		return NULL;
	}
	if (!no_new_privs && (st.st_mode & S_ISUID) && st.st_uid != geteuid()) {
		return "set-user-ID";
	}
	if (!no_new_privs && (st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP) &&
	    st.st_gid != getegid()) {
		return "set-group-ID";
	}
	if (file_caps_change_creds(path, no_new_privs)) {
		return "file capabilities";
	}
	return NULL;
}

const char *
caps_exec_changes_creds(const char *path, bool no_new_privs)
{
	return changes_creds(path, no_new_privs, 0);
}
