# supervise: run a command, stop its whole tree, tear down once.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
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

ALL_CFLAGS = $(STD) $(WARNFLAGS) $(CAP_CFLAGS) $(CPPFLAGS) $(CFLAGS)
LIBS = $(CAP_LIBS)

MODULES = caps child front lock locking log options parse run signals status teardown tree
OBJS = $(MODULES:%=%.o)
HDRS = $(wildcard *.h)

UNIT_TESTS = $(wildcard tests/check_*.c)

.PHONY: all check unit blackbox install uninstall clean asan lint-man deps
.DELETE_ON_ERROR:

all: supervise

supervise: supervise.o $(OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ supervise.o $(OBJS) $(LIBS)

%.o: %.c $(HDRS)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

tests/check_main: $(UNIT_TESTS) $(OBJS) $(HDRS)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -I. $(LDFLAGS) -o $@ \
		$(UNIT_TESTS) $(OBJS) $(LIBS) $(CHECK_LIBS)

tests/helpers/%: tests/helpers/%.c
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $<

HELPERS = $(patsubst %.c,%,$(wildcard tests/helpers/*.c))

check: unit blackbox

unit: tests/check_main
	tests/check_main

blackbox: supervise $(HELPERS)
	python3 tests/blackbox.py

install: supervise
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 supervise $(DESTDIR)$(BINDIR)/supervise
	install -m 0644 man/supervise.1 $(DESTDIR)$(MANDIR)/man1/supervise.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/supervise $(DESTDIR)$(MANDIR)/man1/supervise.1

clean:
	rm -f supervise *.o tests/check_main $(HELPERS)

# The whole suite, built with AddressSanitizer and UBSan, in a copy of the
# tree so that the normal build is not disturbed.
asan:
	rm -rf build-asan && mkdir build-asan
	cp -r *.c *.h Makefile man tests build-asan/
	$(MAKE) -C build-asan check \
		CC="$(CC)" CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined"

lint-man:
	mandoc -Tlint -W warning man/supervise.1

# Debian packages needed to build and test.
DEPS = gcc make pkg-config libcap-dev check mandoc python3 procps util-linux
deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "deps: installing$$(printf ' %s' $$missing)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: as root, run: apt-get install$$(printf ' %s' $$missing)"; exit 1; fi
