# Stackless Python for CPython 3.13: the commands of this repository.
# See README.md.  Every target installs what it needs itself.

PREFIX ?= /usr/local

.PHONY: all build run docs test test-fast test-stackless test-leaks baseline stock install \
        tree export-patches check-patches status rebase-upstream clean distclean help

all: build

help:
	@echo "make run            build the interpreter and run an example"
	@echo "make test           our tests + CPython's full regression suite"
	@echo "make test-fast      our tests + a core subset of CPython's tests"
	@echo "make test-stackless our tests only"
	@echo "make test-leaks     our tests with -R 3:3 on a debug build"
	@echo "make docs           build the manual (build/docs/html) and run its examples"
	@echo "make install PREFIX=/opt/stackless   install the interpreter and the manual"
	@echo "make tree           lay out cpython/ (upstream + patches/)"
	@echo "make export-patches [PATCH=name DESC=\"why\"]   cpython/ edits -> patches/"
	@echo "make check-patches  fail if cpython/ has edits not in patches/"
	@echo "make stock          build pristine CPython, the pinned release (build/stock)"
	@echo "make baseline       measure stock CPython's test failures (tools/stock-baseline.txt)"
	@echo "make rebase-upstream VERSION=3.13.N   move to another CPython release"
	@echo "                    (then CONTINUE=1 after resolving conflicts, or ABORT=1)"

build:
	@tools/build stackless

run: build
	./python examples/hello.py
	./python examples/gameloop.py
	./python examples/migrate.py
	./python examples/persist.py

test: build
	@tools/build debug
	@tools/build asan
	@tools/run-tests full

# Our tests, the fuzzer and a core subset on the sanitizer build.
test-asan:
	@tools/build asan
	@tools/run-tests asan

# The manual: docs/manual built into build/docs/html, and its examples run.
docs: build
	@tools/docs check

test-fast: build
	@tools/run-tests fast

test-stackless: build
	@tools/run-tests stackless

# Reference leaks of our tests (regrtest -R 3:3), on a debug build.
test-leaks:
	@tools/build debug
	@tools/run-tests leaks

stock:
	@tools/build stock

baseline: stock
	@tools/run-tests baseline

install:
	@tools/build install "$(PREFIX)"

tree:
	@tools/tree lay

export-patches:
	@tools/tree export

check-patches:
	@tools/tree check

# Move the fork to another CPython release; see README.md.
rebase-upstream:
	@tools/rebase-upstream $(if $(CONTINUE),--continue,$(if $(ABORT),--abort,$(VERSION) $(if $(TARBALL),--tarball $(TARBALL))))

status:
	@tools/tree status

# Build products only; cpython/ keeps any unexported edits.
clean:
	rm -rf build python

# Also the work tree, unless it holds unexported edits.
distclean: check-patches clean
	rm -rf cpython .cache
