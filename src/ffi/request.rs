//! `gw_request`: what the application works with during one cycle: the environ,
//! start_response, interim responses, write and the body (wsgi.input and wsgi.errors are in
//! `input.rs` and `errors.rs`).

use std::ffi::{c_char, c_int, c_void};

use super::body::{gw_body_iter, FfiBody};
use super::bytes::{check_headers, gw_header, header_iter};
use super::environ::gw_environ;
use super::fd_host::FdFile;
use super::hooks::FfiHost;
use super::{boundary, bytes_arg, null, out_arg, sized_arg};
use crate::cycle::Request;
use crate::status::{Error, Status};

/// The request an application is serving. Borrowed: valid only during the application call
/// and the body iterator's calls of the gw_handler_run that made it, on that thread.
pub struct gw_request {
    _private: [u8; 0],
}

/// gw_request_start_response flag: "I am reporting an error" (exc_info). Before any output it
/// replaces the status and headers; after the headers were sent the call fails with
/// GW_STATUS_HEADERS_ALREADY_SENT, which the application returns (the re-raise).
pub const GW_START_RESPONSE_EXC_INFO: u32 = 1;

pub(crate) fn as_request_ptr(request: &mut Request<'_, FfiHost>) -> *mut gw_request {
    (request as *mut Request<'_, FfiHost>).cast()
}

pub(crate) unsafe fn request<'a>(
    request: *mut gw_request,
) -> Result<&'a mut Request<'a, FfiHost>, Error> {
    // SAFETY: request pointers are only handed to the application during a cycle.
    unsafe { request.cast::<Request<'a, FfiHost>>().as_mut() }.ok_or_else(|| null("request"))
}

/// The request's environ, borrowed for the request. The application may read and change it.
/// PEP 3333's keys are there, with byte-string values: wsgi.version "1.0", wsgi.url_scheme
/// "http"/"https", wsgi.multithread/multiprocess/run_once/input_terminated "1" or "0",
/// wsgi.input "gw_request_input" and wsgi.errors "gw_request_errors" (read them with gw_request_input_* and
/// gw_request_errors_*), wsgi.file_wrapper "gw_request_set_body_file" when offered.
#[no_mangle]
pub unsafe extern "C" fn gw_request_environ(
    req: *mut gw_request,
    out: *mut *mut gw_environ,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        // From the cell's own pointer, not from a borrow: the application keeps this pointer
        // across later gw_request_* calls, which borrow the request exclusively.
        *unsafe { out_arg(out, "out") }? = req.environ_cell().as_ptr().cast();
        Ok(())
    })
}

/// start_response(status, headers, exc_info). The status is 3 ASCII digits (100-599), a
/// space and a reason without control bytes; header names are tokens, values have no control
/// byte but HTAB, hop-by-hop headers are refused, a Content-Length must be a plain decimal
/// number. Everything is checked and copied now; nothing is sent until the body starts.
/// `flags` is 0 or GW_START_RESPONSE_EXC_INFO. A second call without that flag fails with
/// GW_STATUS_HEADERS_ALREADY_SET, even after a failed first call (PEP 3333). A failed call
/// leaves no status set.
#[no_mangle]
pub unsafe extern "C" fn gw_request_start_response(
    req: *mut gw_request,
    status: *const c_char,
    status_len: usize,
    headers: *const gw_header,
    header_count: usize,
    flags: u32,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        if flags & !GW_START_RESPONSE_EXC_INFO != 0 {
            return Err(Error::new(
                Status::InvalidArgument,
                format!("unknown start_response flags {flags:#x}"),
            ));
        }
        let status = unsafe { bytes_arg(status, status_len, "status") }?;
        let headers = unsafe { check_headers(headers, header_count) }?;
        req.start_response(
            status,
            header_iter(headers),
            flags & GW_START_RESPONSE_EXC_INFO != 0,
        )
    })
}

/// An interim response before the final one, typically `103 Early Hints` with Link headers.
/// The status is 1xx other than 100 (the library sends `100 Continue` itself) and 101;
/// headers follow start_response's rules, without Content-Length. It goes out at once: as
/// bytes to an HTTP/1.1 client of a handler speaking HTTP/1.1, or through a structured
/// host's send_interim hook. Where it cannot (an HTTP/1.0 client, to which RFC 9110 forbids
/// 1xx; CGI output; a structured host without send_interim) it is skipped and the call still
/// returns GW_STATUS_OK: hints are optional. GW_STATUS_INVALID_STATE once the final head went
/// out.
#[no_mangle]
pub unsafe extern "C" fn gw_request_send_interim(
    req: *mut gw_request,
    status: *const c_char,
    status_len: usize,
    headers: *const gw_header,
    header_count: usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        let status = unsafe { bytes_arg(status, status_len, "status") }?;
        let headers = unsafe { check_headers(headers, header_count) }?;
        req.send_interim(status, header_iter(headers)).map(drop)
    })
}

/// The write callable: sends `len` bytes now (the headers first, if not yet sent, without a
/// computed Content-Length), then flushes. GW_STATUS_INVALID_STATE before start_response;
/// GW_STATUS_CLIENT_GONE or GW_STATUS_IO_ERROR when the client cannot be written: return
/// that status from the application.
#[no_mangle]
pub unsafe extern "C" fn gw_request_write(
    req: *mut gw_request,
    data: *const c_void,
    len: usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        let data = unsafe { bytes_arg(data, len, "data") }?;
        req.write(data)
    })
}

/// Returns one block of bytes as the body (copied), so Content-Length is computed.
/// GW_STATUS_INVALID_STATE when a body was already set.
#[no_mangle]
pub unsafe extern "C" fn gw_request_set_body_bytes(
    req: *mut gw_request,
    data: *const c_void,
    len: usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        let data = unsafe { bytes_arg(data, len, "data") }?;
        req.set_body_bytes(data)
    })
}

/// Returns one block of bytes as the body without copying it: the application promises
/// that `data` stays valid and unchanged until the cycle ends (gw_handler_run returns, or in
/// non-blocking mode the gw_handler_resume that ends the cycle, or gw_handler_cancel).
/// Content-Length is computed as for gw_request_set_body_bytes, and the bytes go from `data`
/// to the write hook (with the head when both fit one write of up to 16 KiB, the head's
/// buffer being the one copy). For static pages, or bodies the host keeps per connection.
/// GW_STATUS_INVALID_STATE when a body was already set.
#[no_mangle]
pub unsafe extern "C" fn gw_request_set_body_borrowed(
    req: *mut gw_request,
    data: *const c_void,
    len: usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        // Checked now (NULL with a length), used later: see the promise above.
        unsafe { bytes_arg(data, len, "data") }?;
        req.set_body_source(FfiBody::Borrowed {
            data: data.cast(),
            len,
            sent: false,
        })
        .map_err(|(e, _)| e)
    })
}

/// Returns a chunk iterator as the body (the table is copied; it starts from
/// GW_BODY_ITER_INIT, and its size is checked as gw_handler_new checks the hooks'). On
/// GW_STATUS_OK the library owns it and calls its close exactly once; on failure it is not
/// used and not closed.
#[no_mangle]
pub unsafe extern "C" fn gw_request_set_body_iter(
    req: *mut gw_request,
    iter: *const gw_body_iter,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        let min_size = std::mem::offset_of!(gw_body_iter, next) + std::mem::size_of::<usize>();
        // SAFETY: a non-NULL iter points at an iterator table of its own size.
        let iter = unsafe { sized_arg(iter, min_size, "iter") }?;
        if iter.next.is_none() {
            return Err(null("iter->next"));
        }
        req.set_body_source(FfiBody::Iter(iter)).map_err(|(e, _)| e)
    })
}

/// wsgi.file_wrapper: the body is read from `fd`, from its current position to end of file,
/// in blocks of `block_size` bytes (0 means 8192). When `close_fd` is true the library
/// consumes the descriptor on every path: it is closed exactly once, when the body is closed,
/// or before this function returns if the call fails (a body already set, a bad argument,
/// file_wrapper turned off); otherwise it stays the caller's. No Content-Length is computed
/// (as wsgiref), unless the host has a send_file hook: a regular file then goes to it as
/// (fd, offset, length) with its size (fstat) from the current position as Content-Length.
/// GW_STATUS_UNSUPPORTED when the handler does not offer wsgi.file_wrapper.
#[no_mangle]
pub unsafe extern "C" fn gw_request_set_body_file(
    req: *mut gw_request,
    fd: c_int,
    block_size: usize,
    close_fd: bool,
) -> Status {
    // Owns the descriptor until the body takes it, so a refusal (or a panic) closes it.
    let mut file = (close_fd && fd >= 0).then(|| FdFile::new(fd, 0, true));
    let status = boundary(|| {
        let req = unsafe { request(req) }?;
        if !req.file_wrapper_enabled() {
            return Err(Error::new(
                Status::Unsupported,
                "wsgi.file_wrapper is turned off on this handler",
            ));
        }
        if fd < 0 {
            return Err(Error::new(
                Status::InvalidArgument,
                "fd must not be negative",
            ));
        }
        let block_size = if block_size == 0 { 8192 } else { block_size };
        if block_size > 16 * 1024 * 1024 {
            return Err(Error::new(
                Status::TooLarge,
                "block_size is larger than 16 MiB",
            ));
        }
        let body = match file.take() {
            Some(owned) => owned.with_block_size(block_size),
            None => FdFile::new(fd, block_size, false),
        };
        req.set_body_source(FfiBody::File(body))
            .map_err(|(e, body)| {
                if let FfiBody::File(refused) = body {
                    file = Some(refused);
                }
                e
            })
    });
    if let Some(mut refused) = file {
        // The refusal is what the caller hears about; a failing close changes nothing then.
        let _ = refused.close();
    }
    status
}

/// Records why the application failed (written to the error log, never to the client) and
/// returns GW_STATUS_APP_ERROR, so an application can `return gw_request_fail(req, ...)`.
#[no_mangle]
pub unsafe extern "C" fn gw_request_fail(
    req: *mut gw_request,
    message: *const c_char,
    len: usize,
) -> Status {
    let status = boundary(|| {
        let req = unsafe { request(req) }?;
        let message = unsafe { bytes_arg(message, len, "message") }?;
        req.set_failure_message(message);
        Ok(())
    });
    match status {
        Status::Ok => Status::AppError,
        other => other,
    }
}
