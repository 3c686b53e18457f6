#!/bin/bash
# Black-box runs of the real supervise binary under valgrind (`make valgrind`).
#
# Usage: tests/valgrind/run.sh [SUPERVISE]     (default ./supervise)
#        VALGRIND=... to use another valgrind; VG_CASES="name ..." to run some.
#
# valgrind runs with --trace-children=no: the front is the process valgrind
# starts, and the supervisor, the lock waiter and the child before its exec
# are forks without exec, which valgrind follows (each writes a log file of
# its own).  COMMAND and the teardown are exec'd and run natively, so only
# supervise's own code is checked.  A case fails when supervise's exit
# status is not the expected one (valgrind's --error-exitcode=99 changes it
# when the process that reports is the front or the supervisor) or when any
# valgrind log file of the case is not empty (with -q, valgrind writes only
# errors: invalid accesses, uninitialised values, definite or indirect
# leaks, unhandled system calls).  Prints one line per case and
# "valgrind: N passed, N failed".
set -u

SUPERVISE=$(realpath "${1:-./supervise}")
BB=$(realpath "$(dirname "$0")/../bb")
VALGRIND=${VALGRIND:-valgrind}
ONLY=${VG_CASES:-}

work=$(mktemp -d /tmp/supervise-vg.XXXXXX)
logs=$work/logs
mkdir -p "$logs"
VG=($VALGRIND -q --trace-children=no --child-silent-after-fork=no
    --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99
    "--log-file=$logs/%q{VG_CASE}.%p.log")
passed=0
failed=0
failures=()
start_time=$SECONDS

cleanup() {
	# Anything a failed case left behind (we are their ancestor, or they
	# are in our process group).
	pkill -KILL -P $$ 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

wanted() {
	[ -z "$ONLY" ] && return 0
	case " $ONLY " in *" $1 "*) return 0 ;; esac
	return 1
}

# Waits up to $2 seconds (default 60: valgrind starts slowly) for file $1.
wait_file() {
	local i
	for ((i = 0; i < ${2:-60} * 20; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	echo "  timed out waiting for $1" >&2
	return 1
}

# Whether process $1 is alive (a zombie is not).
alive() {
	local st
	st=$(sed 's/.*) \(.\).*/\1/' /proc/"$1"/stat 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# The pid of the first child of process $1 (the supervisor of a front).
child_of() {
	local t c
	for t in /proc/"$1"/task/*; do
		# The file has no newline at its end: read(1) would fail.
		c=$(cat "$t/children" 2>/dev/null)
		c=${c%% *}
		[ -n "$c" ] && echo "$c" && return 0
	done
	return 1
}

# Runs supervise under valgrind in the background: bg_start NAME ARGS...
bg_start() {
	CASE=$1
	shift
	mkdir -p "$work/$CASE"
	(cd "$work/$CASE" && VG_CASE=$CASE exec "${VG[@]}" "$SUPERVISE" "$@" \
		>"$work/$CASE.out" 2>"$work/$CASE.err") &
	BG=$!
}

# Waits for the background run and checks it: bg_finish EXPECTED_STATUS
bg_finish() {
	local rc
	wait "$BG"
	rc=$?
	verdict "$CASE" "$1" "$rc"
}

# Runs a case in the foreground: fg_case NAME EXPECTED_STATUS ARGS...
fg_case() {
	local name=$1 want=$2 rc
	shift 2
	wanted "$name" || return 0
	mkdir -p "$work/$name"
	(cd "$work/$name" && VG_CASE=$name exec "${VG[@]}" "$SUPERVISE" "$@" \
		>"$work/$name.out" 2>"$work/$name.err" </dev/null)
	rc=$?
	verdict "$name" "$want" "$rc"
}

# What a valgrind log holds besides two known warnings: valgrind 3.19 does
# not know pidfd_send_signal (syscall 424) or pidfd_open (434), returns
# ENOSYS for them, and supervise then falls back to kill() and to /proc
# directories (tree.c), so those warnings and their boilerplate are
# dropped.  Anything else is a problem.
problems() {
	grep -v -e 'WARNING: unhandled amd64-linux syscall: 424$' \
		-e 'WARNING: unhandled amd64-linux syscall: 434$' \
		-e 'You may be able to write your own handler\.$' \
		-e 'Read the file README_MISSING_SYSCALL_OR_IOCTL\.$' \
		-e 'Nevertheless we consider this a bug\.  Please report$' \
		-e 'it at http://valgrind\.org/support/bug_reports\.html\.$' \
		"$1"
}

# verdict NAME EXPECTED ACTUAL [EXTRA_FAILURE_MESSAGE]
verdict() {
	local name=$1 want=$2 rc=$3 why="" f
	if [ "$rc" != "$want" ]; then
		why="exit status $rc, expected $want"
	fi
	if [ -n "${4:-}" ]; then
		why="${why:+$why; }$4"
	fi
	for f in "$logs/$name".*.log; do
		problems "$f" >/dev/null &&
			why="${why:+$why; }valgrind reported (${f##*/})"
	done
	if [ -z "$why" ]; then
		passed=$((passed + 1))
		echo "PASS $name"
		return
	fi
	failed=$((failed + 1))
	failures+=("$name")
	echo "FAIL $name: $why"
	sed 's/^/  stderr: /' "$work/$name.err" 2>/dev/null | head -20
	for f in "$logs/$name".*.log; do
		problems "$f" | sed "s/^/  ${f##*/}: /" | head -80
	done
}

# ---------------------------------------------------------------------------
# The cases.

fg_case exit-status 3 -- sh -c 'exit 3'
fg_case verbose 0 -v -- true
fg_case usage-error 125 --bogus true
fg_case bad-duration 125 -t abc true
fg_case help 0 --help
fg_case version 0 --version
fg_case exec-enoent 127 -- /nonexistent/command
fg_case exec-eacces 126 -- /etc/passwd
fg_case killed-by-signal 137 -- sh -c 'kill -KILL $$'
fg_case timeout 124 -t 0.5 -- sleep 30
fg_case timeout-foreground 124 --foreground -t 0.5 -- sleep 30
fg_case timeout-preserve 143 --preserve-status -t 0.5 -- sleep 30
fg_case timeout-kill-after 124 -t 0.5 -k 0.5 -- \
	sh -c 'trap "" TERM; sleep 30'
fg_case timeout-kill-now 124 -t 0.5 -k 0 -- sleep 30
fg_case leftovers 0 -k 0.5 -- sh -c 'sleep 30 & exit 0'
fg_case teardown 124 -t 0.5 -T 'echo teardown ran' --teardown-log=td.log \
	-- sleep 30
fg_case teardown-fails 123 --teardown-on=success -T 'exit 3' -- true
fg_case teardown-timeout 123 --teardown-on=always --teardown-timeout=0.5 \
	-k 0.5 -T 'sleep 30' -- true
fg_case lock 0 -l lk1 -l lk2 -l lk1 -- true
if wanted lock-symlink; then
	mkdir -p "$work/lock-symlink"
	ln -s target "$work/lock-symlink/lk"
	fg_case lock-symlink 125 -l lk -- true
fi

if wanted status-file; then
	fg_case status-file 124 --status-file=status.json -l lk -t 0.5 \
		-T true -- sleep 30
	# Parsed strictly and validated against the schema (tests/bb/bb.py).
	python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import bb
bb.read_status(sys.argv[2])' "$BB" "$work/status-file/status.json" ||
		verdict status-file-json 0 0 "status file is not a valid record"
fi

if [ "$(id -u)" = 0 ]; then
	fg_case caps 0 --caps=cap_net_bind_service -- true
	fg_case caps-none 0 --caps=none --no-new-privs -- true
else
	fg_case caps-needs-root 125 --caps=none -- true
fi

if wanted cancel-term; then
	bg_start cancel-term -- sh -c 'touch ready; exec sleep 30'
	wait_file "$work/$CASE/ready"
	kill -TERM "$BG"
	bg_finish 143
fi

if wanted cancel-twice; then
	bg_start cancel-twice -k 60 -- sh -c 'trap "" TERM; touch ready; sleep 30'
	wait_file "$work/$CASE/ready"
	kill -TERM "$BG"
	sleep 1
	kill -TERM "$BG"
	bg_finish 143
fi

if wanted forward-usr1; then
	bg_start forward-usr1 -- sh -c 'trap "exit 7" USR1; touch ready;
		while :; do sleep 0.1; done'
	wait_file "$work/$CASE/ready"
	kill -USR1 "$BG"
	bg_finish 7
fi

if wanted alarm; then
	bg_start alarm -- sh -c 'touch ready; exec sleep 30'
	wait_file "$work/$CASE/ready"
	kill -ALRM "$BG"
	bg_finish 124
fi

if wanted lock-wait; then
	# Another holder keeps the lock for a while; supervise waits for it.
	mkdir -p "$work/lock-wait"
	flock "$work/lock-wait/lk" sh -c "touch '$work/lock-wait/held'; sleep 3" &
	holder=$!
	wait_file "$work/lock-wait/held"
	bg_start lock-wait -l lk -- true
	bg_finish 0
	wait "$holder"
fi

if wanted lock-give-up; then
	mkdir -p "$work/lock-give-up"
	flock "$work/lock-give-up/lk" sh -c "touch '$work/lock-give-up/held'; sleep 30" &
	holder=$!
	wait_file "$work/lock-give-up/held"
	fg_case lock-give-up 75 -l lk -w 0.5 -- true
	# While it waits, a cancel ends the wait.
	bg_start lock-cancel -l "$work/lock-give-up/lk" -- true
	for ((i = 0; i < 600; i++)); do
		grep -q 'waiting for lock' "$work/lock-cancel.err" 2>/dev/null && break
		sleep 0.05
	done
	kill -TERM "$BG"
	bg_finish 143
	kill "$holder"
	wait "$holder" 2>/dev/null
fi

if wanted supervisor-killed; then
	# The supervisor dies: the front stops the orphaned tree, runs the
	# teardown and exits 125.
	bg_start supervisor-killed -T true --teardown-on=always -k 1 -- \
		sh -c 'touch ready; sleep 30 & wait'
	wait_file "$work/$CASE/ready"
	sup=$(child_of "$BG")
	if [ -n "$sup" ]; then
		kill -KILL "$sup"
		bg_finish 125
	else
		kill -KILL "$BG"
		wait "$BG"
		verdict "$CASE" 125 "?" "no supervisor process found"
	fi
fi

if wanted parent-death; then
	# The front's parent dies: the run is cancelled.  The front is then
	# not our child, so only the valgrind logs and its end are checked.
	CASE=parent-death
	mkdir -p "$work/$CASE"
	# (The shell that is killed would make bash print "Killed".)
	{
		(cd "$work/$CASE" && sh -c '
		VG_CASE=parent-death "$@" sh -c "touch ready; exec sleep 30" \
			>../parent-death.out 2>../parent-death.err &
		echo $! >front.pid
		while [ ! -e ready ]; do sleep 0.05; done
		kill -KILL $$' sh "${VG[@]}" "$SUPERVISE" -k 1 --) &
		wait $!
	} 2>/dev/null
	front=$(cat "$work/$CASE/front.pid")
	for ((i = 0; i < 1200; i++)); do
		alive "$front" || break
		sleep 0.05
	done
	if alive "$front"; then
		verdict "$CASE" 0 0 "front $front still running"
	elif grep -q 'parent process .* died' "$work/$CASE.err"; then
		verdict "$CASE" 0 0
	else
		verdict "$CASE" 0 0 "no parent-death message"
	fi
fi

echo "valgrind: ran $((passed + failed)) cases in $((SECONDS - start_time))s"
if [ "$failed" -gt 0 ]; then
	echo "valgrind: failed: ${failures[*]}"
fi
echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
