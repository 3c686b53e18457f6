#ifndef SUPERVISE_OPTIONS_H
#define SUPERVISE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "supervise.h"

/* More locks than this for one run is surely a mistake. */
#define OPTS_MAX_LOCKS 64

/* --cgroup: where a cgroup v2 of the run's own contains it. */
enum cgroup_mode {
	CGROUP_AUTO,	/* where one can be made; else the sweep */
	CGROUP_OFF,	/* never: the subreaper sweep */
	CGROUP_REQUIRE, /* always, or exit 125 */
};

struct options {
	uint64_t timeout_ns;	/* 0: none */
	uint64_t kill_after_ns; /* grace before SIGKILL */
	int stop_signal;
	bool foreground;
	bool preserve_status;
	bool ignore_parent_death;
	bool cancel_on_hangup; /* cancel when nobody reads our output */
	enum cgroup_mode cgroup;
	pid_t parent_pid;	      /* 0: the parent at start */
	int verbosity;		      /* -1 quiet, 0 normal, 1 verbose */
	const char *teardown;	      /* -T: a shell command, or NULL */
	unsigned teardown_on;	      /* EVENT_* mask */
	uint64_t teardown_timeout_ns; /* 0: none */
	const char *teardown_log;     /* or NULL */
	char *locks[OPTS_MAX_LOCKS];  /* -l FILE..., in the order given */
	size_t nlocks;
	uint64_t lock_wait_ns;	 /* DURATION_FOREVER: no limit */
	uint64_t lock_ttl_ns;	 /* lease of etcd:// locks */
	const char *etcd_cacert; /* credential files, or NULL */
	const char *etcd_cert;
	const char *etcd_key;
	const char *etcd_user_file;
	/* -w's argument as the user wrote it (for messages), or NULL. */
	const char *lock_wait_text;
	const char *status_file; /* or NULL */
	bool caps_given;	 /* --caps */
	uint64_t caps;		 /* capabilities COMMAND keeps */
	bool no_new_privs;	 /* --no-new-privs, implied by --caps */
	char **command;		 /* NULL-terminated COMMAND [ARG]... */
};

enum opts_result {
	OPTS_RUN,
	OPTS_HELP,
	OPTS_VERSION,
	OPTS_ERROR,
};

/*
 * Fills *o from argv.  Never prints and never exits: on OPTS_ERROR the
 * one-line reason (without the "supervise: " prefix) is in err.  Uses
 * getopt_long() and so resets and changes its globals.
 */
enum opts_result opts_parse(struct options *o, int argc, char **argv, char *err,
			    size_t errlen);

/* The text of --help. */
extern const char opts_usage[];

#endif
