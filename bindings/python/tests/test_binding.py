"""gateway.handlers' own contract: the PEP 3333 environ, wsgi.input and wsgi.errors over the
library's streams, failures that never look like success, and the values the packed form
cannot carry."""

import io
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import handlers  # noqa: E402

BASE = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.0", "PATH_INFO": "/p",
        "SERVER_NAME": "localhost", "SERVER_PORT": "80"}


def run(app, body=b"", cgi=None, cls=handlers.BaseCGIHandler, os_environ=None, **attrs):
    environ = dict(BASE, **(cgi or {}))
    out, err = io.BytesIO(), io.StringIO()
    h = cls(io.BytesIO(body), out, err, environ)
    h.os_environ = {} if os_environ is None else os_environ
    for name, value in attrs.items():
        setattr(h, name, value)
    h.run(app)
    return out.getvalue(), err.getvalue(), h


def capture(seen):
    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
    return app


def test_environ_is_pep3333():
    seen = {}
    out, err, h = run(capture(seen), os_environ={"HOME": "/h", "PATH_INFO": "/os"},
                      cgi={"HTTPS": "on"})
    assert out == b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
    assert err == ""
    assert seen["wsgi.version"] == (1, 0)
    for flag in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once",
                 "wsgi.input_terminated"):
        assert type(seen[flag]) is bool
    assert seen["wsgi.multithread"] is True and seen["wsgi.run_once"] is False
    assert seen["wsgi.url_scheme"] == "https"  # computed by the library from HTTPS
    assert seen["wsgi.file_wrapper"] is h.wsgi_file_wrapper
    assert isinstance(seen["wsgi.input"], handlers.InputStream)
    assert isinstance(seen["wsgi.errors"], handlers.ErrorStream)
    assert seen["HOME"] == "/h" and seen["PATH_INFO"] == "/p"  # the request wins over os
    assert all(type(v) is str for k, v in seen.items() if not k.startswith("wsgi."))
    # The order: os_environ, then the request's variables, then the wsgi.* keys.
    keys = list(seen)
    assert keys[:2] == ["HOME", "PATH_INFO"] and keys.index("HTTPS") < keys.index("wsgi.input")
    # The streams die with the request.
    with pytest.raises(ValueError):
        seen["wsgi.input"].read()


def test_environ_follows_the_attributes_and_os_environ():
    seen = {}
    base = {"A": "1"}
    app = capture(seen)
    run(app, os_environ=base, wsgi_multithread=False, wsgi_file_wrapper=None)
    assert seen["A"] == "1" and seen["wsgi.multithread"] is False
    assert "wsgi.file_wrapper" not in seen
    base["A"] = "2"  # changed in place: seen at the next run
    seen.clear()
    run(app, os_environ=base)
    assert seen["A"] == "2"
    # What the library computes follows each request, on a native handler used before.
    for https, scheme in (("on", "https"), ("off", "http"), ("1", "https")):
        seen.clear()
        run(app, cgi={"HTTPS": https})
        assert seen["wsgi.url_scheme"] == scheme


def test_values_the_packed_form_cannot_carry():
    seen = {}
    marker = object()
    out, err, _ = run(capture(seen), os_environ={"WIDE": "\u20ac uro"},
                      cgi={"NUL": "a\0b", "OBJ": marker, "HTTP_X": "caf\xe9"})
    assert err == ""
    assert seen["WIDE"] == "\u20ac uro"  # not latin-1: given back as it was
    assert seen["NUL"] == "a\0b"
    assert seen["OBJ"] is marker
    assert seen["HTTP_X"] == "caf\xe9"


def test_input_stream():
    body = b"line one\nline two\nthree"
    got = {}

    def app(environ, start_response):
        inp = environ["wsgi.input"]
        got["first"] = inp.readline()
        got["part"] = inp.read(4)
        got["line"] = inp.readline(100)
        got["rest"] = inp.read()
        got["after"] = inp.read(10)
        start_response("200 OK", [])
        return []

    out, err, _ = run(app, body, cgi={"CONTENT_LENGTH": str(len(body))})
    assert got == {"first": b"line one\n", "part": b"line", "line": b" two\n",
                   "rest": b"three", "after": b""}

    def lines_app(environ, start_response):
        got["lines"] = environ["wsgi.input"].readlines()
        start_response("200 OK", [])
        return []

    run(lines_app, body, cgi={"CONTENT_LENGTH": str(len(body))})
    assert got["lines"] == [b"line one\n", b"line two\n", b"three"]

    def iter_app(environ, start_response):
        got["iter"] = list(environ["wsgi.input"])
        start_response("200 OK", [])
        return []

    # Never past CONTENT_LENGTH.
    run(iter_app, body, cgi={"CONTENT_LENGTH": "9"})
    assert got["iter"] == [b"line one\n"]


def test_a_body_cut_short_is_an_error_not_a_shorter_body():
    def app(environ, start_response):
        environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"never"]

    out, err, _ = run(app, b"short", cgi={"CONTENT_LENGTH": "100"})
    assert out.startswith(b"Status: 500 Internal Server Error")
    assert "OSError" in err


def test_errors_stream_goes_to_get_stderr():
    def app(environ, start_response):
        environ["wsgi.errors"].write("note: caf\xe9\n")
        environ["wsgi.errors"].writelines(["a", "b\n"])
        environ["wsgi.errors"].flush()
        start_response("200 OK", [])
        return []

    out, err, _ = run(app)
    assert err == "note: caf\xe9\nab\n"


@pytest.mark.parametrize("where", ["app", "after_start", "iterator", "close", "add_cgi_vars",
                                   "start"])
def test_a_python_exception_is_never_a_silent_ok(where):
    class Result:
        def __iter__(self):
            if where == "iterator":
                raise KeyError("in the iterator")
            yield b"body"

        def close(self):
            if where == "close":
                raise KeyError("in close")

    def app(environ, start_response):
        if where == "app":
            raise KeyError("in the app")
        start_response("200 OK", [] if where != "start" else [("Bad Name", "x")])
        if where == "after_start":
            raise KeyError("after start_response")
        return Result()

    class Handler(handlers.BaseCGIHandler):
        def add_cgi_vars(self):
            if where == "add_cgi_vars":
                raise KeyError("in add_cgi_vars")
            super().add_cgi_vars()

    out, err, _ = run(app, cls=Handler)
    assert "Traceback (most recent call last)" in err
    if where == "close":
        # The response went out; the failing close is logged, nothing more.
        assert out.endswith(b"body")
        assert "KeyError: 'in close'" in err
    elif where == "start":
        assert out.startswith(b"Status: 500 ")
        assert "AssertionError" in err and "Bad Name" in err
    else:
        assert out.startswith(b"Status: 500 ")
        assert "KeyError" in err


def test_failure_after_the_headers_cuts_the_response_short():
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Length", "10")])
        write(b"12345")
        raise RuntimeError("half way")

    out, err, h = run(app)
    assert out == b"Status: 200 OK\r\nContent-Length: 10\r\n\r\n12345"
    assert "RuntimeError: half way" in err
    assert "response cut short" in err


def test_start_response_rules():
    results = {}

    def app(environ, start_response):
        try:
            start_response(200, [])
        except AssertionError as e:
            results["type"] = str(e)
        try:
            start_response("200 OK", [("X-Nul", "a\0b")])
        except AssertionError as e:
            results["nul"] = str(e)
        # A refused call counts (PEP 3333, and wsgiref alike): a second one without
        # exc_info fails; with exc_info before any output it replaces the response.
        try:
            start_response("200 OK", [])
        except AssertionError as e:
            results["twice"] = str(e)
        start_response("500 Oops", [], (None, None, None))
        write = start_response.__self__.write
        write(b"x")
        try:
            raise ValueError("reported")
        except ValueError:
            try:
                start_response("500 Oops", [], sys.exc_info())
            except ValueError as e:
                results["reraised"] = str(e)
        return []

    out, err, _ = run(app)
    assert results["type"].startswith("Status must be of type str")
    assert "control characters" in results["nul"].lower()
    assert results["twice"] == "Headers already set!"
    assert results["reraised"] == "reported"
    assert out == b"Status: 500 Oops\r\n\r\nx"


@pytest.mark.parametrize("error", [BrokenPipeError, ConnectionResetError, ValueError])
def test_a_failing_write_is_never_a_success(error):
    class Failing:
        def write(self, data):
            raise error("the client")

        def flush(self):
            pass

    err = io.StringIO()
    h = handlers.SimpleHandler(io.BytesIO(), Failing(), err, dict(BASE))
    h.os_environ = {}
    h.run(lambda e, s: (s("200 OK", []), [b"x"])[1])
    # Not closed as a sent response: the state stays, as wsgiref leaves it.
    assert h.status == "200 OK" and h.environ is not None
    if error is ValueError:
        assert "Traceback" in err.getvalue() and "ValueError: the client" in err.getvalue()
    else:
        assert err.getvalue() == ""  # a disconnect ends quietly


def test_a_handler_is_reused():
    out, err = io.BytesIO(), io.StringIO()
    h = handlers.SimpleHandler(io.BytesIO(), out, err, dict(BASE))
    h.os_environ = {}

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode()]

    for _ in range(50):
        h.run(app)
    responses = re.sub(rb"Date: [^\r]*", b"Date: D", out.getvalue()).split(b"HTTP/1.0 ")[1:]
    assert responses == [b"200 OK\r\nDate: D\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: 2\r\n\r\n/p"] * 50
    assert h.status is None and h.headers is None  # close() reset the state
    assert h._n is None  # the native handler went back to the thread's free list


def test_format_date_time():
    assert handlers.format_date_time(0) == "Thu, 01 Jan 1970 00:00:00 GMT"


def test_the_library_defaults_the_binding_relies_on():
    # A new native handler is only told the settings that differ from these
    # (handlers._LIBRARY_DEFAULTS): BaseHandler's own defaults.
    class Plain(handlers.BaseHandler):
        def __init__(self):
            self.out, self.err = io.BytesIO(), io.StringIO()

        def _write(self, data):
            self.out.write(data)

        def _flush(self):
            pass

        def get_stdin(self):
            return io.BytesIO()

        def get_stderr(self):
            return self.err

        def add_cgi_vars(self):
            self.environ.update(BASE)

    library_sees = {}

    def app(environ, start_response):
        h = start_response.__self__
        library_sees.update(h._full_environ(h._n.env_out[0]))
        raise KeyError("fails on purpose")

    handlers._FREE.clear()  # a new native handler, as gw_handler_new made it
    h = Plain()
    h.os_environ = {}
    h.run(app)
    assert (library_sees["wsgi.multithread"], library_sees["wsgi.multiprocess"],
            library_sees["wsgi.run_once"]) == ("1", "1", "0")
    assert "wsgi.file_wrapper" in library_sees
    out = h.out.getvalue()
    assert out.startswith(b"HTTP/1.0 500 Internal Server Error\r\nDate: ")
    assert b"Server:" not in out
    assert out.endswith(b"\r\nContent-Type: text/plain\r\nContent-Length: 59\r\n\r\n"
                        b"A server error occurred.  Please contact the administrator.")


def test_handlers_on_threads():
    # The library runs without the GIL between callbacks: handlers on 4 threads at once,
    # sharing an os_environ, each seeing its own request.
    import threading
    shared_os = {"SHARED": "yes"}
    failures = []

    def worker(k):
        try:
            for i in range(150):
                path = "/t%d/%d" % (k, i)

                def app(environ, start_response):
                    start_response("200 OK", [("X-Path", environ["PATH_INFO"])])
                    return [environ["SHARED"].encode(), environ["wsgi.input"].read()]

                body = b"body%d" % i
                out, err, _ = run(app, body, cgi={"PATH_INFO": path,
                                                  "CONTENT_LENGTH": str(len(body))},
                                  os_environ=shared_os)
                want = ("Status: 200 OK\r\nX-Path: %s\r\n\r\nyes" % path).encode() + body
                if out != want or err:
                    failures.append((out, err))
        except BaseException as e:  # pragma: no cover - reported below
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []


def test_each_write_is_flushed_as_wsgiref_does():
    calls = []

    class Recorder:
        def write(self, data):
            calls.append(("write", bytes(data)))

        def flush(self):
            calls.append(("flush",))

    def app(environ, start_response):
        write = start_response("200 OK", [])
        write(b"one")
        return [b"two", b"three"]

    h = handlers.BaseCGIHandler(io.BytesIO(), Recorder(), io.StringIO(), dict(BASE))
    h.os_environ = {}
    h.run(app)
    # The head goes with the first block; every block is flushed before the next is asked for.
    assert calls == [("write", b"Status: 200 OK\r\n\r\none"), ("flush",),
                     ("write", b"two"), ("flush",), ("write", b"three"), ("flush",)]


def test_a_refused_setting_fails_the_run_and_leaves_no_trace():
    with pytest.raises(ValueError, match="http_version"):
        run(capture({}), http_version="one.one", origin_server=True)
    # The next handlers get native handlers whose settings match their attributes.
    out, _, _ = run(capture({}))
    assert out.startswith(b"Status: 200 OK\r\n")
    out, _, _ = run(capture({}), cls=handlers.SimpleHandler)
    assert out.startswith(b"HTTP/1.0 200 OK\r\n")


def test_os_environ_is_passed_on_but_decides_nothing():
    seen = {}
    os_environ = {"HTTPS": "on", "SERVER_SOFTWARE": "from-os", "CONTENT_LENGTH": "5",
                  "WIDE": "\u20ac"}
    out, err, h = run(capture(seen), b"12345", os_environ=os_environ,
                      cls=handlers.SimpleHandler, server_software="gw-test/1")
    # The app sees os_environ (wsgiref's order and setdefault for SERVER_SOFTWARE)...
    assert seen["HTTPS"] == "on" and seen["WIDE"] == "\u20ac"
    assert seen["SERVER_SOFTWARE"] == "from-os"
    # ... but the library decides from the request's variables: no https from the process
    # environment (wsgiref weakness 8.3.7), no body from an os_environ CONTENT_LENGTH.
    assert seen["wsgi.url_scheme"] == "http"
    assert b"Server: gw-test/1\r\n" in out
    seen.clear()
    run(capture(seen), cgi={"HTTPS": "on"}, os_environ=os_environ)
    assert seen["wsgi.url_scheme"] == "https"


@pytest.mark.parametrize("cls, path", [("CGIHandler", "/sub/x"), ("IISCGIHandler", "/x")])
def test_cgi_handlers_in_a_cgi_process(cls, path):
    # The process environment and streams are the request, as a web server's CGI gives them.
    import os
    import subprocess
    script = (
        "import sys\n"
        "from gateway.handlers import %s\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    body = environ['wsgi.input'].read()\n"
        "    return [('%%s %%s %%r %%r ' %% (environ['PATH_INFO'], environ['REQUEST_METHOD'],\n"
        "             environ['wsgi.run_once'], environ['wsgi.multithread'])).encode() + body]\n"
        "%s().run(app)\n" % (cls, cls))
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(Path(__file__).parents[1]),
           "REQUEST_METHOD": "POST", "SCRIPT_NAME": "/sub", "PATH_INFO": "/sub/x",
           "SERVER_PROTOCOL": "HTTP/1.1", "CONTENT_LENGTH": "4"}
    for name in ("GATEWAY_LIBRARY", "GATEWAY_CFFI_MODE"):
        if name in os.environ:
            env[name] = os.environ[name]
    done = subprocess.run([sys.executable, "-c", script], input=b"data", env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    body = ("%s POST True False data" % path).encode()
    assert done.stdout == (b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                           b"\r\n%s" % (len(body), body))


def test_the_traceback_goes_through_wsgi_errors(monkeypatch):
    through = []
    original = handlers.ErrorStream.write

    def spy(self, s):
        through.append(s)
        return original(self, s)

    monkeypatch.setattr(handlers.ErrorStream, "write", spy)

    def app(environ, start_response):
        raise LookupError("logged through the library")

    out, err, _ = run(app)
    assert out.startswith(b"Status: 500 ")
    assert "LookupError: logged through the library" in "".join(through)
    assert "".join(through) in err  # and from there to get_stderr()


def test_large_sizes_read_what_the_body_has():
    body = b"x" * 70000 + b"\n" + b"y" * 10
    got = {}

    def app(environ, start_response):
        inp = environ["wsgi.input"]
        got["line"] = inp.readline(10 ** 12)  # no terabyte buffer: blocks of 64 KiB
        got["small"] = inp.read(4)
        got["rest"] = inp.read(10 ** 12)
        got["end"] = inp.read(0), inp.read(5), inp.readline(5)
        start_response("200 OK", [])
        return []

    out, err, _ = run(app, body, cgi={"CONTENT_LENGTH": str(len(body))})
    assert err == ""
    assert got == {"line": b"x" * 70000 + b"\n", "small": b"yyyy", "rest": b"yyyyyy",
                   "end": (b"", b"", b"")}
