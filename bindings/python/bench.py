"""Times requests in memory through gateway.handlers.SimpleHandler against CPython's
wsgiref.handlers.SimpleHandler in the same run: a hello app and a bottle app, each with a
handler reused across requests (a worker's) and with a new handler per request (as
wsgiref.simple_server makes), interleaved over ROUNDS rounds; prints the median µs per
request of each and the ratio wsgiref / gateway (above 1: gateway is faster).

    python3 bench.py [REQUESTS_PER_ROUND] [ROUNDS]
"""

import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wsgiref.handlers as wsgiref_handlers  # noqa: E402

import gateway  # noqa: E402
import gateway.handlers as gateway_handlers  # noqa: E402

# What a server's add_cgi_vars gives for `GET /hello/world?x=1` (wsgiref.simple_server's set).
CGI_VARS = {
    "SERVER_NAME": "localhost", "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PORT": "8000",
    "REQUEST_METHOD": "GET", "PATH_INFO": "/hello/world", "QUERY_STRING": "x=1",
    "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "text/plain", "CONTENT_LENGTH": "",
    "SERVER_PROTOCOL": "HTTP/1.1", "SERVER_SOFTWARE": "WSGIServer/0.2",
    "SCRIPT_NAME": "", "HTTP_HOST": "localhost:8000", "HTTP_USER_AGENT": "bench/1.0",
    "HTTP_ACCEPT": "*/*",
}


def hello_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


def make_bottle_app():
    import bottle

    app = bottle.Bottle()

    @app.route("/hello/<name>")
    def hello(name):
        return "Hello, %s! x=%s" % (name, bottle.request.query.x)

    return app


def check(module, app, expect):
    out = io.BytesIO()
    module.SimpleHandler(io.BytesIO(), out, io.StringIO(), dict(CGI_VARS)).run(app)
    body = out.getvalue()
    if not body.startswith(b"HTTP/1.0 200 OK\r\n") or not body.endswith(expect):
        raise SystemExit("%s answered %r" % (module.__name__, body))


def reused(module, app, n):
    out = io.BytesIO()
    handler = module.SimpleHandler(io.BytesIO(), out, io.StringIO(), CGI_VARS)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        out.seek(0)
        out.truncate()
        handler.run(app)
    return ((time.perf_counter() - start) / n * 1e6, (time.process_time() - cpu) / n * 1e6)


def fresh(module, app, n):
    cls = module.SimpleHandler
    stdin, err = io.BytesIO(), io.StringIO()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        cls(stdin, io.BytesIO(), err, CGI_VARS).run(app)
    return ((time.perf_counter() - start) / n * 1e6, (time.process_time() - cpu) / n * 1e6)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    apps = {"hello": (hello_app, b"Hello, world!"), "bottle": (make_bottle_app(),
                                                              b"Hello, world! x=1")}
    modules = {"wsgiref": wsgiref_handlers, "gateway": gateway_handlers}
    cases = [(app, way) for app in apps for way in (reused, fresh)]
    for name, (app, expect) in apps.items():
        for module in modules.values():
            check(module, app, expect)
            reused(module, app, 200)  # warm up
    times = {(a, w.__name__, m): [] for a, w in cases for m in modules}
    for _ in range(rounds):
        for app_name, way in cases:
            for mod_name, module in modules.items():
                times[(app_name, way.__name__, mod_name)].append(
                    way(module, apps[app_name][0], n))
    print("gateway %s (cffi %s mode), Python %s, %d requests x %d rounds, median us/request"
          " (wall clock; CPU time of this process in brackets, steadier on a shared machine)"
          % (gateway.version(), gateway.cffi_mode, sys.version.split()[0], n, rounds))
    for app_name, way in cases:
        w = [statistics.median(t[i] for t in times[(app_name, way.__name__, "wsgiref")])
             for i in (0, 1)]
        g = [statistics.median(t[i] for t in times[(app_name, way.__name__, "gateway")])
             for i in (0, 1)]
        handler = "reused handler" if way is reused else "handler per request"
        print("%-7s %-20s wsgiref %6.2f [%6.2f]  gateway %6.2f [%6.2f]  "
              "wsgiref/gateway %.2fx [%.2fx]"
              % (app_name, handler, w[0], w[1], g[0], g[1], w[0] / g[0], w[1] / g[1]))


if __name__ == "__main__":
    main()
