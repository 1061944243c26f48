"""wsgiref.simple_server on libgateway: the same WSGIServer, WSGIRequestHandler,
ServerHandler, demo_app and make_server, with the request head parsed by the library
(gw_environ_set_from_request_head) and the request cycle run by gateway.handlers.

    python3 -m gateway.simple_server [port]

serves demo_app on port 8000 (or `port`) for one request, then exits, as
``python3 -m wsgiref.simple_server`` does (without opening a web browser: it prints the
address to visit).

Like wsgiref's, it is a development server: one request per connection, HTTP/1.0
responses. What the library's parsing changes (README, "Python binding"): the head's
syntax and framing rules are the library's (a bad request is answered 400, 404, 414, 431,
501 or 505 by http.server's send_error with the library's reason, and the application is
not called); repeated fields are joined with ", "; no REMOTE_HOST, no invented
CONTENT_TYPE or empty CONTENT_LENGTH; a chunked body is decoded for the application. Line
ends: wsgiref (http.server) reads lines ending in LF alone too; so does this server, which
reads the head line by line as http.server does and hands it to the library with each
line ending in CRLF, unless ``strict_line_ends`` is true (the library then refuses a bare
LF with 400, as it does for every other host).
"""

import sys
from email.parser import Parser
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, HTTPServer
from platform import python_implementation

from gateway._ffi import ffi, last_error, lib
from gateway.handlers import SimpleHandler

__version__ = "0.2"
__all__ = ["WSGIServer", "WSGIRequestHandler", "demo_app", "make_server"]

server_version = "WSGIServer/" + __version__
sys_version = python_implementation() + "/" + sys.version.split()[0]
software_version = server_version + " " + sys_version

OK = 0
TOO_LARGE = 17
INCOMPLETE = 18
BAD_REQUEST = 19

# The library's default limit on a whole head (GW_REQUEST_HEAD_DEFAULT_MAX_HEAD): reading
# stops past it and the library answers 431.
_MAX_HEAD = 65536

# What the library decides for each request, so the server's placeholders for them
# (wsgiref's base_environ sets them empty) are not kept.
_REQUEST_DECIDES = ("REMOTE_HOST", "CONTENT_LENGTH")


class ServerHandler(SimpleHandler):

    server_software = software_version

    def close(self):
        try:
            self.request_handler.log_request(
                self.status.split(" ", 1)[0], self.bytes_sent
            )
        finally:
            SimpleHandler.close(self)


class WSGIServer(HTTPServer):

    """BaseHTTPServer that implements the Python WSGI protocol"""

    application = None

    def server_bind(self):
        """Override server_bind to store the server name."""
        HTTPServer.server_bind(self)
        self.setup_environ()

    def setup_environ(self):
        # Set up base environment
        env = self.base_environ = {}
        env["SERVER_NAME"] = self.server_name
        env["GATEWAY_INTERFACE"] = "CGI/1.1"
        env["SERVER_PORT"] = str(self.server_port)
        env["REMOTE_HOST"] = ""
        env["CONTENT_LENGTH"] = ""
        env["SCRIPT_NAME"] = ""

    def get_app(self):
        return self.application

    def set_app(self, application):
        self.application = application


class _HeadError(Exception):
    def __init__(self, code, reason):
        Exception.__init__(self, code, reason)
        self.code = code
        self.reason = reason


def _parse_head(head, client_address, base_environ):
    """The CGI variables of a complete request head (bytes), from the library, as a list of
    (name, value) str pairs; _HeadError(code, reason) for a refused or incomplete one."""
    facts = ffi.new("gw_connection_facts *")
    facts.size = ffi.sizeof("gw_connection_facts")
    keep = []

    def text(value):
        data = str(value).encode("latin-1")
        keep.append(data)
        return ffi.from_buffer(data), len(data)

    if isinstance(client_address, tuple) and len(client_address) >= 2:
        facts.remote_addr, facts.remote_addr_len = text(client_address[0])
        facts.remote_port = int(client_address[1])
    # SERVER_NAME and SERVER_PORT as the server gives them (a server bound to no name, as
    # test_wsgiref's MockServer, is "localhost" to the library), SCRIPT_NAME the mount
    # prefix.
    facts.server_name, facts.server_name_len = text(base_environ.get("SERVER_NAME") or
                                                    "localhost")
    facts.server_port = int(base_environ.get("SERVER_PORT") or 80)
    facts.script_name, facts.script_name_len = text(base_environ.get("SCRIPT_NAME", ""))

    out = ffi.new("gw_environ **")
    if lib.gw_environ_new(out) != OK:
        raise RuntimeError("gw_environ_new: %s" % last_error())
    env = ffi.gc(out[0], lib.gw_environ_free)
    consumed = ffi.new("size_t *")
    chunked = ffi.new("bool *")
    code = ffi.new("uint16_t *")
    st = lib.gw_environ_set_from_request_head(env, head, len(head), facts, ffi.NULL,
                                              consumed, chunked, code)
    if st == BAD_REQUEST:
        raise _HeadError(code[0], last_error())
    if st == INCOMPLETE:
        raise _HeadError(400, "the connection ended inside the request head")
    if st != OK:
        raise RuntimeError("gw_environ_set_from_request_head: %s" % last_error())
    size = ffi.new("size_t *")
    if lib.gw_environ_packed_size(env, size) != OK:
        raise RuntimeError("gw_environ_packed_size: %s" % last_error())
    buf = ffi.new("char[]", max(size[0], 1))
    length = ffi.new("size_t *")
    count = ffi.new("size_t *")
    nul = ffi.new("bool *")
    if lib.gw_environ_pack(env, buf, size[0], length, count, nul) != OK:
        raise RuntimeError("gw_environ_pack: %s" % last_error())
    # No value holds a NUL: the library refuses control bytes in fields and %00 in paths.
    items = ffi.unpack(buf, length[0]).decode("latin-1").split("\0")
    return [(items[i], items[i + 1]) for i in range(0, 2 * count[0], 2)]


class WSGIRequestHandler(BaseHTTPRequestHandler):

    server_version = "WSGIServer/" + __version__

    # True: hand the head to the library as the client sent it, so a line ending in LF
    # alone is refused (400); false (wsgiref's leniency): each line is given a CRLF end.
    strict_line_ends = False

    _request_vars = ()

    def get_environ(self):
        env = {k: v for k, v in self.server.base_environ.items() if k not in _REQUEST_DECIDES}
        env.update(self._request_vars)
        env["SERVER_SOFTWARE"] = self.server_version
        return env

    def get_stderr(self):
        return sys.stderr

    def _read_head(self):
        """The request head's lines after the request line, read as http.server reads
        them (one readline each, so the body stays in rfile), up to the empty line, the
        end of input, or past the library's head limit."""
        lines = []
        total = len(self.raw_requestline)
        while total <= _MAX_HEAD:
            line = self.rfile.readline(_MAX_HEAD + 1)
            lines.append(line)
            total += len(line)
            if line in (b"\r\n", b"\n", b""):
                break
        return lines

    def handle(self):
        """Handle a single HTTP request"""

        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        # As http.server: nothing (the client closed) or an empty line gets no answer.
        if not self.raw_requestline.strip(b"\r\n"):
            return
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.command = ""
        self.request_version = "HTTP/1.0"
        lines = [self.raw_requestline] + self._read_head()
        if not self.strict_line_ends:
            lines = [line[:-1] + b"\r\n" if line.endswith(b"\n") and
                     not line.endswith(b"\r\n") else line for line in lines]
        head = b"".join(lines)
        try:
            variables = _parse_head(head, self.client_address, self.server.base_environ)
        except _HeadError as e:
            self.send_error(e.code, None, e.reason)
            return
        self._request_vars = variables
        found = dict(variables)
        self.command = found["REQUEST_METHOD"]
        self.request_version = found["SERVER_PROTOCOL"]
        self.path = found.get("REQUEST_URI", "")
        # http.server's view of the fields, for subclasses that read self.headers.
        self.headers = Parser(_class=HTTPMessage).parsestr(
            b"".join(lines[1:]).decode("iso-8859-1"))

        handler = ServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(),
            multithread=False,
        )
        handler.request_handler = self      # backpointer for logging
        handler.run(self.server.get_app())


def demo_app(environ, start_response):
    from io import StringIO
    stdout = StringIO()
    print("Hello world!", file=stdout)
    print(file=stdout)
    h = sorted(environ.items())
    for k, v in h:
        print(k, "=", repr(v), file=stdout)
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [stdout.getvalue().encode("utf-8")]


def make_server(
    host, port, app, server_class=WSGIServer, handler_class=WSGIRequestHandler
):
    """Create a new WSGI server listening on `host` and `port` for `app`"""
    server = server_class((host, port), handler_class)
    server.set_app(app)
    return server


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    port = int(argv[0]) if argv else 8000
    with make_server("", port, demo_app) as httpd:
        sa = httpd.socket.getsockname()
        print("Serving HTTP on", sa[0], "port", sa[1], "...")
        print("Visit http://localhost:%d/xyz?abc" % sa[1], flush=True)
        httpd.handle_request()  # serve one request, then exit


if __name__ == "__main__":
    main()
