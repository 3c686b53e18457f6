#include <sys/wait.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "front.h"
#include "log.h"
#include "loop.h"
#include "parse.h"
#include "teardown.h"

/* Signals read in one turn of the loop, decided on in order. */
#define QUEUE_MAX 32

struct front {
	struct run *r;
	struct loop loop;
	pid_t sup;
	bool sup_alive;
	bool sup_crashed; /* it died of a signal */
	bool parent_told;
	int status;
	struct signalfd_siginfo q[QUEUE_MAX];
	size_t nq;
	int td_fd;	     /* the teardown's output, while registered */
	size_t td_refusals;  /* of the teardown's stop, logged so far */
	bool cgroup_changed; /* a cgroup.events polled POLLPRI */
	bool cg_watched;     /* the cgroups' events are in the loop */
};

/*
 * The run's processes are gone.  If the supervisor crashed before it
 * claimed the teardown, and the run had started COMMAND, the teardown is
 * ours.  Called only from decide(), in state RUN_TREE_GONE.
 */
static void
orphans_gone(struct front *f, uint64_t now)
{
	struct run *r = f->r;
	struct shared *sh = r->sh;
	enum run_reason reason;
	char cs[64];

	r->state = RUN_DONE;
	/* COMMAND's pid is in the page as soon as it is forked. */
	if (!f->sup_crashed || sh->cmd_pid == 0) {
		return;
	}
	/* Its reason if it got as far as one; else a cut-short run: cancel. */
	reason = sh->reason != REASON_NONE ? sh->reason : REASON_CANCEL;
	if (!teardown_is_due(&r->td, run_event(reason, sh->exit_status)) ||
	    !teardown_claim(&sh->teardown_claim, TEARDOWN_BY_FRONT)) {
		return;
	}
	run_command_status(sh->cmd_state, sh->cmd_wstatus, cs, sizeof(cs));
	if (teardown_start(&r->td, run_reason_name(reason), f->status, cs,
			   r->self, &r->sig, now) == 0) {
		r->state = RUN_TEARDOWN;
	}
}

/* The supervisor crashed: take over a teardown it had started. */
static bool
adopt_teardown(struct front *f, const char *how, uint64_t now)
{
	struct run *r = f->r;
	struct shared *sh = r->sh;

	if (sh->teardown_claim == TEARDOWN_BY_SUPERVISOR && !sh->td.done &&
	    sh->td.pid == 0) {
		/* It claimed the teardown but died before it forked it. */
		sh->teardown_claim = TEARDOWN_UNCLAIMED;
	}
	if (sh->teardown_claim != TEARDOWN_BY_SUPERVISOR || sh->td.done) {
		return false;
	}
	/* The run's tree was gone before the teardown started. */
	log_error("supervisor process %d died (%s) during the teardown; "
		  "the teardown goes on",
		  (int)f->sup, how);
	teardown_adopt(&r->td, now);
	r->state = RUN_TEARDOWN;
	return true;
}

static void
supervisor_ended(struct front *f, int ws, uint64_t now)
{
	struct run *r = f->r;
	struct shared *sh = r->sh;
	char how[32], stop[32];
	uint64_t grace;
	int n;

	f->sup_alive = false;
	f->sup_crashed = !WIFEXITED(ws);
	f->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : EXIT_FAILURE_SUPERVISE;
	if (!f->sup_crashed) {
		/*
		 * It stopped its tree before it exited, or gave up on what
		 * refused to stop (and said so): a sweep is only a backstop,
		 * and none at all once it said its last word (sh->final).
		 */
		if (sh->abandoned == 0 && !sh->final &&
		    run_begin_stop(r, 0, r->opt.kill_after_ns, now) > 0) {
			log_info("stopping %d leftover process%s with %s",
				 r->stop.signalled,
				 r->stop.signalled == 1 ? "" : "es",
				 sig_name(r->opt.kill_after_ns == 0 ?
						  SIGKILL :
						  r->opt.stop_signal,
					  stop, sizeof(stop)));
		}
		if (r->stop.phase != TREE_GRACE && r->stop.phase != TREE_KILL) {
			r->state = RUN_DONE;
		}
		return;
	}
	sig_name(WTERMSIG(ws), how, sizeof(how));
	/* The etcd locks' leases are ours to keep until we release them. */
	remote_adopt(r->remote, &f->loop);
	if (sh->cmd_pid != 0 && sh->cmd_state == CMD_NOT_STARTED) {
		/* Forked, and the supervisor died before it said so. */
		sh->cmd_state = CMD_RUNNING;
	}
	if (adopt_teardown(f, how, now)) {
		return;
	}
	/*
	 * Every process of the run is ours now.  COMMAND was meant to die
	 * with the supervisor, but an exec that changed credentials (sudo,
	 * a set-user-ID program) cleared its parent-death signal, so it is
	 * stopped like the rest, never waited for.  If the supervisor died
	 * while stopping the run, only what was left of its grace: the bound
	 * on our lifetime holds.
	 */
	grace = sh->kill_at == 0  ? r->opt.kill_after_ns :
		sh->kill_at > now ? sh->kill_at - now :
				    0;
	n = run_begin_stop(r, 0, grace, now);
	sig_name(grace == 0 ? SIGKILL : r->opt.stop_signal, stop, sizeof(stop));
	if (n == 0) {
		log_error(
			"supervisor process %d died (%s); no orphaned process "
			"is left",
			(int)f->sup, how);
	} else {
		log_error(
			"supervisor process %d died (%s); stopping %d orphaned "
			"process%s with %s",
			(int)f->sup, how, n, n == 1 ? "" : "es", stop);
	}
	if (r->stop.phase == TREE_DONE) {
		r->state = RUN_TREE_GONE;
	}
}

static void
reap(struct front *f, uint64_t now)
{
	struct shared *sh = f->r->sh;
	pid_t pid;
	int ws;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		if (pid == f->sup && f->sup_alive) {
			supervisor_ended(f, ws, now);
		} else if (!f->sup_alive && pid == sh->cmd_pid &&
			   sh->cmd_state == CMD_RUNNING) {
			/* COMMAND, handed to us by the supervisor's death. */
			sh->cmd_wstatus = ws;
			sh->cmd_state = CMD_ENDED;
		} else {
			/* The teardown, an orphan, or a child of our caller's. */
			teardown_reaped(&f->r->td, pid, ws);
			tree_skip_remove(&f->r->skip, pid);
		}
	}
}

static void
relay(struct front *f, int sig, pid_t from)
{
	union sigval v = { .sival_int = (int)from };

	/* The supervisor is our unreaped child: its pid cannot be reused. */
	sigqueue(f->sup, sig, v);
}

static void
on_parent_death(struct front *f)
{
	struct run *r = f->r;

	if (r->parent == 0 || f->parent_told) {
		return;
	}
	/* Only a changed parent pid tells a dead parent from a thread. */
	if (getppid() == r->parent) {
		log_debug("a thread of parent process %d ended; the process "
			  "lives on",
			  (int)r->parent);
		return;
	}
	f->parent_told = true;
	if (f->sup_alive) {
		relay(f, SIG_PARENT_DEATH, r->parent);
	} else if (r->state == RUN_TEARDOWN) {
		log_info("parent process %d died; the teardown goes on",
			 (int)r->parent);
	}
}

/* Decides on one signal read from the signalfd. */
static void
on_signal(struct front *f, const struct signalfd_siginfo *si, uint64_t now)
{
	struct run *r = f->r;
	int sig = (int)si->ssi_signo;
	enum sig_kind kind = sig_classify(sig);
	char name[32];

	if (kind == SIGK_CHILD) {
		reap(f, now);
	} else if (kind == SIGK_PARENT_DEATH) {
		on_parent_death(f);
	} else if (kind == SIGK_FRONT_DEATH) {
		return;
	} else if (f->sup_alive) {
		relay(f, sig, (pid_t)si->ssi_pid);
	} else if (r->state == RUN_STOPPING && kind == SIGK_CANCEL) {
		tree_stop_hurry(&r->stop, now);
	} else if (r->state == RUN_TEARDOWN &&
		   (kind == SIGK_CANCEL || kind == SIGK_TIMEOUT)) {
		log_info("%s during the teardown; ignored",
			 sig_name(sig, name, sizeof(name)));
	}
}

static void
on_time(struct front *f, uint64_t now, bool reaped)
{
	struct run *r = f->r;

	/* A step is due: reap first, as the supervisor does. */
	if ((r->state == RUN_STOPPING || r->state == RUN_TEARDOWN) &&
	    (reaped || now >= run_next_deadline(r))) {
		reap(f, now);
	}
	if (r->state == RUN_STOPPING && run_stop_step(r, now, reaped)) {
		r->state = RUN_TREE_GONE;
	} else if (r->state == RUN_TEARDOWN &&
		   (reaped || now >= teardown_deadline(&r->td))) {
		bool over = teardown_step(&r->td, now);

		run_report_refusals(r, &r->td.stop, &f->td_refusals);
		if (over) {
			r->state = RUN_DONE;
		}
	}
}

/* Callbacks: they only record (signals) or copy output. */
static void
on_signalfd(void *ctx, int fd LOOP_UNUSED, short revents LOOP_UNUSED)
{
	struct front *f = ctx;

	while (f->nq < QUEUE_MAX && sig_read(&f->r->sig, &f->q[f->nq]) > 0) {
		f->nq++;
	}
}

static void
on_cgroup_events(void *ctx, int fd, short revents LOOP_UNUSED)
{
	struct front *f = ctx;
	char buf[128];

	/* Reading re-arms POLLPRI. */
	if (pread(fd, buf, sizeof(buf), 0) < 0) {
		loop_remove(&f->loop, fd);
	}
	f->cgroup_changed = f->r->state != RUN_RUNNING;
}

/*
 * Once the run is ours (the supervisor died), its cgroups say when it is
 * gone.  Not before: while the supervisor lives, their events are its
 * own, and would only wake us for nothing.
 */
static void
watch_cgroups(struct front *f)
{
	struct run *r = f->r;

	if (!r->cgs.active || f->cg_watched) {
		return;
	}
	f->cg_watched = true;
	loop_add(&f->loop, r->cgs.run.events_fd, POLLPRI, on_cgroup_events, f);
	/* The teardown's, where there is a teardown. */
	if (r->cgs.teardown.events_fd >= 0) {
		loop_add(&f->loop, r->cgs.teardown.events_fd, POLLPRI,
			 on_cgroup_events, f);
	}
}

static void
on_teardown_output(void *ctx, int fd LOOP_UNUSED, short revents LOOP_UNUSED)
{
	struct front *f = ctx;

	teardown_pump(&f->r->td);
}

static void
watch_teardown_output(struct front *f)
{
	int fd = f->r->td.out_fd;

	if (f->td_fd >= 0 && f->td_fd != fd) {
		loop_remove(&f->loop, f->td_fd);
		f->td_fd = -1;
	}
	if (fd >= 0 && f->td_fd < 0 && f->r->state == RUN_TEARDOWN) {
		loop_add(&f->loop, fd, POLLIN, on_teardown_output, f);
		f->td_fd = fd;
	}
}

static void
decide(struct front *f, uint64_t now)
{
	bool reaped = false;
	size_t i;

	for (i = 0; i < f->nq; i++) {
		reaped |= f->q[i].ssi_signo == SIGCHLD;
		on_signal(f, &f->q[i], now);
	}
	f->nq = 0;
	if (!f->sup_alive && f->r->state != RUN_DONE) {
		watch_cgroups(f);
	}
	reaped |= f->cgroup_changed;
	f->cgroup_changed = false;
	on_time(f, now, reaped);
	if (f->r->state == RUN_TREE_GONE) {
		orphans_gone(f, now);
	}
	watch_teardown_output(f);
}

/*
 * The supervisor writes the status record; if it died first, what it
 * shared and what we did since make the record.
 */
static void
write_status_if_lost(struct front *f)
{
	struct shared *sh = f->r->sh;

	if (sh->status_written) {
		return;
	}
	sh->reason = REASON_ERROR;
	sh->exit_status = f->status;
	run_write_status(f->r);
}

int
front_run(struct run *r, pid_t supervisor)
{
	struct front f = {
		.r = r,
		.sup = supervisor,
		.sup_alive = true,
		.status = EXIT_FAILURE_SUPERVISE,
		.td_fd = -1,
	};

	r->state = RUN_RUNNING;
	r->timeout_at = LOOP_NEVER; /* the supervisor keeps the time */
	/* While the supervisor starts COMMAND: off the start-up path. */
	if (r->cgs.active) {
		cgroup_remove_leftovers(&r->cgs);
	}
	teardown_keep_reader(&r->td);
	loop_init(&f.loop);
	loop_add(&f.loop, r->sig.fd, POLLIN, on_signalfd, &f);
	/*
	 * The supervisor owns the run; once it is gone, any process of the
	 * run is ours: never leave while one lives.  A poll error is
	 * reported once by the loop; the deadlines still come, and the
	 * supervisor's end is also seen by the sweep finding no child.
	 */
	while (r->state != RUN_DONE) {
		uint64_t d = run_next_deadline(r),
			 k = remote_deadline(r->remote);

		if (loop_turn(&f.loop, k < d ? k : d) < 0) {
			/* Blind to signals: look for ended children anyway. */
			reap(&f, loop_now());
		}
		decide(&f, loop_now());
		/* Only after the supervisor died: the run is over already. */
		if (remote_keep(r->remote, loop_now())) {
			log_error("%s", remote_lost_why(r->remote));
		}
	}
	remote_attach(r->remote, NULL);
	if (f.sup_crashed && r->sh->abandoned > 0) {
		f.status = EXIT_UNSTOPPABLE;
	}
	write_status_if_lost(&f);
	return f.status;
}
