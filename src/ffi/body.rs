//! The application's body as a C iterator (`gw_body_iter`), and the file body, as the core's
//! `BodySource`.

use std::ffi::c_void;

use super::bytes_arg;
use super::fd_host::FdFile;
use super::hooks::FfiHost;
use super::request::{as_request_ptr, gw_request};
use crate::cycle::Request;
use crate::host::{BodySource, Chunk};
use crate::status::{Error, Status};

/// Produces the next chunk of the body. On GW_STATUS_OK either sets `*out_data`/`*out_len`
/// to a chunk (borrowed until the next call to `next` or `close`; may be empty) or sets
/// `*out_end` to true at the end; both at once (a non-empty chunk and `*out_end`) say the
/// chunk is the last one, so the library can send it together with the end of the body (a
/// small chunked response then goes out in one write call) and does not call `next` again. Any other return is the application failing during
/// iteration. `request` may be used as inside the application (start_response may be called
/// from the first `next`).
pub type gw_body_next_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        request: *mut gw_request,
        out_data: *mut *const c_void,
        out_len: *mut usize,
        out_end: *mut bool,
    ) -> i32,
>;

/// Optional: stores the number of chunks in `*out_count` and returns true when it is known
/// (Python's `len(result)`); a count of 1 lets the library compute Content-Length.
pub type gw_body_block_count_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, out_count: *mut usize) -> bool>;

/// Optional: releases the body. Called exactly once, on every path (success, application
/// error, iteration error, disconnect). A non-OK gw_status is logged, nothing more.
pub type gw_body_close_fn = Option<unsafe extern "C" fn(userdata: *mut c_void) -> i32>;

/// A body as a chunk iterator: the application's result iterable. Start from
/// GW_BODY_ITER_INIT (it sets `size`). Copied by gw_request_set_body_iter.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gw_body_iter {
    /// sizeof(gw_body_iter) as the caller was built: set by GW_BODY_ITER_INIT.
    pub size: usize,
    pub userdata: *mut c_void,
    /// Required.
    pub next: gw_body_next_fn,
    pub block_count: gw_body_block_count_fn,
    pub close: gw_body_close_fn,
}

/// The application's body as the core sees it.
pub enum FfiBody {
    Iter(gw_body_iter),
    File(FdFile),
    /// One block the application keeps alive until the cycle ends (gw_request_set_body_borrowed).
    Borrowed {
        data: *const u8,
        len: usize,
        sent: bool,
    },
}

impl<'r> BodySource<Request<'r, FfiHost>> for FfiBody {
    fn next_chunk<'s>(
        &'s mut self,
        request: &mut Request<'r, FfiHost>,
    ) -> Result<Option<Chunk<'s>>, Error> {
        match self {
            FfiBody::File(file) => Ok(file.next_chunk()?.map(|data| Chunk { data, last: false })),
            FfiBody::Borrowed { data, len, sent } => {
                if std::mem::replace(sent, true) {
                    return Ok(None);
                }
                // SAFETY: checked by gw_request_set_body_borrowed; the application promised
                // the bytes stay valid until the cycle ends.
                let data = unsafe { bytes_arg((*data).cast::<c_void>(), *len, "data") }?;
                Ok(Some(Chunk { data, last: true }))
            }
            FfiBody::Iter(iter) => {
                let Some(next) = iter.next else {
                    return Ok(None);
                };
                let mut data: *const c_void = std::ptr::null();
                let mut len = 0usize;
                let mut end = false;
                // SAFETY: the iterator contract; the request pointer is valid for the call.
                let raw = unsafe {
                    next(
                        iter.userdata,
                        as_request_ptr(request),
                        &mut data,
                        &mut len,
                        &mut end,
                    )
                };
                match Status::from_raw(raw) {
                    // The end alone; with a chunk, the end comes right after it.
                    Status::Ok if end && len == 0 => Ok(None),
                    // SAFETY: the iterator promises `len` readable bytes until its next call.
                    Status::Ok => match unsafe { bytes_arg(data, len, "chunk") } {
                        Ok(data) => Ok(Some(Chunk {
                            data,
                            last: end && !data.is_empty(),
                        })),
                        Err(_) => Err(Error::new(
                            Status::AppError,
                            "body iterator returned NULL data with a non-zero length",
                        )),
                    },
                    failed => Err(request.app_failure(failed)),
                }
            }
        }
    }

    fn block_count(&mut self) -> Option<usize> {
        match self {
            FfiBody::File(_) => None,
            FfiBody::Borrowed { .. } => Some(1),
            FfiBody::Iter(iter) => {
                let count_fn = iter.block_count?;
                let mut count = 0usize;
                // SAFETY: the iterator contract.
                unsafe { count_fn(iter.userdata, &mut count) }.then_some(count)
            }
        }
    }

    fn file_range(&mut self) -> Option<crate::host::FileRange> {
        match self {
            FfiBody::File(file) => file.range(),
            _ => None,
        }
    }

    fn close(&mut self) -> Result<(), Error> {
        match self {
            FfiBody::File(file) => file.close(),
            FfiBody::Borrowed { .. } => Ok(()),
            FfiBody::Iter(iter) => {
                let Some(close) = iter.close.take() else {
                    return Ok(());
                };
                // SAFETY: the iterator contract; `take` makes a second call impossible.
                match Status::from_raw(unsafe { close(iter.userdata) }) {
                    Status::Ok => Ok(()),
                    failed => Err(Error::new(
                        failed,
                        format!("body close returned: {}", failed.describe()),
                    )),
                }
            }
        }
    }
}
