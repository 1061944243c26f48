//! wsgi.input: `gw_request_input_*`, the request body as the application reads it.

use std::ffi::{c_char, c_void};

use super::bytes::gw_bytes;
use super::request::{gw_request, request};
use super::{boundary, buffer_arg, out_arg};
use crate::status::Status;

/// read(size): reads up to `cap` bytes into `buf`, fewer only at the end of the body.
/// `*out_len` 0 means the end.
///
/// The body's framing is decided from the environ after add_cgi_vars, first rule that
/// applies: CONTENT_LENGTH present: exactly that many bytes (empty means none), never a
/// byte more asked of read_stdin; HTTP_TRANSFER_ENCODING whose last coding is `chunked`
/// (as gw_environ_set_from_request_head leaves it, CONTENT_LENGTH absent): the library
/// decodes the chunks (hex sizes, extensions skipped, trailers read and dropped, CRLF line
/// ends only, size lines up to 4096 bytes and trailers up to 8192) and the application reads
/// plain bytes, never asking read_stdin for a byte past the last chunk; `wsgi.input_terminated`
/// set to `1` by the host itself (CGI, a server that already removed the chunking): the body
/// is whatever read_stdin gives until it reports the end of input, and the connection is
/// not kept; otherwise no body. The application always sees `wsgi.input_terminated` `1`.
///
/// Every gw_request_input_* call fails the same way: GW_STATUS_INPUT_ERROR when
/// CONTENT_LENGTH is not a decimal number, when the body ends early (before CONTENT_LENGTH
/// bytes came, or inside the chunks: never a shorter body that looks complete), when the
/// chunked framing is malformed, or when the read hook fails; GW_STATUS_TOO_LARGE past
/// gw_handler_set_max_request_body; GW_STATUS_CLIENT_GONE on a disconnect;
/// GW_STATUS_IO_ERROR when the read hook claims more bytes than it was given room for.
/// After a failure every later read fails the same way, the failure is logged once, and the
/// connection is not kept.
#[no_mangle]
pub unsafe extern "C" fn gw_request_input_read(
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
pub unsafe extern "C" fn gw_request_input_readline(
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

/// read(): the rest of the body, borrowed until the next gw_request_input_* call or the end of the
/// request.
#[no_mangle]
pub unsafe extern "C" fn gw_request_input_read_all(
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
/// next gw_request_input_* call or the end of the request. `*out_len` 0 means the end.
#[no_mangle]
pub unsafe extern "C" fn gw_request_input_next_line(
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
/// hint > 0) as an array of `*out_count` lines, borrowed until the next gw_request_input_* call or
/// the end of the request.
#[no_mangle]
pub unsafe extern "C" fn gw_request_input_readlines(
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
