# The static release build, included by the Makefile.
#
# make static: build-static/supervise, one statically linked binary built
# with musl (Debian's musl-tools: musl-gcc), with libcap built from
# Debian's own libcap2 source package at the version the system ships
# (mk/debian-source.sh fetches it once into build-static/libcap2/).  Needs
# nothing but Debian packages, which it installs as root (make deps-static).
# make check-static: the black-box suite against that binary.

.PHONY: static deps-static check-static

STATIC_DIR = build-static
STATIC_CC = musl-gcc
# The source package is named after the binary package libcap2.
STATIC_CAP_PKG = libcap2
STATIC_CAP_DIR = $(STATIC_DIR)/libcap2
STATIC_CAP_A = $(STATIC_CAP_DIR)/src/libcap/libcap.a
STATIC_DEPS = gcc make musl-tools dpkg-dev linux-libc-dev xz-utils
# musl-tools has no kernel headers: build-static/include links the system's
# (linux-libc-dev) linux/, asm/ and asm-generic/ directories, which the C
# library does not provide anyway.
STATIC_INC = $(STATIC_DIR)/include
MULTIARCH = $(shell gcc -print-multiarch 2>/dev/null)
STATIC_CFLAGS = $(STD) $(WARNFLAGS) -isystem $(STATIC_INC) \
	-I$(STATIC_CAP_DIR)/src/libcap/include $(CPPFLAGS) $(CFLAGS)
# A release binary: no symbols.
STATIC_LDFLAGS = -static -s
STATIC_OBJS = $(patsubst %,$(STATIC_DIR)/obj/%.o,supervise $(MODULES))

static: deps-static
	mk/debian-source.sh $(STATIC_CAP_DIR) $(STATIC_CAP_PKG)
	$(MAKE) $(STATIC_DIR)/supervise
	@echo "static: $(STATIC_DIR)/supervise ($$(wc -c <$(STATIC_DIR)/supervise) bytes)"

deps-static:
	$(call install_missing,$(STATIC_DEPS))

# Fetched at most once per version: the script keeps what it fetched, and
# starts afresh (the built library included) when the version changes.
$(STATIC_CAP_DIR)/version:
	mk/debian-source.sh $(STATIC_CAP_DIR) $(STATIC_CAP_PKG)

# libcap's own Makefile builds only the static library, with musl-gcc (its
# name table generator, run at build time, with the build machine's gcc);
# not the shared library, the Go bindings or the gperf table.  CFLAGS from
# the environment or make's command line apply to it too.
$(STATIC_CAP_A): $(STATIC_CAP_DIR)/version
	$(MAKE) -C $(STATIC_CAP_DIR)/src/libcap CC=$(STATIC_CC) BUILD_CC=gcc \
		AR=ar RANLIB=ranlib GOLANG=no USE_GPERF=no SHARED=no \
		PAM_CAP=no libcap.a

$(STATIC_INC)/.done:
	rm -rf $(STATIC_INC) && mkdir -p $(STATIC_INC)
	@for d in /usr/include/linux /usr/include/asm-generic \
		/usr/include/$(MULTIARCH)/asm; do \
		[ -d $$d ] || { echo "static: no $$d; run: make deps-static" >&2; \
			exit 1; }; \
		ln -s $$d $(STATIC_INC)/; \
	done
	touch $@

$(STATIC_DIR)/obj/%.o: %.c $(HDRS) $(STATIC_CAP_A) $(STATIC_INC)/.done
	@mkdir -p $(STATIC_DIR)/obj
	$(STATIC_CC) $(STATIC_CFLAGS) -c -o $@ $<

$(STATIC_DIR)/supervise: $(STATIC_OBJS) $(STATIC_CAP_A)
	$(STATIC_CC) $(STATIC_LDFLAGS) $(LDFLAGS) -o $@ $(STATIC_OBJS) $(STATIC_CAP_A)

# The helpers and the test runner are the normal (glibc) ones: only
# supervise is the binary under test.
check-static: static $(HELPERS)
	$(RESET_SIGS) env SUPERVISE=$(CURDIR)/$(STATIC_DIR)/supervise \
		python3 tests/blackbox.py
