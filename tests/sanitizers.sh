#!/usr/bin/env bash
# Sanitizer builds of both sides of the C ABI, and Miri over the Rust tests.
#
#   bash tests/sanitizers.sh [asan] [tsan] [miri]     (no argument: asan tsan)
#
#   asan  The library built with -Zsanitizer=address into its own target dir (target/asan);
#         the C harness (tests/test_gateway.c tests/host.c) and tests/test_threads.c built
#         with -fsanitize=address,undefined and linked with it (the harness against both
#         libgateway.a and libgateway.so); run with leak detection on.
#   tsan  The library and Rust's std (-Zbuild-std) built with -Zsanitizer=thread (target/tsan);
#         tests/test_threads.c and the C harness built with -fsanitize=thread and linked with
#         rustc's own TSan runtime; run with halt_on_error.
#   miri  cargo +nightly miri test over the unit tests (--lib) and every tests/ffi_*.rs
#         (target/miri).
#
# Before running the tests, each sanitizer part proves that the library really is
# instrumented (every object of libgateway.a that defines a gw_* function calls the
# sanitizer's checks) and that bugs planted on purpose (tests/sanitizers_canary.c), in the C
# code and inside the library, are reported. Any sanitizer report, test failure, timeout or
# failed check exits non-zero. Logs and binaries go to build/sanitizers/.
#
# Needs, on Debian: build-essential (gcc 12 with its libasan and libubsan), libcmocka-dev,
# binutils (nm, readelf; addr2line symbolizes TSan reports when llvm-symbolizer is absent),
# llvm (llvm-symbolizer, for TSan reports with columns), coreutils' timeout; a Rust toolchain
# installed by rustup:
#   asan: the default toolchain (RUSTC_BOOTSTRAP=1 unlocks the -Z flags on stable);
#   tsan: a toolchain with the rust-src component, for -Zbuild-std: the default one if it has
#         it, else nightly; skipped with a message when neither has it;
#   miri: the nightly toolchain with the miri and rust-src components; skipped with a
#         message when `cargo +nightly miri` is unavailable.
# GW_SANITIZERS_REQUIRE=1 turns those two skips into failures.
#
# Knobs (environment): THREADS_REQUESTS (requests per worker thread in test_threads; default
# 2000 under ASan, 5000 under TSan), TEST_TIMEOUT (seconds per test program, default 300),
# MIRI_TIMEOUT (seconds, default 1200), MIRIFLAGS (default -Zmiri-disable-isolation),
# CARGO (default cargo), SANITIZER_CC (default gcc: the runtime choices below are gcc's),
# HARNESS_SOURCES (the C harness's sources, default tests/test_gateway.c tests/host.c).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

CARGO="${CARGO:-cargo}"
SCC="${SANITIZER_CC:-gcc}"
REQUIRE="${GW_SANITIZERS_REQUIRE:-0}"
TEST_TIMEOUT="${TEST_TIMEOUT:-300}"
CFLAGS=(-std=c99 -Wall -Wextra -Wpedantic -Werror -O1 -g -fno-omit-frame-pointer
        -D_POSIX_C_SOURCE=200809L -Iinclude)
# What `cargo rustc -- --print native-static-libs` reports for the static library.
STATIC_LIBS=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
# The C harness: the Makefile's TEST_SOURCES (pass HARNESS_SOURCES="$(TEST_SOURCES)" from make).
read -r -a HARNESS <<<"${HARNESS_SOURCES:-tests/test_gateway.c tests/host.c}"
OUT="$root/build/sanitizers"
PASSED=0

say() { printf '%s\n' "$*"; }
die() {
    printf 'sanitizers: FAILED: %s\n' "$*" >&2
    say "sanitizers: $PASSED passed, 1 failed"
    exit 1
}
pass() { PASSED=$((PASSED + 1)); say "  $*"; }
skip() {
    say "$1: skipped: $2"
    if [ "$REQUIRE" = 1 ]; then die "$1 is required (GW_SANITIZERS_REQUIRE=1) but was skipped"; fi
}
clock() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(clock)" 'BEGIN { printf "%.1f s", b - a }'; }

command -v "$SCC" >/dev/null || die "$SCC is not installed (apt-get install build-essential)"
case "$("$SCC" --version 2>/dev/null)" in
*gcc* | *GCC*) ;;
*) die "SANITIZER_CC=$SCC is not gcc: the runtimes chosen here are gcc's libasan and rustc's TSan runtime" ;;
esac
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"

# Lines any sanitizer prints when it reports; their presence fails a run whatever its exit code.
REPORT_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|WARNING: ThreadSanitizer|ThreadSanitizer: reported'

# run LABEL LOG CMD...: runs a test program; fails on a non-zero exit, a timeout or any
# sanitizer report.
run() {
    local label="$1" log="$2"
    shift 2
    local rc=0 t0
    t0="$(clock)"
    timeout "$TEST_TIMEOUT" "$@" >"$log" 2>&1 || rc=$?
    local reported=""
    if grep -qE "$REPORT_RE" "$log"; then reported=", with a sanitizer report (above)"; fi
    if [ "$rc" -ne 0 ] || [ -n "$reported" ]; then
        sed -n '1,200p' "$log" >&2
        [ "$rc" -ne 124 ] || reported="$reported, timed out after $TEST_TIMEOUT s"
        die "$label: exit code $rc$reported (full log: $log)"
    fi
    pass "$label: ok in $(since "$t0") ($(grep -E 'PASSED|passed, .* failed|^test_threads:' "$log" | tr '\n' ' '))"
}

# expect_report LABEL LOG PATTERN CMD...: runs a planted bug; fails unless it exits non-zero
# with a sanitizer report matching PATTERN (an extended regex).
expect_report() {
    local label="$1" log="$2" pattern="$3"
    shift 3
    local rc=0
    timeout "$TEST_TIMEOUT" "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || ! grep -qE "$pattern" "$log"; then
        sed -n '1,80p' "$log" >&2
        die "self-check $label: the planted bug was not reported (exit $rc, wanted /$pattern/; log: $log)"
    fi
}
summary_of() {
    grep -m1 -oE 'SUMMARY: [A-Za-z]+Sanitizer: [^/]{1,60}|runtime error: [^(]{1,60}' "$1" || true
}

# check_instrumented LIB REGEX WHAT: every object in the static library that defines an
# exported gw_* function must call a symbol matching REGEX (the sanitizer's checks).
check_instrumented() {
    local lib="$1" regex="$2" what="$3"
    local table
    table="$(nm -A "$lib" 2>/dev/null | awk -v re="$regex" '
        { n = split($1, p, ":"); m = p[n - 1] }
        $2 == "T" && $3 ~ /^gw_/ { def[m] += 1 }
        $2 == "U" && $3 ~ re { inst[m] += 1 }
        END { for (m in def) printf "%s %d %d\n", m, def[m], inst[m] + 0 }')"
    [ -n "$table" ] || die "$what: no object in $lib defines a gw_* function"
    local objects functions bare
    objects="$(printf '%s\n' "$table" | wc -l)"
    functions="$(printf '%s\n' "$table" | awk '{ s += $2 } END { print s }')"
    bare="$(printf '%s\n' "$table" | awk '$3 == 0 { printf "%s ", $1 }')"
    if [ -n "$bare" ]; then
        die "$what: the library is not instrumented: these objects of $lib define gw_* functions but never call /$regex/: $bare"
    fi
    pass "instrumented: all $objects objects of $(basename "$lib") that define the $functions gw_* functions call /$regex/"
}

has_rust_src() {
    local sysroot
    sysroot="$(rustc ${1:+"+$1"} --print sysroot 2>/dev/null)" &&
        [ -f "$sysroot/lib/rustlib/src/rust/library/Cargo.lock" ]
}

# ---- AddressSanitizer + UBSan ------------------------------------------------------------------
asan() {
    local t0 t
    t0="$(clock)"
    say "== asan: the library with -Zsanitizer=address, the C side with -fsanitize=address,undefined"
    local dir="$OUT/asan" target="$root/target/asan"
    mkdir -p "$dir"
    # std is not rebuilt (no -Zbuild-std, so the default toolchain needs no rust-src): ASan
    # has no false positives from uninstrumented code, and std's generic code (Vec, slices,
    # Box, Arc, String, the iterators) is instrumented where the library instantiates it. Only
    # accesses inside std's precompiled functions go unchecked (the allocator is libasan's
    # malloc either way, and memcpy & co. are intercepted). Legacy symbol mangling, because
    # gcc's libasan demangles C++-style names but not Rust's v0 ones.
    t="$(clock)"
    RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target" \
        RUSTFLAGS="-Zsanitizer=address -Cunsafe-allow-abi-mismatch=sanitizer -Cforce-frame-pointers=yes -Zunstable-options -Csymbol-mangling-version=legacy" \
        "$CARGO" build --release --quiet --target "$TRIPLE"
    say "  built the library in $(since "$t") ($target)"
    local libdir="$target/$TRIPLE/release"
    check_instrumented "$libdir/libgateway.a" '^__asan_report_' asan

    # One ASan runtime in the process: gcc's libasan, which -fsanitize=address links. It is
    # the runtime of the C side's instrumentation, UBSan's comes with it, and it provides every
    # __asan_* entry point the rustc-instrumented objects call. The instrumentation ABI version
    # the Rust objects check at start-up must be the one it has.
    local want_version runtime
    want_version="$(nm "$libdir/libgateway.a" 2>/dev/null | grep -oE '__asan_version_mismatch_check_v[0-9]+' | sort -u || true)"
    [ -n "$want_version" ] || die "asan: libgateway.a does not name its ASan ABI version"
    runtime="$(readlink -f "$("$SCC" -print-file-name=libasan.so)")"
    nm -D --defined-only "$runtime" 2>/dev/null | grep -w "$want_version" >/dev/null ||
        die "asan: $runtime lacks $want_version, the ABI the library was instrumented for (a newer gcc's libasan, or clang's runtime, is needed)"
    pass "runtime: $(basename "$runtime") from $SCC, ASan ABI ${want_version##*_} as the Rust objects expect"

    t="$(clock)"
    local san=("-fsanitize=address,undefined" "-fno-sanitize-recover=all")
    "$SCC" "${CFLAGS[@]}" "${san[@]}" tests/sanitizers_canary.c "$libdir/libgateway.a" "${STATIC_LIBS[@]}" -o "$dir/canary"
    "$SCC" "${CFLAGS[@]}" "${san[@]}" "${HARNESS[@]}" "$libdir/libgateway.a" -lcmocka "${STATIC_LIBS[@]}" \
        -o "$dir/test_static"
    # The shared library is loaded by its soname, as the Makefile's lib target links it.
    local soname
    soname="$(readelf -d "$libdir/libgateway.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
    [ -z "$soname" ] || ln -sf libgateway.so "$libdir/$soname"
    "$SCC" "${CFLAGS[@]}" "${san[@]}" "${HARNESS[@]}" -L"$libdir" -lgateway -Wl,-rpath,"$libdir" -lcmocka \
        -o "$dir/test_shared"
    "$SCC" "${CFLAGS[@]}" "${san[@]}" tests/test_threads.c "$libdir/libgateway.a" "${STATIC_LIBS[@]}" \
        -o "$dir/test_threads"
    say "  compiled and linked the C programs in $(since "$t")"

    export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1:strict_string_checks=1"
    export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
    export LSAN_OPTIONS="report_objects=1"

    # A read one byte past a C buffer, made by the library: it must be caught in the library's
    # own code (frame #0 an instrumented load, not an interceptor such as memcpy, and the
    # library's functions at the top of the stack). Without the Rust side instrumented,
    # nothing reports this read at all.
    expect_report asan-rust "$dir/canary-rust.log" 'ERROR: AddressSanitizer: heap-buffer-overflow' "$dir/canary" asan-rust
    local top
    top="$(grep -m2 -E '^ +#[01] ' "$dir/canary-rust.log" || true)"
    if grep -m1 -E '^ +#0 ' <<<"$top" | grep -E '__interceptor|__asan_|in (mem|str|bcmp|wmem)' >/dev/null ||
        ! grep -E 'gateway::' <<<"$top" >/dev/null; then
        die "self-check asan-rust: the read was not caught in the library's code: $top"
    fi
    pass "self-check asan-rust: reported in the library's code: $(summary_of "$dir/canary-rust.log")"
    expect_report asan-leak "$dir/canary-leak.log" 'ERROR: LeakSanitizer: detected memory leaks' "$dir/canary" asan-leak
    grep -qE 'gw_environ_(new|set)' "$dir/canary-leak.log" ||
        die "self-check asan-leak: the leak's stack does not name the library's allocation"
    pass "self-check asan-leak: reported: $(summary_of "$dir/canary-leak.log")"
    expect_report ubsan-c "$dir/canary-ubsan.log" 'runtime error: signed integer overflow' "$dir/canary" ubsan-c x
    pass "self-check ubsan-c: reported: $(summary_of "$dir/canary-ubsan.log")"

    run "C harness, static" "$dir/test_static.log" "$dir/test_static"
    run "C harness, shared" "$dir/test_shared.log" "$dir/test_shared"
    run "test_threads" "$dir/test_threads.log" "$dir/test_threads" "${THREADS_REQUESTS:-2000}"
    say "asan: passed in $(since "$t0")"
}

# ---- ThreadSanitizer ---------------------------------------------------------------------------
tsan() {
    local t0 t
    t0="$(clock)"
    say "== tsan: the library and std with -Zsanitizer=thread, the C side with -fsanitize=thread"
    # TSan must see the synchronisation inside std (Arc's reference counts, which use fences
    # unless std itself is built for TSan, thread-locals, std's locks), or it may report
    # races that are not there: std is rebuilt with the sanitizer, and -Zbuild-std needs the
    # rust-src component.
    local toolchain="" plus=()
    if has_rust_src ""; then
        toolchain="$(rustup show active-toolchain 2>/dev/null | awk '{ print $1 }' || true)"
        toolchain="${toolchain:-default}"
    elif has_rust_src nightly; then
        toolchain=nightly
        plus=(+nightly)
    else
        skip tsan "no toolchain has the rust-src component that -Zbuild-std needs (rustup component add rust-src)"
        return 0
    fi
    local dir="$OUT/tsan" target="$root/target/tsan"
    mkdir -p "$dir"
    t="$(clock)"
    RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target" \
        RUSTFLAGS="-Zsanitizer=thread -Cunsafe-allow-abi-mismatch=sanitizer -Cforce-frame-pointers=yes" \
        "$CARGO" ${plus[@]+"${plus[@]}"} build --release --quiet -Zbuild-std --target "$TRIPLE"
    say "  built std and the library in $(since "$t") ($target, toolchain $toolchain)"
    local libdir="$target/$TRIPLE/release"
    check_instrumented "$libdir/libgateway.a" '^__tsan_(read|write|func_entry)' tsan
    local std_objects
    std_objects="$(nm -A "$libdir/libgateway.a" 2>/dev/null | awk '$NF == "__tsan_func_entry"' | grep -c ':std-' || true)"
    [ "${std_objects:-0}" -gt 0 ] || die "tsan: std in libgateway.a is not instrumented (-Zbuild-std did not take)"
    pass "std instrumented too: $std_objects objects of std call __tsan_func_entry"

    # The runtime: rustc's own (compiler-rt of the LLVM that instrumented the library). gcc's
    # libtsan is older and lacks entry points that LLVM now emits (__tsan_memcpy,
    # __tsan_memset, __tsan_memmove), and two TSan runtimes cannot share a process. So the C
    # side is compiled with gcc's -fsanitize=thread (the instrumentation only) and linked
    # without it, against rustc's runtime, whole.
    local runtime="" libs candidate
    libs="$(rustc ${plus[@]+"${plus[@]}"} --print target-libdir)"
    for candidate in "$libs"/librustc-*_rt.tsan.a; do
        if [ -f "$candidate" ]; then runtime="$candidate"; break; fi
    done
    [ -n "$runtime" ] || die "tsan: rustc's TSan runtime (librustc-*_rt.tsan.a) is not in $libs"
    t="$(clock)"
    local link=("-Wl,--whole-archive" "$runtime" "-Wl,--no-whole-archive") src
    for src in tests/sanitizers_canary.c tests/test_threads.c "${HARNESS[@]}"; do
        "$SCC" "${CFLAGS[@]}" -fsanitize=thread -c "$src" -o "$dir/$(basename "$src" .c).o"
    done
    local harness_objects=()
    for src in "${HARNESS[@]}"; do harness_objects+=("$dir/$(basename "$src" .c).o"); done
    "$SCC" -g "$dir/sanitizers_canary.o" "$libdir/libgateway.a" "${link[@]}" "${STATIC_LIBS[@]}" -o "$dir/canary"
    "$SCC" -g "$dir/test_threads.o" "$libdir/libgateway.a" "${link[@]}" "${STATIC_LIBS[@]}" -o "$dir/test_threads"
    "$SCC" -g "${harness_objects[@]}" "$libdir/libgateway.a" -lcmocka "${link[@]}" "${STATIC_LIBS[@]}" \
        -o "$dir/test_static"
    say "  compiled and linked the C programs in $(since "$t")"
    nm "$dir/test_threads" | grep -w __tsan_init >/dev/null || die "tsan: test_threads has no TSan runtime"
    pass "runtime: $(basename "$runtime") from the $toolchain toolchain, linked into each program"

    # Reports name functions through llvm-symbolizer (Debian's llvm), or addr2line without it.
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:allow_addr2line=1"
    expect_report tsan-c "$dir/canary-c.log" 'WARNING: ThreadSanitizer: data race' "$dir/canary" tsan-c
    grep -q canary_c_race "$dir/canary-c.log" || die "self-check tsan-c: the report does not name the racing function"
    pass "self-check tsan-c: reported: $(summary_of "$dir/canary-c.log")"
    # Two threads changing one handler's setting: the racing writes are inside the library,
    # so only an instrumented library reports them.
    expect_report tsan-rust "$dir/canary-rust.log" 'WARNING: ThreadSanitizer: data race' "$dir/canary" tsan-rust
    grep -m1 -E '^ +#0 ' "$dir/canary-rust.log" | grep -E 'gateway::|gw_handler' >/dev/null ||
        die "self-check tsan-rust: the race was not seen in the library's code: $(grep -m1 -E '^ +#0 ' "$dir/canary-rust.log")"
    pass "self-check tsan-rust: reported in the library's code: $(summary_of "$dir/canary-rust.log")"

    run "test_threads" "$dir/test_threads.log" "$dir/test_threads" "${THREADS_REQUESTS:-5000}"
    run "C harness, static" "$dir/test_static.log" "$dir/test_static"
    say "tsan: passed in $(since "$t0")"
}

# ---- Miri --------------------------------------------------------------------------------------
# Miri interprets every step (some 1000x slower than a release build): the long environ tests
# run fewer rounds under cfg!(miri). Skipped: the input tests (every one drives the read paths
# over bodies byte by byte, at every split or cut, or reads a body ahead through a spool) and
# the spool tests (a body through memory, then a temporary file, and back). Input and Spool are safe code (no unsafe, no raw pointers), their 8-64 KiB
# buffers and file round trips make each case minutes long under Miri (the two read-ahead
# tests alone took 12 minutes), and they run natively in make test; Miri's job here is the ABI
# (tests/ffi_*.rs) and the core's other units.
MIRI_SKIP=(
    input::tests::
    spool::tests::
)

miri() {
    local t0
    t0="$(clock)"
    say "== miri: cargo +nightly miri test (the unit tests and tests/ffi_*.rs)"
    if ! "$CARGO" +nightly miri --version >/dev/null 2>&1; then
        skip miri "cargo +nightly miri is not available (rustup toolchain install nightly --component miri rust-src)"
        return 0
    fi
    local targets=(--lib) f
    for f in tests/ffi_*.rs; do
        [ -e "$f" ] && targets+=(--test "$(basename "$f" .rs)")
    done
    local skips=() s
    for s in "${MIRI_SKIP[@]}"; do skips+=(--skip "$s"); done
    say "  targets: ${targets[*]}"
    [ "${#MIRI_SKIP[@]}" -eq 0 ] || say "  skipped as too slow under Miri: ${MIRI_SKIP[*]}"
    # Isolation off: the tests read the clock (the Date cache) and the process environment.
    export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"
    local target="$root/target/miri" log="$OUT/miri.log" rc=0
    mkdir -p "$OUT"
    CARGO_TARGET_DIR="$target" "$CARGO" +nightly miri setup >"$OUT/miri-setup.log" 2>&1 ||
        { cat "$OUT/miri-setup.log" >&2; die "miri: cargo miri setup failed"; }
    CARGO_TARGET_DIR="$target" timeout "${MIRI_TIMEOUT:-1200}" \
        "$CARGO" +nightly miri test "${targets[@]}" -- "${skips[@]}" >"$log" 2>&1 || rc=$?
    grep -E '^test result|^ +Running' "$log" | sed 's/^ */  /' || true
    if [ "$rc" -eq 124 ]; then
        die "miri: timed out after ${MIRI_TIMEOUT:-1200} s: a test is too slow under Miri; add it to MIRI_SKIP in tests/sanitizers.sh (log: $log)"
    fi
    if [ "$rc" -ne 0 ] || grep -qE 'Undefined Behavior|error: unsupported operation' "$log"; then
        grep -B2 -A40 -m3 -E 'Undefined Behavior|error: unsupported operation|panicked' "$log" >&2 || tail -60 "$log" >&2
        die "miri: exit code $rc (full log: $log)"
    fi
    pass "miri: no undefined behaviour, every test passed (MIRIFLAGS=$MIRIFLAGS)"
    say "miri: passed in $(since "$t0")"
}

parts=("$@")
[ "${#parts[@]}" -gt 0 ] || parts=(asan tsan)
for part in "${parts[@]}"; do
    case "$part" in
    asan | tsan | miri) ;;
    *) die "unknown part '$part' (asan, tsan, miri)" ;;
    esac
done
for part in "${parts[@]}"; do "$part"; done
if [ "$PASSED" -gt 0 ]; then
    say "sanitizers: $PASSED passed, 0 failed"
else
    say "sanitizers: nothing ran (${parts[*]} skipped)"
fi
