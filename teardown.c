#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "loop.h"
#include "parse.h"
#include "teardown.h"

static int
make_pipe(struct teardown *td)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0) {
		return -1;
	}
	/* Only the reader polls; the writer must block like any pipe. */
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	td->pipe_r = fds[0];
	td->pipe_w = fds[1];
	return 0;
}

void
teardown_keep_reader(struct teardown *td)
{
	if (td->pipe_w >= 0) {
		close(td->pipe_w);
		td->pipe_w = -1;
	}
}

bool
teardown_alive(const struct teardown *td)
{
	return td->rec->pid > 0 && !td->rec->main_done;
}

int
teardown_prepare(struct teardown *td, const struct options *opt,
		 const struct tree_skip *skip)
{
	memset(td, 0, sizeof(*td));
	td->opt = opt;
	td->rec = &td->own;
	td->skip = skip;
	td->cwd_fd = td->sh_fd = td->log_fd = td->out_fd = -1;
	td->pipe_r = td->pipe_w = -1;
	td->state = TD_IDLE;
	/*
	 * Opened even without -T, before COMMAND starts: a path that cannot
	 * be written is a mistake to report now (exit 125), not after the
	 * run, when the log is needed.  The open itself is the check, so it
	 * is the kernel's answer (a read-only mount, an immutable directory)
	 * and not that of the mode bits.
	 */
	if (opt->teardown_log != NULL) {
		/*
		 * O_APPEND and never O_TRUNC: what earlier runs wrote stays.
		 * O_NONBLOCK: a FIFO without a reader fails now rather than
		 * hang, and one whose reader stops never stalls the loop
		 * (what cannot be written at once is dropped and counted).
		 */
		td->log_fd = open(opt->teardown_log,
				  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
					  O_NOCTTY | O_NONBLOCK,
				  0644);
		if (td->log_fd < 0) {
			log_error("cannot open teardown log '%s': %s",
				  opt->teardown_log, strerror(errno));
			return -1;
		}
	}
	if (opt->teardown == NULL) {
		return 0;
	}
	if (make_pipe(td) < 0) {
		log_error("cannot make a pipe for the teardown: %s",
			  strerror(errno));
		return -1;
	}
	/*
	 * CI runners delete the workspace right after a cancel: hold the
	 * directory and the shell now.  The directory may be unreadable
	 * (O_PATH needs none of its permissions); "/" stands in if even
	 * that fails.
	 */
	td->cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	td->sh_fd = open("/bin/sh", O_PATH | O_CLOEXEC);
	if (td->sh_fd < 0) {
		log_error("cannot open /bin/sh for the teardown: %s",
			  strerror(errno));
		return -1;
	}
	return 0;
}

bool
teardown_is_due(const struct teardown *td, unsigned event)
{
	return td->opt != NULL && td->opt->teardown != NULL &&
		(td->opt->teardown_on & event) != 0;
}

bool
teardown_claim(int *claim, int who)
{
	int expected = TEARDOWN_UNCLAIMED;

	return __atomic_compare_exchange_n(claim, &expected, who, false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

/* Appends one line to the log file, if there is one; errors are ignored. */
static void __attribute__((format(printf, 2, 3)))
log_file(const struct teardown *td, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (td->log_fd < 0) {
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0) {
		return;
	}
	if ((size_t)n > sizeof(buf) - 2) {
		n = (int)sizeof(buf) - 2;
	}
	buf[n++] = '\n';
	log_output(td->log_fd, buf, (size_t)n);
}

/*
 * The environment: ours, less any SUPERVISE_ value of the same names, plus
 * the new ones (their text lives in td->envbuf).  Returns a calloc'd array.
 */
static char **
build_env(struct teardown *td, const char *reason, int exit_status,
	  const char *command_status, pid_t pid)
{
	static const char *const names[] = {
		"SUPERVISE_REASON=",
		"SUPERVISE_EXIT_STATUS=",
		"SUPERVISE_COMMAND_STATUS=",
		"SUPERVISE_PID=",
	};
	size_t n = 0, i, k, j = 0;
	char **env;

	while (environ[n] != NULL) {
		n++;
	}
	env = calloc(n + 5, sizeof(*env));
	if (env == NULL) {
		return NULL;
	}
	for (i = 0; i < n; i++) {
		for (k = 0; k < 4; k++) {
			if (strncmp(environ[i], names[k], strlen(names[k])) ==
			    0) {
				break;
			}
		}
		if (k == 4) {
			env[j++] = environ[i];
		}
	}
	snprintf(td->envbuf[0], sizeof(td->envbuf[0]), "%s%s", names[0],
		 reason);
	snprintf(td->envbuf[1], sizeof(td->envbuf[1]), "%s%d", names[1],
		 exit_status);
	snprintf(td->envbuf[2], sizeof(td->envbuf[2]), "%s%s", names[2],
		 command_status);
	snprintf(td->envbuf[3], sizeof(td->envbuf[3]), "%s%d", names[3],
		 (int)pid);
	for (k = 0; k < 4; k++) {
		env[j++] = td->envbuf[k];
	}
	return env;
}

static void
utc_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
say_started(struct teardown *td, const char *when, const char *reason,
	    pid_t pid, const char *command_status)
{
	td->rec->announced = true;
	log_info("teardown started (reason: %s)", reason);
	log_file(td,
		 "supervise: teardown started at %s (reason: %s, "
		 "pid %d, command %s)",
		 when, reason, (int)pid, command_status);
}

int
teardown_start(struct teardown *td, const char *reason, int exit_status,
	       const char *command_status, pid_t pid,
	       const struct sig_state *sig, uint64_t now)
{
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)td->opt->teardown,
			 NULL };
	struct child_spec spec;
	int devnull = -1;
	char when[32];
	char **env;

	td->rec->reason = reason;
	td->rec->started = now;
	td->state = TD_DONE;
	utc_now(when, sizeof(when));
	env = build_env(td, reason, exit_status, command_status, pid);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* The front gave its writer away; it needs a pipe of its own. */
	if (env == NULL || devnull < 0 ||
	    (td->pipe_w < 0 && (close(td->pipe_r), make_pipe(td)) < 0)) {
		td->rec->start_errno = errno != 0 ? errno : ENOMEM;
		goto fail;
	}
	td->rec->deadline = td->opt->teardown_timeout_ns == 0 ?
		UINT64_MAX :
		now + td->opt->teardown_timeout_ns < now ?
		UINT64_MAX :
		now + td->opt->teardown_timeout_ns;
	child_spec_init(&spec, argv, sig);
	/*
	 * All the front needs to take over is in the record before the
	 * fork, and the pid right after it: should we die in between, the
	 * front knows whether there is a teardown to adopt.
	 */
	spec.pid_slot = &td->rec->pid;
	spec.new_session = true;
	spec.cgroup_fd = td->cg != NULL ? td->cg->dir_fd : -1;
	spec.envp = env;
	spec.exec_fd = td->sh_fd;
	spec.cwd_fd = td->cwd_fd;
	spec.stdio[0] = devnull;
	spec.stdio[1] = td->pipe_w;
	spec.stdio[2] = td->pipe_w;
	if (child_start(&spec, &td->rec->start_errno) < 0) {
		td->rec->start_errno = errno;
		td->rec->pid = 0;
		goto fail;
	}
	/*
	 * Said once it is forked, not before: should we die in between,
	 * the front starts it and says so, and it is said once.
	 */
	say_started(td, when, reason, pid, command_status);
	/* From now on only the teardown's tree holds the writer. */
	close(td->pipe_w);
	td->pipe_w = -1;
	close(devnull);
	free(env);
	td->out_fd = td->pipe_r;
	if (td->rec->start_errno != 0) {
		/*
		 * The exec failed: the child has reported it and exits at
		 * once, having forked nothing, so this wait is short.
		 */
		while (waitpid(td->rec->pid, &td->rec->wstatus, 0) < 0 &&
		       errno == EINTR) {
			continue;
		}
		td->rec->main_done = true;
		teardown_pump(td);
		close(td->out_fd);
		td->out_fd = -1;
		goto report;
	}
	td->state = TD_RUNNING;
	return 0;
fail:
	say_started(td, when, reason, pid, command_status);
	if (devnull >= 0) {
		close(devnull);
	}
	free(env);
report:
	td->ended = loop_now();
	td->rec->done = true;
	log_error("cannot start the teardown command: %s",
		  strerror(td->rec->start_errno));
	log_file(td, "supervise: cannot start the teardown command: %s",
		 strerror(td->rec->start_errno));
	return -1;
}

static void begin_stop(struct teardown *td, uint64_t now, uint64_t grace_ns);

void
teardown_adopt(struct teardown *td, uint64_t now)
{
	const struct teardown_record *rec = td->rec;
	char when[32];

	if (!rec->announced) {
		/* The supervisor died between the fork and saying so. */
		utc_now(when, sizeof(when));
		say_started(td, when, rec->reason, 0, "unknown");
	}
	td->out_fd = td->pipe_r;
	td->state = TD_RUNNING;
	/*
	 * Being stopped, it goes on being stopped in our tree, where it now
	 * is, with what was left of the grace: the bound on our lifetime
	 * holds.  Running, the next step finds whether it is over.
	 */
	if (rec->stopping) {
		begin_stop(td, now,
			   rec->kill_at > now ? rec->kill_at - now : 0);
	}
}

void
teardown_reaped(struct teardown *td, pid_t pid, int wstatus)
{
	if (teardown_alive(td) && pid == td->rec->pid) {
		td->rec->wstatus = wstatus;
		td->rec->main_done = true;
	}
}

/* Stops the teardown's tree, SIGKILL after grace_ns. */
static void
begin_stop(struct teardown *td, uint64_t now, uint64_t grace_ns)
{
	td->stop.sig = td->opt->stop_signal;
	td->stop.grace_ns = grace_ns;
	/* Its session's group, while its leader is ours and unreaped. */
	td->stop.group = teardown_alive(td) ? td->rec->pid : 0;
	/* Only its own: never what supervise inherited from its caller. */
	td->stop.skip = td->skip;
	td->stop.cg = td->cg;
	tree_stop_begin(&td->stop, now);
	td->state = TD_STOPPING;
	td->rec->kill_at = td->stop.phase == TREE_GRACE ? td->stop.grace_end :
							  now;
	td->rec->stopping = true;
}

static void
report(struct teardown *td)
{
	char dur[32], how[48], name[32];
	bool failed = teardown_failed(td);

	fmt_duration(td->ended - td->rec->started, dur, sizeof(dur));
	if (WIFSIGNALED(td->rec->wstatus)) {
		snprintf(how, sizeof(how), "killed by %s",
			 sig_name(WTERMSIG(td->rec->wstatus), name,
				  sizeof(name)));
	} else {
		snprintf(how, sizeof(how), "exit %d",
			 WEXITSTATUS(td->rec->wstatus));
	}
	log_msg(failed ? LOG_ERROR : LOG_INFO, "teardown %s in %s (%s)",
		td->rec->timed_out ? "timed out" :
			failed	   ? "failed" :
				     "finished",
		dur, how);
	log_file(td, "supervise: teardown %s in %s (%s)",
		 td->rec->timed_out ? "timed out" :
			 failed	    ? "failed" :
				      "finished",
		 dur, how);
}

bool
teardown_step(struct teardown *td, uint64_t now)
{
	char dur[32], stop[32];

	if (td->state == TD_RUNNING) {
		if (!teardown_alive(td)) {
			/* The main process is done: its leftovers go too. */
			begin_stop(td, now, td->opt->kill_after_ns);
		} else if (now >= td->rec->deadline) {
			td->rec->timed_out = true;
			log_error(
				"teardown timed out after %s; stopping it with %s",
				fmt_duration(td->opt->teardown_timeout_ns, dur,
					     sizeof(dur)),
				sig_name(td->opt->kill_after_ns == 0 ?
						 SIGKILL :
						 td->opt->stop_signal,
					 stop, sizeof(stop)));
			begin_stop(td, now, td->opt->kill_after_ns);
		}
	} else if (td->state == TD_STOPPING) {
		tree_stop_step(&td->stop, now);
	}
	if (td->state != TD_STOPPING || td->stop.phase != TREE_DONE) {
		return td->state == TD_DONE;
	}
	/*
	 * Nothing of it is left; its zombie leader may still need reaping
	 * (WNOHANG: one given up on as unstoppable is not waited for).
	 */
	if (teardown_alive(td) &&
	    waitpid(td->rec->pid, &td->rec->wstatus, WNOHANG) == td->rec->pid) {
		td->rec->main_done = true;
	}
	teardown_pump(td);
	if (td->out_fd >= 0) {
		close(td->out_fd);
		td->out_fd = -1;
	}
	td->state = TD_DONE;
	td->ended = now;
	td->rec->done = true;
	report(td);
	return true;
}

uint64_t
teardown_deadline(const struct teardown *td)
{
	if (td->state == TD_RUNNING) {
		return teardown_alive(td) ? td->rec->deadline : 0;
	}
	if (td->state == TD_STOPPING) {
		return tree_stop_deadline(&td->stop);
	}
	return UINT64_MAX;
}

void
teardown_pump(struct teardown *td)
{
	char buf[16384];
	ssize_t n;

	while (td->out_fd >= 0) {
		n = read(td->out_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN) {
				close(td->out_fd);
				td->out_fd = -1;
			}
			return;
		}
		/* A broken or full stderr or log loses output, never time. */
		log_output(STDERR_FILENO, buf, (size_t)n);
		if (td->log_fd >= 0) {
			log_output(td->log_fd, buf, (size_t)n);
		}
	}
}

bool
teardown_failed(const struct teardown *td)
{
	return td->rec->start_errno != 0 || td->rec->timed_out ||
		!WIFEXITED(td->rec->wstatus) ||
		WEXITSTATUS(td->rec->wstatus) != 0;
}
