//! `gw_headers`: wsgiref.headers.Headers, a header list an application builds and hands to
//! gw_request_start_response (through gw_headers_items).

use std::ffi::c_char;

use super::bytes::{check_headers, gw_header, header_iter};
use super::util::copy_out;
use super::{boundary, buffer_arg, bytes_arg, null, out_arg};
use crate::header_map::HeaderMap;
use crate::status::{Error, Status};

/// wsgiref.headers.Headers: an ordered list of (name, value) byte strings, duplicates
/// allowed, looked up by name without regard to case (latin-1 `str.lower()`). Names may
/// not hold control bytes, values none but HTAB (wsgiref's patched checks), on every call
/// that takes one; longer than 64 KiB (name) or 1 MiB (value) is GW_STATUS_TOO_LARGE. A
/// refused call changes nothing. Values handed out are borrowed until the next change to
/// the object or its free, and are not NUL-terminated.
///
/// Thread safety: a `const gw_headers *` may be read from several threads at once; changing
/// one needs exclusive access. It may move between threads.
pub struct gw_headers {
    _private: [u8; 0],
}

/// The object behind a `gw_headers *`: the list and its `gw_header` view (rebuilt after each
/// change, so gw_headers_items can lend it from a const pointer).
struct Headers {
    map: HeaderMap,
    view: Vec<gw_header>,
}

impl Headers {
    fn new(map: HeaderMap) -> Headers {
        let mut headers = Headers {
            map,
            view: Vec::new(),
        };
        headers.refresh();
        headers
    }

    fn refresh(&mut self) {
        self.view.clear();
        self.view.extend(self.map.iter().map(|(n, v)| gw_header {
            name: n.as_ptr().cast(),
            name_len: n.len(),
            value: v.as_ptr().cast(),
            value_len: v.len(),
        }));
    }
}

unsafe fn headers_ref<'a>(headers: *const gw_headers) -> Result<&'a Headers, Error> {
    // SAFETY: every gw_headers pointer comes from Box::into_raw in publish().
    unsafe { headers.cast::<Headers>().as_ref() }.ok_or_else(|| null("headers"))
}

unsafe fn headers_mut<'a>(headers: *mut gw_headers) -> Result<&'a mut Headers, Error> {
    // SAFETY: as headers_ref; the caller has exclusive access (documented).
    unsafe { headers.cast::<Headers>().as_mut() }.ok_or_else(|| null("headers"))
}

/// A value handed out through `(*out_value, *out_len)`.
fn lend(value: &[u8], out_value: &mut *const c_char, out_len: &mut usize) {
    *out_value = value.as_ptr().cast();
    *out_len = value.len();
}

fn not_found() -> Error {
    // Not-found is an answer, not a failure: a fixed message, nothing formatted.
    Error::new(Status::NotFound, "no such header")
}

/// Creates an empty header list (`Headers()`). Free it with gw_headers_free.
#[no_mangle]
pub unsafe extern "C" fn gw_headers_new(out: *mut *mut gw_headers) -> Status {
    boundary(|| {
        let out = unsafe { out_arg(out, "out") }?;
        *out = Box::into_raw(Box::new(Headers::new(HeaderMap::new()))).cast();
        Ok(())
    })
}

/// Creates a header list holding a copy of `count` headers (`Headers(list)`; wsgiref wraps
/// the caller's list itself, here the list is copied and later changes stay in the object).
/// Each is checked as gw_headers_set checks; one refused creates nothing.
#[no_mangle]
pub unsafe extern "C" fn gw_headers_new_from(
    headers: *const gw_header,
    count: usize,
    out: *mut *mut gw_headers,
) -> Status {
    boundary(|| {
        let out = unsafe { out_arg(out, "out") }?;
        let headers = unsafe { check_headers(headers, count) }?;
        let map = HeaderMap::from_pairs(header_iter(headers))?;
        *out = Box::into_raw(Box::new(Headers::new(map))).cast();
        Ok(())
    })
}

/// Frees a header list. NULL is a no-op.
#[no_mangle]
pub unsafe extern "C" fn gw_headers_free(headers: *mut gw_headers) -> Status {
    boundary(|| {
        if !headers.is_null() {
            // SAFETY: from Box::into_raw in gw_headers_new or _new_from.
            drop(unsafe { Box::from_raw(headers.cast::<Headers>()) });
        }
        Ok(())
    })
}

/// `len(headers)`: the number of headers, duplicates included.
#[no_mangle]
pub unsafe extern "C" fn gw_headers_len(headers: *const gw_headers, out_len: *mut usize) -> Status {
    boundary(|| {
        let h = unsafe { headers_ref(headers) }?;
        *unsafe { out_arg(out_len, "out_len") }? = h.map.len();
        Ok(())
    })
}

/// `headers.get(name)`: the first value whose name matches, borrowed (see gw_headers).
/// GW_STATUS_NOT_FOUND when none does (wsgiref's None).
#[no_mangle]
pub unsafe extern "C" fn gw_headers_get(
    headers: *const gw_headers,
    name: *const c_char,
    name_len: usize,
    out_value: *mut *const c_char,
    out_value_len: *mut usize,
) -> Status {
    boundary(|| {
        let h = unsafe { headers_ref(headers) }?;
        let name = unsafe { bytes_arg(name, name_len, "name") }?;
        let out_value = unsafe { out_arg(out_value, "out_value") }?;
        let out_value_len = unsafe { out_arg(out_value_len, "out_value_len") }?;
        let value = h.map.get(name)?.ok_or_else(not_found)?;
        lend(value, out_value, out_value_len);
        Ok(())
    })
}

/// `headers.get_all(name)`, one value per call: set `*cursor = 0` first; each GW_STATUS_OK
/// gives the next matching value (borrowed) in list order and advances the cursor;
/// GW_STATUS_NOT_FOUND means there are no more. Do not change the list while iterating.
#[no_mangle]
pub unsafe extern "C" fn gw_headers_get_all(
    headers: *const gw_headers,
    name: *const c_char,
    name_len: usize,
    cursor: *mut usize,
    out_value: *mut *const c_char,
    out_value_len: *mut usize,
) -> Status {
    boundary(|| {
        let h = unsafe { headers_ref(headers) }?;
        let name = unsafe { bytes_arg(name, name_len, "name") }?;
        let cursor = unsafe { out_arg(cursor, "cursor") }?;
        let out_value = unsafe { out_arg(out_value, "out_value") }?;
        let out_value_len = unsafe { out_arg(out_value_len, "out_value_len") }?;
        let mut next = *cursor;
        let value = h.map.get_next(name, &mut next)?.ok_or_else(not_found)?;
        *cursor = next;
        lend(value, out_value, out_value_len);
        Ok(())
    })
}

/// `headers[name] = value`: removes every header of that name, then appends this one at the
/// end, spelled as given.
#[no_mangle]
pub unsafe extern "C" fn gw_headers_set(
    headers: *mut gw_headers,
    name: *const c_char,
    name_len: usize,
    value: *const c_char,
    value_len: usize,
) -> Status {
    boundary(|| {
        let h = unsafe { headers_mut(headers) }?;
        let name = unsafe { bytes_arg(name, name_len, "name") }?;
        let value = unsafe { bytes_arg(value, value_len, "value") }?;
        h.map.set(name, value)?;
        h.refresh();
        Ok(())
    })
}

/// `del headers[name]`: removes every header of that name. A name that is not there is not
/// an error (GW_STATUS_OK), as in wsgiref.
#[no_mangle]
pub unsafe extern "C" fn gw_headers_delete(
    headers: *mut gw_headers,
    name: *const c_char,
    name_len: usize,
) -> Status {
    boundary(|| {
        let h = unsafe { headers_mut(headers) }?;
        let name = unsafe { bytes_arg(name, name_len, "name") }?;
        if h.map.delete(name)? > 0 {
            h.refresh();
        }
        Ok(())
    })
}

/// `headers.setdefault(name, value)`: the first value of that name when there is one (the
/// list unchanged), else `(name, value)` is appended; either way the value is lent through
/// `*out_value` / `*out_value_len` (borrowed).
#[no_mangle]
pub unsafe extern "C" fn gw_headers_setdefault(
    headers: *mut gw_headers,
    name: *const c_char,
    name_len: usize,
    value: *const c_char,
    value_len: usize,
    out_value: *mut *const c_char,
    out_value_len: *mut usize,
) -> Status {
    boundary(|| {
        let h = unsafe { headers_mut(headers) }?;
        let name = unsafe { bytes_arg(name, name_len, "name") }?;
        let value = unsafe { bytes_arg(value, value_len, "value") }?;
        let out_value = unsafe { out_arg(out_value, "out_value") }?;
        let out_value_len = unsafe { out_arg(out_value_len, "out_value_len") }?;
        let before = h.map.len();
        h.map.setdefault(name, value)?;
        if h.map.len() != before {
            h.refresh();
        }
        let found = h.map.get(name)?.unwrap_or_default();
        lend(found, out_value, out_value_len);
        Ok(())
    })
}

/// `headers.add_header(name, value, **params)`: appends one header (existing ones of that
/// name stay) whose value is `value` followed by each of the `param_count` parameters, all
/// joined with `"; "`. `value` NULL (with `value_len` 0) is Python's None: no main value, the
/// parameters only; a non-NULL empty value is `''`, which still takes its place (`; a="1"`).
/// A parameter is a gw_header: its name, with each `_` turned into `-` as wsgiref turns
/// keyword names, and its value, always quoted (`name="value"`, `\` and `"` escaped with a
/// backslash) unless empty, which gives the bare name (wsgiref does so for None and '').
/// Example: ("Content-Disposition", "attachment", {filename, "bud.gif"}) gives
/// `attachment; filename="bud.gif"`.
#[no_mangle]
pub unsafe extern "C" fn gw_headers_add_header(
    headers: *mut gw_headers,
    name: *const c_char,
    name_len: usize,
    value: *const c_char,
    value_len: usize,
    params: *const gw_header,
    param_count: usize,
) -> Status {
    boundary(|| {
        let h = unsafe { headers_mut(headers) }?;
        let name = unsafe { bytes_arg(name, name_len, "name") }?;
        let value = if value.is_null() && value_len == 0 {
            None
        } else {
            Some(unsafe { bytes_arg(value, value_len, "value") }?)
        };
        // SAFETY: the caller promises `param_count` parameters; check_headers checks each.
        let params = unsafe { check_headers(params, param_count) }?;
        let params: Vec<(&[u8], &[u8])> = header_iter(params).collect();
        h.map.add_header(name, value, &params)?;
        h.refresh();
        Ok(())
    })
}

/// The list as `gw_header` records, in order, for gw_request_start_response (which copies
/// them): `*out_headers` is borrowed until the next change to the object or its free, and
/// `*out_count` is the number of records (0 for an empty list, with a pointer that must not
/// be read).
#[no_mangle]
pub unsafe extern "C" fn gw_headers_items(
    headers: *const gw_headers,
    out_headers: *mut *const gw_header,
    out_count: *mut usize,
) -> Status {
    boundary(|| {
        let h = unsafe { headers_ref(headers) }?;
        let out_headers = unsafe { out_arg(out_headers, "out_headers") }?;
        let out_count = unsafe { out_arg(out_count, "out_count") }?;
        *out_headers = h.view.as_ptr();
        *out_count = h.view.len();
        Ok(())
    })
}

/// `bytes(headers)`: each header as `name: value\r\n` in order, then `\r\n` (an empty list
/// gives `\r\n`), written into `out` (`out_cap` bytes, no NUL added) with its length in
/// `*out_len`. When it does not fit, GW_STATUS_TOO_LARGE and `*out_len` is the length
/// needed; `out` may be NULL with `out_cap` 0 to ask for the length that way.
#[no_mangle]
pub unsafe extern "C" fn gw_headers_format(
    headers: *const gw_headers,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        let h = unsafe { headers_ref(headers) }?;
        let out = unsafe { buffer_arg(out, out_cap, "out") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let needed = h.map.formatted_len();
        if needed > out.len() {
            *out_len = needed;
            return Err(Error::new(
                Status::TooLarge,
                "out_cap is too small for the headers (see *out_len)",
            ));
        }
        let mut block = Vec::with_capacity(needed);
        h.map.format_into(&mut block);
        copy_out(
            &block,
            out,
            out_len,
            "out_cap is too small for the headers (see *out_len)",
        )
    })
}
