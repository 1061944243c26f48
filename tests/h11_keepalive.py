#!/usr/bin/env python3
"""Keep-alive with a strict client: tests/keepalive_host.c spoken to with h11.

    python3 tests/h11_keepalive.py BUILD/keepalive_host

Starts the host (port 0, drain limit 1024), reads its port from the first line of its stdout,
and runs request sequences over loopback connections: several requests on one connection,
request bodies under, at and over the drain limit, the error page, `Connection: close` from
the client, HTTP/1.0 with and without `Connection: keep-alive`, pipelined requests sent in one
send() call, `Expect: 100-continue` (answered, and never answered because the body is
withheld), then /quit; a second host is stopped with SIGTERM while it holds an idle
connection, and a third, with a 1 s alarm, must exit by itself.

For every response:
  - h11 parses it without a protocol error (its strict parser is the point);
  - status, body and framing headers are what the application produced;
  - the host's stderr line for the request (gw_handler_last_response, the run status,
    gw_handler_last_keep_alive) names the same method, path and status;
  - the connection state h11 ends in (our_state/their_state both DONE: reusable through
    start_next_cycle; MUST_CLOSE/CLOSED: not) equals the host's keep-alive verdict, and both
    equal what this script expects for the case;
  - the head says `Connection: close` exactly when the verdict is no (HTTP/1.1), or
    `Connection: keep-alive` exactly when it is yes (HTTP/1.0 client asking for it);
  - when the verdict is no, the server closes: recv returns b"" (no stray bytes);
  - when it is yes and the request had a body, the host handed the library exactly
    CONTENT_LENGTH bytes (read or drained), so the next request starts where it should.
At each connection's end the host's close line must count the requests the client got
answers to, with the right reason.

Every recv has a timeout, the host has an alarm, and the script exits non-zero with one clear
message at the first mismatch, or prints a one-line summary.
"""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

try:
    import h11
except ImportError:
    sys.exit("h11_keepalive: the Python package h11 is missing (pip install h11)")

TIMEOUT = 5.0  # seconds for every recv and every wait for the host
DRAIN_LIMIT = 1024
HOST_ALARM = 60
PREFIX = "h11_keepalive"

HELLO = b"Hello, keep-alive!\n"
CHUNKED = b"first chunk\nsecond chunk\n"
ITER = b"one\ntwo\nthree\n"
HEAD_BODY_LEN = 10  # "head body\n"
ERROR_BODY = b"A server error occurred.  Please contact the administrator."
RUN_NAMES = {0: "GW_STATUS_OK", 11: "GW_STATUS_APP_ERROR", 12: "GW_STATUS_RESPONSE_INCOMPLETE",
             13: "GW_STATUS_CLIENT_GONE", 14: "GW_STATUS_IO_ERROR", 15: "GW_STATUS_INPUT_ERROR",
             -1: "refused by the host", -2: "host glue failed"}


class Failure(Exception):
    pass


def fail(message):
    raise Failure(message)


def body_of(n, seed):
    """n bytes of printable, position-dependent data (a misplaced byte shows)."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789"
    return bytes(alphabet[(i * 7 + seed) % len(alphabet)] for i in range(n))


class Req:
    """One request and what must come of it."""

    def __init__(self, method, target, *, body=None, headers=(), http10=False, expect_100=False,
                 withhold_body=False, status=200, resp_body=b"", framing="length", length=None,
                 keep=True, run=0, iter_closes=None, log=None, body_delay=0.0):
        self.method = method
        self.target = target
        self.body = body
        self.headers = list(headers)
        self.http10 = http10
        self.expect_100 = expect_100
        self.withhold_body = withhold_body
        self.status = status
        self.resp_body = resp_body
        self.framing = framing  # length | chunked | none | close
        self.length = len(resp_body) if length is None else length
        self.keep = keep  # the verdict this case must get
        self.run = run
        self.iter_closes = iter_closes
        self.log = log  # a fragment the library's log must hold after this request
        self.body_delay = body_delay  # send the body this long after the head (read from the socket)

    @property
    def path(self):
        return self.target.split("?", 1)[0]

    def asks_keep_alive(self):
        return any(k.lower() == "connection" and "keep-alive" in v.lower() for k, v in self.headers)

    def h11_events(self, port):
        """The request as h11 events: what goes on the wire for HTTP/1.1, and what h11 is told
        was sent for HTTP/1.0 (h11 only writes HTTP/1.1): an HTTP/1.0 request is persistent
        only with `Connection: keep-alive`, so without it h11 is told `Connection: close`."""
        headers = [("Host", "127.0.0.1:%d" % port)] + self.headers
        if self.body is not None:
            headers.append(("Content-Length", str(len(self.body))))
        if self.expect_100:
            headers.append(("Expect", "100-continue"))
        if self.http10 and not self.asks_keep_alive():
            headers.append(("Connection", "close"))
        request = h11.Request(method=self.method, target=self.target, headers=headers)
        body = [h11.Data(data=self.body)] if self.body else []
        return request, body + [h11.EndOfMessage()]

    def http10_bytes(self, port):
        lines = ["%s %s HTTP/1.0" % (self.method, self.target), "Host: 127.0.0.1:%d" % port]
        lines += ["%s: %s" % kv for kv in self.headers]
        if self.body is not None:
            lines.append("Content-Length: %d" % len(self.body))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + (self.body or b"")


class Host:
    """The host process, its port, and its stderr lines sorted as they arrive."""

    def __init__(self, path, alarm=HOST_ALARM):
        self.proc = subprocess.Popen([path, "0", str(DRAIN_LIMIT), str(alarm)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []  # every stderr line, for failure reports and log checks
        self.requests = queue.Queue()
        self.closes = queue.Queue()
        self.stdout = queue.Queue()
        self.connections = 0  # connections opened to it, in order (the host numbers them alike)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        try:
            first = self.stdout.get(timeout=TIMEOUT)
        except queue.Empty:
            fail("the host printed no port within %.0fs" % TIMEOUT)
        try:
            self.port = int(first)
        except ValueError:
            fail("the host's first stdout line is not a port: %r" % first)

    def _read_stdout(self):
        for raw in self.proc.stdout:
            self.stdout.put(raw.decode("latin-1").strip())

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("latin-1").rstrip("\n")
            self.lines.append(line)
            for prefix, q in (("keepalive_host: request ", self.requests), ("keepalive_host: close ", self.closes)):
                if line.startswith(prefix):
                    fields = dict(part.split("=", 1) for part in line[len(prefix):].split() if "=" in part)
                    q.put(fields)

    def next_request(self, label):
        try:
            return self.requests.get(timeout=TIMEOUT)
        except queue.Empty:
            fail("%s: the host printed no request line within %.0fs" % (label, TIMEOUT))

    def next_close(self, label):
        try:
            return self.closes.get(timeout=TIMEOUT)
        except queue.Empty:
            fail("%s: the host printed no close line within %.0fs" % (label, TIMEOUT))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Client:
    """One connection, with h11 as the client's protocol state."""

    def __init__(self, host, name):
        self.host = host
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", host.port), timeout=TIMEOUT)
        self.sock.settimeout(TIMEOUT)
        host.connections += 1
        self.host_id = host.connections
        self.conn = h11.Connection(h11.CLIENT)
        self.answered = 0
        self.last_reusable = None
        self.raw = b""

    def label(self, req):
        return "[%s, request %d: %s %s%s]" % (self.name, self.answered + 1, req.method, req.target,
                                               " HTTP/1.0" if req.http10 else "")

    def recv(self, label, what):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            fail("%s: nothing from the server within %.0fs while waiting for %s" % (label, TIMEOUT, what))
        except ConnectionError as e:
            fail("%s: %s while waiting for %s" % (label, e, what))
        self.raw += data
        return data

    def send(self, data):
        self.sock.sendall(data)

    def h11_send(self, events):
        out = b""
        for ev in events:
            out += self.conn.send(ev) or b""
        return out

    # ---- the exchanges ----

    def exchange(self, req):
        """Sends one request (waiting for 100 Continue when asked) and checks the response."""
        label = self.label(req)
        request, rest = req.h11_events(self.host.port)
        on_100 = None
        if req.http10:
            self.h11_send([request] + rest)  # h11's view; the wire gets HTTP/1.0
            self.send(req.http10_bytes(self.host.port))
        elif req.expect_100:
            self.send(self.h11_send([request]))
            if not req.withhold_body:
                def on_100():
                    self.send(self.h11_send(rest))
        elif req.body_delay:
            self.send(self.h11_send([request]))
            time.sleep(req.body_delay)
            self.send(self.h11_send(rest))
        else:
            self.send(self.h11_send([request] + rest))
        response = self.receive(label, on_100)
        self.check(req, label, response)

    def pipeline(self, reqs, unanswered=()):
        """Sends every request in one send() call, then reads and checks the responses in order.
        `unanswered` requests are sent too but must get no response: the server closes first."""
        wire = []
        for req in list(reqs) + list(unanswered):
            request, rest = req.h11_events(self.host.port)
            scratch = h11.Connection(h11.CLIENT)  # h11 lets one connection send one request at a time
            wire.append(b"".join(scratch.send(ev) or b"" for ev in [request] + rest))
        self.send(b"".join(wire))
        for i, req in enumerate(reqs):
            label = self.label(req) + " (pipelined)"
            request, rest = req.h11_events(self.host.port)
            mirrored = self.h11_send([request] + rest)  # h11's state follows what was sent
            if mirrored != wire[i]:
                fail("%s: h11 wrote different bytes for the same request: %r vs %r" % (label, mirrored, wire[i]))
            response = self.receive(label, None)
            self.check(req, label, response)

    def receive(self, label, on_100):
        infos, response, body = [], None, b""
        while True:
            try:
                ev = self.conn.next_event()
            except h11.RemoteProtocolError as e:
                fail("%s: h11 rejected the response: %s; bytes received on this connection: %r"
                     % (label, e, self.raw[-600:]))
            if ev is h11.NEED_DATA:
                self.conn.receive_data(self.recv(label, "the rest of the response"))
            elif isinstance(ev, h11.InformationalResponse):
                infos.append(ev.status_code)
                if ev.status_code == 100 and on_100 is not None:
                    on_100()
                    on_100 = None
            elif isinstance(ev, h11.Response):
                response = ev
            elif isinstance(ev, h11.Data):
                body += bytes(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                return infos, response, body
            elif isinstance(ev, h11.ConnectionClosed):
                fail("%s: the server closed the connection before a complete response (got %r)"
                     % (label, self.raw[-300:]))
            else:
                fail("%s: unexpected h11 event %r" % (label, ev))

    def check(self, req, label, got):
        infos, response, body = got
        headers = {}
        for name, value in response.headers:
            headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        tokens = {t.strip().lower() for v in headers.get("connection", []) for t in v.split(",")}
        head = "%d, headers %r" % (response.status_code, response.headers)

        # What the application produced.
        if response.status_code != req.status:
            fail("%s: status %d, expected %d" % (label, response.status_code, req.status))
        if body != req.resp_body:
            fail("%s: body %r, expected %r" % (label, body[:200], req.resp_body[:200]))
        expected_infos = [100] if req.expect_100 and not req.withhold_body else []
        if infos != expected_infos:
            fail("%s: informational responses %r, expected %r" % (label, infos, expected_infos))
        if response.http_version != b"1.1":
            fail("%s: status line says HTTP/%s, the handler speaks 1.1" % (label, response.http_version.decode()))
        if "date" not in headers:
            fail("%s: no Date header from an origin server: %s" % (label, head))
        cl, te = headers.get("content-length"), headers.get("transfer-encoding")
        if req.framing == "length":
            if cl != [str(req.length)] or te:
                fail("%s: expected Content-Length: %d and no Transfer-Encoding: %s" % (label, req.length, head))
        elif req.framing == "chunked":
            if te != ["chunked"] or cl:
                fail("%s: expected Transfer-Encoding: chunked and no Content-Length: %s" % (label, head))
        elif req.framing in ("none", "close"):
            if cl or te:
                fail("%s: expected neither Content-Length nor Transfer-Encoding: %s" % (label, head))
        else:
            fail("bad framing %r in the test itself" % req.framing)

        # What the host printed for this request.
        rec = self.host.next_request(label)
        want = {"conn": str(self.host_id), "seq": str(self.answered + 1), "method": req.method, "path": req.path,
                "proto": "HTTP/1.0" if req.http10 else "HTTP/1.1", "status": str(req.status)}
        for key, value in want.items():
            if rec.get(key) != value:
                fail("%s: the host's line says %s=%s, expected %s (line: %r)" % (label, key, rec.get(key), value, rec))
        run = int(rec["run"])
        if run != req.run:
            fail("%s: gw_handler_run returned %d (%s), expected %d (%s)"
                 % (label, run, RUN_NAMES.get(run, "?"), req.run, RUN_NAMES.get(req.run, "?")))
        host_keep = rec["keep"] == "1"

        # The connection: h11's state, the host's verdict, what the head said, what was expected.
        h11_reusable = self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE
        client_reusable = h11_reusable and (not req.http10 or "keep-alive" in tokens)
        state = "our_state=%s their_state=%s" % (self.conn.our_state, self.conn.their_state)
        if client_reusable != host_keep:
            fail("%s: h11 ends in %s (%s) but gw_handler_last_keep_alive said %s; %s"
                 % (label, state, "reusable" if client_reusable else "must close",
                    "keep" if host_keep else "close", head))
        if host_keep != req.keep:
            fail("%s: keep-alive verdict %s (h11 agrees: %s), but this case must %s the connection; %s"
                 % (label, host_keep, state, "keep" if req.keep else "close", head))
        if not req.http10:
            if ("close" in tokens) == host_keep:
                fail("%s: Connection: close %s, yet the verdict is %s: %s"
                     % (label, "sent" if "close" in tokens else "missing", "keep" if host_keep else "close", head))
        elif req.asks_keep_alive():
            if ("keep-alive" in tokens) != host_keep or ("close" in tokens) == host_keep:
                fail("%s: an HTTP/1.0 client asking for keep-alive got Connection %r with verdict %s: %s"
                     % (label, sorted(tokens), host_keep, head))
        elif "keep-alive" in tokens:
            fail("%s: Connection: keep-alive to an HTTP/1.0 client that did not ask: %s" % (label, head))
        if req.framing == "close" and host_keep:
            fail("%s: a body delimited by the close, yet the verdict is keep" % label)

        # The request body: read or drained to its end when the connection is kept.
        content_length = len(req.body) if req.body is not None else 0
        if rec["content_length"] != (str(content_length) if req.body is not None else "-"):
            fail("%s: the host saw content_length=%s, sent %d" % (label, rec["content_length"], content_length))
        body_read = int(rec["body_read"])
        if body_read > content_length:
            fail("%s: the library read %d body bytes, past CONTENT_LENGTH %d" % (label, body_read, content_length))
        if host_keep and body_read != content_length:
            fail("%s: connection kept but only %d of %d body bytes were read or drained"
                 % (label, body_read, content_length))
        if req.iter_closes is not None and rec["iter_closes"] != str(req.iter_closes):
            fail("%s: the body iterator was closed %s times, expected %d" % (label, rec["iter_closes"], req.iter_closes))
        if req.log is not None and not any(line.startswith("gateway: ") and req.log in line for line in self.host.lines):
            fail("%s: the library logged no line holding %r" % (label, req.log))

        self.answered += 1
        self.last_reusable = client_reusable
        if client_reusable:
            self.conn.start_next_cycle()
        else:
            self.expect_server_close(label)

    def expect_server_close(self, label):
        """After a response that ends the connection the server must close it: recv gives b""."""
        if self.conn.their_state is h11.CLOSED:
            return
        data = self.recv(label, "the server to close the connection (recv returning b'')")
        if data:
            fail("%s: the server sent %d more bytes after a response that closes the connection: %r"
                 % (label, len(data), data[:120]))
        self.conn.receive_data(b"")
        ev = self.conn.next_event()
        if not isinstance(ev, h11.ConnectionClosed):
            fail("%s: h11 did not see the close but %r" % (label, ev))

    def close(self, reason=None):
        """Closes the client side and checks the host's account of the connection."""
        self.sock.close()
        if reason is None:
            reason = "eof" if self.last_reusable else "verdict"
        label = "[%s, close]" % self.name
        rec = self.host.next_close(label)
        if rec.get("conn") != str(self.host_id):
            fail("%s: the host closed connection %s, expected %d: %r" % (label, rec.get("conn"), self.host_id, rec))
        if rec.get("requests") != str(self.answered):
            fail("%s: the host parsed %s requests on this connection, the client got %d responses"
                 % (label, rec.get("requests"), self.answered))
        if rec.get("reason") != reason:
            fail("%s: the host closed for reason %s, expected %s" % (label, rec.get("reason"), reason))
        return rec


def get(target, **kw):
    return Req("GET", target, **kw)


def scenarios(host):
    exchanges = 0

    # One connection, many requests; it ends with the error page.
    c = Client(host, "one connection")
    small, larger = body_of(100, 1), body_of(3000, 2)
    for req in [
        get("/hello", resp_body=HELLO),
        get("/chunked", resp_body=CHUNKED, framing="chunked"),
        get("/iter", resp_body=ITER, framing="chunked", iter_closes=1),
        Req("HEAD", "/head", length=HEAD_BODY_LEN),
        Req("HEAD", "/chunked", framing="none"),
        get("/nocontent", status=204, framing="none"),
        get("/no/such/path", status=404, resp_body=b"not found\n"),
        Req("POST", "/echo", body=small, resp_body=small, headers=[("Content-Type", "text/plain")]),
        Req("POST", "/echo", body=larger, resp_body=larger),  # over the drain limit, but read
        Req("POST", "/ignore", body=small, resp_body=b"ignored\n"),  # drained
        get("/hello?after=ignore", resp_body=HELLO),
        get("/fail", status=500, resp_body=ERROR_BODY, keep=False, run=11, log="fails on purpose"),
    ]:
        c.exchange(req)
    exchanges += c.answered
    c.close()

    # An unread body over the drain limit: Connection: close, and the server closes.
    c = Client(host, "body over the drain limit")
    c.exchange(Req("POST", "/ignore", body=body_of(5000, 3), resp_body=b"ignored\n", keep=False))
    exchanges += c.answered
    c.close()

    # The limit's edge: a body of exactly the limit is drained, one byte more is not.
    c = Client(host, "drain limit edge")
    c.exchange(Req("POST", "/ignore", body=body_of(DRAIN_LIMIT, 4), resp_body=b"ignored\n"))
    c.exchange(get("/hello", resp_body=HELLO))
    # the body arrives after the response went out: the drain reads it from the socket
    c.exchange(Req("POST", "/ignore", body=body_of(DRAIN_LIMIT, 9), resp_body=b"ignored\n", body_delay=0.05))
    c.exchange(Req("POST", "/echo", body=small, resp_body=small, body_delay=0.05))
    # partly read: the rest is drained when small, the connection goes when it is not
    # (20000 bytes: more than the library's 8 KiB read-ahead plus the limit)
    big = body_of(20000, 10)
    c.exchange(Req("POST", "/peek", body=larger[:500], resp_body=larger[:10]))
    c.exchange(Req("POST", "/ignore", body=body_of(DRAIN_LIMIT + 1, 5), resp_body=b"ignored\n", keep=False))
    exchanges += c.answered
    c.close()

    c = Client(host, "partly read body over the limit")
    c.exchange(Req("POST", "/peek", body=big, resp_body=big[:10], keep=False))
    exchanges += c.answered
    c.close()

    # The client asks to close.
    c = Client(host, "client sends Connection: close")
    c.exchange(get("/hello", headers=[("Connection", "close")], resp_body=HELLO, keep=False))
    exchanges += c.answered
    c.close()

    # HTTP/1.0 asking for keep-alive: granted for framed bodies, refused for a body of
    # unknown length (no chunking for HTTP/1.0: the close ends it).
    c = Client(host, "HTTP/1.0 keep-alive")
    ka = [("Connection", "keep-alive")]
    c.exchange(get("/hello", http10=True, headers=ka, resp_body=HELLO))
    c.exchange(Req("POST", "/echo", http10=True, headers=ka, body=small, resp_body=small))
    c.exchange(get("/chunked", http10=True, headers=ka, resp_body=CHUNKED, framing="close", keep=False))
    exchanges += c.answered
    c.close()

    # HTTP/1.0 without keep-alive: one request.
    c = Client(host, "HTTP/1.0")
    c.exchange(get("/hello", http10=True, resp_body=HELLO, keep=False))
    exchanges += c.answered
    c.close()

    # Pipelining: requests sent in one send() call, bodies among them.
    c = Client(host, "pipelined")
    mid = body_of(200, 6)
    c.pipeline([Req("POST", "/echo", body=mid, resp_body=mid), get("/hello", resp_body=HELLO)])
    c.pipeline([Req("POST", "/ignore", body=body_of(300, 7), resp_body=b"ignored\n"),
                get("/iter", resp_body=ITER, framing="chunked", iter_closes=1),
                Req("HEAD", "/head", length=HEAD_BODY_LEN)])
    # After a response that closes, a request already sent behind it gets no answer.
    c.pipeline([get("/fail", status=500, resp_body=ERROR_BODY, keep=False, run=11)],
               unanswered=[get("/hello", resp_body=HELLO)])
    exchanges += c.answered
    c.close()

    # Expect: 100-continue, answered by the library when the application reads the body;
    # and a body the client withholds while the application ignores it: the connection goes.
    c = Client(host, "Expect: 100-continue")
    c.exchange(Req("POST", "/echo", body=mid, resp_body=mid, expect_100=True))
    c.exchange(Req("POST", "/ignore", body=body_of(10, 8), resp_body=b"ignored\n", expect_100=True,
                   withhold_body=True, keep=False))
    exchanges += c.answered
    c.close()

    # /quit: answered, then the host closes and exits 0.
    c = Client(host, "quit")
    quit_req = get("/quit", resp_body=b"bye\n")
    c.exchange(quit_req)
    exchanges += c.answered
    if c.last_reusable:  # the verdict was keep; the host closes anyway because it quits
        c.expect_server_close("[quit]")
    c.close(reason="quit")
    try:
        code = host.proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        fail("[quit]: the host did not exit within %.0fs" % TIMEOUT)
    if code != 0:
        fail("[quit]: the host exited with status %d" % code)
    if not host.requests.empty():
        fail("the host printed request lines nobody accounted for: %r" % host.requests.get())
    return exchanges, host.connections


def sigterm_scenario(path):
    """SIGTERM while the host waits for the next request on a kept connection."""
    host = Host(path)
    try:
        c = Client(host, "SIGTERM")
        c.exchange(get("/hello", resp_body=HELLO))
        time.sleep(0.1)  # the host is back waiting for the next request
        host.proc.send_signal(signal.SIGTERM)
        c.expect_server_close("[SIGTERM]")
        c.close(reason="signal")
        try:
            code = host.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            fail("[SIGTERM]: the host did not exit within %.0fs" % TIMEOUT)
        if code != 0:
            fail("[SIGTERM]: the host exited with status %d" % code)
        return c.answered
    finally:
        host.stop()


def check_alarm(host):
    """The host's own time limit: started with ALARM_SECONDS 1 and never spoken to, it must
    have exited 3 by itself (it runs while the other scenarios do)."""
    try:
        code = host.proc.wait(timeout=1 + TIMEOUT)
    except subprocess.TimeoutExpired:
        fail("[alarm]: the host with a 1s alarm was still running after %.0fs" % (1 + TIMEOUT))
    time.sleep(0.05)  # let the stderr reader take the last line
    if code != 3 or not any("alarm" in line for line in host.lines):
        fail("[alarm]: the host exited with status %d (expected 3, with an alarm line): %r" % (code, host.lines[-3:]))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: %s PATH/TO/keepalive_host" % sys.argv[0])
    path = sys.argv[1]
    if not os.access(path, os.X_OK):
        sys.exit("%s: %s is not an executable (build it first)" % (PREFIX, path))
    started = time.monotonic()
    host = alarmed = None
    try:
        alarmed = Host(path, alarm=1)
        host = Host(path)
        exchanges, connections = scenarios(host)
        exchanges += sigterm_scenario(path)
        check_alarm(alarmed)
    except Failure as e:
        print("%s: FAIL: %s" % (PREFIX, e), file=sys.stderr)
        if host is not None:
            host.stop()
            time.sleep(0.05)
            print("%s: the host's last stderr lines:" % PREFIX, file=sys.stderr)
            for line in host.lines[-15:]:
                print("    " + line, file=sys.stderr)
        sys.exit(1)
    finally:
        for h in (host, alarmed):
            if h is not None:
                h.stop()
    print("%s: ok: %d responses on %d connections (+1 stopped by SIGTERM, +1 alarm) parsed by h11 %s; every keep-alive "
          "verdict matched h11's connection state and the server's close; %.2fs"
          % (PREFIX, exchanges, connections, h11.__version__, time.monotonic() - started))


if __name__ == "__main__":
    main()
