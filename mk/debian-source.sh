#!/bin/sh
# Fetches and unpacks Debian's source package of a binary package, at the
# version this system's apt would install (`make static` builds libcap from
# it).
#
# Usage: mk/debian-source.sh DIR PACKAGE
#
# DIR/src is the unpacked source tree (Debian's patches applied) and
# DIR/version its source version.  When DIR already holds that version,
# nothing is fetched: DIR is the cache.  The sources come through a private
# apt configuration under DIR: a list of deb-src entries for the suites of
# the system's own Debian entries, and package lists of its own; nothing in
# the system's apt configuration or state changes.  Network steps are
# bounded (APT_TIMEOUT seconds per apt run, 300 by default).
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 DIR PACKAGE" >&2
	exit 2
fi
dir=$1
pkg=$2
limit=${APT_TIMEOUT:-300}
me="debian-source"

# The version apt would install (the candidate), else the one installed.
binver=$(apt-cache policy "$pkg" 2>/dev/null |
	sed -n 's/^ *Candidate: *//p' | grep -v '^(none)$' || true)
if [ -n "$binver" ]; then
	record=$(apt-cache show "$pkg=$binver" 2>/dev/null |
		sed -n '/^Source:/p;/^Version:/p' || true)
else
	record=$(dpkg-query -W -f='Source: ${source:Package} (${source:Version})\n' \
		"$pkg" 2>/dev/null || true)
fi
if [ -z "$record" ]; then
	echo "$me: apt knows no package '$pkg'; run: apt-get update" >&2
	exit 1
fi
# "Source: NAME (VERSION)" when the source's version differs from the
# binary's (a binNMU), "Source: NAME", or no Source line when both are
# the binary's.
srcpkg=$(printf '%s\n' "$record" | sed -n 's/^Source: *\([^ ]*\).*/\1/p')
srcver=$(printf '%s\n' "$record" | sed -n 's/^Source: .*(\(.*\))/\1/p')
[ -n "$srcpkg" ] || srcpkg=$pkg
[ -n "$srcver" ] ||
	srcver=$(printf '%s\n' "$record" | sed -n 's/^Version: *//p' | head -n 1)

if [ -d "$dir/src" ] && [ "$(cat "$dir/version" 2>/dev/null)" = "$srcver" ]; then
	echo "$me: $srcpkg $srcver already in $dir"
	exit 0
fi

# The deb-src twin of every Debian entry of the system: deb822 stanzas of
# debian.sources, or one-line entries of sources.list.
rm -rf "$dir"
mkdir -p "$dir/apt/lists/partial" "$dir/download"
dir=$(cd "$dir" && pwd)
list=$dir/apt/deb-src.sources
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	sed 's/^Types:.*/Types: deb-src/' \
		/etc/apt/sources.list.d/debian.sources >"$list"
elif [ -f /etc/apt/sources.list ]; then
	list=$dir/apt/deb-src.list
	sed -n 's/^deb[ \t]/deb-src /p' /etc/apt/sources.list >"$list"
fi
if [ ! -s "$list" ]; then
	echo "$me: no Debian entry in /etc/apt/sources.list.d/debian.sources" \
		"or /etc/apt/sources.list" >&2
	exit 1
fi

apt_private() {
	timeout -k 10 "$limit" apt-get -q \
		-o Dir::Etc::sourcelist="$list" -o Dir::Etc::sourceparts=- \
		-o Dir::State::Lists="$dir/apt/lists" \
		-o Acquire::Retries=3 -o Acquire::http::Timeout=30 \
		-o Acquire::https::Timeout=30 "$@"
}

echo "$me: fetching $srcpkg $srcver (the source of $pkg ${binver:-installed})"
apt_private update >"$dir/apt/update.log" 2>&1 || {
	cat "$dir/apt/update.log" >&2
	echo "$me: apt-get update of the deb-src lists failed" >&2
	exit 1
}
# apt downloads as its own user, _apt, where that user can write.
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
	chown _apt "$dir/download"
fi
(cd "$dir/download" && apt_private source "$srcpkg=$srcver") || {
	echo "$me: cannot fetch $srcpkg $srcver; if the system's package" \
		"lists are out of date, run: apt-get update" >&2
	exit 1
}
for d in "$dir"/download/*/; do
	[ -d "$d" ] && mv "$d" "$dir/src"
done
if [ ! -d "$dir/src" ]; then
	echo "$me: no source tree unpacked in $dir/download" >&2
	exit 1
fi
echo "$srcver" >"$dir/version"
echo "$me: $srcpkg $srcver unpacked in $dir/src"
