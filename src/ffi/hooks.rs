//! The host's hook table and the application's body iterator, as C vtables, and the
//! `Host`/`BodySource` implementations that call them.

use std::ffi::{c_char, c_int, c_void};
use std::io;

use super::bytes_arg;
use super::environ::{as_ptr, gw_environ};
use super::fd_host::{FdFile, FdHost};
use super::request::{as_request_ptr, gw_bytes, gw_header, gw_request};
use crate::cycle::Request;
use crate::environ::Environ;
use crate::framing::BodyFraming;
use crate::host::{BodySource, Chunk, Host, ResponseHead};
use crate::status::{Error, Status};

/// Writes some of `data` (`len` bytes) to the client. Stores how many bytes were taken in
/// `*out_written` (at least 1 when `len > 0`; fewer than `len` is fine, the library calls
/// again with the rest) and returns 0, or returns an errno value (or -1 with errno set).
/// EPIPE, ECONNRESET and ECONNABORTED mean the client went away; EINTR is retried; any other
/// error, or 0 bytes taken, ends the cycle with GW_STATUS_IO_ERROR.
pub type gw_hook_write_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        data: *const c_void,
        len: usize,
        out_written: *mut usize,
    ) -> c_int,
>;

/// Pushes buffered output out. Returns 0, or an errno value (or -1 with errno set).
pub type gw_hook_flush_fn = Option<unsafe extern "C" fn(userdata: *mut c_void) -> c_int>;

/// Reads up to `len` bytes of the request body into `buf`, storing the count in
/// `*out_read` (0 means end of input) and returning 0, or returns an errno value (or -1 with
/// errno set). The library never asks for more than CONTENT_LENGTH in total.
pub type gw_hook_read_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        buf: *mut c_void,
        len: usize,
        out_read: *mut usize,
    ) -> c_int,
>;

/// Adds the request's CGI variables to `environ` with gw_environ_set / gw_environ_remove.
/// `environ` is borrowed for the duration of the call. Returns a gw_status:
/// GW_STATUS_CLIENT_GONE (the host found the client gone while reading the request) ends
/// the run quietly with GW_STATUS_CLIENT_GONE: nothing is sent and nothing is logged; any
/// other failure is logged and answered with the error page (the run returns
/// GW_STATUS_APP_ERROR) without calling the application.
pub type gw_hook_add_cgi_vars_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, environ: *mut gw_environ) -> i32>;

/// The host's hooks: wsgiref's `_write`, `_flush`, `get_stdin`, `get_stderr` and
/// `add_cgi_vars`. The library copies the table in gw_handler_new. Every hook gets `userdata`
/// first, is called on the thread that called gw_handler_run, must not unwind (no C++
/// exceptions or longjmp across the library) and must not call gw_handler_* or
/// gw_request_* functions of the cycle that is running; add_cgi_vars may call gw_environ_*
/// on its environ. EINTR from the write, read_stdin and write_stderr hooks is retried (up to
/// 64 times in a row).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gw_handler_hooks {
    /// Passed to every hook; change it between requests with gw_handler_set_userdata.
    pub userdata: *mut c_void,
    /// Required.
    pub write: gw_hook_write_fn,
    /// Optional: NULL means flushing is a no-op.
    pub flush: gw_hook_flush_fn,
    /// Optional: NULL means the request has no body.
    pub read_stdin: gw_hook_read_fn,
    /// Optional: NULL means wsgi.errors and the library's log lines are discarded.
    /// Same contract as `write`.
    pub write_stderr: gw_hook_write_fn,
    /// Optional: NULL means a no-op.
    pub flush_stderr: gw_hook_flush_fn,
    /// Optional: NULL adds nothing.
    pub add_cgi_vars: gw_hook_add_cgi_vars_fn,
    /// Optional: set, it makes the host a structured one (a server library such as
    /// libmicrohttpd, an HTTP/2 server): the final response's head comes here as data, the
    /// library writes no status line, header bytes, chunk framing or Connection header, and
    /// body bytes reach `write` as they are, for the host to frame. See gw_response_head.
    pub send_head: gw_hook_send_head_fn,
    /// Optional, structured hosts: an interim (1xx) response from
    /// gw_request_send_interim; NULL skips interim responses.
    pub send_interim: gw_hook_send_head_fn,
    /// Optional, structured hosts: called once after the body of a response whose head went
    /// out; `complete` is false when the response was cut short (end the HTTP/2 stream with
    /// an error, close the connection), true when every byte of it went out.
    pub end_body: gw_hook_end_body_fn,
}

/// Receives a response head as data (see gw_response_head; borrowed for the call). Returns
/// 0, or an errno value (or -1 with errno set) as the write hook does.
pub type gw_hook_send_head_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, head: *const gw_response_head) -> c_int>;

/// The end of a response's body; `complete` is false when it was cut short. Returns 0, or an
/// errno value (or -1 with errno set).
pub type gw_hook_end_body_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, complete: bool) -> c_int>;

/// How a structured host must end the body it is about to receive.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum gw_body_framing {
    /// No body bytes follow (HEAD, 1xx, 204, 304); `content_length` may still describe the
    /// representation (HEAD, 304).
    None,
    /// Exactly `content_length` bytes follow (the library enforces it).
    Length,
    /// Bytes of a length unknown until end_body: frame them your way (chunks, HTTP/2 DATA
    /// frames, or the end of the connection).
    Stream,
}

/// A response head as data, for structured hosts. Borrowed for the hook call.
#[repr(C)]
pub struct gw_response_head {
    /// sizeof(gw_response_head) in the library that filled it: a host built against a newer
    /// header reads only the fields that fit in it.
    pub size: usize,
    pub status_code: u16,
    /// The reason phrase the application chose (after the code and its space).
    pub reason: *const c_char,
    pub reason_len: usize,
    /// The validated headers: Date and Server where the library adds them (origin servers),
    /// then the application's, never Content-Length (see `content_length`) or hop-by-hop
    /// headers.
    pub headers: *const gw_header,
    pub header_count: usize,
    pub framing: gw_body_framing,
    /// Whether `content_length` holds the length the response declares.
    pub has_content_length: bool,
    pub content_length: u64,
}

/// A hook's return code as an io::Result.
fn hook_result(rc: c_int) -> io::Result<()> {
    match rc {
        0 => Ok(()),
        -1 => {
            let err = io::Error::last_os_error();
            // A -1 without errno is still a failure.
            if err.raw_os_error() == Some(0) {
                Err(io::Error::from_raw_os_error(libc::EIO))
            } else {
                Err(err)
            }
        }
        rc if rc > 0 => Err(io::Error::from_raw_os_error(rc)),
        _ => Err(io::Error::from_raw_os_error(libc::EIO)),
    }
}

impl gw_handler_hooks {
    fn call_write(&self, hook: gw_hook_write_fn, data: &[u8]) -> io::Result<usize> {
        let Some(hook) = hook else {
            return Ok(data.len());
        };
        let mut written = 0usize;
        // SAFETY: the hook contract; `data` outlives the call.
        let rc = unsafe {
            hook(
                self.userdata,
                data.as_ptr().cast(),
                data.len(),
                &mut written,
            )
        };
        hook_result(rc).map(|()| written)
    }

    fn call_flush(&self, hook: gw_hook_flush_fn) -> io::Result<()> {
        match hook {
            // SAFETY: the hook contract.
            Some(hook) => hook_result(unsafe { hook(self.userdata) }),
            None => Ok(()),
        }
    }
}

/// Where a handler's I/O goes: a C hook table or one of the file-descriptor presets.
pub enum HostIo {
    Hooks(gw_handler_hooks),
    Fds(FdHost),
}

/// The handler's host: its I/O, plus the views gw_input_readlines and the structured head
/// hand out.
pub struct FfiHost {
    pub io: HostIo,
    line_views: Vec<gw_bytes>,
    header_views: Vec<gw_header>,
}

impl FfiHost {
    pub fn new(io: HostIo) -> FfiHost {
        FfiHost {
            io,
            line_views: Vec::new(),
            header_views: Vec::new(),
        }
    }

    /// Calls a head hook with `head` as a gw_response_head.
    fn call_head_hook(
        &mut self,
        hook: gw_hook_send_head_fn,
        head: &ResponseHead<'_>,
    ) -> io::Result<bool> {
        let HostIo::Hooks(hooks) = &self.io else {
            return Ok(false);
        };
        let Some(hook) = hook else {
            return Ok(false);
        };
        self.header_views.clear();
        self.header_views
            .extend(head.headers.iter().map(|(name, value)| gw_header {
                name: name.as_ptr().cast(),
                name_len: name.len(),
                value: value.as_ptr().cast(),
                value_len: value.len(),
            }));
        let raw = gw_response_head {
            size: std::mem::size_of::<gw_response_head>(),
            status_code: head.code,
            reason: head.reason.as_ptr().cast(),
            reason_len: head.reason.len(),
            headers: self.header_views.as_ptr(),
            header_count: self.header_views.len(),
            framing: match head.body {
                BodyFraming::Omitted => gw_body_framing::None,
                BodyFraming::Length(_) => gw_body_framing::Length,
                BodyFraming::Chunked | BodyFraming::UntilClose | BodyFraming::HostFramed => {
                    gw_body_framing::Stream
                }
            },
            has_content_length: head.content_length.is_some(),
            content_length: head.content_length.unwrap_or(0),
        };
        // SAFETY: the hook contract; `raw` and the views it points at outlive the call.
        hook_result(unsafe { hook(hooks.userdata, &raw) }).map(|()| true)
    }

    /// Reused storage for the line array of gw_input_readlines.
    pub fn line_views(&mut self) -> &mut Vec<gw_bytes> {
        &mut self.line_views
    }
}

impl Host for FfiHost {
    type Body = FfiBody;

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.io {
            HostIo::Hooks(h) => h.call_write(h.write, data),
            HostIo::Fds(f) => f.write(data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.io {
            HostIo::Hooks(h) => h.call_flush(h.flush),
            HostIo::Fds(_) => Ok(()),
        }
    }

    fn read_stdin(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.io {
            HostIo::Hooks(h) => {
                let Some(hook) = h.read_stdin else {
                    return Ok(0);
                };
                let mut read = 0usize;
                // SAFETY: the hook contract; `buf` is writable for its length.
                let rc = unsafe { hook(h.userdata, buf.as_mut_ptr().cast(), buf.len(), &mut read) };
                hook_result(rc).map(|()| read)
            }
            HostIo::Fds(f) => f.read_stdin(buf),
        }
    }

    fn write_stderr(&mut self, data: &[u8]) -> io::Result<usize> {
        match &mut self.io {
            HostIo::Hooks(h) => h.call_write(h.write_stderr, data),
            HostIo::Fds(f) => f.write_stderr(data),
        }
    }

    fn flush_stderr(&mut self) -> io::Result<()> {
        match &mut self.io {
            HostIo::Hooks(h) => h.call_flush(h.flush_stderr),
            HostIo::Fds(_) => Ok(()),
        }
    }

    fn takes_head(&self) -> bool {
        matches!(&self.io, HostIo::Hooks(h) if h.send_head.is_some())
    }

    fn send_head(&mut self, head: &ResponseHead<'_>) -> io::Result<()> {
        let hook = match &self.io {
            HostIo::Hooks(h) => h.send_head,
            HostIo::Fds(_) => None,
        };
        self.call_head_hook(hook, head).map(drop)
    }

    fn send_interim(&mut self, head: &ResponseHead<'_>) -> io::Result<bool> {
        let hook = match &self.io {
            HostIo::Hooks(h) => h.send_interim,
            HostIo::Fds(_) => None,
        };
        self.call_head_hook(hook, head)
    }

    fn end_body(&mut self, complete: bool) -> io::Result<()> {
        match &self.io {
            // SAFETY: the hook contract.
            HostIo::Hooks(gw_handler_hooks {
                userdata,
                end_body: Some(hook),
                ..
            }) => hook_result(unsafe { hook(*userdata, complete) }),
            _ => Ok(()),
        }
    }

    fn add_cgi_vars(&mut self, environ: &mut Environ) -> Result<(), Error> {
        match &mut self.io {
            HostIo::Hooks(h) => {
                let Some(hook) = h.add_cgi_vars else {
                    return Ok(());
                };
                // SAFETY: the hook contract; the environ is borrowed for the call.
                let status = Status::from_raw(unsafe { hook(h.userdata, as_ptr(environ)) });
                match status {
                    Status::Ok => Ok(()),
                    failed => Err(Error::new(
                        failed,
                        format!("add_cgi_vars hook failed: {}", failed.describe()),
                    )),
                }
            }
            HostIo::Fds(f) => f.add_cgi_vars(environ),
        }
    }
}

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

/// A body as a chunk iterator: the application's result iterable. Copied by
/// gw_request_set_body_iter.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gw_body_iter {
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
}

impl BodySource<FfiHost> for FfiBody {
    fn next_chunk<'s>(
        &'s mut self,
        request: &mut Request<'_, FfiHost>,
    ) -> Result<Option<Chunk<'s>>, Error> {
        match self {
            FfiBody::File(file) => Ok(file.next_chunk()?.map(|data| Chunk { data, last: false })),
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
            FfiBody::Iter(iter) => {
                let count_fn = iter.block_count?;
                let mut count = 0usize;
                // SAFETY: the iterator contract.
                unsafe { count_fn(iter.userdata, &mut count) }.then_some(count)
            }
        }
    }

    fn close(&mut self) -> Result<(), Error> {
        match self {
            FfiBody::File(file) => file.close(),
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
