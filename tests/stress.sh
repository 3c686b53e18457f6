#!/bin/sh
# Runs the black-box suite again and again on a loaded machine
# (`make stress-check`), to shake out tests that depend on timing.
#
# Usage: tests/stress.sh RUNS DIR COMMAND...
#
# Starts one busy process per core (nproc, at normal priority), then runs
# COMMAND (make blackbox) up to RUNS times in a row, the output of run K
# going to DIR/run-K.log.  Stops at the first run that fails and prints its
# FAIL lines with what follows each (or, when there is none, the end of its
# log).  Prints "stress-check: N of RUNS runs passed" last; the exit status
# is 0 only when every run passed.
#
# The busy processes are exactly one per core and are always stopped: on
# exit, and on INT, TERM or HUP, which also stop the run in progress.  Should
# this script die without its traps (SIGKILL), each busy process sees on its
# next turn that its parent is gone, and exits.
set -u

if [ $# -lt 3 ]; then
	echo "usage: tests/stress.sh RUNS DIR COMMAND..." >&2
	exit 2
fi
runs=$1
dir=$2
shift 2
case $runs in
'' | *[!0-9]* | 0*)
	echo "stress-check: the number of runs must be a positive number," \
		"not '$runs'" >&2
	exit 2
	;;
esac
rm -rf "$dir" && mkdir -p "$dir" || exit 2

hogs=
run=
# Stops the run in progress, if any, and the busy processes.
stop_all() {
	if [ -n "$run" ]; then
		kill "$run" 2>/dev/null
		run=
	fi
	if [ -n "$hogs" ]; then
		# shellcheck disable=SC2086 # a list of pids
		kill $hogs 2>/dev/null
		# shellcheck disable=SC2086
		wait $hogs 2>/dev/null
		hogs=
	fi
}
trap stop_all EXIT
for sig in INT TERM HUP; do
	# Stop all, then die of the same signal, so that make sees it.
	# shellcheck disable=SC2064 # $sig now, $$ then
	trap "stop_all; trap - $sig EXIT; kill -$sig \$\$; exit 2" $sig
done

# Each busy process spins while its parent is this shell: the pid comes
# from here ($$), so one that starts after the shell died exits at once.
cores=$(nproc 2>/dev/null) || cores=1
i=0
while [ "$i" -lt "$cores" ]; do
	python3 -c 'import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
	pass' "$$" &
	hogs="$hogs $!"
	i=$((i + 1))
done

# fail_report LOG: each FAIL line of LOG and what follows it (the reason),
# at most 40 lines each; the end of the log when it has no FAIL line.
fail_report() {
	if grep -q '^FAIL ' "$1"; then
		awk -v file="$1" '
			/^(PASS|SKIP|FAIL) |^blackbox: / { infail = 0 }
			/^FAIL / { infail = 1; n = 0 }
			infail && ++n <= 40 { print }
			infail && n == 41 { print "    ... (more in " file ")" }
		' "$1"
	else
		echo "(no FAIL line; the end of $1:)"
		tail -n 20 "$1"
	fi
}

passed=0
k=1
while [ "$k" -le "$runs" ]; do
	log=$dir/run-$k.log
	for pid in $hogs; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "stress-check: busy process $pid has ended;" \
				"the machine is no longer loaded" >&2
			echo "stress-check: $passed of $runs runs passed"
			exit 1
		fi
	done
	t0=$(date +%s)
	echo "stress-check: run $k of $runs: $* ($cores busy processes)" >"$log"
	# In the background, so that a signal is acted on at once rather than
	# when the run ends.  The shell starts it with SIGINT and SIGQUIT
	# ignored and stdin on /dev/null; make blackbox resets every signal
	# for the tests.
	"$@" >>"$log" 2>&1 &
	run=$!
	wait "$run"
	status=$?
	run=
	if [ "$status" = 0 ]; then
		passed=$((passed + 1))
		echo "stress-check: run $k of $runs passed in" \
			"$(($(date +%s) - t0))s:" \
			"$(grep '^blackbox: [0-9]* passed' "$log" | tail -n 1)"
	else
		echo "stress-check: run $k of $runs failed after" \
			"$(($(date +%s) - t0))s; its output is in $log:"
		fail_report "$log"
		echo "stress-check: $passed of $runs runs passed;" \
			"run $k failed ($log)"
		exit 1
	fi
	k=$((k + 1))
done
echo "stress-check: $passed of $runs runs passed"
