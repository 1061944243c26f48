//! The host's hook table (`gw_handler_hooks`) and the core's `Host` implemented over it or
//! over the presets' file descriptors.

use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::RawFd;

use super::body::FfiBody;
use super::bytes::{gw_bytes, gw_header};
use super::environ::{as_ptr, gw_environ};
use super::fd_host::FdHost;
use super::head::{gw_hook_end_body_fn, gw_hook_send_head_fn, raw_head};
use crate::environ::Environ;
use crate::host::{Host, ResponseHead};
use crate::status::{Error, Status};

/// Writes some of `data` (`len` bytes) to the client. Stores how many bytes were taken in
/// `*out_written` (at least 1 when `len > 0`; fewer than `len` is fine, the library calls
/// again with the rest) and returns 0, or returns an errno value (or -1 with errno set).
/// EPIPE, ECONNRESET and ECONNABORTED mean the client went away; EINTR is retried; EAGAIN
/// (or EWOULDBLOCK) pauses the cycle in non-blocking mode (the rest is written after
/// gw_handler_resume); any other error, EAGAIN in blocking mode, or 0 bytes taken, ends the
/// cycle with GW_STATUS_IO_ERROR.
pub type gw_hook_write_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        data: *const c_void,
        len: usize,
        out_written: *mut usize,
    ) -> c_int,
>;

/// Pushes buffered output out. Returns 0, or an errno value (or -1 with errno set); EAGAIN
/// pauses the cycle in non-blocking mode (the flush is called again after resuming).
pub type gw_hook_flush_fn = Option<unsafe extern "C" fn(userdata: *mut c_void) -> c_int>;

/// Reads up to `len` bytes of the request body into `buf`, storing the count in
/// `*out_read` (0 means end of input) and returning 0, or returns an errno value (or -1 with
/// errno set). The library never asks for more than CONTENT_LENGTH in total. In non-blocking
/// mode EAGAIN says no more has arrived yet: the cycle pauses (gw_handler_pending says
/// GW_WAIT_READ); elsewhere it is a read failure.
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

/// Sends up to `length` bytes of the open file `fd` from `offset` to the client, after the
/// bytes the library already wrote (sendfile(2), splice, or read and write), storing how
/// many went in `*out_sent` (at least 1) and returning 0, or returns an errno value (or -1
/// with errno set): EAGAIN in non-blocking mode when the client takes nothing now (the
/// library calls again with the rest after gw_handler_resume); EPIPE, ECONNRESET and
/// ECONNABORTED mean the client went away. It must not move the file's position (sendfile
/// with an offset does not). 0 bytes sent means the file ended early: the response is cut
/// short (GW_STATUS_RESPONSE_INCOMPLETE).
pub type gw_hook_send_file_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        fd: c_int,
        offset: u64,
        length: u64,
        out_sent: *mut u64,
    ) -> c_int,
>;

/// The host's hooks: wsgiref's `_write`, `_flush`, `get_stdin`, `get_stderr` and
/// `add_cgi_vars`, and the structured-response hooks. Start from GW_HANDLER_HOOKS_INIT (it
/// sets `size`), then set the hooks you have: `gw_handler_hooks hooks = GW_HANDLER_HOOKS_INIT;
/// hooks.write = my_write;`. The library copies the table in gw_handler_new. Every hook gets `userdata`
/// first, is called on the thread that called gw_handler_run, must not unwind (no C++
/// exceptions or longjmp across the library) and must not call gw_handler_* or
/// gw_request_* functions of the cycle that is running; add_cgi_vars may call gw_environ_*
/// on its environ. EINTR from the write, read_stdin and write_stderr hooks is retried (up to
/// 64 times in a row).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gw_handler_hooks {
    /// sizeof(gw_handler_hooks) as the caller was built: set by GW_HANDLER_HOOKS_INIT. Fields
    /// are only ever appended, so a binary built against an older header keeps working.
    pub size: usize,
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
    /// Optional: file bodies (gw_request_set_body_file on a regular file) are handed here
    /// as (fd, offset, length) after the head instead of being read and written through
    /// `write`. The length is the file's size (fstat) from its current position, so the
    /// response gets a Content-Length (or, after the head went out chunked, one chunk).
    /// NULL keeps reading the file in blocks through `write`, with no Content-Length.
    pub send_file: gw_hook_send_file_fn,
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

/// The handler's host: its I/O, plus the views gw_request_input_readlines and the structured head
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
        let raw = raw_head(head, &mut self.header_views);
        // SAFETY: the hook contract; `raw` and the views it points at outlive the call.
        hook_result(unsafe { hook(hooks.userdata, &raw) }).map(|()| true)
    }

    /// Reused storage for the line array of gw_request_input_readlines.
    pub fn line_views(&mut self) -> &mut Vec<gw_bytes> {
        &mut self.line_views
    }
}

impl Host for FfiHost {
    type Body = FfiBody;

    #[inline]
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

    fn sends_files(&self) -> bool {
        matches!(&self.io, HostIo::Hooks(h) if h.send_file.is_some())
    }

    /// time(2): the kernel's coarse clock through the vDSO, about a tenth of the cost of
    /// the standard library's clock_gettime(CLOCK_REALTIME), and the same seconds (it may
    /// turn over a few milliseconds late, which a Date header cannot show).
    fn unix_seconds(&self) -> i64 {
        // SAFETY: time(NULL) only returns the time; it writes through no pointer.
        let secs = unsafe { libc::time(std::ptr::null_mut()) };
        if secs == -1 {
            return crate::date::system_seconds();
        }
        #[allow(clippy::useless_conversion)] // time_t is narrower on some targets
        i64::from(secs)
    }

    fn send_file(&mut self, fd: RawFd, offset: u64, length: u64) -> io::Result<u64> {
        let HostIo::Hooks(gw_handler_hooks {
            userdata,
            send_file: Some(hook),
            ..
        }) = &self.io
        else {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        };
        let mut sent = 0u64;
        // SAFETY: the hook contract.
        hook_result(unsafe { hook(*userdata, fd, offset, length, &mut sent) }).map(|()| sent)
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
