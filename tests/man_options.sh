#!/bin/sh
# Checks that --help and the man page document the same long options
# (`make check-options`).
#
# Usage: tests/man_options.sh SUPERVISE MANPAGE
#
# From --help: every "--name" at the start of an option line ("  -t,
# --timeout=DURATION", "      --foreground").  From the mdoc man page:
# every "Fl -name" on a macro line (".It Fl t , Fl -timeout Ns = Ns Ar
# duration", ".Op Fl -foreground"); a lone "Fl -" (the end of options) is
# not an option.  Prints each option missing from either side and fails
# if there is one.
set -eu

supervise=$1
man=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$supervise" --help >"$tmp/help.txt"
sed -n 's/^ \{1,\}\(-[A-Za-z0-9], \)\{0,1\}--\([a-z0-9][a-z0-9-]*\).*/\2/p' \
	"$tmp/help.txt" | sort -u >"$tmp/help"
grep '^\.' "$man" | grep -o 'Fl -[a-z0-9][a-z0-9-]*' | sed 's/^Fl -//' |
	sort -u >"$tmp/man"

if [ ! -s "$tmp/help" ]; then
	echo "check-options: no long option found in '$supervise --help'" >&2
	exit 1
fi
comm -23 "$tmp/help" "$tmp/man" >"$tmp/not-in-man"
comm -13 "$tmp/help" "$tmp/man" >"$tmp/not-in-help"
status=0
if [ -s "$tmp/not-in-man" ]; then
	echo "check-options: in --help but not in $man:"
	sed 's/^/  --/' "$tmp/not-in-man"
	status=1
fi
if [ -s "$tmp/not-in-help" ]; then
	echo "check-options: in $man but not in --help:"
	sed 's/^/  --/' "$tmp/not-in-help"
	status=1
fi
if [ $status = 0 ]; then
	echo "check-options: $(wc -l <"$tmp/help") long options, the same in" \
		"--help and $man"
fi
exit $status
