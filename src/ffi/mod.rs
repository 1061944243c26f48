//! The C ABI: every `unsafe` block of the crate lives under this module. One file per
//! exported object family; this file holds what they share: the panic boundary, the
//! per-thread last error, pointer helpers, status text and the version.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use crate::status::{Error, Status};

pub mod body;
pub mod bytes;
pub mod environ;
pub mod errors;
pub mod fd_host;
pub mod file_wrapper;
pub mod handler;
pub mod head;
pub mod header_map;
pub mod hooks;
pub mod input;
pub mod nonblocking;
pub mod packed;
pub mod request;
pub mod request_head;
pub mod util;
pub mod validate;

// The whole C surface in one Rust namespace too (`gateway::ffi::gw_request_write`), for Rust
// code that drives the library the way C does (tests, fuzzing, bindings).
pub use self::body::*;
pub use self::bytes::*;
pub use self::environ::*;
pub use self::errors::*;
pub use self::file_wrapper::*;
pub use self::handler::*;
pub use self::head::*;
pub use self::header_map::*;
pub use self::hooks::*;
pub use self::input::*;
pub use self::nonblocking::*;
pub use self::packed::*;
pub use self::request::*;
pub use self::request_head::*;
pub use self::util::*;
pub use self::validate::*;

thread_local! {
    /// This thread's last error message, NUL-terminated; reused, so recording one allocates
    /// only when it outgrows every earlier message.
    static LAST_ERROR: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Records `message` as this thread's last error (a NUL inside shows as `\0`).
pub(crate) fn set_last_error(message: &str) {
    LAST_ERROR.with(|slot| {
        let mut text = slot.borrow_mut();
        text.clear();
        for &b in message.as_bytes() {
            match b {
                0 => text.extend_from_slice(b"\\0"),
                b => text.push(b),
            }
        }
        text.push(0);
    });
}

/// What an exported function returns when a panic was caught in it.
pub(crate) trait OnPanic {
    fn on_panic() -> Self;
}

impl OnPanic for Status {
    fn on_panic() -> Status {
        Status::Panic
    }
}

impl OnPanic for () {
    fn on_panic() {}
}

impl OnPanic for u32 {
    fn on_panic() -> u32 {
        0
    }
}

impl OnPanic for *const c_char {
    fn on_panic() -> *const c_char {
        c"".as_ptr()
    }
}

/// The one panic boundary every exported function runs in: a panic becomes the return
/// type's `OnPanic` value, with the panic's message as this thread's last error.
/// Inlined into each exported function, so a call crosses one frame, not two.
#[inline(always)]
pub(crate) fn guard<T: OnPanic>(body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            record_panic(payload);
            T::on_panic()
        }
    }
}

/// A caught panic's message as this thread's last error.
#[cold]
#[inline(never)]
fn record_panic(payload: Box<dyn std::any::Any + Send>) {
    let what = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    set_last_error(&format!("panic inside gateway: {what}"));
}

/// An error's status, with its message recorded as this thread's last error.
#[cold]
pub(crate) fn fail(err: Error) -> Status {
    set_last_error(&err.message);
    err.status
}

/// `guard` for a body that reports success or an error.
#[inline(always)]
pub(crate) fn boundary(body: impl FnOnce() -> Result<(), Error>) -> Status {
    guard(|| body().map_or_else(fail, |()| Status::Ok))
}

pub(crate) fn null(what: &'static str) -> Error {
    Error::new(Status::NullArgument, null_message(what))
}

/// "<what> is NULL", built only when a NULL is found.
#[cold]
fn null_message(what: &str) -> String {
    format!("{what} is NULL")
}

/// Every slice the library reads from C memory comes through here: `count` items at
/// `ptr`, which may be NULL only when `count` is 0.
pub(crate) unsafe fn slice_arg<'a, T>(
    ptr: *const T,
    count: usize,
    what: &'static str,
) -> Result<&'a [T], Error> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    if count
        .checked_mul(std::mem::size_of::<T>().max(1))
        .is_none_or(|n| n > isize::MAX as usize)
    {
        return Err(Error::new(Status::InvalidArgument, "length too large"));
    }
    // SAFETY: the caller promises `count` readable items at `ptr` (documented per function).
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// Reads a table that starts with its own size (`size_t size`, set by its `_INIT` macro), so
/// the library can append fields without breaking binaries built against an older header:
/// a shorter (older) table reads as if the fields it lacks were zero (NULL hooks); a longer
/// (newer) one is accepted only when every field this library does not know is zero, since
/// it could not honour them. `min_size` covers the fields every version has.
///
/// SAFETY: `ptr` is NULL or points at a `T` whose first `size` bytes are readable; an
/// all-zero `T` is valid (pointers and optional function pointers only).
pub(crate) unsafe fn sized_arg<T: Copy>(
    ptr: *const T,
    min_size: usize,
    what: &'static str,
) -> Result<T, Error> {
    if ptr.is_null() {
        return Err(null(what));
    }
    // SAFETY: every version of the table starts with its size.
    let size = unsafe { ptr.cast::<usize>().read() };
    if size < min_size {
        return Err(Error::new(
            Status::InvalidArgument,
            size_message(what, size),
        ));
    }
    // SAFETY: the caller's table is `size` bytes long.
    let bytes = unsafe { slice_arg(ptr.cast::<u8>(), size, what) }?;
    let ours = std::mem::size_of::<T>();
    if bytes.len() > ours && bytes[ours..].iter().any(|&b| b != 0) {
        return Err(Error::new(Status::Unsupported, newer_message(what)));
    }
    let mut table = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: at most size_of::<T>() bytes into a zeroed T, which is valid all-zero.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            table.as_mut_ptr().cast::<u8>(),
            bytes.len().min(ours),
        );
        Ok(table.assume_init())
    }
}

#[cold]
fn size_message(what: &str, size: usize) -> String {
    format!("{what}->size is {size}, smaller than any version of it: initialize it with its _INIT macro")
}

#[cold]
fn newer_message(what: &str) -> String {
    format!(
        "{what} sets fields this version of the library does not know ({})",
        env!("CARGO_PKG_VERSION")
    )
}

/// A `(ptr, len)` byte string from C.
pub(crate) unsafe fn bytes_arg<'a, T>(
    ptr: *const T,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], Error> {
    unsafe { slice_arg(ptr.cast::<u8>(), len, what) }
}

/// A writable `(ptr, len)` buffer from C.
pub(crate) unsafe fn buffer_arg<'a, T>(
    ptr: *mut T,
    len: usize,
    what: &'static str,
) -> Result<&'a mut [u8], Error> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    if len > isize::MAX as usize {
        return Err(Error::new(Status::InvalidArgument, "length too large"));
    }
    // SAFETY: the caller promises `ptr` points at `len` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) })
}

/// An out-parameter from C.
pub(crate) unsafe fn out_arg<'a, T>(ptr: *mut T, what: &'static str) -> Result<&'a mut T, Error> {
    // SAFETY: non-NULL out-parameters point at writable storage of their type.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(what))
}

/// Static text for a status; unknown values give "unknown status".
#[no_mangle]
pub extern "C" fn gw_status_str(status: i32) -> *const c_char {
    static TEXT: OnceLock<Vec<CString>> = OnceLock::new();
    guard(|| {
        let table = TEXT.get_or_init(|| {
            (0..=Status::WouldBlock as i32)
                .map(|raw| CString::new(Status::from_raw(raw).describe()).unwrap_or_default())
                .collect()
        });
        match usize::try_from(status).ok().and_then(|i| table.get(i)) {
            Some(text) => text.as_ptr(),
            None => c"unknown status".as_ptr(),
        }
    })
}

/// The message of the most recent failing gateway call on this thread ("" if none). Borrowed:
/// valid until the next failing gateway call on this thread.
#[no_mangle]
pub extern "C" fn gw_last_error_message() -> *const c_char {
    guard(|| {
        LAST_ERROR.with(|slot| match slot.borrow().as_slice() {
            [] => c"".as_ptr(),
            text => text.as_ptr().cast(),
        })
    })
}

/// The library's version as a static string, "MAJOR.MINOR.PATCH"; equal to GW_VERSION.
#[no_mangle]
pub extern "C" fn gw_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    guard(|| VERSION.as_ptr().cast())
}

/// The library's version as a number: MAJOR << 16 | MINOR << 8 | PATCH; equal to
/// GW_VERSION_NUMBER of the header the caller was compiled with when the two match.
#[no_mangle]
pub extern "C" fn gw_version_number() -> u32 {
    guard(version_number)
}

pub(crate) fn version_number() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    (part(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
        | (part(env!("CARGO_PKG_VERSION_MINOR")) << 8)
        | part(env!("CARGO_PKG_VERSION_PATCH"))
}

/// How many EINTRs in a row a hook may report before the library treats it as failing.
pub const GW_MAX_EINTR_RETRIES: u32 = 64;
const _: () = assert!(GW_MAX_EINTR_RETRIES == crate::host::MAX_EINTR_RETRIES);

/// The default of gw_handler_set_drain_limit, in bytes.
pub const GW_DEFAULT_DRAIN_LIMIT: u64 = 65536;
const _: () = assert!(GW_DEFAULT_DRAIN_LIMIT == crate::settings::DEFAULT_DRAIN_LIMIT);

/// The default of gw_handler_set_write_high_water, in bytes.
pub const GW_DEFAULT_WRITE_HIGH_WATER: usize = 65536;
const _: () = assert!(GW_DEFAULT_WRITE_HIGH_WATER == crate::settings::DEFAULT_WRITE_HIGH_WATER);

/// The default of gw_handler_set_body_memory_limit, in bytes.
pub const GW_DEFAULT_BODY_MEMORY_LIMIT: usize = 65536;
const _: () = assert!(GW_DEFAULT_BODY_MEMORY_LIMIT == crate::settings::DEFAULT_BODY_MEMORY);

/// Length of an HTTP date such as `Thu, 01 Jan 1970 00:00:00 GMT`, without a terminating NUL.
pub const GW_HTTP_DATE_LEN: usize = 29;
const _: () = assert!(GW_HTTP_DATE_LEN == crate::date::HTTP_DATE_LEN);

/// wsgiref.handlers.format_date_time: writes the RFC 1123 GMT date for `seconds` since the
/// Unix epoch into `out` and a NUL after it; `out_cap` must be at least GW_HTTP_DATE_LEN + 1.
#[no_mangle]
pub unsafe extern "C" fn gw_format_date_time(
    seconds: i64,
    out: *mut c_char,
    out_cap: usize,
) -> Status {
    boundary(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        let out = unsafe { buffer_arg(out, out_cap, "out") }?;
        if out.len() < GW_HTTP_DATE_LEN + 1 {
            return Err(Error::new(
                Status::InvalidArgument,
                format!("out_cap must be at least {}", GW_HTTP_DATE_LEN + 1),
            ));
        }
        out[..GW_HTTP_DATE_LEN].copy_from_slice(&crate::date::format_http_date(seconds));
        out[GW_HTTP_DATE_LEN] = 0;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_number_matches_cargo() {
        let v: Vec<u32> = env!("CARGO_PKG_VERSION")
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(version_number(), (v[0] << 16) | (v[1] << 8) | v[2]);
    }

    #[test]
    fn boundary_turns_panics_into_status() {
        let status = boundary(|| panic!("boom"));
        assert_eq!(status, Status::Panic);
        let msg = unsafe { std::ffi::CStr::from_ptr(gw_last_error_message()) };
        assert!(msg.to_str().unwrap().contains("boom"));
    }
}
