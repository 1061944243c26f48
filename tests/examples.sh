#!/bin/sh
# Runs the C examples as a user would and checks their bytes:
#  - hello_cgi under a CGI environment (stdout compared byte for byte);
#  - demo_server on a free loopback port, requested with curl, then stopped with SIGTERM
#    (tests/demo_server.py puts it through keep-alive, pipelining, h11 and attacks).
# Usage: tests/examples.sh BUILD_DIR
set -eu
build=${1:?usage: examples.sh BUILD_DIR}
work=$(mktemp -d)
demo_pid=
cleanup() {
    if [ -n "$demo_pid" ]; then kill "$demo_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
passed=0
failed=0

check() { # name, expected file, actual file
    if cmp -s "$2" "$3"; then
        passed=$((passed + 1))
        echo "ok: $1"
    else
        failed=$((failed + 1))
        echo "FAILED: $1"
        echo "--- expected"; od -c "$2" | head -20
        echo "--- got"; od -c "$3" | head -20
    fi
}

contains() { # name, file, fixed string
    if grep -qF -- "$3" "$2"; then
        passed=$((passed + 1))
        echo "ok: $1"
    else
        failed=$((failed + 1))
        echo "FAILED: $1: '$3' not in $2:"
        head -40 "$2"
    fi
}

lacks() { # name, file, fixed string
    if grep -qF -- "$3" "$2"; then
        failed=$((failed + 1))
        echo "FAILED: $1: '$3' unexpectedly in $2"
    else
        passed=$((passed + 1))
        echo "ok: $1"
    fi
}

# ---- hello_host (the README's tour) -----------------------------------------------------------
"$build/hello_host" > "$work/host.out"
printf 'Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n\r\nHello, /world!\n' > "$work/host.want"
check "hello_host prints its response" "$work/host.want" "$work/host.out"
# The README shows the file itself (from its first #include), and its build lines run as written.
sed -n '/^This complete program is/,/^It prints/p' README.md | sed -n '/^```c$/,/^```$/p' | sed '1d;$d' > "$work/readme.c"
sed -n '/^#include/,$p' c-examples/hello_host.c > "$work/file.c"
check "the README's tour is c-examples/hello_host.c" "$work/file.c" "$work/readme.c"
sed -n '/^Build and run it after/,/^```$/p' README.md | grep '^cc ' > "$work/build-lines"
contains "the README shows two build lines" "$work/build-lines" "-Wl,-rpath"
n=0
while IFS= read -r line; do
    n=$((n + 1))
    (cd "$work" && ln -sf "$OLDPWD/include" . && ln -sf "$OLDPWD/target" . && ln -sf "$OLDPWD/c-examples" . &&
        sh -c "$line" > "readme-run-$n.out" 2>&1) || true
    check "README build line $n runs as written" "$work/host.want" "$work/readme-run-$n.out"
done < "$work/build-lines"

# ---- hello_cgi ------------------------------------------------------------------------------
printf 'abcdeNOT-THE-BODY' |
    env -i REQUEST_METHOD=POST PATH_INFO=/you CONTENT_LENGTH=5 SERVER_PROTOCOL=HTTP/1.0 \
    "$build/hello_cgi" > "$work/cgi.out"
printf 'Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 37\r\n\r\nHello, /you!\nYou sent 5 bytes: abcde\n' > "$work/cgi.want"
check "hello_cgi answers a POST" "$work/cgi.want" "$work/cgi.out"

env -i REQUEST_METHOD=GET PATH_INFO=/ CONTENT_LENGTH=bogus "$build/hello_cgi" > "$work/cgi-bad.out" 2> "$work/cgi-bad.err" || true
printf 'Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 59\r\n\r\nA server error occurred.  Please contact the administrator.' > "$work/cgi-bad.want"
check "hello_cgi turns a bad CONTENT_LENGTH into the error page" "$work/cgi-bad.want" "$work/cgi-bad.out"
contains "hello_cgi logs why" "$work/cgi-bad.err" "gateway: application error: CONTENT_LENGTH is not a decimal length: 'bogus'"

# ---- demo_server ----------------------------------------------------------------------------
"$build/demo_server" 0 > "$work/demo.out" 2> "$work/demo.err" &
demo_pid=$!
port=
for _ in $(seq 1 50); do
    port=$(sed -n 's/^Serving HTTP on 127.0.0.1 port \([0-9]*\) .*/\1/p' "$work/demo.out")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "FAILED: demo_server did not start"; cat "$work/demo.err"; exit 1; }
url="http://127.0.0.1:$port"

curl -sS --max-time 10 -D "$work/get.head" -o "$work/get.body" \
    -H 'X-Test: dash' -H 'X_Test: underscore' -H 'Proxy: http://evil' \
    "$url/a%20b/%C3%A9?x=1&y=%20"
contains "demo: status line" "$work/get.head" "HTTP/1.1 200 OK"
contains "demo: Server header" "$work/get.head" "Server: gateway-demo/"
contains "demo: Date header" "$work/get.head" "Date: "
contains "demo: computed Content-Length" "$work/get.head" "Content-Length: $(wc -c < "$work/get.body" | tr -d ' ')"
contains "demo: hello line" "$work/get.body" "Hello world!"
contains "demo: PATH_INFO is percent-decoded" "$work/get.body" "PATH_INFO = /a b/$(printf '\303\251')"
contains "demo: QUERY_STRING stays raw" "$work/get.body" "QUERY_STRING = x=1&y=%20"
contains "demo: dashed header" "$work/get.body" "HTTP_X_TEST = dash"
lacks "demo: underscore header cannot alias" "$work/get.body" "underscore"
lacks "demo: no HTTP_PROXY (httpoxy)" "$work/get.body" "HTTP_PROXY"
lacks "demo: no made-up CONTENT_TYPE" "$work/get.body" "CONTENT_TYPE"
contains "demo: REMOTE_ADDR" "$work/get.body" "REMOTE_ADDR = 127.0.0.1"
contains "demo: SERVER_PORT" "$work/get.body" "SERVER_PORT = $port"
contains "demo: wsgi.url_scheme" "$work/get.body" "wsgi.url_scheme = http"

printf 'hello' > "$work/post.data"
curl -sS --max-time 10 -o "$work/post.body" -H 'Content-Type: text/x-test' --data-binary @"$work/post.data" "$url/post"
contains "demo: CONTENT_LENGTH" "$work/post.body" "CONTENT_LENGTH = 5"
contains "demo: CONTENT_TYPE" "$work/post.body" "CONTENT_TYPE = text/x-test"
contains "demo: REQUEST_METHOD" "$work/post.body" "REQUEST_METHOD = POST"

curl -sS --max-time 10 -D "$work/bad.head" -o /dev/null -H 'Bad Header: x' "$url/" || true
contains "demo: a malformed header gets 400" "$work/bad.head" "HTTP/1.1 400 Bad Request"

curl -sS --max-time 10 -D "$work/cl.head" -o /dev/null -H 'Content-Length: 1' -H 'Content-Length: 2' \
    --data-binary @"$work/post.data" "$url/" || true
contains "demo: conflicting Content-Length gets 400" "$work/cl.head" "HTTP/1.1 400 Bad Request"

curl -sS --max-time 10 -D "$work/te.head" -o /dev/null -H 'Transfer-Encoding: chunked' -H 'Content-Length: 5' \
    --data-binary @"$work/post.data" "$url/" || true
contains "demo: Transfer-Encoding with Content-Length gets 400" "$work/te.head" "HTTP/1.1 400 Bad Request"

curl -sS --max-time 10 -o "$work/last.body" "$url/last"
contains "demo: serves the next connection" "$work/last.body" "PATH_INFO = /last"

# SIGTERM: a clean exit (status 0) within a few seconds.
kill -TERM "$demo_pid"
for _ in $(seq 1 50); do
    kill -0 "$demo_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$demo_pid" 2>/dev/null; then
    failed=$((failed + 1))
    echo "FAILED: demo_server did not stop within 5 s of SIGTERM"
elif wait "$demo_pid"; then
    demo_pid=
    passed=$((passed + 1)); echo "ok: demo: SIGTERM stops it with status 0"
else
    echo "FAILED: demo_server exited with status $? on SIGTERM"; failed=$((failed + 1)); demo_pid=
fi
contains "demo: access log line" "$work/demo.err" "\"GET /a%20b/%C3%A9?x=1&y=%20 HTTP/1.1\" 200 $(wc -c < "$work/get.body" | tr -d ' ')"
contains "demo: access log for the 400" "$work/demo.err" "\"GET / HTTP/1.1\" 400"
if [ "$(grep -c '^127.0.0.1 - - ' "$work/demo.err")" -eq 6 ]; then
    passed=$((passed + 1)); echo "ok: demo: six access log lines"
else
    failed=$((failed + 1)); echo "FAILED: demo: expected six access log lines"; cat "$work/demo.err"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
