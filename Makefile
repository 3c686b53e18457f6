# supervise: run a command, stop its whole tree, tear down once.
# Build, install, test; the quality gates are in mk/gates.mk.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
DESTDIR ?=
CC ?= cc
CFLAGS ?= -O2 -g
CPPFLAGS ?=
LDFLAGS ?=
PKG_CONFIG ?= pkg-config

# Warnings are added on top of the user's CFLAGS, so an override keeps them.
WARNFLAGS = -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
	-Wmissing-prototypes -Wno-unused-parameter
ifeq ($(WERROR),1)
WARNFLAGS += -Werror
endif
STD = -std=gnu11 -D_GNU_SOURCE
CAP_CFLAGS = $(shell $(PKG_CONFIG) --cflags libcap 2>/dev/null)
CAP_LIBS = $(shell $(PKG_CONFIG) --libs libcap 2>/dev/null || echo -lcap)
CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS = $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck)
# Remote (etcd://) locks need libcurl's and json-c's headers to build; the
# libraries themselves are loaded with dlopen() only by a run that takes
# such a lock, so nothing is linked.  REMOTE=0, or headers missing: a
# build that says remote locks are not available.
REMOTE ?= $(shell $(PKG_CONFIG) --exists libcurl json-c 2>/dev/null && echo 1)
ifeq ($(STATIC),1)
REMOTE = 0
endif
ifeq ($(REMOTE),1)
REMOTE_CFLAGS = -DSUPERVISE_REMOTE
endif
ALL_CFLAGS = $(STD) $(WARNFLAGS) $(CAP_CFLAGS) $(REMOTE_CFLAGS) $(CPPFLAGS) \
	$(CFLAGS)
LIBS = $(CAP_LIBS) -ldl

# make STATIC=1: one self-contained binary (glibc and libcap linked in),
# which starts faster and can be copied into any container.
ifeq ($(STATIC),1)
LDFLAGS += -static
endif

# supervise loads libcap with dlopen() when a run needs it (--caps, or a
# file with capabilities run by a user other than root), not linked:
# linked, it is loaded at every start and its constructor probes the
# bounding set.  A static link (-static in LDFLAGS) has no dlopen(): libcap
# is linked in.  LIBCAP_DLOPEN=0 links it in any build.  The test programs
# (which call libcap themselves too) are linked with it.
ifneq ($(filter -static,$(LDFLAGS)),)
LIBCAP_DLOPEN ?= 0
endif
LIBCAP_DLOPEN ?= 1
ifeq ($(LIBCAP_DLOPEN),1)
CAP_CFLAGS += -DSUPERVISE_LIBCAP_DLOPEN
SUPERVISE_LIBS = $(filter-out $(CAP_LIBS),$(LIBS))
else
SUPERVISE_LIBS = $(LIBS)
endif

# Every top-level .c but supervise.c (main) is a module.
MODULES = $(filter-out supervise,$(patsubst %.c,%,$(wildcard *.c)))
OBJS = $(MODULES:%=%.o)
HDRS = $(wildcard *.h)
UNIT_TESTS = $(wildcard tests/check_*.c)
HELPERS = $(patsubst %.c,%,$(wildcard tests/helpers/*.c))
# Objects linked into supervise and the unit runner on top (make coverage).
EXTRA_OBJS =
# make format and make format-check: every C file of the tree.
CLANG_FORMAT = clang-format
FORMAT_FILES = $(wildcard *.c *.h tests/*.c tests/*.h tests/*/*.c tests/*/*.h \
	bench/*.c)

.PHONY: all check unit blackbox etcd-check install uninstall clean format bench deps \
	deps-ci helpers-all
.DELETE_ON_ERROR:

all: supervise

supervise: supervise.o $(OBJS) $(EXTRA_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ supervise.o $(OBJS) $(EXTRA_OBJS) \
		$(SUPERVISE_LIBS)

%.o: %.c $(HDRS)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

tests/check_main: $(UNIT_TESTS) $(OBJS) $(EXTRA_OBJS) $(HDRS) $(wildcard tests/*.h)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -I. $(LDFLAGS) -o $@ \
		$(UNIT_TESTS) $(OBJS) $(EXTRA_OBJS) $(LIBS) $(CHECK_LIBS)

tests/helpers/%: tests/helpers/%.c
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<
helpers-all: $(HELPERS)

# The tests start from the default signal state, whatever started make (a
# shell starts a background job with SIGINT and SIGQUIT ignored, GNU make 4.3
# leaves the C library's signals 32 and 33 ignored...): RESET_SIGS resets every
# signal and the mask (tests/bb/bb.py's reset_signals()) and execs the rest.
RESET_SIGS = python3 -c 'import os, sys; sys.path.insert(0, "tests/bb"); \
import bb; bb.reset_signals(keep_python=False); \
os.execvp(sys.argv[1], sys.argv[1:])'

check: unit blackbox
unit: tests/check_main
	$(RESET_SIGS) tests/check_main
blackbox: supervise $(HELPERS)
	$(RESET_SIGS) python3 tests/blackbox.py

# The etcd lock tests alone (each starts its own etcd cluster on 127.0.0.1;
# they are part of make blackbox too).
etcd-check: supervise $(HELPERS)
	$(RESET_SIGS) python3 tests/blackbox.py -k test_etcd

install: supervise
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 supervise $(DESTDIR)$(BINDIR)/supervise
	install -m 0644 man/supervise.1 $(DESTDIR)$(MANDIR)/man1/supervise.1
	install -m 0644 completion/supervise.bash \
		$(DESTDIR)$(BASHCOMPDIR)/supervise
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/supervise $(DESTDIR)$(MANDIR)/man1/supervise.1 \
		$(DESTDIR)$(BASHCOMPDIR)/supervise

clean:
	rm -f supervise *.o tests/check_main $(HELPERS)
	rm -rf $(GATE_DIRS) $(STATIC_DIR) $(DEB_DIR)

format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

# Benchmarks against GNU timeout, tini, dumb-init, catatonit (bench/README.md).
bench: supervise
	bench/run

# Debian packages to build and test (deps), and the gates' tools (deps-ci).
DEPS = gcc make pkg-config libcap-dev libcap2-bin check mandoc python3 \
	python3-jsonschema strace tmux procps util-linux libcurl4-openssl-dev \
	libjson-c-dev etcd-server etcd-client openssl
CI_DEPS = clang clang-format libclang-rt-14-dev valgrind cppcheck clang-tidy \
	gcovr
define install_missing
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "$@: all installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "$@: installing$$(printf ' %s' $$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "$@: as root, run: apt-get update && apt-get install -y$$(printf ' %s' $$missing)"; exit 1; fi
endef
deps:
	$(call install_missing,$(DEPS))
deps-ci:
	$(call install_missing,$(DEPS) $(CI_DEPS))

include mk/gates.mk
include mk/static.mk
include mk/deb.mk
