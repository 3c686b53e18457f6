#!/bin/bash
# Runs the libFuzzer harnesses (`make fuzz`).
#
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS fuzz_NAME...
#
# For each harness: first every input in tests/fuzz/regressions/NAME/ once
# (crashes found earlier, kept as tests), then SECONDS of fuzzing starting
# from the seed corpus tests/fuzz/corpus/NAME/ (with the dictionary
# tests/fuzz/NAME.dict if there is one).  New interesting inputs go to
# BUILD_DIR/corpus/NAME/ and crashes to BUILD_DIR/crashes/NAME/, never into
# the source tree.  A crash fails the run and says how to keep the input as
# a regression test.  Prints "fuzz: N passed, N failed" at the end.
set -u

dir=$1
seconds=$2
shift 2
here=$(dirname "$0")
passed=0
failed=0
failures=()

for f in "$@"; do
	name=${f#fuzz_}
	bin=$dir/$f
	log=$dir/$f.log
	why=""
	mkdir -p "$dir/corpus/$name" "$dir/crashes/$name"
	t0=$SECONDS

	regs=()
	if [ -d "$here/regressions/$name" ]; then
		while IFS= read -r -d '' r; do
			regs+=("$r")
		done < <(find "$here/regressions/$name" -type f -print0 | sort -z)
	fi
	if [ ${#regs[@]} -gt 0 ]; then
		if ! "$bin" "${regs[@]}" >"$log.regressions" 2>&1; then
			why="a regression input fails again"
			tail -40 "$log.regressions"
		fi
	fi

	dict=()
	[ -f "$here/$name.dict" ] && dict=("-dict=$here/$name.dict")
	if [ -z "$why" ] && ! "$bin" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
		-artifact_prefix="$dir/crashes/$name/" "${dict[@]}" \
		"$dir/corpus/$name" "$here/corpus/$name" >"$log" 2>&1; then
		why="crash"
		grep -v '^#[0-9]' "$log" | tail -60
		for c in "$dir/crashes/$name"/*; do
			[ -e "$c" ] || continue
			echo "$f: crashing input $c; keep it as a regression test:"
			echo "  mkdir -p $here/regressions/$name &&" \
				"cp $c $here/regressions/$name/"
		done
	fi
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" 2>/dev/null)
	cov=$(grep -o 'cov: [0-9]*' "$log" 2>/dev/null | tail -1)
	if [ -z "$why" ]; then
		passed=$((passed + 1))
		echo "PASS $f: ${#regs[@]} regressions, ${runs:-0} runs, ${cov:-cov: ?} in $((SECONDS - t0))s"
	else
		failed=$((failed + 1))
		failures+=("$f")
		echo "FAIL $f: $why (log: $log)"
	fi
done

if [ "$failed" -gt 0 ]; then
	echo "fuzz: failed: ${failures[*]}"
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
