#!/bin/sh
# Summarises line coverage after the suite ran in a --coverage build
# (`make coverage`).
#
# Usage: tests/coverage.sh BUILD_DIR OUT_DIR [MIN_PERCENT]
#
# Counts the top-level sources only (supervise's own code: not tests/,
# helpers or harnesses).  Writes OUT_DIR/report.txt (per file: lines,
# lines run, percentage and the numbers of the lines never run),
# OUT_DIR/summary.txt and OUT_DIR/index.html (annotated sources), prints
# the per-file table and the total, and fails when the total is below
# MIN_PERCENT (default 0: report only).
set -eu

build=$1
out=$2
min=${3:-0}

mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$build"
# Only the top-level .c files; gcov data of the tests is ignored.
filter='^[^/]*\.c$'
# --gcov-ignore-parse-errors: gcov can print a negative "call ... returned"
# count for a call in a function whose children exec or _exit with the
# parent's counters merged in (seen for the direct execv() of COMMAND);
# gcovr would refuse the whole report for it.  Such lines are left out of
# the branch data and named on stderr; line coverage is unaffected.
gcovr -r . --filter "$filter" --txt "$out/report.txt" \
	--gcov-ignore-parse-errors \
	--html-details "$out/index.html" --print-summary >"$out/summary.txt"
cat "$out/report.txt"
cat "$out/summary.txt"
total=$(sed -n 's/^lines: \([0-9.]*\)%.*/\1/p' "$out/summary.txt")
echo "coverage: total line coverage ${total}% of supervise's own code" \
	"(report: $out/report.txt)"
if [ -z "$total" ]; then
	echo "coverage: no total; did the suite run?" >&2
	exit 1
fi
if awk -v t="$total" -v m="$min" 'BEGIN { exit !(t + 0 < m + 0) }'; then
	echo "coverage: ${total}% is below the minimum of ${min}%" >&2
	exit 1
fi
