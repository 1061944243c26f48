"""The C path of API mode (gateway/_speedups.c) against the Python path it stands in for:
the same scripted runs through both, in the same process, must give the same output, log,
handler state and environ. ABI mode has only the Python path (these tests are skipped)."""

import io
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import handlers  # noqa: E402

pytestmark = pytest.mark.skipif(handlers._sp is None, reason="API mode only (the C path)")

BASE = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/p",
        "SERVER_NAME": "localhost", "SERVER_PORT": "80", "QUERY_STRING": "a=1"}


@pytest.fixture
def python_path(monkeypatch):
    """Runs a function with the C path off (native handlers made with the Python callbacks),
    then on again with fresh native handlers."""

    def through_python(func):
        handlers._FREE.clear()
        monkeypatch.setattr(handlers, "_sp", None)
        try:
            return func()
        finally:
            monkeypatch.undo()
            handlers._FREE.clear()

    return through_python


def snapshot(environ):
    """The environ without its per-request stream objects (their types are checked)."""
    assert isinstance(environ["wsgi.input"], handlers.InputStream)
    assert isinstance(environ["wsgi.errors"], handlers.ErrorStream)
    return [(k, v) for k, v in environ.items() if k not in ("wsgi.input", "wsgi.errors")]


class Handler(handlers.SimpleHandler):
    pass


def scripted(steps):
    """Runs each step (cgi, attributes, app) on one reused handler and on a new handler each;
    returns everything observable."""
    seen = []
    results = []
    reused = None
    for fresh in (False, True):
        for cgi, attrs, app in steps:
            environ = dict(BASE, **cgi)
            out, err = io.BytesIO(), io.StringIO()
            if fresh or reused is None:
                h = Handler(io.BytesIO(b"body"), out, err, environ)
                if not fresh:
                    reused = h
            else:
                h = reused
                h.stdout, h.stderr, h.base_env = out, err, environ
                h.stdin = io.BytesIO(b"body")
            h.os_environ = {"OS": "yes", "SERVER_SOFTWARE": "os-software"}
            for name, value in attrs.items():
                setattr(h, name, value)

            def recording(environ, start_response, app=app):
                seen.append(snapshot(environ))
                return app(environ, start_response)

            try:
                h.run(recording)
                raised = None
            except BaseException as exc:  # noqa: BLE001 - compared between the paths
                raised = repr(exc)
            text = re.sub(rb"Date: [^\r]*\r\n", b"", out.getvalue())
            results.append((text, log_without_binding_frames(err.getvalue()),
                            raised, h.status, h.bytes_sent, h.headers_sent))
    return seen, results


def log_without_binding_frames(log):
    """The log with the traceback frames of gateway/handlers.py left out (the Python path
    calls the application from _app_callback, the C path from C) and no line numbers."""
    kept, skipping = [], False
    for line in log.splitlines():
        if line.startswith("  File "):
            skipping = "gateway/handlers.py" in line
            if not skipping:
                kept.append(re.sub(r'File "[^"]*", line \d+', "File", line))
        elif skipping and line.startswith("    "):
            continue
        else:
            skipping = False
            kept.append(line)
    return "\n".join(kept)


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Q", environ["QUERY_STRING"])])
    return [b"hello"]


def streamed(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"first ")
    yield environ["wsgi.input"].read()
    yield b" last"


def failing(environ, start_response):
    start_response("200 OK", [])
    raise ValueError("on purpose")


def with_exc_info(environ, start_response):
    try:
        raise KeyError("x")
    except KeyError:
        start_response("500 Oops", [("X", "1")], sys.exc_info())
    return [b"a", b"b"]


def odd_headers(environ, start_response):
    start_response("200 OK", [("X-Latin", "caf\xe9"), ("X-Nul", "a\0b")])
    return [b"never"]


def bad_status(environ, start_response):
    start_response("200OK", [])
    return [b""]


class OtherWrapper(handlers.FileWrapper):
    pass


class MyHeaders(handlers.Headers):
    made = 0

    def __init__(self, headers):
        MyHeaders.made += 1
        super().__init__(headers)


STEPS = [
    ({}, {}, hello),
    ({"HTTPS": "on"}, {}, hello),                       # the library's changes differ
    ({}, {"wsgi_multithread": False}, hello),           # the wsgi.* values differ
    ({}, {"wsgi_version": (1, 1)}, hello),              # only on the Python side
    ({}, {"wsgi_file_wrapper": OtherWrapper}, hello),   # only on the Python side
    ({"CONTENT_LENGTH": "4"}, {}, streamed),
    ({"X_UNICODE": "\u20ac", "X_BYTES": "\udcff"}, {}, hello),   # latin-1 cannot carry them
    ({"X_OBJ": 12}, {}, hello),                         # not a str
    ({"X_NUL": "a\0b"}, {}, hello),                     # a NUL: entry by entry
    ({"SERVER_SOFTWARE": "cgi-software"}, {}, hello),
    ({}, {"server_software": "mine/1.0", "origin_server": True}, hello),
    ({}, {}, failing),
    ({}, {}, with_exc_info),
    ({}, {}, odd_headers),
    ({}, {}, bad_status),
    ({}, {"headers_class": MyHeaders}, hello),
    ({"BAD=NAME": "x"}, {}, hello),                     # refused by the library
    ({}, {}, hello),
]


def test_the_c_path_is_the_python_path(python_path):
    c_seen, c_results = scripted(STEPS)
    py_seen, py_results = python_path(lambda: scripted(STEPS))
    assert len(c_results) == 2 * len(STEPS)
    for i, (c, py) in enumerate(zip(c_results, py_results)):
        assert c == py, "step %d" % (i % len(STEPS))
    assert c_seen == py_seen
    # The steps do reach what they are for.
    assert any(("wsgi.url_scheme", "https") in s for s in c_seen)
    assert any(("wsgi.multithread", False) in s for s in c_seen)
    assert any(("wsgi.version", (1, 1)) in s for s in c_seen)
    assert any(("wsgi.file_wrapper", OtherWrapper) in s for s in c_seen)
    assert any(("X_UNICODE", "\u20ac") in s for s in c_seen)
    assert any(("X_OBJ", 12) in s for s in c_seen)
    assert any(("SERVER_SOFTWARE", "os-software") in s for s in c_seen)
    assert MyHeaders.made >= 4


def test_start_response_overridden_or_kept_after_the_request(python_path):
    kept = []

    class Overriding(handlers.SimpleHandler):
        def start_response(self, status, headers, exc_info=None):
            return super().start_response(status, headers + [("X-Over", "1")], exc_info)

    def app(environ, start_response):
        kept.append(start_response)
        return hello(environ, start_response)

    def runs():
        outputs = []
        for cls, instance_override in ((Overriding, False), (Handler, True), (Handler, False)):
            out = io.BytesIO()
            h = cls(io.BytesIO(), out, io.StringIO(), dict(BASE))
            if instance_override:
                h.start_response = lambda s, hs, e=None, h=h: handlers.BaseHandler.start_response(
                    h, s, hs + [("X-Instance", "1")], e)
            h.run(app)
            outputs.append(re.sub(rb"Date: [^\r]*\r\n", b"", out.getvalue()))
            with pytest.raises(AssertionError, match="outside of a request"):
                kept[-1]("200 OK", [])
        return outputs

    c = runs()
    assert b"X-Over: 1" in c[0] and b"X-Instance: 1" in c[1] and b"X-" not in c[2].split(
        b"X-Q")[0]
    assert c == python_path(runs)


def test_a_handler_keeping_its_start_response_is_collected():
    # handler -> start_response -> handler: a cycle the collector must be able to break.
    import gc
    import weakref

    refs = []
    for _ in range(3):
        h = Handler(io.BytesIO(), io.BytesIO(), io.StringIO(), dict(BASE))

        def app(environ, start_response, h=h):
            h.kept = start_response
            return hello(environ, start_response)

        h.run(app)
        refs.append(weakref.ref(h))
        del h, app
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
