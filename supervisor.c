#include <sys/prctl.h>
#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "log.h"
#include "loop.h"
#include "parse.h"
#include "supervisor.h"

/* Signals read in one turn of the loop, decided on in order. */
#define QUEUE_MAX 32

struct supervisor {
	struct run *r;
	struct loop loop;
	struct signalfd_siginfo q[QUEUE_MAX];
	size_t nq;
	bool read_failed;    /* the signalfd could not be read */
	bool ancestor_died;  /* the --parent-pid pidfd polled readable */
	bool cgroup_changed; /* a cgroup.events polled POLLPRI */
	bool cg_watched;     /* the cgroups' events are in the loop */
	int hangup_fd;	     /* 1 or 2 polled POLLERR/POLLHUP, or 0 */
	int td_fd;	     /* the teardown's output, while registered */
	size_t td_refusals;  /* of the teardown's stop, logged so far */
};

/* Sets the exit status from the reason, once the run is over. */
static void
settle_status(struct run *r)
{
	struct shared *sh = r->sh;

	switch (sh->reason) {
	case REASON_EXIT:
		sh->exit_status = child_exit_status(sh->cmd_wstatus);
		break;
	case REASON_TIMEOUT:
		sh->exit_status = r->opt.preserve_status &&
				sh->cmd_state == CMD_ENDED ?
			child_exit_status(sh->cmd_wstatus) :
			EXIT_TIMEDOUT;
		break;
	case REASON_CANCEL:
		sh->exit_status = 128 + sh->cancel_sig;
		break;
	case REASON_PARENT_DEATH:
	case REASON_HANGUP:
		sh->exit_status = 128 + SIGHUP;
		break;
	case REASON_EXEC_FAILED:
		sh->exit_status = child_exec_status(r->exec_errno);
		break;
	case REASON_LOCK_TIMEOUT:
		sh->exit_status = EXIT_TEMPFAIL;
		break;
	case REASON_LOCK_LOST:
		sh->exit_status = EXIT_LOCK_LOST;
		break;
	case REASON_NONE:
	case REASON_ERROR:
		sh->exit_status = EXIT_FAILURE_SUPERVISE;
		break;
	}
	/* A process of the run lives on: no status may hide that. */
	if (sh->abandoned > 0) {
		sh->exit_status = EXIT_UNSTOPPABLE;
	}
}

/* The process group to signal as a whole: COMMAND's, unless ours. */
static pid_t
command_group(const struct run *r)
{
	return run_cmd_alive(r) && !r->opt.foreground ? r->sh->cmd_pid : 0;
}

/* Sends sig to the run's whole tree, COMMAND's group first. */
static void
signal_tree(struct run *r, int sig)
{
	pid_t group = command_group(r);

	if (group > 0) {
		kill(-group, sig);
	}
	tree_signal(sig, false, group, &r->skip);
}

/* Lets the front go on: it was stopped with the run. */
static void
continue_front(struct run *r)
{
	if (r->front != 0 && getppid() == r->front) {
		kill(r->front, SIGCONT);
	}
}

/* Starts the stop sequence for the reason just recorded. */
static void
begin_stop(struct run *r, uint64_t now)
{
	if (r->paused) {
		/* The stop sends SIGCONT to the tree; the front goes on too. */
		r->paused = false;
		if (r->cgs.active) {
			cgroup_freeze(&r->cgs.run, false);
		}
		continue_front(r);
	}
	/* Never our own group (--foreground), nor one we no longer own. */
	run_begin_stop(r, command_group(r), r->opt.kill_after_ns, now);
	if (r->stop.phase == TREE_DONE) {
		r->state = RUN_TREE_GONE;
	}
}

static const char *
stop_sig_name(const struct run *r, char *buf, size_t len)
{
	return sig_name(r->opt.kill_after_ns == 0 ? SIGKILL :
						    r->opt.stop_signal,
			buf, len);
}

/*
 * The supervisor learns of the front's death as a cancel by SIGKILL (its
 * parent-death signal): the front never exits while we live, so it was
 * killed.  No real SIGKILL can be read from a signalfd.
 */
static bool
is_front_death(const struct run *r, enum run_reason reason, int sig)
{
	return r->front != 0 && reason == REASON_CANCEL && sig == SIGKILL;
}

/*
 * What happened, in the words of the messages, for an event that is not
 * a plain signal: a death or a hangup.  Returns NULL for a signal (or a
 * timeout), which the caller names itself.  The front is the process
 * the caller started: to the user, it is supervise.
 */
static const char *
what_happened(const struct run *r, enum run_reason reason, int sig, pid_t from,
	      char *buf, size_t len)
{
	if (is_front_death(r, reason, sig)) {
		snprintf(buf, len, "supervise (pid %d) was killed",
			 (int)r->front);
	} else if (reason == REASON_PARENT_DEATH) {
		snprintf(buf, len, "%s process %d died",
			 from == r->ancestor && r->ancestor != 0 ? "ancestor" :
								   "parent",
			 (int)from);
	} else if (reason == REASON_HANGUP) {
		snprintf(buf, len, "nobody reads standard %s any more",
			 from == 1 ? "output" : "error");
	} else {
		return NULL;
	}
	return buf;
}

/*
 * While stopping or tearing down: a second event of the kind that ends
 * a run.  A real second cancel (or the front's death) skips the rest of
 * the grace.  Signals are "ignored"; a death or a hangup cannot be, and
 * is said to change nothing.
 */
static void
end_again(struct run *r, enum run_reason reason, int sig, pid_t from,
	  bool relayed, uint64_t now)
{
	char name[32], what[96];
	const char *event = what_happened(r, reason, sig, from, what,
					  sizeof(what));
	int n;

	if (reason == REASON_LOCK_LOST) {
		log_error("%s while %s", remote_lost_why(r->remote),
			  r->state == RUN_TEARDOWN ? "tearing down" :
						     "stopping the run");
		return;
	}
	sig_name(sig, name, sizeof(name));
	if (r->state == RUN_TEARDOWN) {
		/* The teardown is bounded by its own deadline: let it finish. */
		if (event != NULL) {
			log_info("%s; the teardown goes on", event);
		} else {
			log_info("%s during the teardown; ignored",
				 sig != 0 ? name : "timeout");
		}
		return;
	}
	/*
	 * "pkill supervise" reaches the supervisor directly and through the
	 * front: one event, seen twice.  Only a real second signal skips
	 * the grace.
	 */
	if (reason == REASON_CANCEL && sig == r->sh->cancel_sig &&
	    from == r->cancel_from && from != 0 &&
	    relayed != r->cancel_relayed) {
		log_debug("%s from pid %d seen twice; once counts", name,
			  (int)from);
		return;
	}
	if (reason == REASON_CANCEL && r->stop.phase == TREE_GRACE) {
		n = tree_stop_hurry(&r->stop, now);
		r->sh->kill_at = now;
		log_info("%s%s; sending SIGKILL to %d process%s now",
			 event != NULL ? event : name,
			 event != NULL ? "" : " again", n, n == 1 ? "" : "es");
	} else if (event != NULL) {
		log_info("%s; already stopping the run", event);
	} else {
		log_info("%s while stopping; ignored",
			 sig != 0 ? name : "timeout");
	}
}

/*
 * On a terminal, a person pressed Ctrl-C and may not want to wait for
 * the grace: tell them, once (the first end of a run comes once), what a
 * second one does (end_again() skips the grace).  A runner's SIGINT has
 * no terminal on stderr to read this.
 */
static void
hint_second_ctrl_c(const struct run *r, enum run_reason reason, int sig)
{
	if (reason == REASON_CANCEL && sig == SIGINT &&
	    r->stop.phase == TREE_GRACE &&
	    r->stop.grace_ns > UINT64_C(1000000000) && isatty(STDERR_FILENO)) {
		log_info("press Ctrl-C again to kill the run at once");
	}
}

/* Says why the run is being stopped. */
static void
say_why(struct run *r, enum run_reason reason, int sig, pid_t from,
	uint64_t now)
{
	char name[32], stop[32], dur[32], who[48] = "", what[96];

	stop_sig_name(r, stop, sizeof(stop));
	if (from > 0) {
		snprintf(who, sizeof(who), " from pid %d", (int)from);
	}
	if (reason == REASON_TIMEOUT && sig == SIGALRM) {
		log_info("timed out by SIGALRM%s after %s; stopping the run "
			 "with %s",
			 who,
			 fmt_duration(now - r->cmd_started, dur, sizeof(dur)),
			 stop);
	} else if (reason == REASON_TIMEOUT) {
		log_info("timed out after %s; stopping the run with %s",
			 fmt_duration(r->opt.timeout_ns, dur, sizeof(dur)),
			 stop);
	} else if (reason == REASON_LOCK_LOST) {
		/* Exclusion is no longer guaranteed: an error, even with -q. */
		log_error("%s; stopping the run with %s",
			  remote_lost_why(r->remote), stop);
	} else if (what_happened(r, reason, sig, from, what, sizeof(what)) !=
		   NULL) {
		log_info("%s; stopping the run with %s", what, stop);
	} else {
		log_info("cancelled by %s%s; stopping the run with %s",
			 sig_name(sig, name, sizeof(name)), who, stop);
	}
}

/*
 * A cancel signal, the parent's death or a timeout: the first one ends the
 * run and decides the status; later ones are handled by end_again().
 */
static void
end_run(struct run *r, enum run_reason reason, int sig, pid_t from,
	bool relayed, uint64_t now)
{
	if (r->state == RUN_STOPPING || r->state == RUN_TEARDOWN) {
		end_again(r, reason, sig, from, relayed, now);
		return;
	}
	if (r->state != RUN_RUNNING || !run_set_reason(r, reason, sig)) {
		return;
	}
	r->cancel_from = from;
	r->cancel_relayed = relayed;
	if (reason == REASON_PARENT_DEATH) {
		r->sh->cause_pid = from;
		r->sh->cause_ancestor = from == r->ancestor && from != 0;
	} else if (reason == REASON_HANGUP) {
		r->sh->cause_fd = (int)from;
	}
	say_why(r, reason, sig, from, now);
	begin_stop(r, now);
	hint_second_ctrl_c(r, reason, sig);
}

/* COMMAND is gone: stop what it left behind, or finish. */
static void
command_ended(struct run *r, uint64_t now)
{
	char stop[32];
	int n;

	run_set_reason(r, REASON_EXIT, 0);
	r->sh->exit_status = child_exit_status(r->sh->cmd_wstatus);
	begin_stop(r, now);
	n = r->stop.signalled;
	if (n > 0) {
		log_info(
			"command exited; stopping %d leftover process%s with %s",
			n, n == 1 ? "" : "es",
			stop_sig_name(r, stop, sizeof(stop)));
	}
}

/*
 * The next child that has exited, left unreaped (WNOWAIT), with its wait
 * status.  Returns its pid, or 0 when there is none.
 */
static pid_t
next_exited(int *ws)
{
	siginfo_t info;

	memset(&info, 0, sizeof(info));
	if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 ||
	    info.si_pid == 0) {
		return 0;
	}
	*ws = info.si_code == CLD_EXITED ? (info.si_status & 0xff) << 8 :
					   (info.si_status & 0x7f) |
			(info.si_code == CLD_DUMPED ? 0x80 : 0);
	return info.si_pid;
}

/*
 * With -v, how COMMAND ended, as waitid() told it: a shell that exits 143
 * after its child was killed exited; only a signal death is a kill.
 */
static void
log_command_end(int ws, uint64_t ran)
{
	char name[32], dur[32];

	fmt_duration(ran, dur, sizeof(dur));
	if (WIFSIGNALED(ws)) {
		log_debug("command killed by %s%s after %s",
			  sig_name(WTERMSIG(ws), name, sizeof(name)),
			  WCOREDUMP(ws) ? " (core dumped)" : "", dur);
	} else {
		log_debug("command exited with status %d after %s",
			  WEXITSTATUS(ws), dur);
	}
}

/*
 * Reaps every child that has exited; signals merge, so loop until none.
 * Each is recorded in the shared page before it is reaped: killed in
 * between, we leave a zombie that the front reaps and records, never a
 * process reaped with its end known to nobody (the front would wait for
 * the teardown until its deadline).
 */
static void
reap(struct run *r, uint64_t now)
{
	pid_t pid;
	int ws = 0;

	while ((pid = next_exited(&ws)) > 0) {
		if (pid != r->sh->cmd_pid || !run_cmd_alive(r)) {
			/* The teardown, an adopted orphan, or a child we inherited. */
			teardown_reaped(&r->td, pid, ws);
			tree_skip_remove(&r->skip, pid);
			(void)waitpid(pid, NULL, WNOHANG);
			continue;
		}
		r->sh->cmd_wstatus = ws;
		r->sh->cmd_state = CMD_ENDED;
		(void)waitpid(pid, NULL, WNOHANG);
		log_command_end(ws, now - r->cmd_started);
		if (r->state == RUN_RUNNING) {
			command_ended(r, now);
		}
	}
}

static void
forward(struct run *r, int sig)
{
	char name[32];

	if (!run_cmd_alive(r) || r->state != RUN_RUNNING) {
		return;
	}
	/* COMMAND's group, unless that is our own (--foreground). */
	kill(r->opt.foreground ? r->sh->cmd_pid : -r->sh->cmd_pid, sig);
	log_debug("forwarded %s to the command",
		  sig_name(sig, name, sizeof(name)));
}

static void
on_parent_death(struct run *r, bool relayed, pid_t from, uint64_t now)
{
	if (relayed) {
		end_run(r, REASON_PARENT_DEATH, SIGHUP, from, true, now);
	} else if (r->front == 0 && r->parent != 0) {
		/*
		 * The signal also comes when only the parent thread that started
		 * us ended; siginfo cannot tell, a changed parent pid can.
		 */
		if (getppid() != r->parent) {
			end_run(r, REASON_PARENT_DEATH, SIGHUP, r->parent,
				false, now);
		} else {
			log_debug(
				"a thread of parent process %d ended; the process "
				"lives on",
				(int)r->parent);
		}
	}
}

/*
 * Job control, as a terminal user expects it.  SIGTSTP (Ctrl-Z), SIGTTIN
 * and SIGTTOU, relayed by the front, stop the whole run, and then the
 * front: the shell that sent Ctrl-Z sees its job stopped only once
 * COMMAND is.  SIGCONT (fg, bg), relayed by the resumed front, resumes
 * the run.  The timeout does not count while the run is stopped: a
 * person who pauses a local run does not expect it to time out
 * meanwhile, and CI runners never send SIGTSTP.  Only while running: a
 * run being stopped goes on being stopped.
 */
static void
job_control(struct run *r, int sig, uint64_t now)
{
	char name[32], dur[32];

	if (sig == SIGCONT) {
		if (!r->paused) {
			return;
		}
		r->paused = false;
		if (!r->cgs.active || cgroup_freeze(&r->cgs.run, false) < 0) {
			signal_tree(r, SIGCONT);
		}
		if (r->timeout_at != LOOP_NEVER) {
			r->timeout_at = r->timeout_at >
					LOOP_NEVER - (now - r->paused_at) ?
				LOOP_NEVER :
				r->timeout_at + (now - r->paused_at);
		}
		log_debug("resumed the run after %s",
			  fmt_duration(now - r->paused_at, dur, sizeof(dur)));
		return;
	}
	if (r->paused || r->state != RUN_RUNNING) {
		return;
	}
	/* Frozen by the kernel, where the run has a cgroup: no fork escapes. */
	if (!r->cgs.active || cgroup_freeze(&r->cgs.run, true) < 0) {
		signal_tree(r, SIGSTOP);
	}
	r->paused = true;
	r->paused_at = now;
	log_debug("%s: stopped the run", sig_name(sig, name, sizeof(name)));
	if (r->front != 0 && getppid() == r->front) {
		kill(r->front, SIGSTOP);
	}
}

/* Decides on one signal read from the signalfd. */
static void
on_signal(struct run *r, const struct signalfd_siginfo *si, uint64_t now)
{
	int sig = (int)si->ssi_signo;
	pid_t from;
	bool relayed = sig_is_relayed(si, r->front, &from);

	switch (sig_classify(sig)) {
	case SIGK_CHILD:
		reap(r, now);
		break;
	case SIGK_PARENT_DEATH:
		on_parent_death(r, relayed, from, now);
		break;
	case SIGK_FRONT_DEATH:
		if (r->front != 0 && getppid() != r->front) {
			end_run(r, REASON_CANCEL, SIGKILL, 0, false, now);
		}
		break;
	case SIGK_TIMEOUT:
		end_run(r, REASON_TIMEOUT, SIGALRM, from, relayed, now);
		break;
	case SIGK_FORWARD:
		forward(r, sig);
		break;
	case SIGK_CANCEL:
		end_run(r, REASON_CANCEL, sig, from, relayed, now);
		break;
	case SIGK_JOB_CONTROL:
		job_control(r, sig, now);
		break;
	case SIGK_OTHER:
		break;
	}
}

/*
 * Nothing of the tree is alive; COMMAND may still be an unreaped zombie
 * (it died just as the stop began).  Collect it, so its status is known.
 * WNOHANG: a COMMAND the stop gave up on is still alive, and is not
 * waited for.
 */
static void
collect_command(struct run *r)
{
	int ws;

	if (run_cmd_alive(r) &&
	    waitpid(r->sh->cmd_pid, &ws, WNOHANG) == r->sh->cmd_pid) {
		r->sh->cmd_wstatus = ws;
		r->sh->cmd_state = CMD_ENDED;
	}
}

/*
 * Nothing of the run's tree is left: settle the status and start the
 * teardown when this end calls for it and the front has not taken it (it
 * does only after our death, so this claim normally wins).  Called only
 * from decide(), in state RUN_TREE_GONE.
 */
static void
run_over(struct run *r, uint64_t now)
{
	struct shared *sh = r->sh;
	enum cmd_state state;
	char cs[64];

	collect_command(r);
	settle_status(r);
	r->state = RUN_DONE;
	if (!teardown_is_due(&r->td, run_event(sh->reason, sh->exit_status)) ||
	    !teardown_claim(&sh->teardown_claim, TEARDOWN_BY_SUPERVISOR)) {
		return;
	}
	state = sh->reason == REASON_EXEC_FAILED ? CMD_NOT_STARTED :
						   sh->cmd_state;
	run_command_status((int)state, sh->cmd_wstatus, cs, sizeof(cs));
	if (teardown_start(&r->td, run_reason_name(sh->reason), sh->exit_status,
			   cs, r->front != 0 ? r->front : r->self, &r->sig,
			   now) == 0) {
		r->state = RUN_TEARDOWN;
	} else if (sh->exit_status == 0) {
		sh->exit_status = EXIT_TEARDOWN_FAILED;
	}
}

/* The deadlines of the state the run is in, after the signals. */
static void
on_time(struct supervisor *s, uint64_t now, bool reaped)
{
	struct run *r = s->r;

	if (r->state == RUN_RUNNING && !r->paused && now >= r->timeout_at) {
		end_run(r, REASON_TIMEOUT, 0, 0, false, now);
		return;
	}
	/*
	 * A step is due: reap first (a cgroup's event may come before the
	 * SIGCHLD), so that a child that has exited, COMMAND above all, is
	 * no reason to look through /proc for what is left.
	 */
	if ((r->state == RUN_STOPPING || r->state == RUN_TEARDOWN) &&
	    (reaped || now >= run_next_deadline(r))) {
		reap(r, now);
	}
	if (r->state == RUN_TEARDOWN &&
	    (reaped || now >= teardown_deadline(&r->td))) {
		bool over = teardown_step(&r->td, now);

		run_report_refusals(r, &r->td.stop, &s->td_refusals);
		if (over) {
			if (teardown_failed(&r->td) &&
			    r->sh->exit_status == 0) {
				r->sh->exit_status = EXIT_TEARDOWN_FAILED;
			}
			r->state = RUN_DONE;
		}
		return;
	}
	if (r->state == RUN_STOPPING && run_stop_step(r, now, reaped)) {
		r->state = RUN_TREE_GONE;
	}
}

/* Callbacks: they only record (signals) or copy output. */
static void
on_signalfd(void *ctx, int fd LOOP_UNUSED, short revents LOOP_UNUSED)
{
	struct supervisor *s = ctx;
	int rc = 1;

	while (s->nq < QUEUE_MAX &&
	       (rc = sig_read(&s->r->sig, &s->q[s->nq])) > 0) {
		s->nq++;
	}
	if (rc < 0) {
		s->read_failed = true;
	}
}

/* The --parent-pid ancestor exited: once, so the source goes. */
static void
on_ancestor(void *ctx, int fd, short revents LOOP_UNUSED)
{
	struct supervisor *s = ctx;

	s->ancestor_died = true;
	loop_remove(&s->loop, fd);
}

/* A cgroup's populated state changed: the stop may be over. */
static void
on_cgroup_events(void *ctx, int fd, short revents LOOP_UNUSED)
{
	struct supervisor *s = ctx;
	char buf[128];

	/* Reading re-arms POLLPRI. */
	if (pread(fd, buf, sizeof(buf), 0) < 0) {
		loop_remove(&s->loop, fd);
	}
	s->cgroup_changed = true;
}

/*
 * The cgroups' events matter once the run is being stopped; while it
 * runs, they would only wake us for COMMAND's start.  Each is read when
 * added, which arms POLLPRI for the next change.
 */
static void
watch_cgroups(struct supervisor *s)
{
	struct run *r = s->r;

	if (!r->cgs.active || s->cg_watched ||
	    (r->state != RUN_STOPPING && r->state != RUN_TEARDOWN)) {
		return;
	}
	s->cg_watched = true;
	cgroup_populated(&r->cgs.run);
	loop_add(&s->loop, r->cgs.run.events_fd, POLLPRI, on_cgroup_events, s);
	/* The teardown's, where there is a teardown. */
	if (r->cgs.teardown.events_fd >= 0) {
		cgroup_populated(&r->cgs.teardown);
		loop_add(&s->loop, r->cgs.teardown.events_fd, POLLPRI,
			 on_cgroup_events, s);
	}
}

/* Nobody reads our stdout or stderr any more: once, so it goes. */
static void
on_hangup(void *ctx, int fd, short revents LOOP_UNUSED)
{
	struct supervisor *s = ctx;

	if (s->hangup_fd == 0) {
		s->hangup_fd = fd;
	}
	loop_remove(&s->loop, fd);
}

static void
on_teardown_output(void *ctx, int fd LOOP_UNUSED, short revents LOOP_UNUSED)
{
	struct supervisor *s = ctx;

	teardown_pump(&s->r->td);
}

/* Keeps the teardown's output pipe registered exactly while it is open. */
static void
watch_teardown_output(struct supervisor *s)
{
	int fd = s->r->td.out_fd;

	if (s->td_fd >= 0 && s->td_fd != fd) {
		loop_remove(&s->loop, s->td_fd);
		s->td_fd = -1;
	}
	if (fd >= 0 && s->td_fd < 0 && s->r->state == RUN_TEARDOWN) {
		loop_add(&s->loop, fd, POLLIN, on_teardown_output, s);
		s->td_fd = fd;
	}
}

/*
 * One turn's decisions: the signals in the order read (a cancel read with
 * COMMAND's exit in the same batch comes first, as the kernel queues
 * lower signal numbers first), then the deadlines.
 */
static void
decide(struct supervisor *s, int rc, uint64_t now)
{
	struct run *r = s->r;
	bool reaped = false;
	size_t i;

	for (i = 0; i < s->nq; i++) {
		reaped |= s->q[i].ssi_signo == SIGCHLD;
		on_signal(r, &s->q[i], now);
	}
	s->nq = 0;
	/* A cgroup that emptied is as good as a reap: look now. */
	reaped |= s->cgroup_changed;
	s->cgroup_changed = false;
	if (s->ancestor_died) {
		s->ancestor_died = false;
		end_run(r, REASON_PARENT_DEATH, SIGHUP, r->ancestor, false,
			now);
	}
	if (s->hangup_fd != 0) {
		end_run(r, REASON_HANGUP, SIGHUP, s->hangup_fd, false, now);
		s->hangup_fd = 0;
	}
	/* The etcd locks' leases; losing one ends the run. */
	if (remote_keep(r->remote, now)) {
		end_run(r, REASON_LOCK_LOST, 0, 0, false, now);
	}
	if ((rc < 0 || s->read_failed) && r->state == RUN_RUNNING) {
		/* Blind to signals now: end the run while deadlines still work. */
		if (s->read_failed) {
			log_error("cannot read signals: %s", strerror(errno));
		}
		run_set_reason(r, REASON_ERROR, 0);
		begin_stop(r, now);
	}
	s->read_failed = false;
	on_time(s, now, reaped);
	if (r->state == RUN_TREE_GONE) {
		run_over(r, now);
	}
	watch_cgroups(s);
	watch_teardown_output(s);
}

/*
 * The kernel clears COMMAND's parent-death signal when its exec changes
 * credentials; say so once.  The subreaper sweep still covers COMMAND
 * while we live.  Looked at once COMMAND runs, not on its way.
 */
static void
warn_if_creds_change(const struct run *r, const char *path)
{
	const char *why = caps_exec_changes_creds(path, r->opt.no_new_privs);

	if (why != NULL) {
		log_info("warning: running '%s' changes credentials (%s): the "
			 "kernel clears its parent-death signal",
			 path, why);
	}
}

/*
 * "supervise 30m ./deploy.sh": a COMMAND that was not found but reads as
 * a duration was most likely meant for -t.  Only after the exec failed,
 * so that a real program named "10" still runs.
 */
static void
hint_duration_as_command(char **command, int err)
{
	uint64_t ns;

	if (err != ENOENT || parse_duration(command[0], &ns) < 0) {
		return;
	}
	log_error("did you mean 'supervise -t %s %s%s'?", command[0],
		  command[1] != NULL ? command[1] : "COMMAND",
		  command[1] != NULL && command[2] != NULL ? " ..." : "");
}

/*
 * Starts COMMAND.  Returns 0, or -1 when it did not start: with the reason
 * REASON_EXEC_FAILED (the run is over, perhaps with a teardown to run)
 * or REASON_ERROR.
 */
static int
start_command(struct run *r)
{
	struct child_spec spec;
	char path[4096];
	bool found;
	pid_t pid;
	int ws;

	child_spec_init(&spec, r->opt.command, &r->sig);
	found = child_find_executable(r->opt.command[0], path, sizeof(path)) ==
		0;
	spec.exec_path = found ? path : NULL;
	spec.new_session = !r->opt.foreground;
	spec.die_with_parent = true;
	spec.caps = &r->caps;
	spec.no_new_privs = r->opt.no_new_privs;
	spec.pid_slot = &r->sh->cmd_pid;
	spec.cgroup_fd = r->cgs.active ? r->cgs.run.dir_fd : -1;

	pid = child_start(&spec, &r->exec_errno);
	if (pid < 0) {
		log_error("cannot start the command: %s", strerror(errno));
		r->sh->cmd_pid = 0;
		run_set_reason(r, REASON_ERROR, 0);
		return -1;
	}
	r->cmd_started = loop_now();
	if (r->exec_errno != 0) {
		if (r->exec_errno < 0) {
			log_error("cannot set up the command: %s",
				  strerror(-r->exec_errno));
		} else {
			log_error("cannot run '%s': %s", r->opt.command[0],
				  strerror(r->exec_errno));
			hint_duration_as_command(r->opt.command, r->exec_errno);
		}
		/* It reported why and exits at once, having forked nothing. */
		while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
			continue;
		}
		r->sh->cmd_wstatus = ws;
		r->sh->cmd_state = CMD_ENDED;
		run_set_reason(r,
			       r->exec_errno < 0 ? REASON_ERROR :
						   REASON_EXEC_FAILED,
			       0);
		return -1;
	}
	r->sh->cmd_state = CMD_RUNNING;
	r->state = RUN_RUNNING;
	if (found) {
		warn_if_creds_change(r, path);
	}
	r->timeout_at = r->opt.timeout_ns == 0 ?
		LOOP_NEVER :
		r->cmd_started + r->opt.timeout_ns < r->cmd_started ?
		LOOP_NEVER :
		r->cmd_started + r->opt.timeout_ns;
	log_debug("started '%s' as pid %d", r->opt.command[0], (int)pid);
	return 0;
}

/* The run's deadline, or an etcd lock's keep-alive if sooner. */
static uint64_t
next_deadline(const struct run *r)
{
	uint64_t d = run_next_deadline(r), k = remote_deadline(r->remote);

	return k < d ? k : d;
}

int
supervisor_set_up(struct run *r, pid_t front)
{
	/* The children inherited at start are the front's, not ours. */
	tree_skip_free(&r->skip);
	r->front = front;
	r->parent = 0;
	/*
	 * A session of our own, so that a SIGKILL to the caller's process
	 * group does not reach us.  Then the same order as for the parent:
	 * arm the death signal, then compare with the pid from before fork.
	 */
	if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIG_FRONT_DEATH) < 0 ||
	    prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
		log_error("cannot set up the supervisor process: %s",
			  strerror(errno));
		run_set_reason(r, REASON_ERROR, 0);
		return EXIT_FAILURE_SUPERVISE;
	}
	if (getppid() != front) {
		/* The process the caller started: to the user, supervise. */
		log_info("supervise (pid %d) was killed before the command "
			 "started",
			 (int)front);
		run_set_reason(r, REASON_CANCEL, SIGKILL);
		return 128 + SIGKILL;
	}
	return -1;
}

int
supervisor_run(struct run *r)
{
	struct supervisor s = { .r = r, .td_fd = -1 };
	uint64_t now;
	int rc;

	loop_init(&s.loop);
	loop_add(&s.loop, r->sig.fd, POLLIN, on_signalfd, &s);
	if (r->ancestor_fd >= 0) {
		loop_add(&s.loop, r->ancestor_fd, POLLIN, on_ancestor, &s);
	}
	if (r->opt.cancel_on_hangup) {
		/*
		 * No events asked for: POLLERR (a pipe whose readers are
		 * gone) and POLLHUP (a hung-up terminal, a closed socket)
		 * come anyway, and a regular file never wakes us.
		 */
		loop_add(&s.loop, STDOUT_FILENO, 0, on_hangup, &s);
		loop_add(&s.loop, STDERR_FILENO, 0, on_hangup, &s);
	}
	if (start_command(r) < 0) {
		if (r->sh->reason != REASON_EXEC_FAILED) {
			settle_status(r);
			return r->sh->exit_status;
		}
		r->state = RUN_TREE_GONE;
	}
	/*
	 * From here on COMMAND exists: never leave the loop while any process
	 * of its tree lives.  A failure of our own is recorded as the reason,
	 * the tree is stopped, and the loop ends through its normal exit.
	 */
	/* The etcd locks' requests are sources of this loop (if any). */
	remote_attach(r->remote, &s.loop);
	while (r->state != RUN_DONE) {
		/* In RUN_TREE_GONE the deadline is now: decide at once. */
		rc = loop_turn(&s.loop, next_deadline(r));
		now = loop_now();
		decide(&s, rc, now);
	}
	remote_attach(r->remote, NULL);
	return r->sh->exit_status;
}
