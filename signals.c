#include <sys/signalfd.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "signals.h"

/* Signals that cancel, time out or are forwarded: kept ignored if so. */
static const int optional_signals[] = {
	SIGTERM, SIGINT,   SIGHUP,  SIGQUIT, SIGALRM, SIGUSR1,
	SIGUSR2, SIGWINCH, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT,
};

static bool
is_ignored(int sig)
{
	struct sigaction sa;

	return sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

static int
set_handler(int sig, void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

int
sig_setup(struct sig_state *ss)
{
	size_t i;
	int saved;

	memset(ss, 0, sizeof(*ss));
	ss->fd = -1;
	if (sigprocmask(SIG_SETMASK, NULL, &ss->orig_mask) < 0) {
		return -1;
	}
	sigemptyset(&ss->handled);
	for (i = 0; i < sizeof(optional_signals) / sizeof(optional_signals[0]);
	     i++) {
		if (!is_ignored(optional_signals[i])) {
			sigaddset(&ss->handled, optional_signals[i]);
		}
	}
	sigaddset(&ss->handled, SIGCHLD);
	sigaddset(&ss->handled, SIG_PARENT_DEATH);
	sigaddset(&ss->handled, SIG_FRONT_DEATH);

	/*
	 * Block before anything is forked, so that no signal meant for the
	 * loop can be delivered with its default action in between.
	 */
	if (sigprocmask(SIG_BLOCK, &ss->handled, NULL) < 0) {
		return -1;
	}
	ss->fd = signalfd(-1, &ss->handled, SFD_NONBLOCK | SFD_CLOEXEC);
	if (ss->fd < 0) {
		goto undo;
	}
	ss->chld_was_ignored = is_ignored(SIGCHLD);
	if (ss->chld_was_ignored && set_handler(SIGCHLD, SIG_DFL) < 0) {
		goto undo;
	}
	ss->pipe_was_default = !is_ignored(SIGPIPE);
	if (ss->pipe_was_default && set_handler(SIGPIPE, SIG_IGN) < 0) {
		goto undo;
	}
	return 0;
undo:
	saved = errno;
	if (ss->chld_was_ignored) {
		set_handler(SIGCHLD, SIG_IGN);
	}
	if (ss->fd >= 0) {
		close(ss->fd);
		ss->fd = -1;
	}
	sigprocmask(SIG_SETMASK, &ss->orig_mask, NULL);
	errno = saved;
	return -1;
}

int
sig_release_job_control(struct sig_state *ss)
{
	static const int job[] = { SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT };
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < sizeof(job) / sizeof(job[0]); i++) {
		if (sigismember(&ss->handled, job[i]) == 1) {
			sigdelset(&ss->handled, job[i]);
			sigaddset(&set, job[i]);
		}
	}
	/* The signalfd first: then nothing it would read is lost to it. */
	if (signalfd(ss->fd, &ss->handled, 0) < 0) {
		return -1;
	}
	return sigprocmask(SIG_UNBLOCK, &set, NULL);
}

bool
sig_is_handled(const struct sig_state *ss, int sig)
{
	return sigismember(&ss->handled, sig) == 1;
}

void
sig_restore(const struct sig_state *ss)
{
	/* sigaction and sigprocmask are async-signal-safe. */
	if (ss->chld_was_ignored) {
		set_handler(SIGCHLD, SIG_IGN);
	}
	if (ss->pipe_was_default) {
		set_handler(SIGPIPE, SIG_DFL);
	}
	sigprocmask(SIG_SETMASK, &ss->orig_mask, NULL);
}

int
sig_read(const struct sig_state *ss, struct signalfd_siginfo *si)
{
	ssize_t n;

	do {
		n = read(ss->fd, si, sizeof(*si));
	} while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(*si)) {
		return 1;
	}
	if (n < 0 && errno == EAGAIN) {
		return 0;
	}
	if (n >= 0) {
		errno = EIO;
	}
	return -1;
}

enum sig_kind
sig_classify(int sig)
{
	/* The real-time pair first: they are not constants. */
	if (sig == SIG_PARENT_DEATH) {
		return SIGK_PARENT_DEATH;
	}
	if (sig == SIG_FRONT_DEATH) {
		return SIGK_FRONT_DEATH;
	}
	switch (sig) {
	case SIGCHLD:
		return SIGK_CHILD;
	case SIGTERM:
	case SIGINT:
	case SIGHUP:
	case SIGQUIT:
		return SIGK_CANCEL;
	case SIGALRM:
		return SIGK_TIMEOUT;
	case SIGUSR1:
	case SIGUSR2:
	case SIGWINCH:
		return SIGK_FORWARD;
	case SIGTSTP:
	case SIGTTIN:
	case SIGTTOU:
	case SIGCONT:
		return SIGK_JOB_CONTROL;
	default:
		return SIGK_OTHER;
	}
}

bool
sig_is_relayed(const struct signalfd_siginfo *si, pid_t front, pid_t *from)
{
	bool relayed = front != 0 && (pid_t)si->ssi_pid == front &&
		si->ssi_code == SI_QUEUE;

	*from = relayed ? (pid_t)si->ssi_int : (pid_t)si->ssi_pid;
	return relayed;
}
