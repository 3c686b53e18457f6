# Quality gates, included by the Makefile.  Each builds in a
# directory of its own (build-*), so that the normal build is not
# disturbed; .ci/run runs them all.

.PHONY: asan werror valgrind analyze cppcheck clang-tidy fuzz fuzz-replay \
	coverage check-options lint-man format-check stress-check

# What make clean removes on top of the normal build.
GATE_DIRS = build-asan build-coverage build-fuzz build-fuzz-replay \
	build-werror-* build-stress coverage tests/coverage_dump.o

# Fails with a hint when a gate's tool is missing.
need = @for t in $(1); do command -v $$t >/dev/null 2>&1 || { \
	echo "$@: '$$t' is not installed; run: make deps-ci" >&2; exit 1; }; done

# What a gate copies into a build directory (mk/ too: the Makefile includes
# mk/gates.mk; what tests/bb/test_package.py checks, and make deb
# packages).
TREE = *.c *.h Makefile README.md mk man schema tests completion debian \
	examples LICENSE

# Copies the sources into the build directory $(1), without build products.
define copy_tree
	rm -rf $(1) && mkdir -p $(1)
	cp -r $(TREE) $(1)/
	$(MAKE) -s -C $(1) clean
	rm -rf $(1)/tests/bb/__pycache__
endef

# The whole suite, built with AddressSanitizer and UBSan, in a copy of the
# tree so that the normal build is not disturbed.  Sanitizer reports go to
# files under build-asan/san/ as well as making the process fail, so that
# a report from a process whose exit status no test looks at (the
# supervisor) still fails the gate.  The test helpers are built first
# without sanitizers: they are not supervise's code, and some run
# set-user-ID, where LeakSanitizer cannot work.
SAN_DIR = $(CURDIR)/build-asan/san
asan:
	$(call copy_tree,build-asan)
	$(MAKE) -s -C build-asan helpers-all CC="$(CC)"
	mkdir -p $(SAN_DIR)
	@status=0; \
	SUPERVISE=$(CURDIR)/build-asan/supervise \
	ASAN_OPTIONS=log_path=$(SAN_DIR)/asan:detect_leaks=1 \
	UBSAN_OPTIONS=log_path=$(SAN_DIR)/ubsan:print_stacktrace=1:halt_on_error=1 \
	$(MAKE) -C build-asan check \
		CC="$(CC)" CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		LDFLAGS="-fsanitize=address,undefined" || status=$$?; \
	if [ -n "$$(ls -A $(SAN_DIR))" ]; then \
		echo "asan: sanitizer reports:"; cat $(SAN_DIR)/*; exit 1; fi; \
	echo "asan: no sanitizer report"; exit $$status

# -Wall -Wextra -Werror under gcc and clang, each in a build directory of
# its own; the unit runner and the helpers are compiled too.
WERROR_CCS = gcc clang
werror:
	$(call need,$(WERROR_CCS))
	@set -e; for cc in $(WERROR_CCS); do \
		rm -rf build-werror-$$cc && mkdir -p build-werror-$$cc && \
		cp -r $(TREE) build-werror-$$cc/ && \
		$(MAKE) -s -C build-werror-$$cc clean && \
		echo "werror: building with $$cc -Werror" && \
		$(MAKE) -C build-werror-$$cc all tests/check_main helpers-all \
			CC=$$cc WERROR=1; \
	done
	@echo "werror: gcc and clang builds clean"

# The unit runner in one process (CK_FORK=no: tests that need fork mode skip
# themselves) under valgrind, then black-box runs of the real binary
# (tests/valgrind/run.sh).  Any error or definite leak fails.
VALGRIND = valgrind
valgrind: tests/check_main supervise $(HELPERS)
	$(call need,$(VALGRIND))
	$(RESET_SIGS) env CK_FORK=no $(VALGRIND) -q --leak-check=full --show-leak-kinds=definite,indirect \
		--errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
		tests/check_main
	$(RESET_SIGS) env VALGRIND="$(VALGRIND)" tests/valgrind/run.sh ./supervise

# Static analysis of every top-level .c: cppcheck (suppressions, each
# justified, in tests/analyze/cppcheck.supp) and clang-tidy (.clang-tidy).
CPPCHECK = cppcheck
CLANG_TIDY = clang-tidy
SOURCES = $(wildcard *.c)
analyze: cppcheck clang-tidy

cppcheck:
	$(call need,$(CPPCHECK))
	$(CPPCHECK) --enable=warning,style,performance,portability --inconclusive \
		--std=c11 -D_GNU_SOURCE -D__linux__ $(REMOTE_CFLAGS) --library=gnu -I. \
		--suppressions-list=tests/analyze/cppcheck.supp --inline-suppr \
		--quiet --error-exitcode=1 $(SOURCES)
	@echo "cppcheck: no finding in $(words $(SOURCES)) files"

clang-tidy:
	$(call need,$(CLANG_TIDY))
	@fail=0; for f in $(SOURCES); do \
		out=$$($(CLANG_TIDY) --quiet $$f -- $(STD) -I. $(CAP_CFLAGS) \
			$(REMOTE_CFLAGS) $(CPPFLAGS) 2>&1) || fail=1; \
		printf '%s\n' "$$out" | grep -v '^[0-9]* warnings\? generated\.$$' \
			| grep -v '^$$' || true; \
	done; \
	if [ $$fail = 1 ]; then echo "clang-tidy: findings above"; exit 1; fi
	@echo "clang-tidy: no finding in $(words $(SOURCES)) files"

# libFuzzer harnesses (tests/fuzz/fuzz_*.c) for everything that parses
# untrusted text, built with clang and ASan + UBSan.  `make fuzz` first
# replays the regression inputs (tests/fuzz/regressions/NAME/), then runs
# each harness for FUZZ_SECONDS on its seed corpus (tests/fuzz/corpus/NAME/;
# new inputs go to build-fuzz/corpus/NAME/, never into the tree).
FUZZ_CC = clang
FUZZ_SECONDS = 10
FUZZ_DIR = build-fuzz
FUZZ_SAN = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS = $(STD) $(WARNFLAGS) $(CAP_CFLAGS) -I. -Itests/fuzz -g -O1 \
	-fno-omit-frame-pointer $(FUZZ_SAN)
FUZZERS = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_HDRS = $(wildcard tests/fuzz/*.h)

$(FUZZ_DIR)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(FUZZ_DIR)/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HDRS) $(MODULES:%=$(FUZZ_DIR)/obj/%.o)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(MODULES:%=$(FUZZ_DIR)/obj/%.o) $(LIBS)

fuzz:
	$(call need,$(FUZZ_CC))
	$(MAKE) $(FUZZERS:%=$(FUZZ_DIR)/%)
	tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZERS)

# The same harnesses without libFuzzer (any compiler, ASan + UBSan), run
# once on every seed and regression input.
REPLAY_DIR = build-fuzz-replay
REPLAY_CFLAGS = $(STD) $(WARNFLAGS) $(CAP_CFLAGS) -I. -Itests/fuzz -g -O1 \
	-fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all

$(REPLAY_DIR)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(REPLAY_DIR)/obj
	$(CC) $(REPLAY_CFLAGS) -c -o $@ $<

$(REPLAY_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HDRS) \
		$(MODULES:%=$(REPLAY_DIR)/obj/%.o)
	$(CC) $(REPLAY_CFLAGS) -o $@ $< tests/fuzz/replay.c \
		$(MODULES:%=$(REPLAY_DIR)/obj/%.o) $(LIBS)

fuzz-replay: $(FUZZERS:%=$(REPLAY_DIR)/%)
	@set -e; for f in $(FUZZERS); do \
		n=$${f#fuzz_}; \
		$(REPLAY_DIR)/$$f tests/fuzz/corpus/$$n \
			$$(ls -d tests/fuzz/regressions/$$n 2>/dev/null); \
	done

# Line coverage of the non-test code by the whole suite (unit and
# black-box), built with gcc --coverage in build-coverage.  Prints the total
# and writes coverage/report.txt (per file, with the lines not run) and
# coverage/index.html.  The helpers are built first without coverage; the
# tests that run supervise as another user need the gcov files writable
# (umask 000).  tests/coverage_dump.c makes forked children write their
# counts before they exec or _exit.  COVERAGE_MIN: the lowest total that
# passes.
COVERAGE_MIN = 88
COVERAGE_WRAP = -Wl,--wrap=execveat,--wrap=execvp,--wrap=execvpe,--wrap=_exit
coverage:
	$(call need,gcc gcovr)
	$(call copy_tree,build-coverage)
	$(MAKE) -s -C build-coverage helpers-all CC=gcc
	chmod 0777 build-coverage
	@status=0; umask 000; \
	SUPERVISE=$(CURDIR)/build-coverage/supervise \
	$(MAKE) -C build-coverage check CC=gcc \
		CFLAGS="-O0 -g --coverage" EXTRA_OBJS=tests/coverage_dump.o \
		LDFLAGS="--coverage $(COVERAGE_WRAP)" || status=$$?; \
	tests/coverage.sh build-coverage coverage $(COVERAGE_MIN) || status=1; \
	exit $$status

# Every long option in --help is in the man page, and every option the man
# page documents (.Fl -name) is in --help.
check-options: supervise
	tests/man_options.sh ./supervise man/supervise.1

lint-man:
	mandoc -Tlint -W warning man/supervise.1
	@echo "lint-man: no warning"

# The C files are as clang-format (.clang-format) leaves them: fails listing
# the files `make format` would change, with the number of places in each.
# FORMAT_FILES (in the Makefile) is the set both targets cover.
format-check:
	$(call need,$(CLANG_FORMAT))
	@out=$$($(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES) 2>&1) && { \
		echo "format-check: $(words $(FORMAT_FILES)) files formatted"; \
		exit 0; }; \
	files=$$(printf '%s\n' "$$out" | sed -n \
		's/^\([^ :]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' \
		| sort | uniq -c); \
	if [ -z "$$files" ]; then printf '%s\n' "$$out"; exit 1; fi; \
	printf '%s\n' "$$files"; \
	echo "format-check: the files above would change (places in each); run: make format"; \
	exit 1

# The black-box suite (make blackbox) STRESS_RUNS times in a row while one
# busy process per core keeps every core loaded (tests/stress.sh), to shake
# out tests that depend on timing.  Stops at the first failing run; the
# output of run K is in build-stress/run-K.log.
STRESS_RUNS = 10
STRESS_DIR = build-stress
# Not spelled $(MAKE) in the recipe, so that make -n only shows the command
# (under make -j, the inner make then says the jobserver is unavailable and
# runs one job at a time, which is all the suite needs).
STRESS_MAKE = $(MAKE) --no-print-directory
stress-check: supervise $(HELPERS)
	tests/stress.sh $(STRESS_RUNS) $(STRESS_DIR) $(STRESS_MAKE) blackbox
