# The Debian package, included by the Makefile.
#
# make deb: build-deb/supervise_VERSION_ARCH.deb, built by
# `dpkg-buildpackage -us -uc -b` from a copy of the tree (copy_tree, in
# mk/gates.mk; debian/ is the packaging), then checked by lintian, which
# must report no error and no warning.  DEB_BUILD_OPTIONS=nocheck skips
# the test suite at build time.
# make check-deb: the package unpacked into a scratch root
# (build-deb/root), where the binary must run, report the changelog's
# version and know etcd locks, next to its man page, bash completion and
# examples.

.PHONY: deb deps-deb check-deb

DEB_DIR = build-deb
DEB_VERSION = $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
DEB_SRC = $(DEB_DIR)/supervise-$(DEB_VERSION)
# dpkg-buildpackage also checks that build-essential is installed.
DEB_DEPS = $(DEPS) build-essential debhelper dpkg-dev lintian
DEB_ROOT = $(DEB_DIR)/root

deps-deb:
	$(call install_missing,$(DEB_DEPS))

deb: deps-deb
	$(call copy_tree,$(DEB_SRC))
	rm -f $(DEB_DIR)/*.deb $(DEB_DIR)/*.changes $(DEB_DIR)/*.buildinfo
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b \
		$(if $(filter nocheck,$(DEB_BUILD_OPTIONS)),-Pnocheck)
	lintian --fail-on error,warning --display-info $(DEB_DIR)/*.changes
	@echo "deb: $$(ls $(DEB_DIR)/*.deb)"

check-deb: deb
	rm -rf $(DEB_ROOT)
	dpkg -x $(DEB_DIR)/supervise_$(DEB_VERSION)_*.deb $(DEB_ROOT)
	@set -e; out=$$($(DEB_ROOT)/usr/bin/supervise --version); echo "$$out"; \
	[ "$$out" = "supervise $(DEB_VERSION)" ] || { \
		echo "check-deb: the package's supervise says '$$out'," \
			"debian/changelog $(DEB_VERSION)" >&2; exit 1; }; \
	out=$$($(DEB_ROOT)/usr/bin/supervise -l etcd://127.0.0.1:1/check-deb \
		true 2>&1) || true; \
	case $$out in *"not available in this build"*) \
		echo "check-deb: the package has no etcd locks: $$out" >&2; \
		exit 1;; esac; \
	for f in usr/share/man/man1/supervise.1.gz \
		usr/share/bash-completion/completions/supervise \
		usr/share/doc/supervise/copyright \
		$(patsubst %,usr/share/doc/supervise/%,$(wildcard examples/*)); do \
		[ -f $(DEB_ROOT)/$$f ] || { \
			echo "check-deb: the package has no /$$f" >&2; exit 1; }; \
	done
	@echo "check-deb: $(DEB_ROOT)/usr/bin/supervise runs, with etcd" \
		"locks; man page, completion and examples in place"
