#!/bin/sh
# Runs c-examples/mhd_host (gateway behind libmicrohttpd, through the structured hooks) on a
# free loopback port and checks its answers with curl: heads, framing (Content-Length,
# chunked, HEAD), the error page, the request body, the CGI variables, a body cut short, and
# that a streamed body goes out while the application writes it. Then SIGTERM and the time
# limit stop the host.
# Usage: tests/mhd_host.sh BUILD_DIR (which holds mhd_host)
set -eu
build=${1:?usage: mhd_host.sh BUILD_DIR}
command -v curl > /dev/null || { echo "mhd_host.sh: curl is needed"; exit 1; }
work=$(mktemp -d)
host_pid=
cleanup() {
    if [ -n "$host_pid" ]; then kill -KILL "$host_pid" 2> /dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); echo "FAILED: $1"; }

same() { # name, expected file, actual file
    if cmp -s "$2" "$3"; then ok "$1"; else
        fail "$1"
        echo "--- expected"; od -c "$2" 2> /dev/null | head -10
        echo "--- got"; od -c "$3" 2> /dev/null | head -10
    fi
}
show() { cat "$1" 2> /dev/null || true; }
contains() { # name, file, fixed string
    if grep -qF -- "$3" "$2" 2> /dev/null; then ok "$1"; else fail "$1: '$3' not in $2:"; show "$2"; fi
}
lacks() { # name, file, fixed string
    if grep -qF -- "$3" "$2" 2> /dev/null; then fail "$1: '$3' unexpectedly in $2"; else ok "$1"; fi
}
matches() { # name, file, extended regular expression for a whole line
    if grep -qE -- "^$3\$" "$2" 2> /dev/null; then ok "$1"; else fail "$1: no line '$3' in $2:"; show "$2"; fi
}
equals() { # name, expected, actual
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: expected '$2', got '$3'"; fi
}
# curl, bounded; a failure is reported and left to the checks that follow.
get() { curl -sS --max-time 10 "$@" || echo "(curl exited with $?)" >&2; }
# curl's header dump without the CRs.
head_of() {
    : > "$work/raw.head"
    get -D "$work/raw.head" "$@"
    tr -d '\r' < "$work/raw.head" > "$work/head"
}

start_host() { # seconds: starts mhd_host on a free port, sets host_pid and url
    : > "$work/host.out" # exists before the host's own redirection, which runs in the background
    "$build/mhd_host" 0 "$1" > "$work/host.out" 2> "$work/host.err" &
    host_pid=$!
    port=
    tries=0
    while [ -z "$port" ] && [ "$tries" -lt 50 ]; do
        sleep 0.1
        port=$(sed -n 's/^Serving HTTP on 127.0.0.1 port \([0-9]*\) .*/\1/p' "$work/host.out")
        tries=$((tries + 1))
    done
    [ -n "$port" ] || { echo "FAILED: mhd_host did not start"; cat "$work/host.err"; exit 1; }
    url="http://127.0.0.1:$port"
}

stopped_within() { # tenths of a second: whether the host exited by then (reaped, status kept)
    tries=0
    while [ "$tries" -lt "$1" ]; do
        if ! kill -0 "$host_pid" 2> /dev/null; then
            host_status=0
            wait "$host_pid" || host_status=$?
            host_pid=
            return 0
        fi
        sleep 0.1
        tries=$((tries + 1))
    done
    return 1
}

start_host 60

# ---- /hello: the head as the library built it, MHD's Content-Length ----------------------
head_of -o "$work/body" "$url/hello"
equals "hello: status line" "HTTP/1.1 200 OK" "$(head -n 1 "$work/head")"
contains "hello: Content-Length from the head's length" "$work/head" "Content-Length: 13"
contains "hello: the library's Server header" "$work/head" "Server: gateway-mhd/"
contains "hello: the app's header" "$work/head" "Content-Type: text/plain"
equals "hello: exactly one Date (the library's; MHD adds none)" 1 "$(grep -c '^Date: ' "$work/head")"
printf 'Hello, world!' > "$work/want"
same "hello: body" "$work/want" "$work/body"

# ---- HEAD keeps the length and sends no body: a GET on the same connection still parses --
conns=$(get -I -o "$work/raw.head" "$url/hello" \
    --next -sS --max-time 10 -o "$work/body" -w '%{num_connects}' "$url/hello")
tr -d '\r' < "$work/raw.head" > "$work/head"
equals "HEAD: status line" "HTTP/1.1 200 OK" "$(head -n 1 "$work/head")"
contains "HEAD: keeps Content-Length 13" "$work/head" "Content-Length: 13"
equals "HEAD: the next request reused the connection" 0 "$conns"
same "HEAD: no body bytes before the next response" "$work/want" "$work/body"

# HEAD of a body of unknown length: nothing after the head. MHD 0.9.75 would send a last
# chunk there, which the next response on the connection would then start with; `-X HEAD
# --raw` makes curl read and keep whatever follows the head.
: > "$work/body"
head_of -X HEAD --raw -o "$work/body" "$url/stream" 2> /dev/null
lacks "HEAD of a stream: no Content-Length" "$work/head" "Content-Length"
equals "HEAD of a stream: nothing after the head" 0 "$(wc -c < "$work/body" | tr -d ' ')"

# ---- /reason: the status code reaches the client; its phrase cannot ------------------------
head_of -o /dev/null "$url/reason"
# MHD 0.9.75 writes its own phrase for the code (no API takes the app's): if this line ever
# becomes "HTTP/1.1 299 Custom Reason", update the check and the comment in mhd_host.c.
equals "reason: 299 reaches the client, with MHD's phrase (the app's cannot)" \
    "HTTP/1.1 299 Non-Standard Status" "$(head -n 1 "$work/head")"

# ---- /stream: 200 blocks of 1 KiB, unknown length: chunked by MHD, whole ------------------
awk 'BEGIN { for (i = 0; i < 200; i++) { c = sprintf("%c", 97 + i % 26); s = ""
             for (j = 0; j < 1023; j++) s = s c; print s } }' > "$work/stream.want"
head_of -o "$work/body" "$url/stream"
contains "stream: Transfer-Encoding: chunked" "$work/head" "Transfer-Encoding: chunked"
lacks "stream: no Content-Length" "$work/head" "Content-Length"
same "stream: the whole body" "$work/stream.want" "$work/body"
get --raw -o "$work/raw" "$url/stream"
equals "stream: ends with the last chunk" "$(printf '0\r\n\r\n' | od -An -c)" \
    "$(tail -c 5 "$work/raw" | od -An -c)"
head_of -0 -o "$work/body" "$url/stream"
contains "stream to HTTP/1.0: closed, not chunked" "$work/head" "Connection: close"
same "stream to HTTP/1.0: the whole body" "$work/stream.want" "$work/body"

# ---- a body cut short: no last chunk, the client sees the error ---------------------------
rc=0
curl -sS --max-time 10 --raw -o "$work/raw" "$url/cut" 2> /dev/null || rc=$?
equals "cut: curl reports the transfer cut short (18)" 18 "$rc"
equals "cut: what was written arrived" "$(printf '8\r\npartial\n\r\n' | od -An -c)" \
    "$(od -An -c "$work/raw")"

# ---- /fail: the library's error page ------------------------------------------------------
head_of -o "$work/body" "$url/fail"
equals "fail: status line" "HTTP/1.1 500 Internal Server Error" "$(head -n 1 "$work/head")"
contains "fail: Content-Length 59" "$work/head" "Content-Length: 59"
printf 'A server error occurred.  Please contact the administrator.' > "$work/want"
same "fail: the 59-byte body" "$work/want" "$work/body"

# ---- /hints: 103 is skipped (no send_interim), the response goes out ---------------------
get -si -o "$work/raw" "$url/hints"
tr -d '\r' < "$work/raw" > "$work/all"
equals "hints: the first line is the final response" "HTTP/1.1 200 OK" "$(head -n 1 "$work/all")"
lacks "hints: no 103" "$work/all" " 103 "
contains "hints: body" "$work/all" "hints"

# ---- /echo: the request body, buffered by the host, through wsgi.input --------------------
printf 'hello, echo' > "$work/want"
get -o "$work/body" --data-binary @"$work/want" "$url/echo"
same "echo: a POST body" "$work/want" "$work/body"
get -o "$work/body" -H 'Transfer-Encoding: chunked' --data-binary @"$work/want" "$url/echo"
same "echo: a chunked upload (MHD de-chunks it)" "$work/want" "$work/body"
get -o "$work/body" -H 'Expect: 100-continue' --data-binary @"$work/want" "$url/echo"
same "echo: Expect: 100-continue (answered by MHD, not the library)" "$work/want" "$work/body"
dd if=/dev/zero bs=1024 count=1024 2> /dev/null > "$work/mib"
get -o "$work/body" --data-binary @"$work/mib" "$url/echo"
same "echo: 1 MiB, the limit" "$work/mib" "$work/body"
printf 'x' >> "$work/mib"
equals "echo: one byte more is 413" 413 \
    "$(get -o /dev/null -w '%{http_code}' --data-binary @"$work/mib" "$url/echo")"
equals "echo: a chunked upload over the limit is 413" 413 \
    "$(get -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$work/mib" "$url/echo")"

# ---- /environ: the CGI variables the host gathered ----------------------------------------
get -o "$work/body" -H 'X-Test: one' -H 'X-Test: two' -H 'X_Test: underscore' \
    -H 'Proxy: http://evil' -H 'Expect: 100-continue' "$url/environ/a%20b?x=1&y=%20"
contains "environ: PATH_INFO percent-decoded" "$work/body" "PATH_INFO = /environ/a b"
contains "environ: QUERY_STRING raw" "$work/body" "QUERY_STRING = x=1&y=%20"
contains "environ: SERVER_PROTOCOL" "$work/body" "SERVER_PROTOCOL = HTTP/1.1"
contains "environ: REMOTE_ADDR" "$work/body" "REMOTE_ADDR = 127.0.0.1"
contains "environ: SERVER_PORT" "$work/body" "SERVER_PORT = $port"
contains "environ: repeated headers joined" "$work/body" "HTTP_X_TEST = one, two"
lacks "environ: X_Test cannot pose as X-Test" "$work/body" "underscore"
lacks "environ: no HTTP_PROXY" "$work/body" "HTTP_PROXY"
lacks "environ: no HTTP_EXPECT" "$work/body" "HTTP_EXPECT"
get -o "$work/body" -H 'Content-Type: text/x-test' --data-binary 'abc' "$url/environ"
contains "environ: CONTENT_LENGTH" "$work/body" "CONTENT_LENGTH = 3"
contains "environ: CONTENT_TYPE" "$work/body" "CONTENT_TYPE = text/x-test"

# ---- a streamed body is not buffered whole ------------------------------------------------
# /slow writes a line at once, then one every half second for 2 s. Given 1 s, the client must
# already hold the first line; a host that buffered the whole body would have sent nothing.
rc=0
curl -sSN --max-time 1 -o "$work/slow" "$url/slow" 2> /dev/null || rc=$?
equals "slow: the client gave up after 1 s (28)" 28 "$rc"
contains "slow: the first line arrived before the body ended" "$work/slow" "tick 0"
get -o "$work/body" "$url/hello"
contains "the host serves on after a client left mid-stream" "$work/body" "Hello, world!"

# ---- SIGTERM stops it; the log tells what happened ----------------------------------------
kill -TERM "$host_pid"
if stopped_within 100; then
    equals "SIGTERM: exit status 0" 0 "$host_status"
else
    fail "SIGTERM: mhd_host still running after 10 s"
fi
contains "log: the app's reason phrase reached the host" "$work/host.err" \
    "GET /reason HTTP/1.1 -> 299 Custom Reason"
contains "log: the app's failure" "$work/host.err" "gateway: application error: /fail always fails"
matches "log: the cut body" "$work/host.err" "GET /cut HTTP/1.1 -> 200 OK, 8 body bytes: response cut short.*"
matches "log: the client that left /slow" "$work/host.err" \
    "GET /slow HTTP/1.1 -> 200 OK, [0-9]+ body bytes: client went away"
contains "log: stopped by the signal" "$work/host.err" "mhd_host: signal, stopping"

# ---- the time limit stops it too ----------------------------------------------------------
start_host 1
if stopped_within 100; then
    equals "time limit: exit status 0" 0 "$host_status"
    contains "time limit: logged" "$work/host.err" "mhd_host: time limit, stopping"
else
    fail "time limit: mhd_host still running 10 s after its 1 s limit"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
