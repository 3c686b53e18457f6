#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#ifdef SUPERVISE_LIBCAP_DLOPEN
#include <dlfcn.h>
#endif

#include "caps.h"
#include "log.h"

/*
 * libcap, only where a run needs it: --caps, and a file with capabilities
 * run by a user other than root.  Linked in, it would be loaded at every
 * start, and its constructor probes the bounding set with a series of
 * prctl() calls; so the usual build loads it with dlopen() on first use.
 * A static build, which has no dlopen(), links it in.
 */
struct libcap {
	__typeof__(&cap_from_name) from_name;
	__typeof__(&cap_to_name) to_name;
	__typeof__(&cap_max_bits) max_bits;
	__typeof__(&cap_get_proc) get_proc;
	__typeof__(&cap_get_file) get_file;
	__typeof__(&cap_get_flag) get_flag;
	__typeof__(&cap_free) free;
};

#ifdef SUPERVISE_LIBCAP_DLOPEN
#define LIBCAP_SONAME "libcap.so.2"

/* dlsym() into a function pointer, as POSIX describes it. */
#define LIBCAP_SYM(lc, h, field, name, missing)                                \
	do {                                                                   \
		*(void **)&(lc)->field = dlsym((h), (name));                   \
		if ((lc)->field == NULL && (missing) == NULL) {                \
			(missing) = (name);                                    \
		}                                                              \
	} while (0)

/*
 * Fills lc from the library, loaded once (a later dlopen() finds it
 * there; it is never unloaded).  Returns 0, or -1 with why filled.
 */
static int
libcap_load(struct libcap *lc, char *why, size_t len)
{
	void *h = dlopen(LIBCAP_SONAME, RTLD_NOW | RTLD_LOCAL);
	const char *missing = NULL;

	if (h == NULL) {
		snprintf(why, len, "%s", dlerror());
		return -1;
	}
	LIBCAP_SYM(lc, h, from_name, "cap_from_name", missing);
	LIBCAP_SYM(lc, h, to_name, "cap_to_name", missing);
	LIBCAP_SYM(lc, h, max_bits, "cap_max_bits", missing);
	LIBCAP_SYM(lc, h, get_proc, "cap_get_proc", missing);
	LIBCAP_SYM(lc, h, get_file, "cap_get_file", missing);
	LIBCAP_SYM(lc, h, get_flag, "cap_get_flag", missing);
	LIBCAP_SYM(lc, h, free, "cap_free", missing);
	if (missing != NULL) {
		snprintf(why, len, "%s has no %s", LIBCAP_SONAME, missing);
		return -1;
	}
	return 0;
}
#else
static int
libcap_load(struct libcap *lc, char *why, size_t len)
{
	(void)why;
	(void)len;
	lc->from_name = cap_from_name;
	lc->to_name = cap_to_name;
	lc->max_bits = cap_max_bits;
	lc->get_proc = cap_get_proc;
	lc->get_file = cap_get_file;
	lc->get_flag = cap_get_flag;
	lc->free = cap_free;
	return 0;
}
#endif

int
caps_parse(const char *text, uint64_t *mask, char *bad, size_t badlen)
{
	const char *p = text;
	struct libcap lc;
	char word[64];
	uint64_t m = 0;
	cap_value_t v;
	size_t len;

	if (strcasecmp(text, "none") == 0) {
		*mask = 0;
		return 0;
	}
	if (libcap_load(&lc, bad, badlen) < 0) {
		return -2;
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
		    lc.from_name(word, &v) < 0 || v < 0 || v > 63) {
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
	struct libcap lc;
	char *name, why[256];
	cap_t cur;
	int c;

	if (!keep->active) {
		return 0;
	}
	if (libcap_load(&lc, why, sizeof(why)) < 0) {
		log_error("cannot load libcap: %s", why);
		return -1;
	}
	keep->last_cap = (int)lc.max_bits() - 1;
	cur = lc.get_proc();
	if (cur == NULL) {
		log_error("cannot read capabilities: %s", strerror(errno));
		return -1;
	}
	lc.get_flag(cur, CAP_SETPCAP, CAP_EFFECTIVE, &setpcap);
	if (setpcap != CAP_SET) {
		lc.free(cur);
		log_error("cannot limit capabilities: CAP_SETPCAP is needed "
			  "(run as root)");
		return -1;
	}
	for (c = 0; c <= keep->last_cap && c < 64; c++) {
		if (!(keep->mask & (UINT64_C(1) << c))) {
			continue;
		}
		have = CAP_CLEAR;
		lc.get_flag(cur, (cap_value_t)c, CAP_PERMITTED, &have);
		if (have != CAP_SET) {
			name = lc.to_name((cap_value_t)c);
			log_error(
				"cannot keep capability %s: supervise does not "
				"hold it",
				name != NULL ? name : "?");
			lc.free(name);
			lc.free(cur);
			return -1;
		}
	}
	lc.free(cur);
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
	struct libcap lc;
	char why[256];
	cap_t fc, cur;
	int c, last;

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
	/* Most files have no capabilities: no need for libcap to say so. */
	if (getxattr(path, "security.capability", NULL, 0) < 0 ||
	    libcap_load(&lc, why, sizeof(why)) < 0) {
		return false;
	}
	fc = lc.get_file(path);
	if (fc == NULL) {
		return false;
	}
	last = (int)lc.max_bits() - 1;
	cur = lc.get_proc();
	for (c = 0; c <= last; c++) {
		file_perm = CAP_CLEAR;
		lc.get_flag(fc, (cap_value_t)c, CAP_PERMITTED, &file_perm);
		lc.get_flag(fc, (cap_value_t)c, CAP_INHERITABLE, &have);
		if (file_perm == CAP_SET || have == CAP_SET) {
			any = true;
		}
		lc.get_flag(fc, (cap_value_t)c, CAP_EFFECTIVE, &have);
		if (have == CAP_SET) {
			eff = CAP_SET;
		}
		have = CAP_CLEAR;
		if (cur != NULL) {
			lc.get_flag(cur, (cap_value_t)c, CAP_PERMITTED, &have);
		}
		if (file_perm == CAP_SET && have != CAP_SET) {
			grows = true;
		}
	}
	lc.free(cur);
	lc.free(fc);
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
	const char *why = NULL;
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
	if (!no_new_privs && (st.st_mode & S_ISUID) && st.st_uid != geteuid()) {
		why = "set-user-ID";
	} else if (!no_new_privs && (st.st_mode & S_ISGID) &&
		   (st.st_mode & S_IXGRP) && st.st_gid != getegid()) {
		why = "set-group-ID";
	} else if (file_caps_change_creds(path, no_new_privs)) {
		why = "file capabilities";
	}
	/* On a nosuid mount, set-ID bits and file capabilities are ignored. */
	if (why != NULL && statvfs(path, &vfs) == 0 &&
	    (vfs.f_flag & ST_NOSUID)) {
		return NULL;
	}
	return why;
}

const char *
caps_exec_changes_creds(const char *path, bool no_new_privs)
{
	return changes_creds(path, no_new_privs, 0);
}
