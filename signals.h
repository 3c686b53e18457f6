#ifndef SUPERVISE_SIGNALS_H
#define SUPERVISE_SIGNALS_H

#include <signal.h>
#include <stdbool.h>
#include <sys/signalfd.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Two real-time signals are reserved for parent-death notices: the front's
 * (its caller died) and the supervisor's (the front died).  They are above
 * glibc's own reserved range (SIGRTMIN is already past it).
 */
#define SIG_PARENT_DEATH (SIGRTMIN + 0)
#define SIG_FRONT_DEATH (SIGRTMIN + 1)

/* What supervise inherited, so that COMMAND gets it back. */
struct sig_state {
	sigset_t orig_mask;    /* the mask supervise was started with */
	sigset_t handled;      /* what supervise blocks and reads */
	bool chld_was_ignored; /* SIGCHLD was SIG_IGN at start */
	bool pipe_was_default; /* SIGPIPE was SIG_DFL at start */
	int fd;		       /* signalfd, non-blocking, close-on-exec */
};

/*
 * Blocks every signal supervise acts on and opens a signalfd to read them.
 * A cancel or forward signal that was ignored at start stays ignored and is
 * not read, as with GNU timeout.  SIGCHLD is set to SIG_DFL (an inherited
 * SIG_IGN would make the kernel reap children behind our back) and SIGPIPE
 * to SIG_IGN (a broken stderr must not kill us).  Fault signals are left
 * alone.  Returns 0, or -1 with errno set and nothing changed.
 */
int sig_setup(struct sig_state *ss);

/*
 * Gives the job-control signals (SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT) back
 * their default effect, for --foreground, where COMMAND shares our
 * process group and the terminal stops both.  Returns 0, or -1 with errno
 * set.
 */
int sig_release_job_control(struct sig_state *ss);

/* Whether sig is one that supervise reads through its signalfd. */
bool sig_is_handled(const struct sig_state *ss, int sig);

/*
 * In a forked child before exec: puts back the dispositions and the mask
 * supervise inherited.  Async-signal-safe.
 */
void sig_restore(const struct sig_state *ss);

/*
 * Reads one pending signal from the signalfd.  Returns 1 and fills *si,
 * 0 when none is pending, -1 on error.
 */
int sig_read(const struct sig_state *ss, struct signalfd_siginfo *si);

/* What a signal read from the signalfd means to every role. */
enum sig_kind {
	SIGK_OTHER,	   /* none of ours */
	SIGK_CHILD,	   /* SIGCHLD: a child changed state; reap */
	SIGK_CANCEL,	   /* SIGTERM, SIGINT, SIGHUP, SIGQUIT */
	SIGK_TIMEOUT,	   /* SIGALRM: time the run out now */
	SIGK_FORWARD,	   /* SIGUSR1, SIGUSR2, SIGWINCH: for COMMAND */
	SIGK_JOB_CONTROL,  /* SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT */
	SIGK_PARENT_DEATH, /* SIG_PARENT_DEATH: the watched parent died,
				 * or only a thread of it (check getppid()) */
	SIGK_FRONT_DEATH,  /* SIG_FRONT_DEATH: the front died, or ... */
};

/* The one classifier of signals, used by every role. */
enum sig_kind sig_classify(int sig);

/* Whether a signal read from the signalfd is a relay from the front:
 * sent with sigqueue() by front (not 0), the original sender's pid as the
 * value.  Sets *from to the original sender, or the direct sender. */
bool sig_is_relayed(const struct signalfd_siginfo *si, pid_t front,
		    pid_t *from);

#endif
