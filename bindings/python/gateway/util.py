"""wsgiref.util backed by libgateway: the same functions, signatures and results on a dict
environ, computed by the library's implementation (gw_environ_application_uri,
gw_environ_request_uri, gw_environ_shift_path_info, gw_environ_setup_testing_defaults,
gw_environ_guess_scheme, gw_is_hop_by_hop, gw_file_wrapper_*).

Each call copies the keys it needs (latin-1 str values) into a scratch gw_environ in one
gw_environ_set_packed call, runs the library's function there and copies back what it
changed. Where the library cannot hold the dict's values (a value that is not a str, a str
latin-1 cannot encode, a NUL inside a value), the function answers as wsgiref's pure-Python
code does, so results stay identical for every input: those paths are marked
"wsgiref's path" below and are the only Python implementations here.
"""

import io
import os
import posixpath
import stat
import threading
from io import BytesIO, StringIO

from gateway._ffi import ffi, last_error, lib

__all__ = [
    "FileWrapper", "guess_scheme", "application_uri", "request_uri",
    "shift_path_info", "setup_testing_defaults", "is_hop_by_hop",
]

OK = 0
INVALID_ARGUMENT = 2
NOT_FOUND = 4
TOO_LARGE = 17


class _Scratch(threading.local):
    """One thread's out-parameters and result buffer, reused across calls."""

    def __init__(self):
        self.env = ffi.new("gw_environ **")
        self.ptr = ffi.new("const char **")
        self.vptr = ffi.new("const void **")
        self.len = ffi.new("size_t *")
        self.count = ffi.new("size_t *")
        self.flag = ffi.new("bool *")
        self.cap = 1024
        self.buf = ffi.new("char[]", self.cap)

    def grow(self, need):
        if need > self.cap:
            self.cap = max(need, self.cap * 2)
            self.buf = ffi.new("char[]", self.cap)


_S = _Scratch()


def _raise(what):
    raise RuntimeError("%s: %s" % (what, last_error()))


def _latin1(value):
    """The bytes for a str value the library can hold, else None (wsgiref's path)."""
    if type(value) is not str:
        return None
    try:
        data = value.encode("latin-1")
    except UnicodeEncodeError:
        return None
    if b"\0" in data:
        return None
    return data


def _pack(environ, keys):
    """`keys`' entries of `environ` as gw_environ_set_packed's buffer, or None when one of
    them cannot be carried (wsgiref's path)."""
    parts = []
    count = 0
    for key in keys:
        if key in environ:
            data = _latin1(environ[key])
            if data is None:
                return None, 0
            parts.append(key.encode("ascii") + b"\0" + data + b"\0")
            count += 1
    return b"".join(parts), count


def _scratch(packed, count):
    """A new gw_environ holding the packed entries (free it with _free)."""
    s = _S
    if lib.gw_environ_new(s.env) != OK:
        _raise("gw_environ_new")
    env = s.env[0]
    if count and lib.gw_environ_set_packed(env, packed, len(packed), count) != OK:
        lib.gw_environ_free(env)
        _raise("gw_environ_set_packed")
    return env


def _free(env):
    lib.gw_environ_free(env)


def _text_out(call, env, *args):
    """Runs a gw_environ_*_uri call with the scratch buffer, growing it once if needed."""
    s = _S
    st = call(env, *args, s.buf, s.cap, s.len)
    if st == TOO_LARGE:
        s.grow(s.len[0])
        st = call(env, *args, s.buf, s.cap, s.len)
    return st, (ffi.unpack(s.buf, s.len[0]).decode("latin-1") if st == OK else None)


# ---- guess_scheme, is_hop_by_hop --------------------------------------------------------

def guess_scheme(environ):
    """Return a guess for whether 'wsgi.url_scheme' should be 'http' or 'https'."""
    https = environ.get("HTTPS")
    # Only a str can be 'yes', 'on' or '1'; any other value is wsgiref's 'http'.
    data = _latin1(https)
    s = _S
    if lib.gw_environ_new(s.env) != OK:
        _raise("gw_environ_new")
    env = s.env[0]
    try:
        if data is not None and lib.gw_environ_set(env, b"HTTPS", 5, data, len(data)) != OK:
            _raise("gw_environ_set")
        if lib.gw_environ_guess_scheme(env, s.ptr, s.len) != OK:
            _raise("gw_environ_guess_scheme")
        return ffi.unpack(s.ptr[0], s.len[0]).decode("ascii")
    finally:
        _free(env)


def is_hop_by_hop(header_name):
    """Return true if 'header_name' is an HTTP/1.1 "Hop-by-Hop" header."""
    name = header_name.lower()  # wsgiref's AttributeError for a name that is not a str
    try:
        data = name.encode("latin-1")
    except UnicodeEncodeError:
        return False  # no hop-by-hop name has a character beyond latin-1
    s = _S
    if lib.gw_is_hop_by_hop(data, len(data), s.flag) != OK:
        _raise("gw_is_hop_by_hop")
    return bool(s.flag[0])


# ---- application_uri, request_uri -------------------------------------------------------

_APP_KEYS = ("wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME")
_REQ_KEYS = _APP_KEYS + ("PATH_INFO", "QUERY_STRING")


def _missing_key(environ):
    """The KeyError wsgiref raises for a missing key, in the order it reads them."""
    if "wsgi.url_scheme" not in environ:
        return KeyError("wsgi.url_scheme")
    if not environ.get("HTTP_HOST"):
        for key in ("SERVER_NAME", "SERVER_PORT"):
            if key not in environ:
                return KeyError(key)
    return None


def _wsgiref_application_uri(environ):
    # wsgiref's path.
    from urllib.parse import quote

    url = environ["wsgi.url_scheme"] + "://"
    if environ.get("HTTP_HOST"):
        url += environ["HTTP_HOST"]
    else:
        url += environ["SERVER_NAME"]
        if environ["wsgi.url_scheme"] == "https":
            if environ["SERVER_PORT"] != "443":
                url += ":" + environ["SERVER_PORT"]
        else:
            if environ["SERVER_PORT"] != "80":
                url += ":" + environ["SERVER_PORT"]
    url += quote(environ.get("SCRIPT_NAME") or "/", encoding="latin1")
    return url


def _wsgiref_request_uri(environ, include_query):
    # wsgiref's path.
    from urllib.parse import quote

    url = application_uri(environ)
    path_info = quote(environ.get("PATH_INFO", ""), safe="/;=,", encoding="latin1")
    if not environ.get("SCRIPT_NAME"):
        url += path_info[1:]
    else:
        url += path_info
    if include_query and environ.get("QUERY_STRING"):
        url += "?" + environ["QUERY_STRING"]
    return url


def _carry(environ, keys):
    """The packed keys, or None when a value the URI reads cannot go to the library. A
    falsy HTTP_HOST (None, '') is left out: wsgiref then reads SERVER_NAME, as the library
    does for an absent or empty one."""
    if not environ.get("HTTP_HOST") and "HTTP_HOST" in environ:
        environ = {k: v for k, v in environ.items() if k != "HTTP_HOST"}
    if not environ.get("SCRIPT_NAME") and "SCRIPT_NAME" in environ:
        environ = {k: v for k, v in environ.items() if k != "SCRIPT_NAME"}
    packed, count = _pack(environ, keys)
    return packed, count


def application_uri(environ):
    """Return the application's base URI (no PATH_INFO or QUERY_STRING)."""
    packed, count = _carry(environ, _APP_KEYS)
    if packed is None:
        return _wsgiref_application_uri(environ)
    missing = _missing_key(environ)
    if missing is not None:
        raise missing
    env = _scratch(packed, count)
    try:
        st, uri = _text_out(lib.gw_environ_application_uri, env)
    finally:
        _free(env)
    if st != OK:
        _raise("gw_environ_application_uri")
    return uri


def request_uri(environ, include_query=True):
    """Return the full request URI, optionally including the query string."""
    keys = _REQ_KEYS if include_query else _REQ_KEYS[:-1]
    packed, count = _carry(environ, keys)
    if packed is None:
        return _wsgiref_request_uri(environ, include_query)
    missing = _missing_key(environ)
    if missing is not None:
        raise missing
    env = _scratch(packed, count)
    try:
        st, uri = _text_out(lib.gw_environ_request_uri, env, bool(include_query))
    finally:
        _free(env)
    if st != OK:
        _raise("gw_environ_request_uri")
    return uri


# ---- shift_path_info --------------------------------------------------------------------

def _wsgiref_shift_path_info(environ):
    # wsgiref's path.
    path_info = environ.get("PATH_INFO", "")
    if not path_info:
        return None
    path_parts = path_info.split("/")
    path_parts[1:-1] = [p for p in path_parts[1:-1] if p and p != "."]
    name = path_parts[1]
    del path_parts[1]
    script_name = environ.get("SCRIPT_NAME", "")
    script_name = posixpath.normpath(script_name + "/" + name)
    if script_name.endswith("/"):
        script_name = script_name[:-1]
    if not name and not script_name.endswith("/"):
        script_name += "/"
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = "/".join(path_parts)
    if name == ".":
        name = None
    return name


def _get(env, name):
    s = _S
    st = lib.gw_environ_get(env, name, len(name), s.ptr, s.len)
    if st != OK:
        _raise("gw_environ_get")
    return ffi.unpack(s.ptr[0], s.len[0]).decode("latin-1")


def shift_path_info(environ):
    """Shift a name from PATH_INFO to SCRIPT_NAME, returning it (None when PATH_INFO has
    no segment left). 'environ' is modified in place, as wsgiref's."""
    path_info = environ.get("PATH_INFO", "")
    if not path_info:
        return None  # wsgiref changes nothing then (not even a missing SCRIPT_NAME)
    packed, count = _pack(environ, ("SCRIPT_NAME", "PATH_INFO"))
    if packed is None:
        return _wsgiref_shift_path_info(environ)
    s = _S
    s.grow(len(packed))  # a buffer as long as PATH_INFO always holds the name
    env = _scratch(packed, count)
    try:
        st = lib.gw_environ_shift_path_info(env, s.buf, s.cap, s.len, s.flag)
        if st == INVALID_ARGUMENT:
            raise IndexError("list index out of range")  # wsgiref's, for 'x' without '/'
        if st != OK:
            _raise("gw_environ_shift_path_info")
        name = ffi.unpack(s.buf, s.len[0]).decode("latin-1") if s.flag[0] else None
        environ["SCRIPT_NAME"] = _get(env, b"SCRIPT_NAME")
        environ["PATH_INFO"] = _get(env, b"PATH_INFO")
    finally:
        _free(env)
    return name


# ---- setup_testing_defaults -------------------------------------------------------------

# The keys setup_testing_defaults reads: whose values matter, and whose presence only.
_VALUE_KEYS = ("SERVER_NAME", "HTTPS", "wsgi.url_scheme")
_PRESENCE_KEYS = (
    "SERVER_PROTOCOL", "HTTP_HOST", "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO",
    "wsgi.version", "wsgi.run_once", "wsgi.multithread", "wsgi.multiprocess",
    "wsgi.input", "wsgi.errors", "SERVER_PORT",
)

# The library's byte-string values for what wsgiref puts there as Python objects.
_OBJECTS = {
    "wsgi.version": lambda v: (1, 0),
    "wsgi.run_once": lambda v: 0,
    "wsgi.multithread": lambda v: 0,
    "wsgi.multiprocess": lambda v: 0,
    "wsgi.input": lambda v: BytesIO(),
    "wsgi.errors": lambda v: StringIO(),
}


def _wsgiref_setup_testing_defaults(environ):
    # wsgiref's path.
    environ.setdefault("SERVER_NAME", "127.0.0.1")
    environ.setdefault("SERVER_PROTOCOL", "HTTP/1.0")
    environ.setdefault("HTTP_HOST", environ["SERVER_NAME"])
    environ.setdefault("REQUEST_METHOD", "GET")
    if "SCRIPT_NAME" not in environ and "PATH_INFO" not in environ:
        environ.setdefault("SCRIPT_NAME", "")
        environ.setdefault("PATH_INFO", "/")
    environ.setdefault("wsgi.version", (1, 0))
    environ.setdefault("wsgi.run_once", 0)
    environ.setdefault("wsgi.multithread", 0)
    environ.setdefault("wsgi.multiprocess", 0)
    environ.setdefault("wsgi.input", BytesIO())
    environ.setdefault("wsgi.errors", StringIO())
    environ.setdefault("wsgi.url_scheme", guess_scheme(environ))
    if environ["wsgi.url_scheme"] == "http":
        environ.setdefault("SERVER_PORT", "80")
    elif environ["wsgi.url_scheme"] == "https":
        environ.setdefault("SERVER_PORT", "443")


def setup_testing_defaults(environ):
    """Update 'environ' with trivial defaults for testing purposes (wsgiref's keys, in
    its order, only where absent; wsgi.input and wsgi.errors an empty BytesIO and a
    StringIO, as wsgiref's)."""
    parts = []
    count = 0
    for key in _VALUE_KEYS:
        if key in environ:
            data = _latin1(environ[key])
            if data is None:
                if key == "HTTPS":
                    continue  # not a str: never 'yes', 'on' or '1', so as if absent
                return _wsgiref_setup_testing_defaults(environ)
            parts.append(key.encode("ascii") + b"\0" + data + b"\0")
            count += 1
    for key in _PRESENCE_KEYS:
        if key in environ:
            parts.append(key.encode("ascii") + b"\0\0")  # only its presence is read
            count += 1
    packed = b"".join(parts)
    env = _scratch(packed, count)
    s = _S
    try:
        if lib.gw_environ_setup_testing_defaults(env) != OK:
            _raise("gw_environ_setup_testing_defaults")
        # The library appends what it adds, in wsgiref's order, after what it was given.
        size = ffi.new("size_t *")
        if lib.gw_environ_packed_size(env, size) != OK:
            _raise("gw_environ_packed_size")
        s.grow(size[0])
        if lib.gw_environ_pack(env, s.buf, s.cap, s.len, s.count, s.flag) != OK:
            _raise("gw_environ_pack")
        items = ffi.unpack(s.buf, s.len[0]).split(b"\0")
    finally:
        _free(env)
    for i in range(2 * count, 2 * s.count[0], 2):
        key = items[i].decode("latin-1")
        convert = _OBJECTS.get(key)
        value = items[i + 1].decode("latin-1")
        environ[key] = convert(value) if convert is not None else value


# ---- FileWrapper ------------------------------------------------------------------------

class FileWrapper:
    """Wrapper to convert file-like objects to iterables (wsgiref's FileWrapper).

    Over an unbuffered binary file on a regular file (``open(path, 'rb', buffering=0)``,
    an ``io.FileIO``) the blocks come from the library's gw_file_wrapper on its descriptor
    (the descriptor stays the file object's: ``close()`` is the file's close, as in
    wsgiref); over anything else from ``filelike.read(blksize)``, as wsgiref's. A buffered
    file is read through Python: its buffer may hold bytes the descriptor is past."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close
        self._gw = None
        if type(filelike) is io.FileIO and type(blksize) is int and 0 < blksize <= 1 << 24:
            try:
                regular = filelike.readable() and stat.S_ISREG(
                    os.fstat(filelike.fileno()).st_mode)
            except (OSError, ValueError):
                regular = False
            if regular:
                out = ffi.new("gw_file_wrapper **")
                if lib.gw_file_wrapper_new(filelike.fileno(), blksize, False, out) != OK:
                    _raise("gw_file_wrapper_new")
                # close_fd false: freeing it never closes the file object's descriptor.
                self._gw = ffi.gc(out[0], lib.gw_file_wrapper_free)

    def __iter__(self):
        return self

    def __next__(self):
        gw = self._gw
        if gw is None:
            data = self.filelike.read(self.blksize)
            if data:
                return data
            raise StopIteration
        if self.filelike.closed:
            raise ValueError("read of closed file")  # FileIO.read's error
        s = _S
        st = lib.gw_file_wrapper_next(gw, s.vptr, s.len)
        if st == OK:
            return ffi.unpack(ffi.cast("const char *", s.vptr[0]), s.len[0])
        if st == NOT_FOUND:
            raise StopIteration
        raise OSError(last_error())
