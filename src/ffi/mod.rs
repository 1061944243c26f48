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

pub mod environ;
pub mod fd_host;
pub mod handler;
pub mod hooks;
pub mod request;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error.
pub(crate) fn set_last_error(message: &str) {
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = text);
}

/// Runs an exported function's body: a panic becomes `GW_STATUS_PANIC`, an error becomes
/// its status with its message recorded as the thread's last error.
pub(crate) fn boundary(body: impl FnOnce() -> Result<(), Error>) -> Status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => Status::Ok,
        Ok(Err(err)) => {
            set_last_error(&err.message);
            err.status
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_last_error(&format!("panic inside gateway: {what}"));
            Status::Panic
        }
    }
}

/// The same for functions that return nothing (the `_free` functions).
pub(crate) fn boundary_void(body: impl FnOnce()) {
    let _ = boundary(|| {
        body();
        Ok(())
    });
}

pub(crate) fn null(what: &str) -> Error {
    Error::new(Status::NullArgument, format!("{what} is NULL"))
}

/// A `(ptr, len)` pair from C as a slice; NULL is allowed only with `len == 0`.
pub(crate) unsafe fn bytes_arg<'a, T>(
    ptr: *const T,
    len: usize,
    what: &str,
) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    if len > isize::MAX as usize {
        return Err(Error::new(
            Status::InvalidArgument,
            format!("{what}: length too large"),
        ));
    }
    // SAFETY: the caller promises `ptr` points at `len` readable bytes (documented per function).
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// A writable `(ptr, len)` buffer from C.
pub(crate) unsafe fn buffer_arg<'a, T>(
    ptr: *mut T,
    len: usize,
    what: &str,
) -> Result<&'a mut [u8], Error> {
    if len == 0 {
        return Ok(&mut []);
    }
    if ptr.is_null() {
        return Err(null(what));
    }
    if len > isize::MAX as usize {
        return Err(Error::new(
            Status::InvalidArgument,
            format!("{what}: length too large"),
        ));
    }
    // SAFETY: the caller promises `ptr` points at `len` writable bytes.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.cast::<u8>(), len) })
}

/// An out-parameter from C.
pub(crate) unsafe fn out_arg<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T, Error> {
    // SAFETY: non-NULL out-parameters point at writable storage of their type.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(what))
}

/// Static text for a status; unknown values give "unknown status".
#[no_mangle]
pub extern "C" fn gw_status_str(status: i32) -> *const c_char {
    static TEXT: OnceLock<Vec<CString>> = OnceLock::new();
    let result = catch_unwind(|| {
        let table = TEXT.get_or_init(|| {
            (0..=Status::TooLarge as i32)
                .map(|raw| CString::new(Status::from_raw(raw).describe()).unwrap_or_default())
                .collect()
        });
        match usize::try_from(status).ok().and_then(|i| table.get(i)) {
            Some(text) => text.as_ptr(),
            None => c"unknown status".as_ptr(),
        }
    });
    result.unwrap_or(c"unknown status".as_ptr())
}

/// The message of the most recent failing gateway call on this thread ("" if none). Borrowed:
/// valid until the next failing gateway call on this thread.
#[no_mangle]
pub extern "C" fn gw_last_error_message() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|slot| slot.borrow().as_ptr())).unwrap_or(c"".as_ptr())
}

/// The library's version as a static string, "MAJOR.MINOR.PATCH"; equal to GW_VERSION.
#[no_mangle]
pub extern "C" fn gw_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    catch_unwind(|| VERSION.as_ptr().cast()).unwrap_or(c"".as_ptr())
}

/// The library's version as a number: MAJOR << 16 | MINOR << 8 | PATCH; equal to
/// GW_VERSION_NUMBER of the header the caller was compiled with when the two match.
#[no_mangle]
pub extern "C" fn gw_version_number() -> u32 {
    catch_unwind(version_number).unwrap_or(0)
}

pub(crate) fn version_number() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    (part(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
        | (part(env!("CARGO_PKG_VERSION_MINOR")) << 8)
        | part(env!("CARGO_PKG_VERSION_PATCH"))
}

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
