//! `gw_request`: what the application works with during one cycle: the environ,
//! start_response, write, the body, wsgi.input and wsgi.errors.

use std::ffi::{c_char, c_int, c_void};

use super::environ::gw_environ;
use super::fd_host::FdFile;
use super::hooks::{gw_body_iter, FfiBody, FfiHost};
use super::{boundary, buffer_arg, bytes_arg, null, out_arg, slice_arg};
use crate::cycle::Request;
use crate::status::{Error, Status};

/// The request an application is serving. Borrowed: valid only during the application call
/// and the body iterator's calls of the gw_handler_run that made it, on that thread.
pub struct gw_request {
    _private: [u8; 0],
}

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

/// gw_start_response flag: "I am reporting an error" (exc_info). Before any output it
/// replaces the status and headers; after the headers were sent the call fails with
/// GW_STATUS_HEADERS_ALREADY_SENT, which the application returns (the re-raise).
pub const GW_START_RESPONSE_EXC_INFO: u32 = 1;

pub(crate) fn as_request_ptr(request: &mut Request<'_, FfiHost>) -> *mut gw_request {
    (request as *mut Request<'_, FfiHost>).cast()
}

unsafe fn request<'a>(request: *mut gw_request) -> Result<&'a mut Request<'a, FfiHost>, Error> {
    // SAFETY: request pointers are only handed to the application during a cycle.
    unsafe { request.cast::<Request<'a, FfiHost>>().as_mut() }.ok_or_else(|| null("request"))
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
fn null_item(array: &str, i: usize, field: &str) -> Error {
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
                bytes_arg(h.name, h.name_len, "").unwrap_or(&[]),
                bytes_arg(h.value, h.value_len, "").unwrap_or(&[]),
            )
        }
    })
}

/// The request's environ, borrowed for the request. The application may read and change it.
/// PEP 3333's keys are there, with byte-string values: wsgi.version "1.0", wsgi.url_scheme
/// "http"/"https", wsgi.multithread/multiprocess/run_once/input_terminated "1" or "0",
/// wsgi.input "gw_input" and wsgi.errors "gw_errors" (read them with gw_input_* and
/// gw_errors_*), wsgi.file_wrapper "gw_request_set_body_file" when offered.
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
pub unsafe extern "C" fn gw_start_response(
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
pub unsafe extern "C" fn gw_write(req: *mut gw_request, data: *const c_void, len: usize) -> Status {
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

/// Returns a chunk iterator as the body (the table is copied). On GW_STATUS_OK the library
/// owns it and calls its close exactly once; on failure it is not used and not closed.
#[no_mangle]
pub unsafe extern "C" fn gw_request_set_body_iter(
    req: *mut gw_request,
    iter: *const gw_body_iter,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        // SAFETY: a non-NULL iter points at an iterator table.
        let iter = *unsafe { iter.as_ref() }.ok_or_else(|| null("iter"))?;
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
/// (as wsgiref). GW_STATUS_UNSUPPORTED when the handler does not offer wsgi.file_wrapper.
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

// ---- wsgi.input -----------------------------------------------------------------------------

/// read(size): reads up to `cap` bytes into `buf`, fewer only at the end of the body
/// (CONTENT_LENGTH; absent means no body). `*out_len` 0 means the end.
#[no_mangle]
pub unsafe extern "C" fn gw_input_read(
    req: *mut gw_request,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        let buf = unsafe { buffer_arg(buf, cap, "buf") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        *out_len = req.input_read(buf)?;
        Ok(())
    })
}

/// readline(size): one line, newline included, of at most `cap` bytes into `buf`.
/// `*out_len` 0 means the end.
#[no_mangle]
pub unsafe extern "C" fn gw_input_readline(
    req: *mut gw_request,
    buf: *mut c_void,
    cap: usize,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        let buf = unsafe { buffer_arg(buf, cap, "buf") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        *out_len = req.input_readline(buf)?;
        Ok(())
    })
}

/// read(): the rest of the body, borrowed until the next gw_input_* call or the end of the
/// request.
#[no_mangle]
pub unsafe extern "C" fn gw_input_read_all(
    req: *mut gw_request,
    out_data: *mut *const c_char,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        let out_data = unsafe { out_arg(out_data, "out_data") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let data = req.input_read_all()?;
        *out_data = data.as_ptr().cast();
        *out_len = data.len();
        Ok(())
    })
}

/// Line iteration (`for line in wsgi.input`): the next line of any length, borrowed until the
/// next gw_input_* call or the end of the request. `*out_len` 0 means the end.
#[no_mangle]
pub unsafe extern "C" fn gw_input_next_line(
    req: *mut gw_request,
    out_data: *mut *const c_char,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        let out_data = unsafe { out_arg(out_data, "out_data") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let line = req.input_next_line()?;
        *out_data = line.as_ptr().cast();
        *out_len = line.len();
        Ok(())
    })
}

/// readlines(hint): the remaining lines (stopping once `hint` bytes were gathered, when
/// hint > 0) as an array of `*out_count` lines, borrowed until the next gw_input_* call or
/// the end of the request.
#[no_mangle]
pub unsafe extern "C" fn gw_input_readlines(
    req: *mut gw_request,
    hint: usize,
    out_lines: *mut *const gw_bytes,
    out_count: *mut usize,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        let out_lines = unsafe { out_arg(out_lines, "out_lines") }?;
        let out_count = unsafe { out_arg(out_count, "out_count") }?;
        req.input_readlines(hint)?;
        let (host, lines) = req.host_and_lines();
        let views = host.line_views();
        views.clear();
        views.extend(lines.map(|l| gw_bytes {
            data: l.as_ptr().cast(),
            len: l.len(),
        }));
        *out_lines = views.as_ptr();
        *out_count = views.len();
        Ok(())
    })
}

// ---- wsgi.errors ----------------------------------------------------------------------------

/// wsgi.errors write: all `len` bytes go to the write_stderr hook.
#[no_mangle]
pub unsafe extern "C" fn gw_errors_write(
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
pub unsafe extern "C" fn gw_errors_writelines(
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
pub unsafe extern "C" fn gw_errors_flush(req: *mut gw_request) -> Status {
    boundary(|| unsafe { request(req) }?.errors_flush())
}
