//! wsgi.errors: `gw_request_errors_*`, the application's error stream.

use std::ffi::c_void;

use super::bytes::{gw_bytes, null_item};
use super::request::{gw_request, request};
use super::{boundary, bytes_arg, slice_arg};
use crate::status::Status;

/// wsgi.errors write: all `len` bytes go to the write_stderr hook.
#[no_mangle]
pub unsafe extern "C" fn gw_request_errors_write(
    req: *mut gw_request,
    data: *const c_void,
    len: usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        let data = unsafe { bytes_arg(data, len, "data") }?;
        req.errors_write(data)
    })
}

/// wsgi.errors writelines: writes each of `count` byte strings in order.
#[no_mangle]
pub unsafe extern "C" fn gw_request_errors_writelines(
    req: *mut gw_request,
    lines: *const gw_bytes,
    count: usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        // SAFETY: the caller promises `count` entries.
        let lines = unsafe { slice_arg(lines, count, "lines") }?;
        if let Some(i) = lines.iter().position(|l| l.data.is_null() && l.len > 0) {
            return Err(null_item("lines", i, "data"));
        }
        for line in lines {
            req.errors_write(unsafe { bytes_arg(line.data, line.len, "") }?)?;
        }
        Ok(())
    })
}

/// wsgi.errors flush: calls the flush_stderr hook.
#[no_mangle]
pub unsafe extern "C" fn gw_request_errors_flush(req: *mut gw_request) -> Status {
    boundary(|| unsafe { request(req) }?.errors_flush())
}
