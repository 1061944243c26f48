"""Builds the API-mode extension gateway._gateway_cffi in place (``make python`` runs
``python3 gateway/_build.py`` in bindings/python), with the binding's hot path in C
(_speedups.c) inside it. It compiles against the repository's include/gateway.h, so a
declaration in _cdef.CDEF that disagrees with the header fails the build, and it does not link libgateway: _ffi loads the library first (GATEWAY_LIBRARY or
target/release/libgateway.so) with RTLD_GLOBAL."""

import sys
from pathlib import Path

import cffi

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _cdef  # noqa: E402  (the module alone: importing the package would load the library)


def main():
    ffibuilder = cffi.FFI()
    # The C path needs the vectorcall API (CPython 3.9+); without it the extension holds the
    # cffi callbacks only and gateway.handlers runs the Python path.
    speedups = sys.version_info >= (3, 9) and sys.implementation.name == "cpython"
    ffibuilder.cdef(_cdef.CDEF + (_cdef.SPEEDUPS_CDEF if speedups else "")
                    + _cdef.callback_cdef())
    ffibuilder.set_source(
        "gateway._gateway_cffi",
        '#include "gateway.h"\n' + ((HERE / "_speedups.c").read_text() if speedups else ""),
        include_dirs=[str(HERE.parents[2] / "include")],
        # _speedups.c uses the full CPython API (vectorcall, str internals).
        define_macros=[("_CFFI_NO_LIMITED_API", None)],
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    )
    tmp = HERE.parent / "build"
    ffibuilder.compile(tmpdir=str(tmp), verbose=False)
    # compile() leaves the module in tmpdir/gateway: move it beside this file.
    for built in (tmp / "gateway").glob("_gateway_cffi*.so"):
        built.replace(HERE / built.name)
        print("built", HERE / built.name)


if __name__ == "__main__":
    main()
