"""gateway for Python: wsgiref's handlers backed by libgateway (see gateway.handlers)."""

from gateway._ffi import MODE as cffi_mode, library_path, lib, ffi

__all__ = ["cffi_mode", "library_path", "version"]


def version():
    """The version of the loaded libgateway."""
    return ffi.string(lib.gw_version()).decode("ascii")
