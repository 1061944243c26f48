"""gateway.validate (wsgiref.validate's checks and messages, case by case against CPython's)
and gateway.simple_server (the request head parsed by the library: in memory as
test_wsgiref's MockServer does, over a loopback socket, and `python3 -m
gateway.simple_server`)."""

import io
import os
import socket
import subprocess
import sys
import threading
import warnings
import wsgiref.validate
from pathlib import Path
from socketserver import BaseServer

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import handlers, simple_server, validate  # noqa: E402

# ---- validate ---------------------------------------------------------------------------

GOOD_ENV = {
    "REQUEST_METHOD": "GET", "SERVER_NAME": "h", "SERVER_PORT": "80", "QUERY_STRING": "",
    "PATH_INFO": "/", "SCRIPT_NAME": "", "wsgi.version": (1, 0), "wsgi.multithread": False,
    "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.url_scheme": "http",
}
CT = [("Content-Type", "text/plain")]


def environ(**changes):
    env = dict(GOOD_ENV, **{"wsgi.input": io.BytesIO(b"line1\nline2\n"),
                            "wsgi.errors": io.StringIO()})
    for k, v in changes.items():
        k = k.replace("__", ".")
        if v is KeyError:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def app_of(status="200 OK", headers=None, body=(b"x",), extra=None, args=None):
    def app(env, start_response):
        if extra:
            extra(env)
        w = start_response(*(args if args is not None else
                             (status, CT if headers is None else headers)))
        if body == "write":
            w("text")
            return []
        return body() if callable(body) else list(body) if isinstance(body, tuple) else body
    return app


CASES = [
    ("good", {}, app_of()),
    ("missing SERVER_PORT", {"SERVER_PORT": KeyError}, app_of()),
    ("HTTP_CONTENT_TYPE", {"HTTP_CONTENT_TYPE": "x"}, app_of()),
    ("no QUERY_STRING", {"QUERY_STRING": KeyError}, app_of()),
    ("non-str variable", {"HTTP_X": 5}, app_of()),
    ("wsgi.version list", {"wsgi__version": [1, 0]}, app_of()),
    ("scheme", {"wsgi__url_scheme": "ftp"}, app_of()),
    ("input without readlines", {"wsgi__input": object()}, app_of()),
    ("odd method", {"REQUEST_METHOD": "BREW"}, app_of()),
    ("SCRIPT_NAME", {"SCRIPT_NAME": "app"}, app_of()),
    ("SCRIPT_NAME /", {"SCRIPT_NAME": "/"}, app_of()),
    ("PATH_INFO", {"PATH_INFO": "p"}, app_of()),
    ("no path", {"PATH_INFO": KeyError}, app_of()),
    ("CONTENT_LENGTH", {"CONTENT_LENGTH": "-1"}, app_of()),
    ("CONTENT_LENGTH text", {"CONTENT_LENGTH": "x"}, app_of()),
    ("status bytes", {}, app_of(status=b"200 OK")),
    ("status 2 digits", {}, app_of(status="20 OK")),
    ("status 099", {}, app_of(status="099 Low")),
    ("status no space", {}, app_of(status="200")),
    ("headers tuple", {}, app_of(headers=(("Content-Type", "text/plain"),))),
    ("header list item", {}, app_of(headers=[["Content-Type", "text/plain"]])),
    ("header triple", {}, app_of(headers=[("a", "b", "c")])),
    ("header bytes", {}, app_of(headers=[(b"Content-Type", "x")])),
    ("Status header", {}, app_of(headers=CT + [("Status", "200")])),
    ("colon in name", {}, app_of(headers=CT + [("a:b", "c")])),
    ("bad name", {}, app_of(headers=CT + [("1a", "c")])),
    ("name ends in -", {}, app_of(headers=CT + [("X-", "c")])),
    ("bad value", {}, app_of(headers=CT + [("X", "a\tb")])),
    ("no content type", {}, app_of(headers=[])),
    ("204 with content type", {}, app_of(status="204 No Content")),
    ("304 without", {}, app_of(status="304 Not Modified", headers=[], body=())),
    ("exc_info list", {}, app_of(args=("200 OK", CT, [1]))),
    ("three plus args", {}, app_of(args=("200 OK", CT, None, 1))),
    ("returns None", {}, app_of(body=None)),
    ("returns bytes", {}, app_of(body=b"abc")),
    ("yields str", {}, app_of(body=("abc",))),
    ("write str", {}, app_of(body="write")),
    ("read() no size", {}, app_of(extra=lambda e: e["wsgi.input"].read())),
    ("readline", {}, app_of(extra=lambda e: e["wsgi.input"].readline())),
    ("readlines", {}, app_of(extra=lambda e: e["wsgi.input"].readlines())),
    ("iter input", {}, app_of(extra=lambda e: list(e["wsgi.input"]))),
    ("input close", {}, app_of(extra=lambda e: e["wsgi.input"].close())),
    ("errors bytes", {}, app_of(extra=lambda e: e["wsgi.errors"].write(b"x"))),
    ("errors lines", {}, app_of(extra=lambda e: e["wsgi.errors"].writelines(["a", "b"]))),
    ("errors close", {}, app_of(extra=lambda e: e["wsgi.errors"].close())),
]


def drive(module, env, app):
    """Runs app through module.validator: what it raised or returned, the warnings."""
    out = []

    def start_response(status, headers, exc_info=None):
        return out.append

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        it = None
        try:
            it = module.validator(app)(env, start_response)
            result = ("ok", list(it), out)
        except Exception as e:  # noqa: BLE001 - compared
            result = (type(e).__name__, str(e))
        finally:
            if it is not None:
                it.close()
    return result, [(type(w.message).__name__, w.category.__name__, str(w.message))
                    for w in caught]


@pytest.mark.parametrize("name,changes,app", CASES, ids=[c[0] for c in CASES])
def test_validator_matches_wsgiref(name, changes, app):
    ours = drive(validate, environ(**changes), app)
    theirs = drive(wsgiref.validate, environ(**changes), app)
    assert ours[0] == theirs[0]
    assert [c for _, _, c in ours[1]] == [c for _, _, c in theirs[1]]
    assert all(w[1] == "WSGIWarning" for w in ours[1])


def test_validator_checks_order_and_iteration():
    def early(env, sr):
        class It:
            def __iter__(self):
                return iter([b"x"])
        return It()
    it = validate.validator(early)(environ(), lambda s, h, e=None: None)
    with pytest.raises(AssertionError, match="start_response has not yet been called"):
        next(it)
    it.close()
    it = validate.validator(app_of())(environ(), lambda s, h, e=None: None)
    it.close()
    with pytest.raises(AssertionError, match="Iterator read after closed"):
        next(it)


def test_validated_app_through_gateway_handlers():
    out, err = io.BytesIO(), io.StringIO()
    h = handlers.SimpleHandler(io.BytesIO(), out, err, dict(GOOD_ENV, SERVER_PROTOCOL="HTTP/1.0"))
    h.run(validate.validator(app_of(headers=[("X", "y")])))
    assert out.getvalue().startswith(b"HTTP/1.0 500 ")
    assert "AssertionError: No Content-Type header found in headers ([('X', 'y')])" in \
        err.getvalue()
    out, err = io.BytesIO(), io.StringIO()
    h = handlers.SimpleHandler(io.BytesIO(), out, err, dict(GOOD_ENV, SERVER_PROTOCOL="HTTP/1.0"))
    h.run(validate.validator(app_of(body=(b"hello",))))
    assert out.getvalue().startswith(b"HTTP/1.0 200 OK\r\n") and out.getvalue().endswith(b"hello")
    assert err.getvalue() == ""


# ---- simple_server in memory ------------------------------------------------------------

class MockServer(simple_server.WSGIServer):
    """test_wsgiref's: no socket; the request is (rfile, wfile)."""

    def __init__(self, server_address, handler_class):
        BaseServer.__init__(self, server_address, handler_class)
        self.server_name, self.server_port = server_address
        self.setup_environ()


class MockHandler(simple_server.WSGIRequestHandler):
    def setup(self):
        self.connection = self.request
        self.rfile, self.wfile = self.connection

    def finish(self):
        pass


def echo_app(env, start_response):
    body = env["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    keys = sorted(k for k in env if not k.startswith("wsgi."))
    return [b"%d:%s\n" % (len(body), body)] + [
        ("%s=%s\n" % (k, env[k])).encode("latin-1") for k in keys]


def serve(data, app=echo_app, handler=MockHandler, script_name="", port=80):
    server = simple_server.make_server("", port, app, MockServer, handler)
    server.base_environ["SCRIPT_NAME"] = script_name
    called = []

    def wrapped(env, sr):
        called.append(env)
        return app(env, sr)
    server.set_app(wrapped)
    out = io.BytesIO()
    olderr = sys.stderr
    err = sys.stderr = io.StringIO()
    try:
        server.finish_request((io.BufferedReader(io.BytesIO(data)), out), ("192.0.2.7", 4242))
    finally:
        sys.stderr = olderr
    return out.getvalue(), err.getvalue(), called


def fields(out):
    body = out.split(b"\r\n\r\n", 1)[1]
    return dict(line.split("=", 1) for line in body.decode("latin-1").splitlines()[1:])


def test_environ_is_the_librarys():
    out, err, called = serve(b"GET /a%2Fb/../c?q=%20 HTTP/1.1\r\nHost: ex.org:81\r\n"
                             b"X-A: 1\r\nX-A: 2\r\nCookie: a=1\r\nCookie: b=2\r\n"
                             b"Proxy: evil\r\nX_Y: under\r\n\r\n")
    assert out.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"\r\nServer: WSGIServer/0.2 CPython/" in out.split(b"\r\n\r\n")[0]
    env = fields(out)
    assert env["PATH_INFO"] == "/a/c"  # %2F decoded, then ".." resolved on the result
    assert env["REQUEST_URI"] == "/a%2Fb/../c?q=%20" and env["QUERY_STRING"] == "q=%20"
    assert env["HTTP_X_A"] == "1, 2" and env["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_PROXY" not in env and "HTTP_X_Y" not in env
    assert env["REMOTE_ADDR"] == "192.0.2.7" and env["REMOTE_PORT"] == "4242"
    assert env["SERVER_NAME"] == "localhost" and env["SERVER_PORT"] == "80"
    assert env["SERVER_SOFTWARE"] == "WSGIServer/0.2" and env["HTTP_HOST"] == "ex.org:81"
    assert "REMOTE_HOST" not in env and "CONTENT_LENGTH" not in env
    assert "CONTENT_TYPE" not in env
    sent = len(out) - out.index(b"\r\n\r\n") - 4
    assert err.endswith('"GET /a%%2Fb/../c?q=%%20 HTTP/1.1" 200 %d\n' % sent)


def test_bodies_with_length_and_chunked():
    out, _, _ = serve(b"POST / HTTP/1.0\r\nContent-Length: 005\r\n\r\nhelloEXTRA")
    assert out.split(b"\r\n\r\n", 1)[1].startswith(b"5:hello\n")
    assert fields(out)["CONTENT_LENGTH"] == "5"
    out, _, _ = serve(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nT: 1\r\n\r\n")
    assert out.split(b"\r\n\r\n", 1)[1].startswith(b"7:abcdefg\n")


@pytest.mark.parametrize("head,code,reason", [
    (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     400, b""),
    (b"GET /../etc/passwd HTTP/1.0\r\n\r\n", 400, b""),
    (b"GET /%00 HTTP/1.0\r\n\r\n", 400, b""),
    (b"GET / HTTP/1.1\r\n\r\n", 400, b"Host"),
    (b"GET / HTTP/1.0\r\nContent-Length: +5\r\n\r\n", 400, b""),
    (b"GET / HTTP/1.0\r\nX: a\r\n b\r\n\r\n", 400, b""),
    (b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501, b""),
    (b"GET / HTTP/2.0\r\n\r\n", 505, b""),
    (b"GET /" + b"x" * 9000 + b" HTTP/1.0\r\n\r\n", 414, b""),
    (b"GET / HTTP/1.0\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n", 431, b""),
    (b"GET / HTTP/1.0\r\nX: " + b"v" * 70000 + b"\r\n\r\n", 431, b""),
    (b"GET / HTTP/1.0\r\nX: 1\r\n", 400, b"ended inside the request head"),
])
def test_bad_heads_are_refused_without_calling_the_app(head, code, reason):
    out, err, called = serve(head)
    assert called == []
    assert out.startswith(b"HTTP/1.0 %d " % code), out[:80]
    assert reason in out
    assert " %d " % code in err


def test_line_ends_and_mount_prefix():
    out, _, called = serve(b"GET /x HTTP/1.0\nX: 1\n\n")
    assert out.startswith(b"HTTP/1.0 200 ") and called

    class Strict(MockHandler):
        strict_line_ends = True
    out, _, called = serve(b"GET /x HTTP/1.0\nX: 1\n\n", handler=Strict)
    assert out.startswith(b"HTTP/1.0 400 ") and not called
    out, _, called = serve(b"GET /x HTTP/1.0\r\nX: 1\r\n\r\n", handler=Strict)
    assert out.startswith(b"HTTP/1.0 200 ")
    out, _, _ = serve(b"GET /app/x HTTP/1.0\r\n\r\n", script_name="/app")
    assert fields(out)["SCRIPT_NAME"] == "/app" and fields(out)["PATH_INFO"] == "/x"
    out, _, called = serve(b"GET /other HTTP/1.0\r\n\r\n", script_name="/app")
    assert out.startswith(b"HTTP/1.0 404 ") and not called
    out, _, called = serve(b"")  # the client went away: no answer, as wsgiref
    assert out == b"" and not called


# ---- over sockets -------------------------------------------------------------------------

def request(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_over_a_loopback_socket():
    class Quiet(simple_server.WSGIRequestHandler):
        def log_message(self, *args):
            pass
    server = simple_server.make_server("127.0.0.1", 0, echo_app, handler_class=Quiet)
    try:
        port = server.server_address[1]
        server.timeout = 10  # handle_request gives up rather than hang the run
        t = threading.Thread(target=lambda: [server.handle_request() for _ in range(2)],
                             daemon=True)
        t.start()
        out = request(port, b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok")
        assert out.startswith(b"HTTP/1.0 200 OK\r\n") and b"\r\n\r\n2:ok\n" in out
        out = request(port, b"GET /p HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert out.startswith(b"HTTP/1.0 400 ")
        t.join(10)
        assert not t.is_alive()
    finally:
        server.server_close()


def test_python_m_gateway_simple_server_serves_demo_app_once():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "gateway.simple_server", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        first = proc.stdout.readline().decode()
        assert first.startswith("Serving HTTP on 0.0.0.0 port ")
        port = int(first.split()[5])
        out = request(port, b"GET /xyz?abc HTTP/1.0\r\n\r\n")
        assert out.startswith(b"HTTP/1.0 200 OK\r\n")
        assert b"Content-Type: text/plain; charset=utf-8" in out
        body = out.split(b"\r\n\r\n", 1)[1].decode()
        assert body.startswith("Hello world!\n\n")
        assert "PATH_INFO = '/xyz'" in body and "QUERY_STRING = 'abc'" in body
        assert proc.wait(10) == 0  # one request, then exit
        assert b'"GET /xyz?abc HTTP/1.0" 200' in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
