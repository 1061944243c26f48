#!/usr/bin/env python3
"""c-examples/demo_server.c against real clients and attacks, on loopback.

    python3 tests/demo_server.py BUILD/demo_server

Starts the demo (port 0, idle timeout 5 s, head deadline 3 s, I/O timeout 2 s) and checks:
  - curl: GET, HEAD, POST without Expect (two on one connection: the second reuses it),
    chunked uploads (decoded by the library; two on one connection),
    POST with `Expect: 100-continue` (100 Continue and the answer at once, not after curl's 1 s
    wait);
  - pipelining: three requests in one send(), three responses in order, parsed by h11;
  - h11, a strict client, over one keep-alive connection: GET, HEAD, POST, OPTIONS *, then
    `Connection: close`; HTTP/1.0 with and without keep-alive; a real HTTP/0.9 request;
  - the access log: one line per request in wsgiref's format, and a request line holding an
    escape sequence and a forged log line arrives escaped (no control byte in the log);
  - concurrency and attacks, each timing a normal request (a fresh connection, GET) while the
    attack runs; the slowest must answer within BOUND seconds: an idle connection, a client
    sending one byte a second, 200 such connections (and 100 idle ones), 200 connections
    sending their request bodies one byte a second;
  - heads in pieces: a head split inside its blank line is served; a bad head pipelined after a
    good one gets 400 after the good one's answer, then the close; a head over a limit (request
    line 414, a field line or 100 fields 431) is refused before it ends, a whole one over
    64 KiB with 431;
  - deadlines: a slowloris client is cut off (408, then the close) about 3 s after its first
    byte, an idle connection is closed after 5 s, a request whose body stalls after 2 s (-o);
  - limits: a second demo with -c 5: with 5 idle connections a sixth client waits, and is
    served once one of them closes;
  - SIGINT stops the demo with status 0 while it holds connections.
Every socket has a timeout and the server is killed at the end whatever happens.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

try:
    import h11
except ImportError:
    sys.exit("demo_server.py: the Python package h11 is missing (pip install h11)")

BOUND = 1.0  # seconds: the slowest normal request while an attack runs
HEAD_S, IDLE_S, IO_S = 3, 5, 2
TIMEOUT = 10.0
failures = []


def check(ok, what, detail=""):
    if ok:
        print("ok: demo: %s" % what)
    else:
        failures.append(what)
        print("FAILED: demo: %s%s" % (what, (": " + detail) if detail else ""))


class Server:
    def __init__(self, path, *args):
        self.proc = subprocess.Popen([path, *args, "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.err = b""
        self.lock = threading.Lock()
        line = self.proc.stdout.readline().decode()
        m = re.match(r"Serving HTTP on 127\.0\.0\.1 port (\d+) ", line)
        if not m:
            self.proc.kill()
            sys.exit("demo_server.py: the demo did not start: %r" % line)
        self.port = int(m.group(1))
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read_err(self):
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):
            with self.lock:
                self.err += chunk

    def log(self):
        with self.lock:
            return self.err

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        s.settimeout(TIMEOUT)
        return s

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def recv_all(sock):
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
    except (socket.timeout, ConnectionError):
        return data


def h11_exchange(sock, conn, request, body=b""):
    """Sends one request through h11 and returns (response, body); h11 checks every byte."""
    out = conn.send(request)
    if body:
        out += conn.send(h11.Data(data=body))
    out += conn.send(h11.EndOfMessage())
    sock.sendall(out)
    return h11_response(sock, conn)


def h11_response(sock, conn):
    response, data = None, b""
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(ev, h11.Response):
            response = ev
        elif isinstance(ev, h11.Data):
            data += bytes(ev.data)
        elif isinstance(ev, h11.EndOfMessage):
            return response, data
        elif isinstance(ev, h11.InformationalResponse):
            continue
        else:
            raise AssertionError("unexpected h11 event %r" % (ev,))


def headers_of(response):
    return {k.decode().lower(): v.decode() for k, v in response.headers}


def timed_get(port, path="/probe"):
    """A normal client: connect, GET, read the whole response. Returns (seconds, ok)."""
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(5)
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
            data = recv_all(s)
        return time.monotonic() - start, data.startswith(b"HTTP/1.1 200 OK") and b"Hello world!" in data
    except OSError:
        return time.monotonic() - start, False


def probe_during(port, seconds, label):
    """Times normal requests one after another for `seconds`; checks the slowest."""
    times, all_ok = [], True
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t, ok = timed_get(port)
        times.append(t)
        all_ok = all_ok and ok
        time.sleep(0.1)
    worst = max(times)
    print("   %s: %d requests, slowest %.3f s, median %.3f s" % (label, len(times), worst, sorted(times)[len(times) // 2]))
    check(all_ok and worst < BOUND, "%s: every normal request answered within %.1f s" % (label, BOUND),
          "slowest %.3f s, all answered: %s" % (worst, all_ok))


class Slow:
    """Connections each sending one byte of a never-ending head per second (or, with `head`,
    that head at once and then one byte of a long body per second)."""

    def __init__(self, port, n, head=None):
        self.socks = [socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(n)]
        self.stop = threading.Event()
        self.cut = 0
        self.payload = b"GET /slow HTTP/1.1\r\nX-Slow: " + b"a" * 100000
        if head is not None:
            for s in self.socks:
                s.sendall(head)
            self.payload = b"b" * 100000
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        while not self.stop.is_set() and i < len(self.payload):
            for s in self.socks:
                try:
                    s.send(self.payload[i:i + 1])
                except OSError:
                    pass
            i += 1
            self.stop.wait(1.0)

    def close(self):
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def curl(*args):
    r = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True, timeout=20)
    return r.stdout.decode("latin-1"), r.stderr.decode("latin-1")


def main():
    demo = sys.argv[1]
    server = Server(demo, "-t", str(HEAD_S), "-i", str(IDLE_S), "-o", str(IO_S))
    url = "http://127.0.0.1:%d" % server.port
    try:
        run_checks(server, url)
        limits(demo)
    except (OSError, h11.ProtocolError, AttributeError, subprocess.SubprocessError) as e:
        check(False, "the checks ran to their end", "%s: %s" % (type(e).__name__, e))
    finally:
        server.kill()
    print("%d failed" % len(failures))
    return 1 if failures else 0


def run_checks(server, url):
    port = server.port
    # ---- curl ----
    out, err = curl("-i", url + "/get?x=1")
    check(out.startswith("HTTP/1.1 200 OK\r\n") and "PATH_INFO = /get" in out and "QUERY_STRING = x=1" in out,
          "curl GET", out[:200] + err)
    out, err = curl("-I", url + "/head")
    check(out.startswith("HTTP/1.1 200 OK\r\n") and "Content-Length: " in out and "Hello" not in out, "curl HEAD",
          out + err)
    out, err = curl("-d", "a=1", url + "/p1", url + "/p2", "-w", "[%{http_code} %{num_connects}]")
    check(out.count("REQUEST_METHOD = POST") == 2 and out.count("CONTENT_LENGTH = 3") == 2 and
          "PATH_INFO = /p2" in out and -1 < out.find("[200 1]") < out.find("[200 0]"),
          "curl POSTs twice on one kept-alive connection (num_connects 1, then 0)", out[-300:] + err)
    # A chunked upload: the library decodes (here drains) it, so the connection carries the next.
    out, err = curl("-H", "Transfer-Encoding: chunked", "--data-binary", "y" * 3000, url + "/c1", url + "/c2",
                    "-w", "[%{http_code} %{num_connects}]")
    check(out.count("HTTP_TRANSFER_ENCODING = chunked") == 2 and "CONTENT_LENGTH" not in out and
          -1 < out.find("[200 1]") < out.find("[200 0]"),
          "curl chunked uploads twice on one kept-alive connection", out[-300:] + err)
    start = time.monotonic()
    out, err = curl("-i", "-H", "Expect: 100-continue", "--data-binary", "x" * 2000, url + "/expect")
    took = time.monotonic() - start
    # The library reads the body before the application runs, so it sends the 100 Continue.
    check(out.startswith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK") and "HTTP_EXPECT = 100-continue" in out
          and "CONTENT_LENGTH = 2000" in out and took < 0.9,
          "curl POST with Expect: 100-continue: 100 Continue, then 200 at once (%.3f s)" % took, out[:200] + err)

    # ---- pipelining: three requests in one send ----
    with server.connect() as s:
        s.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                  b"GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        conn = h11.Connection(h11.CLIENT)
        got = []
        for target, method in ((b"/one", b"GET"), (b"/two", b"POST"), (b"/three", b"GET")):
            conn.send(h11.Request(method=method, target=target, headers=[("Host", "x")] +
                                  ([("Content-Length", "5")] if method == b"POST" else []) +
                                  ([("Connection", "close")] if target == b"/three" else [])))
            if method == b"POST":
                conn.send(h11.Data(data=b"hello"))
            conn.send(h11.EndOfMessage())
            response, body = h11_response(s, conn)
            got.append((response.status_code, re.search(rb"PATH_INFO = (\S+)", body).group(1)))
            if target != b"/three":
                conn.start_next_cycle()
        closed = s.recv(100) == b""
    check(got == [(200, b"/one"), (200, b"/two"), (200, b"/three")] and closed,
          "three pipelined requests answered in order, then closed", repr(got))

    # ---- h11 over one keep-alive connection ----
    ok, detail = True, ""
    try:
        with server.connect() as s:
            conn = h11.Connection(h11.CLIENT)
            host = ("Host", "127.0.0.1:%d" % port)
            steps = [(h11.Request(method="GET", target="/k1", headers=[host]), b""),
                     (h11.Request(method="HEAD", target="/k2", headers=[host]), b""),
                     (h11.Request(method="POST", target="/k3", headers=[host, ("Content-Length", "4")]), b"body"),
                     (h11.Request(method="OPTIONS", target="*", headers=[host]), b""),
                     (h11.Request(method="GET", target="/k5", headers=[host, ("Connection", "close")]), b"")]
            for i, (req, body) in enumerate(steps):
                response, data = h11_exchange(s, conn, req, body)
                h = headers_of(response)
                last = i == len(steps) - 1
                if response.status_code != 200 or response.http_version != b"1.1":
                    ok, detail = False, "step %d: %r" % (i, response)
                if req.method == b"HEAD" and data:
                    ok, detail = False, "HEAD got a body"
                if req.method != b"HEAD" and not data.startswith(b"Hello world!"):
                    ok, detail = False, "step %d body %r" % (i, data[:60])
                if ("close" in h.get("connection", "")) != last:
                    ok, detail = False, "step %d Connection header %r" % (i, h.get("connection"))
                if not last:
                    conn.start_next_cycle()
            if s.recv(100) != b"":
                ok, detail = False, "not closed after Connection: close"
    except (h11.ProtocolError, OSError, AssertionError) as e:
        ok, detail = False, repr(e)
    check(ok, "h11 over one connection: GET, HEAD, POST, OPTIONS *, GET with Connection: close", detail)

    # ---- HTTP/1.0 and HTTP/0.9 ----
    with server.connect() as s:
        s.sendall(b"GET /ten HTTP/1.0\r\n\r\n")
        data = recv_all(s)
    check(data.startswith(b"HTTP/1.1 200 OK\r\n") and b"SERVER_PROTOCOL = HTTP/1.0" in data and
          b"Connection: close" in data, "HTTP/1.0 answered and closed", repr(data[:200]))
    with server.connect() as s:
        s.sendall(b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/ka", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        response, _ = h11_response(s, conn)
        h = headers_of(response)
        s.sendall(b"GET /ka2 HTTP/1.0\r\n\r\n")
        again = recv_all(s)
    check(h.get("connection") == "keep-alive" and b"PATH_INFO = /ka2" in again,
          "HTTP/1.0 with Connection: keep-alive is kept", repr(h))
    with server.connect() as s:
        s.sendall(b"GET /nine?q=9\r\n")
        data = recv_all(s)
    check(data.startswith(b"Hello world!\n") and b"SERVER_PROTOCOL = HTTP/0.9" in data and b"HTTP/1" not in data[:20],
          "HTTP/0.9: the body alone, then the close", repr(data[:80]))

    # ---- the access log cannot be forged ----
    with server.connect() as s:
        s.sendall(b'GET /\x1b[31mred" 200 1\r\nHTTP/1.1\r\n\r\n')
        bad = recv_all(s)
    check(bad.startswith(b"HTTP/1.1 400 Bad Request"), "a request line with an escape byte gets 400", repr(bad[:60]))

    # ---- heads in pieces: the loop waits for the blank line, refuses a bad head at once ----
    with server.connect() as s:
        s.sendall(b"GET /split HTTP/1.1\r\nHost: x\r")
        time.sleep(0.2)
        s.sendall(b"\n\r")
        time.sleep(0.2)
        s.sendall(b"\nGET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = recv_all(s)
    check(data.startswith(b"HTTP/1.1 200 OK") and b"PATH_INFO = /split" in data and b"PATH_INFO = /after" in data,
          "a head in three pieces, then a pipelined one", repr(data[:80]))
    with server.connect() as s:
        s.sendall(b"GET /good HTTP/1.1\r\nHost: x\r\n\r\nGET /bad HTTP/1.1\r\nBad Header: 1\r\n\r\n"
                  b"GET /never HTTP/1.1\r\nHost: x\r\n\r\n")
        data = recv_all(s)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    check(statuses == [b"200", b"400"] and b"PATH_INFO = /good" in data and data.endswith(b"400 Bad Request\n"),
          "a bad head pipelined after a good one: 200, then 400 and the close", repr(statuses))
    for unfinished, status in ((b"GET /" + b"a" * 9000, b"414"), (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 9000, b"431"),
                               (b"GET / HTTP/1.1\r\n" + b"X-Many: y\r\n" * 101, b"431")):
        with server.connect() as s:  # no blank line yet: the limits are known to be broken
            start = time.monotonic()
            s.sendall(unfinished)
            bad = recv_all(s)
            took = time.monotonic() - start
        check(bad.startswith(b"HTTP/1.1 " + status) and took < 1.0,
              "a head over a limit gets %s before it ends (%.3f s)" % (status.decode(), took), repr(bad[:60]))
    with server.connect() as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8000 + b"\r\n" +
                  b"".join(b"X-F%d: %s\r\n" % (i, b"b" * 8000) for i in range(9)) + b"\r\n")
        big = recv_all(s)
    check(big.startswith(b"HTTP/1.1 431 "), "a whole head over 64 KiB gets 431", repr(big[:60]))

    # ---- concurrency and attacks ----
    idle = server.connect()
    probe_during(port, 1.5, "one idle connection open")
    slow = Slow(port, 1)
    probe_during(port, 2.5, "one client sending a byte a second")
    slow.close()
    idle.close()
    idles = [server.connect() for _ in range(100)]
    slow = Slow(port, 200)
    probe_during(port, 2.5, "200 one-byte-a-second connections and 100 idle ones")
    slow.close()
    for s in idles:
        s.close()
    body_head = b"POST /slowbody HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
    slow = Slow(port, 200, head=body_head)
    probe_during(port, 2.5, "200 connections sending their bodies a byte a second")
    slow.close()

    # ---- deadlines ----
    slow = Slow(port, 1)
    start = time.monotonic()
    s = slow.socks[0]
    s.settimeout(HEAD_S + 5)
    answer = recv_all(s)
    took = time.monotonic() - start
    slow.close()
    print("   slowloris cut off after %.2f s (head deadline %d s)" % (took, HEAD_S))
    check(answer.startswith(b"HTTP/1.1 408 ") and HEAD_S - 0.5 < took < HEAD_S + 1.5,
          "a slowloris client gets 408 and the close at the head deadline", "%.2f s, %r" % (took, answer[:40]))
    with server.connect() as s:
        s.settimeout(IDLE_S + 5)
        start = time.monotonic()
        answer = recv_all(s)
        took = time.monotonic() - start
    print("   idle connection closed after %.2f s (idle timeout %d s)" % (took, IDLE_S))
    check(answer == b"" and IDLE_S - 0.5 < took < IDLE_S + 1.5, "an idle connection is closed at the idle timeout",
          "%.2f s, %r" % (took, answer[:40]))
    with server.connect() as s:
        s.settimeout(IO_S + 5)
        s.sendall(b"POST /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        start = time.monotonic()
        answer = recv_all(s)
        took = time.monotonic() - start
    print("   stalled body cut off after %.2f s (I/O timeout %d s)" % (took, IO_S))
    check(b"200 OK" not in answer and IO_S - 0.5 < took < IO_S + 1.5,
          "a request whose body stalls is cancelled at the I/O timeout", "%.2f s, %r" % (took, answer[:40]))

    # ---- SIGINT with connections open ----
    held = server.connect()
    with server.connect() as kept:
        kept.sendall(b"GET /before-stop HTTP/1.1\r\nHost: x\r\n\r\n")
        kept.recv(65536)
        time.sleep(0.2)
        server.proc.send_signal(signal.SIGINT)
        try:
            code = server.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
    held.close()
    time.sleep(0.1)
    check(code == 0 and b"stopped by a signal" in server.log(), "SIGINT stops it with status 0", "status %r" % code)

    log = server.log()
    lines = log.decode("latin-1").splitlines()
    access = [l for l in lines if l.startswith("127.0.0.1 - - [")]
    clf = re.compile(r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4} \d\d:\d\d:\d\d\] "[^"]*" (\d{3} \d+|- -)$')
    bad_lines = [l for l in access if not clf.match(l)]
    check(not bad_lines, "every access log line is in wsgiref's format", repr(bad_lines[:3]))
    check(not any(b < 0x20 and b != 0x0a for b in log) and not any(l.startswith("HTTP/1.1") for l in lines),
          "no control byte and no forged line in the log", repr([l for l in lines if "red" in l]))
    check(any('"GET /\\x1b[31mred\\x22 200 1" 400' in l for l in access), "the bad request line is logged escaped",
          repr([l for l in access if "red" in l]))
    check(any('"GET /nine?q=9" 200' in l for l in access) and any('"POST /two HTTP/1.1" 200' in l for l in access),
          "HTTP/0.9 and pipelined requests are logged")


def limits(demo):
    server = Server(demo, "-c", "5")
    try:
        held = [server.connect() for _ in range(5)]
        time.sleep(0.3)
        with server.connect() as s:  # completes in the backlog, but is not served
            s.sendall(b"GET /sixth HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            s.settimeout(0.7)
            try:
                early = s.recv(100)
            except socket.timeout:
                early = None
            held.pop().close()
            s.settimeout(5)
            later = recv_all(s)
        check(early is None and later.startswith(b"HTTP/1.1 200 OK"),
              "-c 5: a sixth connection waits until one of the five closes", "early %r" % (early,))
        for h in held:
            h.close()
    finally:
        server.kill()


if __name__ == "__main__":
    sys.exit(main())
