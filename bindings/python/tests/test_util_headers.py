"""gateway.util and gateway.headers: wsgiref's results for every input (compared with
CPython's wsgiref.util and wsgiref.headers over many generated cases), and the library's
functions as the ones computing them."""

import io
import itertools
import os
import random
import sys
import warnings
import wsgiref.headers
import wsgiref.util
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import headers as gheaders  # noqa: E402
from gateway import util as gutil  # noqa: E402


class Spy:
    """Stands for the cffi `lib` of a module and counts the library calls made through it."""

    def __init__(self, lib):
        self._lib = lib
        self.calls = []

    def __getattr__(self, name):
        attr = getattr(self._lib, name)
        if not name.startswith("gw_"):
            return attr

        def call(*args):
            self.calls.append(name)
            return attr(*args)
        return call


@pytest.fixture
def spy(monkeypatch):
    def install(module):
        s = Spy(module.lib)
        monkeypatch.setattr(module, "lib", s)
        return s
    return install


def outcome(func, *args):
    """What a call gives: its result (and the environ after), or its exception's type and
    message."""
    try:
        return ("ok", func(*args))
    except Exception as e:  # noqa: BLE001 - compared, not hidden
        return (type(e).__name__, str(e))


# ---- util -------------------------------------------------------------------------------

PIECES = ["", "/", "a", "..", ".", "//", "sp\xe4m", "x y", "%41", ";=,", "?#", "\u20ac",
          "/x/", "~_.-", "\x00"]


def random_environs(n, seed=9):
    rng = random.Random(seed)
    keys = ["wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME",
            "PATH_INFO", "QUERY_STRING", "HTTPS"]
    values = {
        "wsgi.url_scheme": ["http", "https", "ftp", None],
        "HTTP_HOST": ["", "h.example:81", None, "h\xe9", "\u20ac"],
        "SERVER_NAME": ["srv", "", "127.0.0.1", 7],
        "SERVER_PORT": ["80", "443", "8080", "", 80],
        "HTTPS": ["on", "1", "yes", "ON", "off", True, ""],
        "QUERY_STRING": ["", "a=1&b=%20", "s\xe4y=ni", None],
    }
    for _ in range(n):
        env = {}
        for key in keys:
            if rng.random() < 0.75:
                if key in ("SCRIPT_NAME", "PATH_INFO"):
                    parts = [rng.choice(PIECES) for _ in range(rng.randrange(4))]
                    env[key] = ("/" if rng.random() < 0.8 else "") + "/".join(parts)
                    if rng.random() < 0.05:
                        env[key] = None
                else:
                    env[key] = rng.choice(values[key])
        yield env


def test_uris_match_wsgiref():
    checked = 0
    for env in random_environs(3000):
        for name, args in (("application_uri", ()), ("request_uri", ()),
                           ("request_uri", (False,)), ("request_uri", (0,))):
            ours = outcome(getattr(gutil, name), dict(env), *args)
            theirs = outcome(getattr(wsgiref.util, name), dict(env), *args)
            assert ours[0] == theirs[0], (name, env, ours, theirs)
            if ours[0] in ("ok", "KeyError"):
                assert ours == theirs, (name, env)
            checked += 1
    assert checked == 12000


def test_shift_path_info_matches_wsgiref():
    scripts = ["", "/", "/a", "/a/b", "/sp\xe4m/", None]
    paths = ["", "/", "x", "/x", "/x/", "/../y", "///./..//y/.//", "/.", "/.//", "/x//",
             "/a b/c", "/\xe9/\u20ac", "/\x00/y", "//", "/./y/", None]
    for sn, pi in itertools.product(scripts, paths):
        for drop in ((), ("SCRIPT_NAME",), ("PATH_INFO",)):
            env = {"SCRIPT_NAME": sn, "PATH_INFO": pi}
            for key in drop:
                del env[key]
            ours, theirs = dict(env), dict(env)
            a = outcome(gutil.shift_path_info, ours)
            b = outcome(wsgiref.util.shift_path_info, theirs)
            assert a == b and ours == theirs, (env, a, b, ours, theirs)
            # Shift again until nothing is left, as a dispatcher would.
            for _ in range(6):
                if a[0] != "ok" or a[1] is None:
                    break
                a = outcome(gutil.shift_path_info, ours)
                b = outcome(wsgiref.util.shift_path_info, theirs)
                assert a == b and ours == theirs, (env, a, b)


def snapshot(env):
    """An environ with its stream objects replaced by their type, for comparing."""
    return [(k, type(v).__name__ if k in ("wsgi.input", "wsgi.errors") else v)
            for k, v in env.items()]


def test_setup_testing_defaults_matches_wsgiref():
    keys = ["SERVER_NAME", "SERVER_PROTOCOL", "HTTP_HOST", "REQUEST_METHOD", "SCRIPT_NAME",
            "PATH_INFO", "wsgi.version", "wsgi.url_scheme", "SERVER_PORT", "HTTPS",
            "wsgi.input", "X"]
    values = ["", "v", "\xe9", "https", "http", "on", None, 3, (2, 0), "\u20ac", "\x00"]
    rng = random.Random(3)
    for _ in range(3000):
        env = {k: rng.choice(values) for k in keys if rng.random() < 0.3}
        ours, theirs = dict(env), dict(env)
        a = outcome(gutil.setup_testing_defaults, ours)
        b = outcome(wsgiref.util.setup_testing_defaults, theirs)
        assert a == b, env
        assert snapshot(ours) == snapshot(theirs), env
    # Existing values are the very objects given, never replaced.
    marker = object()
    env = {"wsgi.input": marker}
    gutil.setup_testing_defaults(env)
    assert env["wsgi.input"] is marker


def test_guess_scheme_and_hop_by_hop_match_wsgiref():
    for value in ["on", "1", "yes", "On", "", "0", None, 1, True, "\u20ac", "o\x00n"]:
        env = {"HTTPS": value}
        assert gutil.guess_scheme(env) == wsgiref.util.guess_scheme(env), value
    assert gutil.guess_scheme({}) == "http"
    names = ["Connection", "keep-alive", "TE", "Trailers", "Trailer", "X", "", "upgrade ",
             "\u20ac", "UPGRADE", "Proxy-Authorization", "te\x00"]
    for name in names:
        assert gutil.is_hop_by_hop(name) == wsgiref.util.is_hop_by_hop(name), name
    with pytest.raises(AttributeError):
        gutil.is_hop_by_hop(b"te")


def test_the_library_computes_them(spy):
    s = spy(gutil)
    env = {}
    gutil.setup_testing_defaults(env)
    assert gutil.request_uri(dict(env, PATH_INFO="/a b")) == "http://127.0.0.1/a%20b"
    assert gutil.application_uri(env) == "http://127.0.0.1/"
    assert gutil.shift_path_info(dict(env, PATH_INFO="/x/y")) == "x"
    assert gutil.guess_scheme({"HTTPS": "on"}) == "https"
    assert gutil.is_hop_by_hop("TE")
    for name in ("gw_environ_setup_testing_defaults", "gw_environ_request_uri",
                 "gw_environ_application_uri", "gw_environ_shift_path_info",
                 "gw_environ_guess_scheme", "gw_is_hop_by_hop"):
        assert name in s.calls, name
    # Every scratch environ made is freed.
    assert s.calls.count("gw_environ_new") == s.calls.count("gw_environ_free")


def test_uri_longer_than_the_scratch_buffer():
    env = {}
    gutil.setup_testing_defaults(env)
    env["PATH_INFO"] = "/" + "\xe9" * 5000  # 15,000 bytes once quoted
    assert gutil.request_uri(env) == wsgiref.util.request_uri(env)


def test_file_wrapper_on_a_regular_file_uses_the_library(tmp_path, spy):
    data = os.urandom(20000)
    path = tmp_path / "f"
    path.write_bytes(data)
    s = spy(gutil)
    f = open(path, "rb", buffering=0)
    f.read(100)  # from the current position, as filelike.read does
    w = gutil.FileWrapper(f, 8192)
    assert iter(w) is w
    blocks = list(w)
    assert [len(b) for b in blocks] == [8192, 8192, 20000 - 100 - 16384]
    assert b"".join(blocks) == data[100:]
    assert "gw_file_wrapper_next" in s.calls
    assert not f.closed
    assert list(w) == []  # the end again: not closed
    w.close()
    assert f.closed
    with pytest.raises(ValueError):
        next(w)
    # wsgiref's results for the same file.
    f2 = open(path, "rb", buffering=0)
    f2.read(100)
    assert list(wsgiref.util.FileWrapper(f2, 8192)) == blocks
    f2.close()


def test_file_wrapper_on_other_objects_is_wsgirefs():
    w = gutil.FileWrapper(io.StringIO("xyz" * 50), 120)
    assert list(w) == ["xyz" * 40, "xyz" * 10]
    w.close()
    assert w.filelike.closed
    r, wfd = os.pipe()
    os.write(wfd, b"abc")
    os.close(wfd)
    with open(r, "rb", buffering=0) as pipe:  # not a regular file: read(n) as wsgiref
        assert list(gutil.FileWrapper(pipe, 2)) == [b"ab", b"c"]

    class NoClose:
        def read(self, n):
            return b""
    assert not hasattr(gutil.FileWrapper(NoClose()), "close")


# ---- headers ----------------------------------------------------------------------------

def apply(module, ops):
    """Runs `ops` on a Headers of `module` over a fresh list; the outcomes and the list."""
    lst = [("Content-Type", "text/plain"), ("X-A", "1")]
    h = module.Headers(lst)
    results = []
    for op, args, kw in ops:
        results.append(outcome(lambda: getattr(h, op)(*args, **kw)) if op[0] != "!" else
                       outcome(lambda: {"!str": str, "!bytes": bytes, "!len": len,
                                        "!repr": repr}[op](h)))
    return results, lst


def test_headers_match_wsgiref():
    rng = random.Random(5)
    names = ["x-a", "X-A", "Content-Type", "content-TYPE", "\xc9t\xe9", "\xe9T\xc9", "new",
             "\u20ac"]
    values = ["v", "", "a;b", 'q"uo\\te', "\xe9", "\u20ac", None, 5]
    ops = []
    for _ in range(4000):
        kind = rng.choice(["get", "__getitem__", "get_all", "__contains__", "__delitem__",
                           "__setitem__", "setdefault", "add_header", "keys", "values",
                           "items", "!str", "!bytes", "!len", "!repr"])
        name, value = rng.choice(names), rng.choice(values)
        if kind in ("get", "__getitem__", "get_all", "__contains__", "__delitem__"):
            ops.append((kind, (name,), {}))
        elif kind in ("__setitem__", "setdefault"):
            ops.append((kind, (name, value), {}))
        elif kind == "add_header":
            params = {rng.choice(["a_b", "filename", "c"]): rng.choice(values)
                      for _ in range(rng.randrange(3))}
            ops.append((kind, (name, value), params))
        else:
            ops.append((kind, (), {}))
    for start in range(0, len(ops), 40):
        chunk = ops[start:start + 40]
        ours, ours_list = apply(gheaders, chunk)
        theirs, theirs_list = apply(wsgiref.headers, chunk)
        for op, a, b in zip(chunk, ours, theirs):
            if op[0] == "!repr":
                continue
            assert a == b, (op, a, b)
        assert ours_list == theirs_list


def test_headers_type_checks_and_shared_list():
    with pytest.raises(TypeError, match="Headers must be a list of name/value tuples"):
        gheaders.Headers("foo")
    with pytest.raises(AssertionError, match=r"must be of type str \(got 1\)"):
        gheaders.Headers([("x", 1)])
    with pytest.raises(AssertionError, match=r"must be of type str \(got b'x'\)"):
        gheaders.Headers()["x"] = b"x"
    lst = []
    h = gheaders.Headers(lst)
    h.add_header("Content-Disposition", "attachment", filename="bud.gif")
    assert lst == [("Content-Disposition", 'attachment; filename="bud.gif"')]
    lst.append(("X", "y"))
    assert h["x"] == "y" and len(h) == 2
    assert h.items() is not lst and h.items() == lst
    assert repr(h) == "Headers(%r)" % lst


def test_headers_refuse_control_characters_as_the_library_does():
    lst = [("A", "b")]
    h = gheaders.Headers(lst)
    for name, value in (("X", "a\r\nSet-Cookie: x"), ("X\n", "v"), ("X", "\x00"),
                        ("X", "\x7f")):
        with pytest.raises(ValueError, match="Control characters not allowed in headers"):
            h[name] = value
        with pytest.raises(ValueError, match="Control characters not allowed in headers"):
            h.setdefault(name, value)
        with pytest.raises(ValueError, match="Control characters not allowed in headers"):
            h.add_header(name, value)
        with pytest.raises(ValueError, match="Control characters not allowed in headers"):
            gheaders.Headers([(name, value)])
    with pytest.raises(ValueError):
        h.add_header("X", "v", p="a\nb")
    assert lst == [("A", "b")]  # nothing changed
    h["T"] = "a\tb"  # HTAB is allowed in values
    lst.append(("Y", "in\njected"))  # behind the object's back: formatting refuses it
    with pytest.raises(ValueError, match="Control characters"):
        bytes(h)


def test_headers_use_the_library(spy):
    s = spy(gheaders)
    h = gheaders.Headers([("A", "b")])
    h.add_header("X", None, a_b="c", d=None)
    assert h["x"] == 'a-b="c"; d'
    assert bytes(h) == b'A: b\r\nX: a-b="c"; d\r\n\r\n'
    assert str(h) == 'A: b\r\nX: a-b="c"; d\r\n\r\n'
    for name in ("gw_headers_new_from", "gw_headers_add_header", "gw_headers_format"):
        assert name in s.calls, name
    made = s.calls.count("gw_headers_new_from") + s.calls.count("gw_headers_new")
    assert made == s.calls.count("gw_headers_free")


def test_headers_need_no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = gheaders.Headers()
        h["a"] = "b"
        str(h)
