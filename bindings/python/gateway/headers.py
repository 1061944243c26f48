"""wsgiref.headers.Headers backed by libgateway's gw_headers rules.

The object wraps the caller's list itself, as wsgiref's does (the list is shared: a change
through either is seen by both), so lookups and in-place changes are Python list
operations. The library decides what the list's rules and formats are:

- every name and value that goes in (the constructor's list, ``h[name] = value``,
  ``setdefault``, ``add_header``) is checked by the library (gw_headers_new_from): no
  control byte in a name, none but HTAB in a value, as CPython's patched
  ``_convert_string_type`` refuses them; a refused one raises ValueError with the
  library's message and changes nothing;
- ``add_header``'s value and parameters are joined and quoted by gw_headers_add_header;
- ``bytes(h)`` and ``str(h)`` are gw_headers_format's block.

Values the library cannot hold (a str latin-1 cannot encode, a list entry that is not a
pair of str) take wsgiref's own path for that call, so the result is what wsgiref gives.
"""

from gateway._ffi import ffi, last_error, lib

__all__ = ["Headers"]

OK = 0
TOO_LARGE = 17


def _encode(value):
    """The latin-1 bytes of a str, else None."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return None


def _new_from(pairs):
    """A gw_headers holding `pairs` (bytes pairs), or raises ValueError with the library's
    reason for refusing one. The caller frees it."""
    n = len(pairs)
    arr = ffi.new("gw_header[]", max(n, 1))
    for i, (name, value) in enumerate(pairs):
        arr[i].name = ffi.from_buffer(name)
        arr[i].name_len = len(name)
        arr[i].value = ffi.from_buffer(value)
        arr[i].value_len = len(value)
    out = ffi.new("gw_headers **")
    if lib.gw_headers_new_from(arr, n, out) != OK:
        raise ValueError(last_error())
    return out[0]


def _check(name, value):
    """The library's check of one name and value (str); non-latin-1 text is not checked
    (the library cannot hold it; gateway.handlers refuses it at start_response)."""
    n, v = _encode(name), _encode(value)
    if n is None or v is None:
        return
    lib.gw_headers_free(_new_from([(n, v)]))


def _format_param(param, value):
    # wsgiref's _formatparam with quote=1, for text the library cannot hold.
    if value is not None and len(value) > 0:
        value = value.replace("\\", "\\\\").replace('"', r"\"")
        return '%s="%s"' % (param, value)
    return param


class Headers:
    """Manage a collection of HTTP response headers"""

    def __init__(self, headers=None):
        headers = headers if headers is not None else []
        if type(headers) is not list:
            raise TypeError("Headers must be a list of name/value tuples")
        self._headers = headers
        if __debug__:
            for k, v in headers:
                self._convert_string_type(k)
                self._convert_string_type(v)
        pairs = []
        for k, v in headers:
            n, val = _encode(k), _encode(v)
            if n is not None and val is not None:
                pairs.append((n, val))
        if pairs:
            lib.gw_headers_free(_new_from(pairs))

    def _convert_string_type(self, value):
        """Convert/check value type."""
        if type(value) is str:
            return value
        raise AssertionError("Header names/values must be"
                             " of type str (got {0})".format(repr(value)))

    def __len__(self):
        """Return the total number of headers, including duplicates."""
        return len(self._headers)

    def __setitem__(self, name, val):
        """Set the value of a header."""
        if type(name) is str and type(val) is str:
            _check(name, val)  # before anything changes
        # wsgiref's order: a value of the wrong type is refused after the old ones went.
        del self[name]
        self._headers.append(
            (self._convert_string_type(name), self._convert_string_type(val)))

    def __delitem__(self, name):
        """Delete all occurrences of a header, if present.

        Does *not* raise an exception if the header is missing.
        """
        name = self._convert_string_type(name.lower())
        self._headers[:] = [kv for kv in self._headers if kv[0].lower() != name]

    def __getitem__(self, name):
        """Get the first header value for 'name'; None if the header is missing."""
        return self.get(name)

    def __contains__(self, name):
        """Return true if the message contains the header."""
        return self.get(name) is not None

    def get_all(self, name):
        """Return a list of all the values for the named field, in list order; an
        empty list when there are none."""
        name = self._convert_string_type(name.lower())
        return [kv[1] for kv in self._headers if kv[0].lower() == name]

    def get(self, name, default=None):
        """Get the first header value for 'name', or return 'default'"""
        name = self._convert_string_type(name.lower())
        for k, v in self._headers:
            if k.lower() == name:
                return v
        return default

    def keys(self):
        """Return a list of all the header field names, in list order."""
        return [k for k, v in self._headers]

    def values(self):
        """Return a list of all header values, in list order."""
        return [v for k, v in self._headers]

    def items(self):
        """Get all the header fields and values (a copy of the list)."""
        return self._headers[:]

    def __repr__(self):
        return "%s(%r)" % (self.__class__.__name__, self._headers)

    def _formatted(self):
        """gw_headers_format's block as bytes, or None when an entry is not a pair of
        latin-1 str (then wsgiref's formatting applies)."""
        pairs = []
        for kv in self._headers:
            if type(kv) is not tuple or len(kv) != 2 or type(kv[0]) is not str \
                    or type(kv[1]) is not str:
                return None
            n, v = _encode(kv[0]), _encode(kv[1])
            if n is None or v is None:
                return None
            pairs.append((n, v))
        h = _new_from(pairs)
        try:
            need = ffi.new("size_t *")
            st = lib.gw_headers_format(h, ffi.NULL, 0, need)
            if st not in (OK, TOO_LARGE):
                raise RuntimeError("gw_headers_format: %s" % last_error())
            buf = ffi.new("char[]", need[0])
            if lib.gw_headers_format(h, buf, need[0], need) != OK:
                raise RuntimeError("gw_headers_format: %s" % last_error())
            return ffi.unpack(buf, need[0])
        finally:
            lib.gw_headers_free(h)

    def __str__(self):
        """str() returns the formatted headers, complete with end line,
        suitable for direct HTTP transmission."""
        block = self._formatted()
        if block is None:
            return "\r\n".join(["%s: %s" % kv for kv in self._headers] + ["", ""])
        return block.decode("latin-1")

    def __bytes__(self):
        block = self._formatted()
        if block is None:
            return str(self).encode("iso-8859-1")
        return block

    def setdefault(self, name, value):
        """Return first matching header value for 'name', or 'value'

        If there is no header named 'name', add a new header with name 'name'
        and value 'value'."""
        result = self.get(name)
        if result is None:
            name = self._convert_string_type(name)
            value = self._convert_string_type(value)
            _check(name, value)
            self._headers.append((name, value))
            return value
        return result

    def add_header(self, _name, _value, **_params):
        """Extended header setting.

        _name is the header field to add. Keyword arguments set parameters of the
        header's value, with underscores converted to dashes: ``key="value"``, or the
        bare key when the value is None (or empty).

        Example::

            h.add_header('content-disposition', 'attachment', filename='bud.gif')

        All values must be strings or None.
        """
        # wsgiref's type checks, in its order.
        if _value is not None:
            _value = self._convert_string_type(_value)
        params = []
        for k, v in _params.items():
            k = self._convert_string_type(k)
            if v is not None:
                v = self._convert_string_type(v)
            params.append((k, v))
        _name = self._convert_string_type(_name)

        encoded = [_encode(k) if v is None else (_encode(k), _encode(v))
                   for k, v in params]
        name_b = _encode(_name)
        value_b = None if _value is None else _encode(_value)
        if name_b is None or (_value is not None and value_b is None) or any(
                e is None or (type(e) is tuple and None in e) for e in encoded):
            # Text the library cannot hold: wsgiref's formatting.
            parts = [] if _value is None else [_value]
            for k, v in params:
                parts.append(_format_param(k.replace("_", "-"), v))
            self._headers.append((_name, "; ".join(parts)))
            return

        n = len(params)
        arr = ffi.new("gw_header[]", max(n, 1))
        keep = []
        for i, e in enumerate(encoded):
            kb, vb = (e, b"") if type(e) is bytes else e
            keep.append((kb, vb))
            arr[i].name = ffi.from_buffer(kb)
            arr[i].name_len = len(kb)
            arr[i].value = ffi.from_buffer(vb)
            arr[i].value_len = len(vb)
        out = ffi.new("gw_headers **")
        if lib.gw_headers_new(out) != OK:
            raise RuntimeError("gw_headers_new: %s" % last_error())
        h = out[0]
        try:
            if value_b is None:
                st = lib.gw_headers_add_header(h, name_b, len(name_b), ffi.NULL, 0, arr, n)
            else:
                st = lib.gw_headers_add_header(h, name_b, len(name_b), value_b,
                                               len(value_b), arr, n)
            if st != OK:
                raise ValueError(last_error())
            ptr = ffi.new("const char **")
            size = ffi.new("size_t *")
            if lib.gw_headers_get(h, name_b, len(name_b), ptr, size) != OK:
                raise RuntimeError("gw_headers_get: %s" % last_error())
            value = ffi.unpack(ptr[0], size[0]).decode("latin-1")
        finally:
            lib.gw_headers_free(h)
        self._headers.append((_name, value))
