"""wsgiref.handlers over libgateway: the same classes, arguments, attributes and overridable
methods, with the request cycle (start_response's rules, the preamble, framing, the error
page, the body's close) run by the library.

What a subclass overrides and what the library does:

- I/O stays Python's and overridable: ``_write``, ``_flush``, ``get_stdin``, ``get_stderr``,
  ``add_cgi_vars`` are called by the library through its hooks.
- Settings are read from the attributes at each ``run``: ``wsgi_multithread``,
  ``wsgi_multiprocess``, ``wsgi_run_once``, ``wsgi_file_wrapper``, ``os_environ``,
  ``origin_server``, ``http_version``, ``server_software``, ``error_status``,
  ``error_headers``, ``error_body``.
- Failures: ``handle_error`` and ``log_exception`` are called as wsgiref calls them (the
  traceback goes to ``get_stderr()``); the error page itself is the library's.
- ``close`` is called at the end of a response that was sent, as in wsgiref.
- The rest of the cycle (``finish_response``, ``send_preamble``, ``cleanup_headers``,
  ``error_output``, ``sendfile``...) is the library's: overriding those has no effect.

The environ an application gets is a PEP 3333 dict built from the library's environ in one
call: str values (latin-1), ``wsgi.version`` a tuple, the flags booleans, ``wsgi.input`` and
``wsgi.errors`` file-like objects over the library's streams, ``wsgi.file_wrapper`` the
handler's ``wsgi_file_wrapper``.
"""

import errno
import os
import sys
import warnings
from itertools import chain
from wsgiref.headers import Headers
from wsgiref.util import FileWrapper, guess_scheme

from gateway._ffi import MODE, export, ffi, last_error, lib

# API mode: the hot path in C (gateway/_speedups.c, inside the cffi extension), which runs
# the request with plain C hooks calling the handler's methods; ABI mode (and anything the
# C path does not handle) runs the Python callbacks below.
_sp = None
if MODE == "api" and hasattr(lib, "gwpy_register") and lib.gwpy_register() == 0:
    import gateway._speedups as _sp  # noqa: E402

__all__ = [
    "BaseHandler", "SimpleHandler", "BaseCGIHandler", "CGIHandler",
    "IISCGIHandler", "read_environ", "format_date_time",
]

# gw_status values (include/gateway.h).
OK = 0
INVALID_ARGUMENT = 2
INVALID_STATE = 5
HEADERS_ALREADY_SET = 9
HEADERS_ALREADY_SENT = 10
APP_ERROR = 11
RESPONSE_INCOMPLETE = 12
CLIENT_GONE = 13
IO_ERROR = 14
TOO_LARGE = 17
EXC_INFO = 1  # GW_START_RESPONSE_EXC_INFO

_DISCONNECTS = (ConnectionAbortedError, BrokenPipeError, ConnectionResetError)
_DISCONNECT_ERRNO = {
    ConnectionAbortedError: errno.ECONNABORTED,
    BrokenPipeError: errno.EPIPE,
    ConnectionResetError: errno.ECONNRESET,
}


def format_date_time(timestamp):
    """RFC 1123 date for `timestamp` (seconds since the epoch), as wsgiref's, by the library."""
    out = ffi.new("char[30]")
    st = lib.gw_format_date_time(int(timestamp), out, 30)
    if st != OK:
        raise ValueError(last_error())
    return ffi.string(out).decode("ascii")


# wsgiref.handlers.read_environ, as it is (it is about Python's view of os.environ).
_is_request = {
    "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_METHOD", "AUTH_TYPE",
    "CONTENT_TYPE", "CONTENT_LENGTH", "HTTPS", "REMOTE_USER", "REMOTE_IDENT",
}.__contains__


def _needs_transcode(k):
    return _is_request(k) or k.startswith("HTTP_") or k.startswith("SSL_") or (
        k.startswith("REDIRECT_") and _needs_transcode(k[9:]))


def read_environ():
    """Read environment, fixing HTTP variables (wsgiref.handlers.read_environ)."""
    enc = sys.getfilesystemencoding()
    esc = "surrogateescape"
    try:
        "".encode("utf-8", esc)
    except LookupError:
        esc = "replace"
    environ = {}
    for k, v in os.environ.items():
        if _needs_transcode(k):
            if sys.platform == "win32":  # pragma: no cover - POSIX only here
                software = os.environ.get("SERVER_SOFTWARE", "").lower()
                if software.startswith("microsoft-iis/"):
                    v = v.encode("utf-8").decode("iso-8859-1")
                elif software.startswith("apache/"):
                    pass
                elif software.startswith("simplehttp/") and "python/3" in software:
                    v = v.encode("utf-8").decode("iso-8859-1")
                else:
                    v = v.encode(enc, "replace").decode("iso-8859-1")
            else:
                v = v.encode(enc, esc).decode("iso-8859-1")
        environ[k] = v
    return environ


def _encode_pairs(mapping):
    """`mapping` packed as name NUL value NUL pairs (gw_environ_set_packed's form), latin-1,
    and what the library cannot hold as the app should see it: [(name, original, sent)].
    A str value latin-1 cannot carry goes as UTF-8 (surrogateescape) and the app gets the
    original str back (sent is what the library holds); a value that is not a str (wsgiref's
    setup_testing_defaults puts wsgi.* objects there) stays on the Python side (sent None)."""
    try:
        return ("\0".join(chain.from_iterable(mapping.items())) + "\0").encode("latin-1"), None
    except (TypeError, UnicodeEncodeError):
        pass
    parts = []
    overlay = []
    for name, value in mapping.items():
        if type(name) is not str:
            raise TypeError("environ names must be str, not %r" % (name,))
        if type(value) is not str:
            overlay.append((name, value, None))
            continue
        parts.append(name.encode("latin-1"))
        try:
            parts.append(value.encode("latin-1"))
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogateescape")
            parts.append(raw)
            overlay.append((name, value, raw.decode("latin-1")))
    return b"\0".join(parts) + b"\0" if parts else b"", overlay


def _set_environ(env_ptr, mapping):
    """Puts a str dict into a gw_environ in one call (entry by entry only when a value holds
    a NUL, which the packed form cannot carry). Returns what was sent as packed pairs (empty
    when sent entry by entry), their count, and the overlay of _encode_pairs."""
    if not mapping:
        return b"", 0, None
    data, overlay = _encode_pairs(mapping)
    count = data.count(0) // 2 if overlay else len(mapping)
    st = lib.gw_environ_set_packed(env_ptr, data, len(data), count)
    if st == INVALID_ARGUMENT and data.count(0) != 2 * count:
        data, count = b"", 0
        for name, value in mapping.items():
            if type(value) is not str:
                continue
            n = name.encode("latin-1")
            try:
                v = value.encode("latin-1")
            except UnicodeEncodeError:
                v = value.encode("utf-8", "surrogateescape")
            st = lib.gw_environ_set(env_ptr, n, len(n), v, len(v))
            if st != OK:
                break
    if st != OK:
        raise ValueError("environ refused by gateway: %s" % last_error())
    return data, count, overlay


def _apply_overlay(environ, overlay):
    for name, original, sent in overlay:
        if sent is None or environ.get(name) == sent:
            environ[name] = original


class _Holder:
    __slots__ = ("ref",)


class _Stream:
    """What wsgi.input and wsgi.errors share: the request they belong to, and the check
    that it is still running."""

    __slots__ = ("_handler",)

    def __init__(self, handler):
        self._handler = handler

    def _req(self):
        h = self._handler
        if h is None or h._req is None:
            raise ValueError("I/O operation on a finished request")
        return h._req

    def _fail(self, st):
        h = self._handler
        exc = h._take_hook_exception()
        if exc is not None:
            raise exc
        if st == CLIENT_GONE:
            raise ConnectionResetError(last_error())
        raise OSError(last_error())


class InputStream(_Stream):
    """wsgi.input: the request body as the library reads it (never past CONTENT_LENGTH,
    chunked bodies decoded, a body cut short an error rather than a shorter body)."""

    __slots__ = ()

    def read(self, size=-1):
        req = self._req()
        h = self._handler
        if size is None or size < 0:
            st = lib.gw_request_input_read_all(req, h._n.out_ptr, h._n.out_len)
            if st != OK:
                self._fail(st)
            return ffi.unpack(h._n.out_ptr[0], h._n.out_len[0])
        return self._read_bounded(req, size, lib.gw_request_input_read, False)

    def _read_bounded(self, req, size, call, line):
        """read(size) / readline(size) in blocks of at most 64 KiB, so a large `size`
        allocates only what the body has."""
        out_len = self._handler._n.out_len
        parts = []
        while size > 0:
            cap = min(size, 65536)
            buf = bytearray(cap)
            st = call(req, ffi.from_buffer(buf), cap, out_len)
            if st != OK:
                self._fail(st)
            got = out_len[0]
            del buf[got:]
            parts.append(bytes(buf))
            size -= got
            if got < cap or (line and buf.endswith(b"\n")):
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size=-1):
        req = self._req()
        h = self._handler
        if size is None or size < 0:
            st = lib.gw_request_input_next_line(req, h._n.out_ptr, h._n.out_len)
            if st != OK:
                self._fail(st)
            return ffi.unpack(h._n.out_ptr[0], h._n.out_len[0])
        return self._read_bounded(req, size, lib.gw_request_input_readline, True)

    def readlines(self, hint=-1):
        req = self._req()
        h = self._handler
        lines = ffi.new("const gw_bytes **")
        st = lib.gw_request_input_readlines(req, max(hint or 0, 0), lines, h._n.out_len)
        if st != OK:
            self._fail(st)
        return [ffi.unpack(lines[0][i].data, lines[0][i].len) for i in range(h._n.out_len[0])]

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class ErrorStream(_Stream):
    """wsgi.errors: a text stream over the library's error stream (the handler's
    write_stderr and flush_stderr hooks, so ``get_stderr()`` in the end). UTF-8."""

    __slots__ = ()

    def write(self, s):
        req = self._req()
        data = s.encode("utf-8", "backslashreplace")
        st = lib.gw_request_errors_write(req, data, len(data))
        if st != OK:
            self._fail(st)
        return len(s)

    def writelines(self, seq):
        self.write("".join(seq))

    def flush(self):
        st = lib.gw_request_errors_flush(self._req())
        if st != OK:
            self._fail(st)


class _Native:
    """A native handler and what calling it needs: its hook userdata, out-parameters, the
    environ buffer, the body iterator table, and the settings it was given. Python handlers
    take one from their thread's free list for each run and give it back after, so a server
    that makes a handler per request (wsgiref.simple_server) reuses native handlers too."""

    __slots__ = ("gw", "cap", "ctx", "self", "handle", "out_ptr", "out_len", "out_count", "out_size",
                 "out_bool", "out_code", "out_u64", "env_out", "pack_cap", "pack_buf", "iter",
                 "settings", "wsgi_values", "last_packed", "last_changes")

    def __init__(self):
        # The hooks' userdata: a handle on a holder that points at the Python handler only
        # while it runs.
        self.self = _Holder()
        self.handle = ffi.new_handle(self.self)
        hooks = ffi.new("gw_handler_hooks *")
        hooks.size = ffi.sizeof("gw_handler_hooks")
        if _sp is not None:
            # The C hooks (their userdata the C context); the rarer ones forward to the
            # Python callbacks with the handle.
            self.cap, address = _sp.new_ctx()
            ctx = self.ctx = ffi.cast("gwpy_ctx *", address)
            ctx.handle = self.handle
            ctx.fwd_read = lib_read
            ctx.fwd_write_stderr = lib_write_stderr
            ctx.fwd_flush_stderr = lib_flush_stderr
            hooks.userdata = ctx
            hooks.write = ffi.addressof(lib, "gwpy_write")
            hooks.read_stdin = ffi.addressof(lib, "gwpy_read")
            hooks.write_stderr = ffi.addressof(lib, "gwpy_write_stderr")
            hooks.flush_stderr = ffi.addressof(lib, "gwpy_flush_stderr")
            hooks.add_cgi_vars = ffi.addressof(lib, "gwpy_add_cgi_vars")
        else:
            self.cap = self.ctx = None
            hooks.userdata = self.handle
            # The write hook flushes after each write, as wsgiref's write() does: one
            # crossing.
            hooks.write = lib_write
            hooks.read_stdin = lib_read
            hooks.write_stderr = lib_write_stderr
            hooks.flush_stderr = lib_flush_stderr
            hooks.add_cgi_vars = lib_add_cgi_vars
        out = ffi.new("gw_handler **")
        if lib.gw_handler_new(hooks, out) != OK:
            raise RuntimeError("gw_handler_new: %s" % last_error())
        self.gw = ffi.gc(out[0], lib.gw_handler_free)
        self.out_ptr = ffi.new("const char **")
        self.out_len = ffi.new("size_t *")
        self.out_count = ffi.new("size_t *")
        self.out_size = ffi.new("size_t *")
        self.out_bool = ffi.new("bool *")
        self.out_code = ffi.new("uint16_t *")
        self.out_u64 = ffi.new("uint64_t *")
        self.env_out = ffi.new("gw_environ **")
        if self.ctx is not None:
            self.ctx.gw = self.gw
            self.ctx.env_out = self.env_out
        self.pack_cap = 2048
        self.pack_buf = ffi.new("char[]", self.pack_cap)
        self.iter = ffi.new("gw_body_iter *")
        self.iter.size = ffi.sizeof("gw_body_iter")
        self.iter.userdata = self.handle
        self.iter.next = lib_body_next
        self.iter.block_count = lib_body_count
        self.iter.close = lib_body_close
        self.settings = self.wsgi_values = None
        self.last_packed = self.last_changes = None


# Native handlers not running. One list for every thread: a native handler may move between
# threads (the library allows it), and list.pop and list.append are atomic.
_FREE = []
_FREE_MAX = 8


def _take_native():
    try:
        return _FREE.pop()
    except IndexError:
        return _Native()


def _give_native(native):
    if len(_FREE) < _FREE_MAX:
        _FREE.append(native)


class BaseHandler:
    """Manage the invocation of a WSGI application (wsgiref's BaseHandler, on libgateway)."""

    # Configuration parameters; can override per-subclass or per-instance.
    wsgi_version = (1, 0)
    wsgi_multithread = True
    wsgi_multiprocess = True
    wsgi_run_once = False

    origin_server = True    # We are transmitting direct to client
    http_version = "1.0"    # Version that should be used for response
    server_software = None  # String name of server software, if any

    # os_environ is used to supply configuration from the OS environment:
    # by default it's a copy of 'os.environ' as of import time, but you can
    # override this in e.g. your __init__ method.
    os_environ = read_environ()

    # Collaborator classes
    wsgi_file_wrapper = FileWrapper  # set to None to disable
    headers_class = Headers          # must be a Headers-like class

    # Error handling (also per-subclass or per-instance)
    traceback_limit = None  # Print entire traceback to self.get_stderr()
    error_status = "500 Internal Server Error"
    error_headers = [("Content-Type", "text/plain")]
    error_body = b"A server error occurred.  Please contact the administrator."

    # State variables (don't mess with these)
    status = result = None
    headers_sent = False
    headers = None
    bytes_sent = 0
    environ = None

    # The library's side: the native handler while running.
    _n = None
    _req = None
    _input = _errors = None
    _hook_exc = None
    _reraise = None
    _application = _body = _chunk = None
    _overlay = _cgi = None
    _sent, _sent_count = b"", 0

    def run(self, application):
        """Invoke the application: one request cycle run by the library."""
        if self._n is not None:
            raise RuntimeError("this handler is already running a request")
        n = self._n = _take_native()
        try:
            gw = n.gw
            if _sp is None or not _sp.same_settings(self, n.settings):
                self._sync_settings(gw)
            n.self.ref = self
            self._hook_exc = self._reraise = None
            self._quiet_app_error = False
            self._stdin = None
            try:
                if _sp is not None:
                    # The C path: what it hands back to Python (_cgi_store, _environ_slow)
                    # sets the state the Python path sets here.
                    st = _sp.run(n.cap, self, application, n.wsgi_values)
                else:
                    self._application = application
                    self._overlay = self._cgi = None
                    self._sent, self._sent_count = b"", 0
                    st = lib.gw_handler_run(gw, lib_app, n.handle)
            finally:
                n.self.ref = None
                self._req = None
                self._application = None
                self._body = self._chunk = None
                if self._input is not None:
                    self._input._handler = None
                    self._errors._handler = None
                    self._input = self._errors = None
            if st == OK and self._hook_exc is None and self._reraise is None and \
                    getattr(self.close, "__func__", None) is _close:
                # wsgiref's close() resets what the response left (status, bytes_sent):
                # with nobody overriding it to read them first, skip fetching them.
                self._n = None
                _give_native(n)
                self._discard_state()
                return
            if st in (OK, APP_ERROR, RESPONSE_INCOMPLETE):
                code = n.out_code
                lib.gw_handler_last_response(gw, code, n.out_u64)
                self.bytes_sent = n.out_u64[0]
                if code[0]:
                    self.headers_sent = True
                if st == APP_ERROR:
                    self.status = (self.error_status if code[0] != 413
                                   else "413 Content Too Large")
        finally:
            if self._n is n:
                self._n = None
                _give_native(n)
        if self._hook_exc is not None:
            # A hook failed after the application returned (the library was writing the
            # body): wsgiref's finish_response would have raised it into handle_error.
            exc = self._take_hook_exception()
            if not isinstance(exc, _DISCONNECTS):
                self._handle_error_of(exc)
        reraise = self._reraise
        if reraise is not None:
            self._reraise = None
            self._discard_state()
            raise reraise
        if st in (OK, APP_ERROR, RESPONSE_INCOMPLETE):
            self.close()
        elif st not in (CLIENT_GONE, IO_ERROR):
            raise RuntimeError("gw_handler_run: %s" % last_error())

    # ---- what the library is given ----------------------------------------------------

    def _sync_settings(self, gw):
        """Gives the library the attributes that changed since the last run."""
        settings = (
            self.wsgi_multithread, self.wsgi_multiprocess, self.wsgi_run_once,
            self.origin_server, self.http_version, self.server_software,
            self.wsgi_file_wrapper, self.error_status, self.error_headers,
            self.error_body, self.wsgi_version,
        )
        nat = self._n
        if settings != nat.settings:
            try:
                self._push_settings(gw, settings, nat.settings or _LIBRARY_DEFAULTS)
            except BaseException:
                # Partly set: this native handler no longer matches any record of it.
                self._n = None
                raise
            # A copy: error_headers is a list the caller may change in place.
            nat.settings = settings[:8] + (list(settings[8]),) + settings[9:]
            nat.wsgi_values = {
                "wsgi.version": self.wsgi_version,
                "wsgi.multithread": self.wsgi_multithread,
                "wsgi.multiprocess": self.wsgi_multiprocess,
                "wsgi.run_once": self.wsgi_run_once,
                "wsgi.input_terminated": True,
            }
            if self.wsgi_file_wrapper is not None:
                nat.wsgi_values["wsgi.file_wrapper"] = self.wsgi_file_wrapper

    @staticmethod
    def _push_settings(gw, new, old):
        """Sets on `gw` the settings of `new` that differ from `old` (what it has)."""
        flags = (lib.gw_handler_set_multithread, lib.gw_handler_set_multiprocess,
                 lib.gw_handler_set_run_once, lib.gw_handler_set_origin_server)
        names = ("wsgi_multithread", "wsgi_multiprocess", "wsgi_run_once", "origin_server")
        for i, setter in enumerate(flags):
            if bool(new[i]) != bool(old[i]):
                _check(setter(gw, bool(new[i])), names[i])
        version, software, wrapper = new[4:7]
        if version != old[4]:
            v = str(version).encode("latin-1")
            _check(lib.gw_handler_set_http_version(gw, v, len(v)), "http_version")
        if software != old[5]:
            sw = software.encode("latin-1") if software else b""
            _check(lib.gw_handler_set_server_software(gw, sw, len(sw)), "server_software")
        if (wrapper is None) != (old[6] is None):
            _check(lib.gw_handler_set_file_wrapper(gw, wrapper is not None), "wsgi_file_wrapper")
        error_status, error_headers, error_body = new[7:10]
        if (error_status, error_headers, error_body) != old[7:10]:
            status = error_status.encode("latin-1")
            keep = []
            headers = ffi.new("gw_header[]", max(len(error_headers), 1))
            for i, (name, value) in enumerate(error_headers):
                n, v = name.encode("latin-1"), value.encode("latin-1")
                keep += (n, v)
                headers[i].name, headers[i].name_len = ffi.from_buffer(n), len(n)
                headers[i].value, headers[i].value_len = ffi.from_buffer(v), len(v)
            body = bytes(error_body)
            _check(lib.gw_handler_set_error_page(gw, status, len(status), headers,
                                                 len(error_headers), body, len(body)),
                   "error page")

    def _environ_of(self, req):
        """The request's environ as a PEP 3333 dict, in one call: os_environ and what
        add_cgi_vars gave, copied, then what the library set or changed
        (gw_environ_pack_changes), so only the library's own entries are decoded. os_environ
        stays on the Python side: the library decides from the request's variables only."""
        nat = self._n
        lib.gw_request_environ(req, nat.env_out)
        env_ptr = nat.env_out[0]
        sent = self._sent
        length = nat.out_len
        st = lib.gw_environ_pack_changes(env_ptr, ffi.NULL, sent, len(sent), self._sent_count,
                                         nat.pack_buf, nat.pack_cap, length, nat.out_count,
                                         nat.out_size, nat.out_bool)
        if st == TOO_LARGE:
            self._grow_pack_buffer(env_ptr)
            st = lib.gw_environ_pack_changes(env_ptr, ffi.NULL, sent, len(sent),
                                             self._sent_count, nat.pack_buf, nat.pack_cap,
                                             length, nat.out_count, nat.out_size, nat.out_bool)
        if st != OK:
            raise RuntimeError("gw_environ_pack_changes: %s" % last_error())
        if nat.out_bool[0] or nat.out_size[0]:
            # A value holding a NUL, or an entry add_cgi_vars gave that the library removed.
            environ = self._full_environ(env_ptr)
        else:
            packed = ffi.unpack(nat.pack_buf, length[0])
            if packed == nat.last_packed:
                # The library's own entries are mostly the same from request to request.
                changes = nat.last_changes
            else:
                fields = packed.decode("latin-1").split("\0")
                fields.pop()
                it = iter(fields)
                changes = nat.last_changes = dict(zip(it, it))
                nat.last_packed = packed
            os_environ = self.os_environ
            environ = os_environ.copy()
            cgi = self._cgi
            if cgi:
                environ.update(cgi)
            environ.update(changes)
            if "SERVER_SOFTWARE" in changes and "SERVER_SOFTWARE" in os_environ and \
                    not (cgi and "SERVER_SOFTWARE" in cgi):
                # wsgiref's setdefault: a SERVER_SOFTWARE from os_environ stays.
                environ["SERVER_SOFTWARE"] = os_environ["SERVER_SOFTWARE"]
        environ.update(nat.wsgi_values)
        self._input = environ["wsgi.input"] = InputStream(self)
        self._errors = environ["wsgi.errors"] = ErrorStream(self)
        return environ

    def _grow_pack_buffer(self, env_ptr):
        lib.gw_environ_packed_size(env_ptr, self._n.out_len)
        self._n.pack_cap = max(self._n.out_len[0], 2 * self._n.pack_cap)
        self._n.pack_buf = ffi.new("char[]", self._n.pack_cap)

    def _full_environ(self, env_ptr):
        """os_environ, then the library's whole environ (gw_environ_pack), with the values
        latin-1 could not carry given back as they were."""
        n = self._n.out_len
        st = lib.gw_environ_pack(env_ptr, self._n.pack_buf, self._n.pack_cap, n,
                                 self._n.out_count, self._n.out_bool)
        if st == TOO_LARGE:
            self._grow_pack_buffer(env_ptr)
            st = lib.gw_environ_pack(env_ptr, self._n.pack_buf, self._n.pack_cap, n,
                                     self._n.out_count, self._n.out_bool)
        if st != OK:
            raise RuntimeError("gw_environ_pack: %s" % last_error())
        if self._n.out_bool[0]:
            library = self._environ_by_entry(env_ptr)
        else:
            fields = ffi.unpack(self._n.pack_buf, n[0]).decode("latin-1").split("\0")
            fields.pop()
            it = iter(fields)
            library = dict(zip(it, it))
        if self._overlay:
            _apply_overlay(library, self._overlay)
        environ = self.os_environ.copy()
        environ.update(library)
        return environ

    def _environ_by_entry(self, env_ptr):
        """The environ through gw_environ_next: for values holding a NUL."""
        cursor = ffi.new("size_t *")
        name, name_len = ffi.new("const char **"), ffi.new("size_t *")
        value, value_len = ffi.new("const char **"), ffi.new("size_t *")
        environ = {}
        while lib.gw_environ_next(env_ptr, cursor, name, name_len, value, value_len) == OK:
            environ[ffi.unpack(name[0], name_len[0]).decode("latin-1")] = ffi.unpack(
                value[0], value_len[0]).decode("latin-1")
        return environ

    # ---- the application's side ------------------------------------------------------

    def start_response(self, status, headers, exc_info=None):
        """'start_response()' callable as specified by PEP 3333"""
        req = self._req
        if req is None:
            raise AssertionError("start_response() called outside of a request")
        flags = 0
        if exc_info:
            flags = EXC_INFO
        if type(status) is not str:
            raise AssertionError("Status must be of type str (got %r)" % (status,))
        if type(headers) is not list:
            raise TypeError("Headers must be a list of name/value tuples")
        # wsgiref's own checks first, for its messages; the library checks everything.
        if len(status) < 4:
            raise AssertionError("Status must be at least 4 characters")
        if not status[:3].isdigit():
            raise AssertionError("Status message must begin w/3-digit code")
        if status[3] != " ":
            raise AssertionError("Status message must have a space after code")
        try:
            packed = ("\0".join(chain.from_iterable(headers)) + "\0").encode("latin-1") \
                if headers else b""
            raw_status = status.encode("latin-1")
        except (TypeError, UnicodeEncodeError):
            _check_headers(status, headers)
            raise
        st = lib.gw_request_start_response_packed(req, raw_status, len(raw_status), packed,
                                                  len(packed), len(headers), flags)
        if st == INVALID_ARGUMENT and packed.count(0) != 2 * len(headers):
            _check_headers(status, headers)
            st = _start_response_by_array(req, raw_status, headers, flags)
        if st != OK:
            try:
                self._start_response_failed(st, exc_info)
            finally:
                exc_info = None  # avoid dangling circular ref
        self.status = status
        self.headers = self.headers_class(headers)
        return self.write

    def _start_response_failed(self, st, exc_info=None):
        """Raises what wsgiref raises for the library's refusal `st` of start_response."""
        try:
            if st == HEADERS_ALREADY_SENT and exc_info:
                raise exc_info[1].with_traceback(exc_info[2])
        finally:
            exc_info = None  # avoid dangling circular ref
        if st == HEADERS_ALREADY_SET:
            raise AssertionError("Headers already set!")
        raise AssertionError(last_error())

    def write(self, data):
        """'write()' callable as specified by PEP 3333"""
        if type(data) is not bytes:
            raise AssertionError("write() argument must be a bytes instance")
        req = self._req
        if req is None:
            raise AssertionError("write() called outside of a request")
        st = lib.gw_request_write(req, data, len(data))
        if st != OK:
            exc = self._take_hook_exception()
            if exc is not None:
                raise exc
            if st == INVALID_STATE:
                raise AssertionError("write() before start_response()")
            if st == CLIENT_GONE:
                raise ConnectionResetError(last_error())
            raise OSError(last_error())
        self.headers_sent = True

    def close(self):
        """Called at the end of a response that was sent (the library has closed the
        result already): resets the state, as wsgiref's close does."""
        self._discard_state()

    def _discard_state(self):
        self.result = self.headers = self.status = self.environ = None
        self.bytes_sent = 0
        self.headers_sent = False

    def setup_environ(self):
        """wsgiref's setup_environ, in Python, for code that inspects the environ outside a
        request. run() does not use it: there the library builds the environ."""
        env = self.environ = self.os_environ.copy()
        self.add_cgi_vars()
        env["wsgi.input"] = self.get_stdin()
        env["wsgi.errors"] = self.get_stderr()
        env["wsgi.version"] = self.wsgi_version
        env["wsgi.run_once"] = self.wsgi_run_once
        env["wsgi.url_scheme"] = self.get_scheme()
        env["wsgi.multithread"] = self.wsgi_multithread
        env["wsgi.multiprocess"] = self.wsgi_multiprocess
        if self.wsgi_file_wrapper is not None:
            env["wsgi.file_wrapper"] = self.wsgi_file_wrapper
        if self.origin_server and self.server_software:
            env.setdefault("SERVER_SOFTWARE", self.server_software)

    def get_scheme(self):
        """Return the URL scheme being used"""
        return guess_scheme(self.environ)

    def client_is_modern(self):
        """True if client can accept status and headers"""
        return self.environ["SERVER_PROTOCOL"].upper() != "HTTP/0.9"

    def log_exception(self, exc_info):
        """Log the 'exc_info' tuple in the server log: through the request's wsgi.errors
        (the library's error stream, which ends in ``get_stderr()``) while a request is
        running, else to ``get_stderr()``."""
        try:
            from traceback import print_exception
            stderr = self._errors if self._req is not None and self._errors is not None \
                else self.get_stderr()
            print_exception(exc_info[0], exc_info[1], exc_info[2],
                            self.traceback_limit, stderr)
            stderr.flush()
        finally:
            exc_info = None

    def handle_error(self):
        """Log the current error (the library sends the error page when it still can)."""
        self.log_exception(sys.exc_info())

    # Pure abstract methods; *must* be overridden in subclasses

    def _write(self, data):
        """Override in subclass to buffer data for send to client"""
        raise NotImplementedError

    def _flush(self):
        """Override in subclass to force sending of recent '_write()' calls"""
        raise NotImplementedError

    def get_stdin(self):
        """Override in subclass to return suitable 'wsgi.input'"""
        raise NotImplementedError

    def get_stderr(self):
        """Override in subclass to return suitable 'wsgi.errors'"""
        raise NotImplementedError

    def add_cgi_vars(self):
        """Override in subclass to insert CGI variables in 'self.environ'"""
        raise NotImplementedError

    # ---- failures ----------------------------------------------------------------------

    # ---- what the C path (gateway/_speedups.c) hands back to Python ----------------------

    @staticmethod
    def _req_of(address):
        return ffi.cast("gw_request *", address)

    def _cgi_store(self, env):
        """Gives self.environ (what add_cgi_vars left) to the library's environ `env` (a
        pointer or its address); the status for the add_cgi_vars hook."""
        try:
            if type(env) is int:
                env = ffi.cast("gw_environ *", env)
            cgi = self._cgi = self.environ
            self._sent, self._sent_count, self._overlay = _set_environ(env, cgi)
            return OK
        except BaseException as exc:
            return self._cgi_failed(exc)

    def _cgi_failed(self, exc):
        """add_cgi_vars raised `exc`: the status for the add_cgi_vars hook."""
        if isinstance(exc, _DISCONNECTS):
            return CLIENT_GONE
        self._handle_error_of(exc)
        return APP_ERROR

    def _environ_slow(self, req, sent, sent_count, cgi):
        """_environ_of for an environ the C path does not build itself; `sent` is None when
        the CGI variables went through _cgi_store, else what the C path sent."""
        if sent is not None:
            self._sent, self._sent_count, self._cgi, self._overlay = sent, sent_count, cgi, None
        return self._environ_of(req)

    def _set_body(self, req, result):
        """Gives the application's result to the library as the body."""
        if type(result) is list and len(result) == 1 and type(result[0]) is bytes:
            data = result[0]
            st = lib.gw_request_set_body_bytes(req, data, len(data))
        else:
            self._body = result
            self._chunk = None
            self._index = 0 if type(result) is list or type(result) is tuple else -1
            if self._index < 0:
                self._body_iter = iter(result)
            st = lib.gw_request_set_body_iter(req, self._n.iter)
        if st != OK:
            raise AssertionError(last_error())

    def _take_hook_exception(self):
        exc = self._hook_exc
        self._hook_exc = None
        return exc

    def _handle_error_of(self, exc):
        """Calls handle_error with `exc` as the current exception; what it raises goes out
        of run() once the library has finished."""
        try:
            try:
                raise exc
            except BaseException:
                self.handle_error()
        except BaseException as again:
            if self._reraise is None:
                self._reraise = again

    def _app_failed(self, req, exc):
        """The application (or its result) raised `exc`: a disconnect ends the cycle quietly,
        anything else is logged (traceback through handle_error) and reported to the library
        with gw_request_fail, which sends the error page or cuts the response short."""
        if isinstance(exc, _DISCONNECTS):
            self._hook_exc = None
            return CLIENT_GONE
        self._hook_exc = None
        try:
            self.handle_error()
        except BaseException as again:
            if self._reraise is None:
                self._reraise = again
        # The traceback is logged: the library's one-line summary would repeat it.
        self._quiet_app_error = True
        try:
            message = "".join(
                __import__("traceback").format_exception_only(type(exc), exc)).strip()
        except BaseException:
            message = type(exc).__name__
        data = message.encode("utf-8", "backslashreplace")
        return lib.gw_request_fail(req, data, len(data))

    def _hook_failed(self, exc):
        """A hook raised `exc`: its errno for the library, the exception kept to be raised
        where wsgiref would have raised it."""
        code = _DISCONNECT_ERRNO.get(type(exc))
        if code is None:
            for cls, value in _DISCONNECT_ERRNO.items():
                if isinstance(exc, cls):
                    code = value
                    break
        if code is None:
            self._hook_exc = exc
            code = errno.EIO
        return code


def _check(st, what):
    if st != OK:
        raise ValueError("%s refused by gateway: %s" % (what, last_error()))


def _check_headers(status, headers):
    """wsgiref's type checks on start_response's arguments, for their error messages."""
    for header in headers:
        name, val = header
        if type(name) is not str:
            raise AssertionError("Header name must be of type str (got %r)" % (name,))
        if type(val) is not str:
            raise AssertionError("Header value must be of type str (got %r)" % (val,))
        name.encode("latin-1")
        val.encode("latin-1")
    status.encode("latin-1")


def _start_response_by_array(req, status, headers, flags):
    """start_response through a gw_header array: for a NUL inside a header, which the
    packed form cannot carry and the library then refuses as an invalid header."""
    keep = []
    array = ffi.new("gw_header[]", max(len(headers), 1))
    for i, (name, value) in enumerate(headers):
        n, v = name.encode("latin-1"), value.encode("latin-1")
        keep += (n, v)
        array[i].name, array[i].name_len = ffi.from_buffer(n), len(n)
        array[i].value, array[i].value_len = ffi.from_buffer(v), len(v)
    return lib.gw_request_start_response(req, status, len(status), array, len(headers), flags)


# What gw_handler_new starts with (BaseHandler's defaults, gw_handler_new's doc), in
# _sync_settings' order: only what differs from it is set on a new handler.
_LIBRARY_DEFAULTS = (
    True, True, False, True, "1.0", None, FileWrapper, "500 Internal Server Error",
    [("Content-Type", "text/plain")],
    b"A server error occurred.  Please contact the administrator.", (1, 0),
)

# ---- the callbacks the library calls ---------------------------------------------------------
# Each catches everything: an exception turns into an error status (never a silent OK).

@export("py_app", APP_ERROR)
def _app_callback(userdata, req):
    self = ffi.from_handle(userdata).ref
    self._req = req
    try:
        environ = self.environ = self._environ_of(req)
        result = self.result = self._application(environ, self.start_response)
        self._set_body(req, result)
        return OK
    except BaseException as exc:
        return self._app_failed(req, exc)


@export("py_body_next", APP_ERROR)
def _body_next(userdata, req, out_data, out_len, out_end):
    self = ffi.from_handle(userdata).ref
    try:
        body = self._body
        i = self._index
        if i >= 0:
            if i >= len(body):
                out_end[0] = True
                return OK
            chunk = body[i]
            self._index = i + 1
            if i + 1 == len(body):
                out_end[0] = True
        else:
            try:
                chunk = next(self._body_iter)
            except StopIteration:
                out_end[0] = True
                return OK
        if type(chunk) is not bytes:
            raise AssertionError("write() argument must be a bytes instance")
        if chunk:
            buf = self._chunk = ffi.from_buffer(chunk)
            out_data[0] = buf
        out_len[0] = len(chunk)
        self.headers_sent = self.headers_sent or bool(chunk)
        return OK
    except BaseException as exc:
        return self._app_failed(req, exc)


@export("py_body_count", False)
def _body_count(userdata, out_count):
    self = ffi.from_handle(userdata).ref
    try:
        out_count[0] = len(self._body)
        return True
    except BaseException:
        return False


@export("py_body_close", APP_ERROR)
def _body_close(userdata):
    self = ffi.from_handle(userdata).ref
    try:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
        return OK
    except BaseException as exc:
        self._handle_error_of(exc)
        return APP_ERROR


@export("py_write", errno.EIO)
def _write_hook(userdata, data, length, out_written):
    self = ffi.from_handle(userdata).ref
    try:
        self._write(ffi.buffer(data, length)[:])
        self._flush()
        out_written[0] = length
        return 0
    except BaseException as exc:
        return self._hook_failed(exc)


@export("py_flush", errno.EIO)
def _flush_hook(userdata):
    self = ffi.from_handle(userdata).ref
    try:
        self._flush()
        return 0
    except BaseException as exc:
        return self._hook_failed(exc)


@export("py_read", errno.EIO)
def _read_hook(userdata, buf, length, out_read):
    self = ffi.from_handle(userdata).ref
    try:
        stdin = self._stdin
        if stdin is None:
            stdin = self._stdin = self.get_stdin()
        readinto = getattr(stdin, "readinto", None)
        if readinto is not None:
            got = readinto(ffi.buffer(buf, length))
            if got is None:
                return errno.EAGAIN
        else:
            data = stdin.read(length)
            got = len(data)
            if got > length:
                raise ValueError("get_stdin().read(n) returned more than n bytes")
            ffi.memmove(buf, data, got)
        out_read[0] = got
        return 0
    except BaseException as exc:
        return self._hook_failed(exc)


@export("py_write_stderr", errno.EIO)
def _write_stderr_hook(userdata, data, length, out_written):
    self = ffi.from_handle(userdata).ref
    try:
        text = ffi.buffer(data, length)[:].decode("utf-8", "backslashreplace")
        if self._quiet_app_error and text.startswith("gateway: application error: "):
            self._quiet_app_error = False
            out_written[0] = length
            return 0
        self.get_stderr().write(text)
        out_written[0] = length
        return 0
    except BaseException:
        return errno.EIO


@export("py_flush_stderr", errno.EIO)
def _flush_stderr_hook(userdata):
    self = ffi.from_handle(userdata).ref
    try:
        self.get_stderr().flush()
        return 0
    except BaseException:
        return errno.EIO


@export("py_add_cgi_vars", APP_ERROR)
def _add_cgi_vars_hook(userdata, env_ptr):
    self = ffi.from_handle(userdata).ref
    try:
        self.environ = {}
        self.add_cgi_vars()
    except BaseException as exc:
        return self._cgi_failed(exc)
    return self._cgi_store(env_ptr)


lib_app = _app_callback
lib_body_next = _body_next
lib_body_count = _body_count
lib_body_close = _body_close
lib_write = _write_hook
lib_flush = _flush_hook
lib_read = _read_hook
lib_write_stderr = _write_stderr_hook
lib_flush_stderr = _flush_stderr_hook
lib_add_cgi_vars = _add_cgi_vars_hook

_start_response = BaseHandler.start_response
_close = BaseHandler.close
if _sp is not None:
    _sp.setup(InputStream, ErrorStream, _start_response, Headers)


class SimpleHandler(BaseHandler):
    """Handler that's just initialized with streams, environment, etc.

    This handler subclass is intended for synchronous HTTP/1.0 origin servers,
    and handles sending the entire response output, given the correct inputs.

    Usage::

        handler = SimpleHandler(
            inp,out,err,env, multithread=False, multiprocess=True
        )
        handler.run(app)"""

    def __init__(self, stdin, stdout, stderr, environ,
                 multithread=True, multiprocess=False):
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.base_env = environ
        self.wsgi_multithread = multithread
        self.wsgi_multiprocess = multiprocess

    def get_stdin(self):
        return self.stdin

    def get_stderr(self):
        return self.stderr

    def add_cgi_vars(self):
        self.environ.update(self.base_env)

    def _write(self, data):
        result = self.stdout.write(data)
        if result is None or result == len(data):
            return
        warnings.warn("SimpleHandler.stdout.write() should not do partial writes",
                      DeprecationWarning)
        while True:
            data = data[result:]
            if not data:
                break
            result = self.stdout.write(data)

    def _flush(self):
        self.stdout.flush()
        self._flush = self.stdout.flush


class BaseCGIHandler(SimpleHandler):
    """CGI-like systems using input/output/error streams and environ mapping

    Usage::

        handler = BaseCGIHandler(inp,out,err,env)
        handler.run(app)

    This handler class is useful for gateway protocols like ReadyExec and
    FastCGI, that have usable input/output/error streams and an environment
    mapping.  It's also the base class for CGIHandler, which just uses
    sys.stdin, os.environ, and so on.

    The constructor also takes keyword arguments 'multithread' and
    'multiprocess' (defaulting to 'True' and 'False' respectively) to control
    the configuration sent to the application.  It sets 'origin_server' to
    False (to enable CGI-like output), and assumes that 'wsgi.run_once' is
    False.
    """

    origin_server = False


class CGIHandler(BaseCGIHandler):
    """CGI-based invocation via sys.stdin/stdout/stderr and os.environ

    Usage::

        CGIHandler().run(app)

    The difference between this class and BaseCGIHandler is that it always
    uses 'wsgi.run_once' of 'True', 'wsgi.multithread' of 'False', and
    'wsgi.multiprocess' of 'True'.  It does not take any initialization
    parameters, but always uses 'sys.stdin', 'os.environ', and friends.

    If you need to override any of these parameters, use BaseCGIHandler
    instead.
    """

    wsgi_run_once = True
    # Do not allow os.environ to leak between requests in Google App Engine
    # and other multi-run CGI use cases.  This is not easily testable.
    # See http://bugs.python.org/issue7250
    os_environ = {}

    def __init__(self):
        BaseCGIHandler.__init__(
            self, sys.stdin.buffer, sys.stdout.buffer, sys.stderr,
            read_environ(), multithread=False, multiprocess=True
        )


class IISCGIHandler(BaseCGIHandler):
    """CGI-based invocation with workaround for IIS path bug

    This handler should be used in preference to CGIHandler when deploying on
    Microsoft IIS without having set the config allowPathInfo option (IIS>=7)
    or metabase allowPathInfoForScriptMappings (IIS<7).
    """

    wsgi_run_once = True
    os_environ = {}

    # By default, IIS gives a PATH_INFO that duplicates the SCRIPT_NAME at
    # the front, causing problems for WSGI applications that wish to implement
    # routing. This handler strips any such duplicated path.

    # IIS can be configured to pass the correct PATH_INFO, but this causes
    # another bug where PATH_TRANSLATED is wrong. Luckily this variable is
    # rarely used and is not guaranteed by WSGI. On IIS<7, though, the
    # setting can only be made on a vhost level, affecting all other script
    # mappings, many of which break when exposed to the PATH_TRANSLATED bug.
    # For this reason IIS<7 is almost never deployed with the fix. (Even IIS7
    # rarely uses it because there is still no UI for it.)

    # There is no way for CGI code to tell whether the option was set, so a
    # separate handler class is provided.
    def __init__(self):
        environ = read_environ()
        path = environ.get("PATH_INFO", "")
        script = environ.get("SCRIPT_NAME", "")
        if (path + "/").startswith(script + "/"):
            environ["PATH_INFO"] = path[len(script):]
        BaseCGIHandler.__init__(
            self, sys.stdin.buffer, sys.stdout.buffer, sys.stderr,
            environ, multithread=False, multiprocess=True
        )
