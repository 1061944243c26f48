//! The plain data records that cross the ABI: header pairs and byte strings. Unlike the hook
//! tables and iterators, they never grow (a new field would be a new type), so they carry no
//! size; the helpers here check the pointers in them before anything reads them.

use std::ffi::c_char;

use super::slice_arg;
use crate::status::{Error, Status};

/// A response header: name and value with explicit lengths (no NUL needed).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gw_header {
    pub name: *const c_char,
    pub name_len: usize,
    pub value: *const c_char,
    pub value_len: usize,
}

/// A borrowed byte string.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gw_bytes {
    pub data: *const c_char,
    pub len: usize,
}

/// Checks every header's pointers, so the headers can then be read without checks.
pub(crate) unsafe fn check_headers<'a>(
    headers: *const gw_header,
    count: usize,
) -> Result<&'a [gw_header], Error> {
    // SAFETY: the caller promises `count` headers.
    let headers = unsafe { slice_arg(headers, count, "headers") }?;
    for (i, h) in headers.iter().enumerate() {
        // The message is formatted only on failure: this runs on every request.
        if h.name.is_null() && h.name_len > 0 {
            return Err(null_item("headers", i, "name"));
        }
        if h.value.is_null() && h.value_len > 0 {
            return Err(null_item("headers", i, "value"));
        }
    }
    Ok(headers)
}

/// "<array>[<i>].<field> is NULL".
#[cold]
pub(crate) fn null_item(array: &str, i: usize, field: &str) -> Error {
    Error::new(
        Status::NullArgument,
        format!("{array}[{i}].{field} is NULL"),
    )
}

/// The checked headers as byte-string pairs.
pub(crate) fn header_iter(headers: &[gw_header]) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers.iter().map(|h| {
        // SAFETY: check_headers verified every pointer and length.
        unsafe {
            (
                checked_bytes(h.name, h.name_len),
                checked_bytes(h.value, h.value_len),
            )
        }
    })
}

/// `bytes_arg` for a pointer already checked (non-NULL when `len` > 0), without its Result
/// (on every header of every request): a length past isize::MAX reads as empty, as
/// `bytes_arg(..).unwrap_or(&[])` did.
#[inline]
unsafe fn checked_bytes<'a>(ptr: *const c_char, len: usize) -> &'a [u8] {
    if len == 0 || len > isize::MAX as usize {
        return &[];
    }
    // SAFETY: the caller promises `len` readable bytes at the non-NULL `ptr`.
    unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
}
