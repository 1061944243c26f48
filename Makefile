# gateway: the front door. `make demo` builds and serves the demo app; `make test` runs every
# check that can run on this machine.

CARGO       ?= cargo
CC          ?= cc
CXX         ?= c++
PREFIX      ?= /usr/local
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
DESTDIR     ?=
PORT        ?= 8000

RELEASE     := target/release
BUILD       := build
# The version policy: the soname carries MAJOR.MINOR while MAJOR is 0 (any 0.x minor may
# break the ABI), MAJOR after that; build.rs sets it, test-install checks it.
VERSION     := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
VERSION_MAJOR := $(word 1,$(subst ., ,$(VERSION)))
VERSION_MINOR := $(word 2,$(subst ., ,$(VERSION)))
SONAME      := libgateway.so.$(if $(filter 0,$(VERSION_MAJOR)),0.$(VERSION_MINOR),$(VERSION_MAJOR))
CFLAGS      := -std=c99 -Wall -Wextra -Wpedantic -Werror -O1 -g -D_POSIX_C_SOURCE=200809L -Iinclude
# What `cargo rustc -- --print native-static-libs` reports for the static library.
STATIC_LIBS := -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
GENERATED_HEADER := $(CURDIR)/target/gateway.h
VALGRIND    := valgrind --quiet --error-exitcode=99 --leak-check=full \
               --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect

TEST_SOURCES := tests/test_gateway.c tests/host.c
TEST_HEADERS := tests/host.h include/gateway.h

.PHONY: all lib header check-header test test-rust test-c test-valgrind test-alloc test-examples test-install \
        test-symbols test-cxx lint demo bench install clean test-faults test-endurance test-keepalive \
        test-mhd test-demo test-sanitizers miri fuzz fuzz-replay test-nonblocking test-validate test-util test-epoll \
        python test-python bench-python bench-e2e

all: lib

# The libraries. build.rs also writes the header it generated to target/gateway.h.
lib:
	GATEWAY_HEADER_OUT=$(GENERATED_HEADER) $(CARGO) build --release
	ln -sf libgateway.so $(RELEASE)/$(SONAME)

# Regenerates the committed header.
header: lib
	cp $(GENERATED_HEADER) include/gateway.h

# Fails when the committed header is not what the code generates.
check-header: lib
	@cmp -s $(GENERATED_HEADER) include/gateway.h || { \
	  diff -u include/gateway.h $(GENERATED_HEADER) | head -40; \
	  echo "include/gateway.h is stale: run 'make header' and commit it"; exit 1; }
	@echo "header: include/gateway.h matches the code"

$(BUILD):
	mkdir -p $(BUILD)

$(BUILD)/test_static: $(TEST_SOURCES) $(TEST_HEADERS) lib | $(BUILD)
	$(CC) $(CFLAGS) $(TEST_SOURCES) $(RELEASE)/libgateway.a -lcmocka -lpthread $(STATIC_LIBS) -o $@

$(BUILD)/test_shared: $(TEST_SOURCES) $(TEST_HEADERS) lib | $(BUILD)
	$(CC) $(CFLAGS) $(TEST_SOURCES) -L$(RELEASE) -lgateway -Wl,-rpath,$(CURDIR)/$(RELEASE) -lcmocka -lpthread -o $@

$(BUILD)/demo_server: c-examples/demo_server.c include/gateway.h lib | $(BUILD)
	$(CC) $(CFLAGS) $< -L$(RELEASE) -lgateway -Wl,-rpath,$(CURDIR)/$(RELEASE) -lpthread -o $@

# The event-loop example: Linux only (epoll, sendfile, signalfd), built with the same CFLAGS.
$(BUILD)/epoll_server: c-examples/epoll_server.c include/gateway.h lib | $(BUILD)
	$(CC) $(CFLAGS) $< $(RELEASE)/libgateway.a $(STATIC_LIBS) -o $@

$(BUILD)/mhd_host: c-examples/mhd_host.c include/gateway.h lib | $(BUILD)
	$(CC) $(CFLAGS) $< $(RELEASE)/libgateway.a -lmicrohttpd -lpthread $(STATIC_LIBS) -o $@

# gateway behind libmicrohttpd through the structured hooks, checked with curl on loopback.
test-mhd: $(BUILD)/mhd_host
	sh tests/mhd_host.sh $(BUILD)

$(BUILD)/hello_cgi: c-examples/hello_cgi.c include/gateway.h lib | $(BUILD)
	$(CC) $(CFLAGS) $< $(RELEASE)/libgateway.a $(STATIC_LIBS) -o $@

$(BUILD)/hello_host: c-examples/hello_host.c include/gateway.h lib | $(BUILD)
	$(CC) $(CFLAGS) $< $(RELEASE)/libgateway.a $(STATIC_LIBS) -o $@

test: check-header test-symbols test-cxx lint test-rust fuzz-replay test-c test-valgrind test-util test-alloc test-faults test-nonblocking test-validate test-endurance \
      test-keepalive test-mhd test-examples test-demo test-epoll test-install test-python
	@echo "make test: all checks passed"

test-rust:
	$(CARGO) test --release

# The C harness against the static and the shared library.
test-c: $(BUILD)/test_static $(BUILD)/test_shared
	$(BUILD)/test_static
	$(BUILD)/test_shared

PYTHON ?= python3

$(BUILD)/keepalive_host: tests/keepalive_host.c include/gateway.h lib | $(BUILD)
	$(CC) $(CFLAGS) $< $(RELEASE)/libgateway.a $(STATIC_LIBS) -o $@

# Keep-alive over real sockets, checked by a strict HTTP/1.1 client (h11, from PyPI).
test-keepalive: $(BUILD)/keepalive_host
	$(PYTHON) tests/h11_keepalive.py $(BUILD)/keepalive_host

# The Python binding (bindings/python): its cffi extension in API mode, compiled against
# include/gateway.h (it fails when the binding's declarations disagree with the header) and
# loading target/release/libgateway.so (or $$GATEWAY_LIBRARY) at import.
PY_BINDING := bindings/python

python: lib
	cd $(PY_BINDING) && $(PYTHON) gateway/_build.py

# CPython's own Lib/test/test_wsgiref.py with wsgiref.handlers replaced by gateway.handlers
# (only the documented differences may fail), then the binding's tests and bottle and Flask
# in memory and over loopback sockets checked with h11 (pytest), in API mode and ABI mode.
test-python: python
	cd $(PY_BINDING) && $(PYTHON) tests/run_test_wsgiref.py
	cd $(PY_BINDING) && GATEWAY_CFFI_MODE=abi $(PYTHON) tests/run_test_wsgiref.py --quiet
	cd $(PY_BINDING) && $(PYTHON) -m pytest -q -p no:cacheprovider tests
	cd $(PY_BINDING) && GATEWAY_CFFI_MODE=abi $(PYTHON) -m pytest -q -p no:cacheprovider tests

# A hello and a bottle request in memory through gateway.handlers against wsgiref's
# SimpleHandler, interleaved, medians and ratios (not part of `make test`).
PY_REQUESTS ?= 5000
PY_ROUNDS   ?= 7
bench-python: python
	cd $(PY_BINDING) && $(PYTHON) bench.py $(PY_REQUESTS) $(PY_ROUNDS)

FAULTS_DEPS := tests/faults_host.h include/gateway.h
ENDURANCE_REQUESTS ?= 1000000

$(BUILD)/test_faults: tests/test_faults.c $(FAULTS_DEPS) lib | $(BUILD)
	$(CC) $(CFLAGS) $< $(RELEASE)/libgateway.a $(STATIC_LIBS) -o $@

$(BUILD)/endurance: tests/endurance.c $(FAULTS_DEPS) lib | $(BUILD)
	$(CC) $(CFLAGS) -O2 $< $(RELEASE)/libgateway.a $(STATIC_LIBS) -o $@

# Every hook failing on each of its calls in each way, for every app, origin and CGI:
# natively, then under valgrind (a few seconds).
test-faults: $(BUILD)/test_faults
	$(BUILD)/test_faults
	$(VALGRIND) $(BUILD)/test_faults --max-reports 20

$(BUILD)/test_validate: tests/test_validate.c tests/host.c $(TEST_HEADERS) lib | $(BUILD)
	$(CC) $(CFLAGS) tests/test_validate.c tests/host.c $(RELEASE)/libgateway.a -lcmocka $(STATIC_LIBS) -o $@

# Validation mode: wsgiref.validate's rules and messages on both sides, natively and under valgrind.
test-validate: $(BUILD)/test_validate
	$(BUILD)/test_validate
	$(VALGRIND) $(BUILD)/test_validate

$(BUILD)/test_nonblocking: tests/test_nonblocking.c $(FAULTS_DEPS) lib | $(BUILD)
	$(CC) $(CFLAGS) $< $(RELEASE)/libgateway.a -lcmocka $(STATIC_LIBS) -o $@

# Non-blocking mode against blocking mode: every app with hooks answering EAGAIN at every
# point, byte-identical; the high-water mark, cancelling, spooled bodies, send_file; natively
# and under valgrind.
test-nonblocking: $(BUILD)/test_nonblocking
	$(BUILD)/test_nonblocking
	$(VALGRIND) $(BUILD)/test_nonblocking

# 10^6 requests through one reused handler: every response checked, RSS flat, no fd leaked.
test-endurance: $(BUILD)/endurance
	$(BUILD)/endurance $(ENDURANCE_REQUESTS)

# A warmed-up handler serves requests through the C ABI without heap allocation.
test-alloc: $(BUILD)/bench
	$(BUILD)/bench --check-allocations

# Side-by-side timings of the gateway and a hand-written C baseline, interleaved medians, the
# scaling sweep, then instructions per request from callgrind (N and 2N requests, difference
# over N), which do not depend on the machine's load (tests/bench.c,
# tests/bench_instructions.sh); not part of `make test`. ITERATIONS: requests per case and
# round (50000, in 21 rounds: short rounds keep a burst of load in few of them);
# BENCH_CALLGRIND_REQUESTS: N (1000).
BENCH_CALLGRIND_REQUESTS ?= 1000
bench: $(BUILD)/bench
	$(BUILD)/bench $(ITERATIONS)
	@echo
	sh tests/bench_instructions.sh $(BUILD)/bench $(BENCH_CALLGRIND_REQUESTS)

$(BUILD)/bench: tests/bench.c include/gateway.h lib | $(BUILD)
	$(CC) $(CFLAGS) -O2 $< $(RELEASE)/libgateway.a $(STATIC_LIBS) -o $@

# End to end (not part of `make test`; installs nothing): the demo server (-w 1), nginx
# `return 200` and a hand-written epoll server answering the demo's bytes, each pinned to CPU 0
# under wrk keep-alive on CPU 1, interleaved rounds: req/s, server CPU us per request (from
# /proc), the ratios; then the share of libgateway.so in the demo's user-space instructions
# under callgrind (tests/bench_e2e.py explains the method). Needs wrk and nginx (Debian:
# apt-get install wrk nginx-light), says "skipped" without them. E2E_SECONDS (5) per wrk run,
# E2E_ROUNDS (3), E2E_CONNECTIONS (16), E2E_CALLGRIND_REQUESTS (4000): about a minute in all.
bench-e2e: $(BUILD)/demo_server $(BUILD)/bench_baseline_server
	$(PYTHON) tests/bench_e2e.py $(BUILD)/demo_server $(BUILD)/bench_baseline_server

# Written by hand with no library: the baseline of bench-e2e.
$(BUILD)/bench_baseline_server: tests/bench_baseline_server.c | $(BUILD)
	$(CC) $(CFLAGS) -O2 $< -o $@

test-valgrind: $(BUILD)/test_shared
	$(VALGRIND) $(BUILD)/test_shared

# wsgiref.util and wsgiref.headers through the C ABI (tests/test_wsgiref_util.c, CPython's
# own vectors) against the static and the shared library, then under valgrind.
UTIL_TEST_SOURCES := tests/test_wsgiref_util.c

$(BUILD)/test_util_static: $(UTIL_TEST_SOURCES) include/gateway.h lib | $(BUILD)
	$(CC) $(CFLAGS) $(UTIL_TEST_SOURCES) $(RELEASE)/libgateway.a -lcmocka $(STATIC_LIBS) -o $@

$(BUILD)/test_util_shared: $(UTIL_TEST_SOURCES) include/gateway.h lib | $(BUILD)
	$(CC) $(CFLAGS) $(UTIL_TEST_SOURCES) -L$(RELEASE) -lgateway -Wl,-rpath,$(CURDIR)/$(RELEASE) -lcmocka -o $@

test-util: $(BUILD)/test_util_static $(BUILD)/test_util_shared
	$(BUILD)/test_util_static
	$(BUILD)/test_util_shared
	$(VALGRIND) $(BUILD)/test_util_shared

# Every exported symbol is gw_-prefixed and declared in the header, and the other way round.
test-symbols: lib | $(BUILD)
	@nm -D --defined-only $(RELEASE)/libgateway.so | awk '$$2 == "T" { print $$3 }' | sort > $(BUILD)/symbols.so
	@grep -oE '\bgw_[a-z0-9_]+\(' include/gateway.h | tr -d '(' | sort -u > $(BUILD)/symbols.h
	@if grep -v '^gw_' $(BUILD)/symbols.so; then echo "exported symbols without the gw_ prefix"; exit 1; fi
	@if grep -E '^#define ' include/gateway.h | grep -vE '^#define (GW_|GATEWAY_H$$)'; then \
	  echo "header macros without the GW_ prefix"; exit 1; fi
	@diff -u $(BUILD)/symbols.h $(BUILD)/symbols.so || { echo "exported symbols differ from the header"; exit 1; }
	@echo "symbols: $$(wc -l < $(BUILD)/symbols.so) exported, all gw_-prefixed and declared"
	@rm -f $(BUILD)/symbols.so $(BUILD)/symbols.h

# The header compiles on its own as C99 and as C++, and so do its size initializers (the
# _INIT macros in C, the idiom the header gives for C++).
INIT_USE := \#include "gateway.h"\nint main(void) { gw_handler_hooks h = GW_HANDLER_HOOKS_INIT; \
  gw_body_iter i = GW_BODY_ITER_INIT; gw_connection_facts f = GW_CONNECTION_FACTS_INIT; \
  gw_request_head_options o = GW_REQUEST_HEAD_OPTIONS_INIT; return (int)(h.size + i.size + f.size + o.size) == 0; }
INIT_USE_CXX := \#include "gateway.h"\nint main() { gw_handler_hooks h{}; h.size = sizeof h; return h.size == 0; }
test-cxx:
	echo '#include "gateway.h"' | $(CC) -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude -x c -fsyntax-only -
	echo '#include "gateway.h"' | $(CXX) -std=c++11 -Wall -Wextra -Wpedantic -Werror -Iinclude -x c++ -fsyntax-only -
	printf '$(INIT_USE)' | $(CC) -std=c99 -Wall -Wextra -Wpedantic -Werror -Iinclude -x c -fsyntax-only -
	printf '$(INIT_USE_CXX)' | $(CXX) -std=c++11 -Wall -Wextra -Wpedantic -Werror -Iinclude -x c++ -fsyntax-only -

lint:
	@if $(CARGO) clippy --version >/dev/null 2>&1; then \
	  $(CARGO) clippy --release --all-targets -- -D warnings; \
	else echo "lint: cargo clippy is not installed; skipped"; fi
	@if $(CARGO) fmt --version >/dev/null 2>&1; then \
	  $(CARGO) fmt --check; \
	else echo "lint: cargo fmt is not installed; skipped"; fi

test-examples: $(BUILD)/demo_server $(BUILD)/hello_cgi $(BUILD)/hello_host $(BUILD)/epoll_server
	sh tests/examples.sh $(BUILD)

# The demo against real clients (curl, h11, pipelining) and attacks (idle and one-byte-a-second
# connections, slowloris), its deadlines, connection limit and SIGINT (about 20 s).
test-demo: $(BUILD)/demo_server
	$(PYTHON) tests/demo_server.py $(BUILD)/demo_server

# The epoll example: 500 concurrent keep-alive clients beside a slow reader, a 200 MiB body
# to a slow reader in bounded memory, bodies a byte at a time, files through sendfile,
# pipelining, clients leaving mid-cycle (cancelled), limits; then again under valgrind
# (tests/epoll_server.py, about 15 s).
test-epoll: $(BUILD)/epoll_server
	$(PYTHON) tests/epoll_server.py $(BUILD)/epoll_server

demo: $(BUILD)/demo_server
	$(BUILD)/demo_server $(PORT)

# ASan+UBSan and TSan builds of both sides (the library itself instrumented, in target/asan
# and target/tsan): the C harness and a test of handlers on 8 threads
# sharing a base environ, plus planted bugs each sanitizer must report (tests/sanitizers.sh).
test-sanitizers:
	CARGO="$(CARGO)" HARNESS_SOURCES="$(TEST_SOURCES)" bash tests/sanitizers.sh asan tsan

# The fuzz targets' committed seeds and regressions replayed through the same checks, on
# stable without libFuzzer (fuzz/tests/replay.rs), and the fuzz crate linted.
fuzz-replay:
	$(CARGO) test --manifest-path fuzz/Cargo.toml -- --test-threads=1
	@if $(CARGO) clippy --version >/dev/null 2>&1; then \
	  $(CARGO) clippy --manifest-path fuzz/Cargo.toml --all-targets -- -D warnings; fi
	@if $(CARGO) fmt --version >/dev/null 2>&1; then $(CARGO) fmt --manifest-path fuzz/Cargo.toml --check; fi

# Every fuzz target for FUZZ_SECONDS under libFuzzer and ASan, from the committed seeds; a
# crash input is kept in fuzz/regressions/ (needs cargo-fuzz: cargo install cargo-fuzz --locked).
FUZZ_SECONDS ?= 60
fuzz:
	bash fuzz/run.sh $(FUZZ_SECONDS)

# Miri over the unit tests and tests/ffi_*.rs (the C ABI driven from Rust); says "skipped"
# where the toolchain has no nightly miri.
miri:
	CARGO="$(CARGO)" bash tests/sanitizers.sh miri

# `make install` into a scratch folder (with its own LIBDIR), then a program built against
# what it installed: linked by the soname the version policy gives, and running.
test-install: | $(BUILD)
	rm -rf $(BUILD)/install
	$(MAKE) --no-print-directory install PREFIX=/usr LIBDIR=/usr/lib64 DESTDIR=$(CURDIR)/$(BUILD)/install
	$(CC) $(CFLAGS) -I$(BUILD)/install/usr/include c-examples/hello_host.c \
	  -L$(BUILD)/install/usr/lib64 -lgateway -Wl,-rpath,$(CURDIR)/$(BUILD)/install/usr/lib64 -o $(BUILD)/hello_installed
	$(BUILD)/hello_installed | grep -q 'Hello, /world!'
	@readelf -d $(BUILD)/install/usr/lib64/libgateway.so.$(VERSION) | grep -q 'SONAME.*\[$(SONAME)\]' \
	  || { echo "the library's soname is not $(SONAME)"; exit 1; }
	@readelf -d $(BUILD)/hello_installed | grep -q 'NEEDED.*\[$(SONAME)\]' || { echo "not linked by soname"; exit 1; }
	@test "$$(readlink $(BUILD)/install/usr/lib64/$(SONAME))" = libgateway.so.$(VERSION) \
	  && test "$$(readlink $(BUILD)/install/usr/lib64/libgateway.so)" = $(SONAME) \
	  || { echo "the symlinks are not libgateway.so -> $(SONAME) -> libgateway.so.$(VERSION)"; exit 1; }
	@echo "install: header, libgateway.so.$(VERSION) (soname $(SONAME)), libgateway.a and gateway.pc usable"

# Installs the header, the shared library as libgateway.so.VERSION with its soname and
# development links, the static library and a pkg-config file.
install: lib
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 644 include/gateway.h $(DESTDIR)$(INCLUDEDIR)/gateway.h
	install -m 755 $(RELEASE)/libgateway.so $(DESTDIR)$(LIBDIR)/libgateway.so.$(VERSION)
	ln -sf libgateway.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libgateway.so
	install -m 644 $(RELEASE)/libgateway.a $(DESTDIR)$(LIBDIR)/libgateway.a
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' \
	  'Name: gateway' 'Description: Embeddable WSGI-style gateway runtime' 'Version: $(VERSION)' \
	  'Libs: -L$${libdir} -lgateway' 'Libs.private: $(STATIC_LIBS)' 'Cflags: -I$${includedir}' \
	  > $(DESTDIR)$(LIBDIR)/pkgconfig/gateway.pc

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
