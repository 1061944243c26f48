"""bottle and Flask apps (from PyPI) served through gateway.handlers, in memory and over a
loopback socket, every response read by a strict HTTP/1.1 client (h11)."""

import io
import socket
import sys
import threading
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import bottle
import flask
import h11
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway import handlers  # noqa: E402

# ---- the apps: the same routes in both frameworks ------------------------------------------


def make_bottle():
    app = bottle.Bottle()

    @app.route("/hello/<name>")
    def hello(name):
        bottle.response.set_header("X-Scheme", bottle.request.environ["wsgi.url_scheme"])
        return "Hello, %s! q=%s" % (name, bottle.request.query.q)

    @app.post("/echo")
    def echo():
        return b"echo:" + bottle.request.body.read()

    @app.route("/stream")
    def stream():
        bottle.response.content_type = "text/plain"
        return (("part%d;" % i).encode() for i in range(3))

    @app.route("/boom")
    def boom():
        raise ZeroDivisionError("bottle route failed")

    @app.route("/environ")
    def environ():
        e = bottle.request.environ
        return "%r %r %r %r %s" % (e["wsgi.version"], e["wsgi.multithread"],
                                   e["wsgi.input_terminated"], type(e["PATH_INFO"]).__name__,
                                   e["PATH_INFO"])

    app.catchall = False  # let the failure reach the gateway, as a server would see it
    return app


def make_flask():
    app = flask.Flask("gateway_test")
    app.config["PROPAGATE_EXCEPTIONS"] = True  # the failure reaches the gateway

    @app.route("/hello/<name>")
    def hello(name):
        resp = flask.make_response("Hello, %s! q=%s" % (name, flask.request.args.get("q", "")))
        resp.headers["X-Scheme"] = flask.request.environ["wsgi.url_scheme"]
        return resp

    @app.post("/echo")
    def echo():
        return b"echo:" + flask.request.get_data()

    @app.route("/stream")
    def stream():
        return flask.Response((("part%d;" % i).encode() for i in range(3)),
                              mimetype="text/plain")

    @app.route("/boom")
    def boom():
        raise ZeroDivisionError("flask route failed")

    @app.route("/environ")
    def environ():
        e = flask.request.environ
        return "%r %r %r %r %s" % (e["wsgi.version"], e["wsgi.multithread"],
                                   e["wsgi.input_terminated"], type(e["PATH_INFO"]).__name__,
                                   e["PATH_INFO"])

    return app


APPS = {"bottle": make_bottle, "flask": make_flask}

# ---- the strict client ------------------------------------------------------------------


def request_bytes(method, target, body=b""):
    client = h11.Connection(h11.CLIENT)
    headers = [("Host", "127.0.0.1"), ("Connection", "close")]
    if body:
        headers.append(("Content-Length", str(len(body))))
    data = client.send(h11.Request(method=method, target=target, headers=headers))
    if body:
        data += client.send(h11.Data(data=body))
    data += client.send(h11.EndOfMessage())
    return client, data


def read_response(client, chunks):
    """Feeds the server's bytes to h11; returns (status, headers, body, framed) where framed
    says how h11 saw the body delimited."""
    for chunk in chunks:
        client.receive_data(chunk)
    client.receive_data(b"")  # the server closed the connection
    response, body = None, b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            break
        elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            raise AssertionError("response cut short: %r" % (event,))
    headers = {k.decode().lower(): v.decode() for k, v in response.headers}
    return response.status_code, headers, body


# ---- in memory: the environ a server would build, through SimpleHandler -------------------------


def run_in_memory(app, method, target, body=b""):
    client, _ = request_bytes(method, target, body)
    path, _, query = target.partition("?")
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "SCRIPT_NAME": "", "HTTP_HOST": "127.0.0.1", "HTTP_CONNECTION": "close",
        "REMOTE_ADDR": "127.0.0.1",
    }
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["CONTENT_TYPE"] = "application/octet-stream"
    out, err = io.BytesIO(), io.StringIO()
    handler = handlers.SimpleHandler(io.BytesIO(body), out, err, environ)
    handler.http_version = "1.1"
    handler.run(app)
    return read_response(client, [out.getvalue()]), err.getvalue()


# ---- over a socket: wsgiref.simple_server's request handler running gateway's handler ---------


class GatewayServerHandler(handlers.SimpleHandler):
    server_software = "gateway-test/1"
    http_version = "1.1"

    def close(self):
        try:
            self.request_handler.log_request(self.status.split(" ", 1)[0], self.bytes_sent)
        finally:
            handlers.SimpleHandler.close(self)


class GatewayRequestHandler(WSGIRequestHandler):
    def handle(self):
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536 or not self.parse_request():
            return
        handler = GatewayServerHandler(self.rfile, self.wfile, self.get_stderr(),
                                       self.get_environ(), multithread=True)
        handler.request_handler = self
        handler.run(self.server.get_app())

    def log_message(self, *args):
        self.server.log.append(args)

    def get_stderr(self):
        return self.server.errors


class Server(WSGIServer):
    daemon_threads = True


@pytest.fixture(params=sorted(APPS))
def served(request):
    """(app name, send(method, target, body) -> response, server errors)."""
    server = Server(("127.0.0.1", 0), GatewayRequestHandler)
    server.set_app(APPS[request.param]())
    server.errors = io.StringIO()
    server.log = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()

    def send(method, target, body=b""):
        client, data = request_bytes(method, target, body)
        with socket.create_connection(server.server_address, timeout=10) as sock:
            sock.sendall(data)
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return read_response(client, chunks)

    try:
        yield request.param, send, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# ---- the checks, the same for both ways ------------------------------------------------------


def check_hello(response):
    status, headers, body = response
    assert status == 200
    assert body.startswith(b"Hello, world! q=1")
    assert headers["content-length"] == str(len(body))
    assert headers["x-scheme"] == "http"
    assert "date" in headers


def check_echo(response):
    status, headers, body = response
    assert status == 200
    assert body == b"echo:" + b"x" * 70000


def check_stream(response):
    status, headers, body = response
    assert status == 200
    assert body == b"part0;part1;part2;"
    # Unknown length to an HTTP/1.1 client: chunked, which h11 decoded.
    assert headers.get("transfer-encoding") == "chunked"


def check_boom(response, errors, framework):
    status, headers, body = response
    assert status == 500
    assert body == b"A server error occurred.  Please contact the administrator."
    assert "Traceback (most recent call last)" in errors
    assert "ZeroDivisionError: %s route failed" % framework in errors


@pytest.mark.parametrize("framework", sorted(APPS))
def test_in_memory(framework):
    app = APPS[framework]()
    check_hello(run_in_memory(app, "GET", "/hello/world?q=1")[0])
    check_echo(run_in_memory(app, "POST", "/echo", b"x" * 70000)[0])
    check_stream(run_in_memory(app, "GET", "/stream")[0])
    response, errors = run_in_memory(app, "GET", "/boom")
    check_boom(response, errors, framework)


def test_over_a_socket(served):
    framework, send, server = served
    check_hello(send("GET", "/hello/world?q=1"))
    check_echo(send("POST", "/echo", b"x" * 70000))
    check_stream(send("GET", "/stream"))
    check_boom(send("GET", "/boom"), server.errors.getvalue(), framework)
    # The access log saw every request, with what the library sent.
    codes = [args[2] for args in server.log if args[0] == '"%s" %s %s']
    assert codes[:4] == ["200", "200", "200", "500"], server.log


@pytest.mark.parametrize("framework", sorted(APPS))
def test_environ_is_pep3333(framework):
    app = APPS[framework]()
    (status, _, body), errors = run_in_memory(app, "GET", "/environ")
    assert status == 200, errors
    assert body == b"(1, 0) True True 'str' /environ"
