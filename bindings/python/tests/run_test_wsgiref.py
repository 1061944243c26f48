"""Runs CPython's own Lib/test/test_wsgiref.py with wsgiref.handlers replaced by
gateway.handlers (wsgiref.util, .headers, .validate and .simple_server stay CPython's; the
simple_server's ServerHandler then runs on gateway's SimpleHandler).

Every test must pass except the ones in DIFFERENCES, each a documented deliberate difference
of the library (README, "Python binding"); one of those that passes is a failure too, so the
list stays true. Exit status 0 only then. Prints 'N passed, N failed' at the end."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import wsgiref  # noqa: E402

import gateway.handlers  # noqa: E402

sys.modules["wsgiref.handlers"] = gateway.handlers
wsgiref.handlers = gateway.handlers

from test import test_wsgiref  # noqa: E402

# test id (without the module) -> why gateway answers differently, on purpose.
DIFFERENCES = {
    "HandlerTests.testHeaderFormats":
        "a handler whose http_version is 1.1 decides the connection before the head goes "
        "out and says so: it adds 'Connection: close' for an HTTP/1.0 client it will not "
        "keep (wsgiref leaves the connection to the server and writes no Connection header)",
}


def main():
    assert test_wsgiref.BaseHandler is gateway.handlers.BaseHandler
    import wsgiref.simple_server as simple_server
    assert issubclass(simple_server.ServerHandler, gateway.handlers.SimpleHandler)

    suite = unittest.defaultTestLoader.loadTestsFromModule(test_wsgiref)
    verbosity = 1 if "--quiet" in sys.argv[1:] else 2
    result = unittest.TextTestRunner(verbosity=verbosity, stream=sys.stdout).run(suite)
    failed = {}
    for test, trace in result.failures + result.errors:
        failed[test.id().split(".", 2)[-1]] = trace
    unexpected = sorted(set(failed) - set(DIFFERENCES))
    not_failing = sorted(set(DIFFERENCES) - set(failed))
    for name in unexpected:
        print("UNEXPECTED FAILURE:", name)
    for name in not_failing:
        print("LISTED AS A DIFFERENCE BUT PASSES:", name)
    for name in sorted(set(failed) & set(DIFFERENCES)):
        if verbosity > 1:
            print("expected difference:", name, "-", DIFFERENCES[name])
    passed = result.testsRun - len(failed) - len(result.skipped)
    print("test_wsgiref on gateway.handlers: %d passed, %d failed (%d of them documented "
          "differences), %d skipped" % (passed, len(failed), len(failed) - len(unexpected),
                                        len(result.skipped)))
    return 1 if unexpected or not_failing else 0


if __name__ == "__main__":
    sys.exit(main())
