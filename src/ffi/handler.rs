//! `gw_handler`: one per worker or connection, reused across requests; its settings, its
//! hooks, the presets, and `gw_handler_run`.

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

use super::bytes::{check_headers, gw_header, header_iter};
use super::environ::{env_mut, gw_environ};
use super::fd_host::FdHost;
use super::hooks::{gw_handler_hooks, FfiHost, HostIo};
use super::request::{as_request_ptr, gw_request};
use super::{boundary, bytes_arg, fail, guard, null, out_arg, sized_arg};
use crate::cycle::{Handler, Progress, Wait};
use crate::environ::Environ;
use crate::settings::Settings;
use crate::status::{Error, Status};
use crate::util::iis_path_info;

/// A handler: wsgiref's BaseHandler instance. Create one per worker thread or connection and
/// reuse it: a reused handler serves requests without allocating once warmed up.
///
/// Thread safety: the getters (which take a `const gw_handler *`) may run on several
/// threads at once; every other function needs exclusive access (one thread at a time). A
/// handler may move between threads between calls. No gw_handler_* function may be called on a handler from
/// inside its own hooks or application while gw_handler_run is running on it; such calls
/// fail with GW_STATUS_INVALID_STATE.
pub struct gw_handler {
    _private: [u8; 0],
}

pub(super) struct HandlerCell {
    /// Set while gw_handler_run runs, so calls from inside the cycle are refused.
    pub(super) running: AtomicBool,
    pub(super) handler: UnsafeCell<Handler<FfiHost>>,
    /// The application of the cycle under way (non-blocking mode: it may be due on resume).
    pub(super) app: UnsafeCell<Option<(AppFn, *mut c_void)>>,
    /// What a pending cycle waits for (a gw_wait), readable by the const getter.
    pub(super) wait: AtomicI32,
}

/// An application function, known to be non-NULL.
pub(super) type AppFn =
    unsafe extern "C" fn(userdata: *mut c_void, request: *mut gw_request) -> i32;

/// The application: wsgiref's `application(environ, start_response)`. Called once per
/// gw_handler_run on the caller's thread with the request, which is valid until it returns
/// (and during the body iterator's calls). Returns a gw_status: GW_STATUS_OK, or a failure
/// (GW_STATUS_APP_ERROR from gw_request_fail, or the status of a failed gateway call).
pub type gw_application_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, request: *mut gw_request) -> i32>;

fn publish(handler: Handler<FfiHost>, out: *mut *mut gw_handler) -> Result<(), Error> {
    let out = unsafe { out_arg(out, "out") }?;
    let cell = HandlerCell {
        running: AtomicBool::new(false),
        handler: UnsafeCell::new(handler),
        app: UnsafeCell::new(None),
        wait: AtomicI32::new(gw_wait::None as i32),
    };
    *out = Box::into_raw(Box::new(cell)).cast();
    Ok(())
}

pub(super) unsafe fn cell<'a>(handler: *const gw_handler) -> Result<&'a HandlerCell, Error> {
    // SAFETY: every gw_handler pointer comes from publish().
    unsafe { handler.cast::<HandlerCell>().as_ref() }.ok_or_else(|| null("handler"))
}

pub(super) fn check_not_running(cell: &HandlerCell) -> Result<(), Error> {
    if cell.running.load(Ordering::Acquire) {
        return Err(Error::new(
            Status::InvalidState,
            "the handler is running a request; change it between requests",
        ));
    }
    Ok(())
}

fn check_idle(cell: &HandlerCell) -> Result<(), Error> {
    check_not_running(cell)?;
    if cell.wait.load(Ordering::Acquire) != gw_wait::None as i32 {
        return Err(Error::new(
            Status::InvalidState,
            "a cycle is pending on this handler: resume it to its end, or cancel it, first",
        ));
    }
    Ok(())
}

/// Exclusive access to an idle handler (the non-const functions).
unsafe fn idle<'a>(handler: *mut gw_handler) -> Result<&'a mut Handler<FfiHost>, Error> {
    let cell = unsafe { cell(handler) }?;
    check_idle(cell)?;
    // SAFETY: not running, and the caller has exclusive access (documented).
    Ok(unsafe { &mut *cell.handler.get() })
}

/// Shared access to an idle handler (the const getters, which may run on several threads).
unsafe fn idle_ref<'a>(handler: *const gw_handler) -> Result<&'a Handler<FfiHost>, Error> {
    let cell = unsafe { cell(handler) }?;
    check_idle(cell)?;
    // SAFETY: not running; only const functions read it concurrently (documented).
    Ok(unsafe { &*cell.handler.get() })
}

/// Creates a handler over the host's hooks (copied; `hooks->write` is required). The table
/// starts from GW_HANDLER_HOOKS_INIT: one without its size is refused with
/// GW_STATUS_INVALID_ARGUMENT, one from a newer header that sets hooks this library does not
/// know with GW_STATUS_UNSUPPORTED. The handler starts with
/// wsgiref's BaseHandler defaults: multithread, multiprocess, not run_once, origin server,
/// HTTP/1.0, no server_software, wsgi.file_wrapper offered, wsgiref's error page, and an
/// empty base environ (wsgiref copies the process environment; see gw_handler_set_os_environ).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_new(
    hooks: *const gw_handler_hooks,
    out: *mut *mut gw_handler,
) -> Status {
    boundary(|| {
        let min_size = std::mem::offset_of!(gw_handler_hooks, write) + std::mem::size_of::<usize>();
        // SAFETY: a non-NULL hooks pointer points at a hook table of its own size.
        let hooks = unsafe { sized_arg(hooks, min_size, "hooks") }?;
        if hooks.write.is_none() {
            return Err(null("hooks->write"));
        }
        if out.is_null() {
            return Err(null("out"));
        }
        publish(Handler::new(FfiHost::new(HostIo::Hooks(hooks))), out)
    })
}

/// Frees a handler. NULL is a no-op. Not from inside its own run.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_free(handler: *mut gw_handler) {
    guard(|| {
        if handler.is_null() {
            return;
        }
        let Ok(cell) = (unsafe { cell(handler) }) else {
            return;
        };
        if check_not_running(cell).is_err() {
            super::set_last_error("gw_handler_free: the handler is running; not freed");
            return;
        }
        // SAFETY: not running, and the caller has exclusive access (documented).
        let h = unsafe { &mut *cell.handler.get() };
        // A pending cycle is cancelled: its body is closed exactly once.
        h.cancel();
        // SAFETY: handlers come from Box::into_raw in publish().
        drop(unsafe { Box::from_raw(handler.cast::<HandlerCell>()) });
    })
}

/// Replaces the userdata passed to the hooks, so one handler can serve many connections.
/// GW_STATUS_INVALID_STATE for the file-descriptor presets, which have no hook userdata.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_userdata(
    handler: *mut gw_handler,
    userdata: *mut c_void,
) -> Status {
    boundary(|| match &mut unsafe { idle(handler) }?.host.io {
        HostIo::Hooks(hooks) => {
            hooks.userdata = userdata;
            Ok(())
        }
        HostIo::Fds(_) => Err(Error::new(
            Status::InvalidState,
            "preset handlers have no hook userdata",
        )),
    })
}

/// The userdata passed to the hooks (NULL for the presets).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_userdata(
    handler: *const gw_handler,
    out: *mut *mut c_void,
) -> Status {
    boundary(|| {
        let h = unsafe { idle_ref(handler) }?;
        let out = unsafe { out_arg(out, "out") }?;
        *out = match &h.host.io {
            HostIo::Hooks(hooks) => hooks.userdata,
            HostIo::Fds(_) => std::ptr::null_mut(),
        };
        Ok(())
    })
}

/// Runs one whole request cycle: builds the environ, calls `app`, sends the response,
/// closes the body. Returns what happened:
/// - GW_STATUS_OK: the response went out in full (an application may have ignored a failed
///   request-body read: gw_handler_last_keep_alive says whether the connection is reusable);
/// - GW_STATUS_APP_ERROR: the application failed before sending anything; it was logged and
///   the error page was sent in full;
/// - GW_STATUS_RESPONSE_INCOMPLETE: the response was cut short after its headers (or is
///   shorter than its Content-Length): close the connection;
/// - GW_STATUS_CLIENT_GONE: the client went away (a hook reported EPIPE, ECONNRESET or
///   ECONNABORTED, or add_cgi_vars or the application returned it). The disconnect itself is
///   not logged; lines logged before it stay (when the application failed and the error page
///   then met the disconnect, the application's failure was logged first);
/// - GW_STATUS_IO_ERROR: a hook failed; logged; close the connection;
/// - GW_STATUS_PENDING (non-blocking mode only): the cycle waits for the client; see
///   gw_handler_set_nonblocking, gw_handler_pending and gw_handler_resume;
/// - GW_STATUS_NULL_ARGUMENT / GW_STATUS_INVALID_STATE: nothing was run (INVALID_STATE
///   also while a cycle is pending on the handler).
///
/// In every case the handler is ready for the next request.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_run(
    handler: *mut gw_handler,
    app: gw_application_fn,
    app_userdata: *mut c_void,
) -> Status {
    guard(|| {
        let Some(app) = app else {
            return fail(null("app"));
        };
        let cell = match unsafe { cell(handler) }.and_then(|cell| check_idle(cell).map(|()| cell)) {
            Ok(cell) => cell,
            Err(e) => return fail(e),
        };
        // SAFETY: not running, and the caller has exclusive access (documented).
        let h = unsafe { &mut *cell.handler.get() };
        // SAFETY: exclusive access (checked idle above).
        unsafe { *cell.app.get() = Some((app, app_userdata)) };
        let _running = Running::start(cell);
        let progress = h.begin();
        settle(h, cell, progress)
    })
}

/// Marks a handler as running for the length of a call into its cycle.
pub(super) struct Running<'a>(&'a AtomicBool);

impl<'a> Running<'a> {
    pub(super) fn start(cell: &'a HandlerCell) -> Running<'a> {
        cell.running.store(true, Ordering::Release);
        Running(&cell.running)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Takes a cycle from `progress` to its end or its next pause: calls the application when
/// it is due, records what a pause waits for, and turns the outcome into a status.
pub(super) fn settle(
    h: &mut Handler<FfiHost>,
    cell: &HandlerCell,
    mut progress: Progress,
) -> Status {
    loop {
        progress = match progress {
            Progress::AppDue => {
                // SAFETY: exclusive access: the caller runs the cycle.
                let Some((app, userdata)) = (unsafe { *cell.app.get() }) else {
                    return fail(Error::new(Status::InvalidState, "no application to call"));
                };
                h.call_app(|request| {
                    // SAFETY: the application contract; the request outlives the call.
                    Status::from_raw(unsafe { app(userdata, as_request_ptr(request)) })
                })
            }
            Progress::Wait(wait) => {
                let wait = match wait {
                    Wait::Readable => gw_wait::Read,
                    Wait::Writable => gw_wait::Write,
                };
                cell.wait.store(wait as i32, Ordering::Release);
                return Status::Pending;
            }
            Progress::Done(outcome) => {
                cell.wait.store(gw_wait::None as i32, Ordering::Release);
                // SAFETY: exclusive access.
                unsafe { *cell.app.get() = None };
                return match outcome {
                    Ok(()) => Status::Ok,
                    Err(status) => {
                        // The message stays in the handler's buffer: a failing run allocates
                        // nothing.
                        super::set_last_error(h.failure());
                        status
                    }
                };
            }
        }
    }
}

/// What a pending cycle waits for (gw_handler_pending).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum gw_wait {
    /// No cycle is pending.
    None = 0,
    /// More of the request body: resume when the client's socket is readable.
    Read = 1,
    /// The client taking more of the response: resume when its socket is writable.
    Write = 2,
}

/// What the last gw_handler_run sent, for the host's access log: the status code (0 when no
/// headers went out) and the number of body bytes handed to the write hook (the error page's
/// body included).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_last_response(
    handler: *const gw_handler,
    out_status_code: *mut u16,
    out_body_bytes: *mut u64,
) -> Status {
    boundary(|| {
        let h = unsafe { idle_ref(handler) }?;
        let out_status_code = unsafe { out_arg(out_status_code, "out_status_code") }?;
        let out_body_bytes = unsafe { out_arg(out_body_bytes, "out_body_bytes") }?;
        (*out_status_code, *out_body_bytes) = h.last_response();
        Ok(())
    })
}

/// Whether the connection may carry another request after the last gw_handler_run. The
/// library decides it before the head goes out and says so in it (see
/// gw_handler_set_http_version): true when the run returned GW_STATUS_OK, the handler is an
/// origin server with http_version "1.1" answering an HTTP/1.1 client that did not send
/// `Connection: close` (or an HTTP/1.0 client that sent `Connection: keep-alive`), the
/// response was framed (Content-Length, chunked, or no body), it was not the error page, and
/// the request body was read to its end without error, by the application or by the drain
/// after it (gw_handler_set_drain_limit). A body the host said runs to the end of input
/// (`wsgi.input_terminated`) never keeps it. It can turn false after a head that promised to
/// keep the connection only when that drain fails (the client sent less than CONTENT_LENGTH,
/// the chunks were malformed or ended early, or the read hook failed) or, for a chunked
/// body, whose size is unknown until it is read, when more than the drain limit was left.
/// When false, close the connection.
/// For structured hosts it only says whether the request body was consumed.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_last_keep_alive(
    handler: *const gw_handler,
    out: *mut bool,
) -> Status {
    boundary(|| {
        let h = unsafe { idle_ref(handler) }?;
        *unsafe { out_arg(out, "out") }? = h.keep_alive();
        Ok(())
    })
}

// ---- settings -----------------------------------------------------------------------------

/// Applies `change` to an idle handler's settings.
pub(super) unsafe fn set(
    handler: *mut gw_handler,
    change: impl FnOnce(&mut Settings) -> Result<(), Error>,
) -> Status {
    boundary(|| change(&mut unsafe { idle(handler) }?.settings))
}

/// Sets one of the boolean settings.
pub(super) unsafe fn set_flag(
    handler: *mut gw_handler,
    value: bool,
    field: impl FnOnce(&mut Settings) -> &mut bool,
) -> Status {
    unsafe {
        set(handler, |s| {
            *field(s) = value;
            Ok(())
        })
    }
}

/// Reads an idle handler's settings into an out-parameter.
pub(super) unsafe fn get<T>(
    handler: *const gw_handler,
    out: *mut T,
    read: impl FnOnce(&Settings, &mut T),
) -> Status {
    boundary(|| {
        let h = unsafe { idle_ref(handler) }?;
        read(&h.settings, unsafe { out_arg(out, "out") }?);
        Ok(())
    })
}

/// Stores a borrowed byte string in two out-parameters (NULL and 0 for "not set").
unsafe fn get_bytes(
    handler: *const gw_handler,
    out: *mut *const c_char,
    out_len: *mut usize,
    read: impl FnOnce(&Settings) -> Option<&[u8]>,
) -> Status {
    boundary(|| {
        let h = unsafe { idle_ref(handler) }?;
        let out = unsafe { out_arg(out, "out") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let value = read(&h.settings);
        *out = value.map_or(std::ptr::null(), |v| v.as_ptr().cast());
        *out_len = value.map_or(0, <[u8]>::len);
        Ok(())
    })
}

/// wsgi.multithread (default true).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_multithread(
    handler: *mut gw_handler,
    value: bool,
) -> Status {
    unsafe { set_flag(handler, value, |s| &mut s.multithread) }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_multithread(
    handler: *const gw_handler,
    out: *mut bool,
) -> Status {
    unsafe { get(handler, out, |s, o| *o = s.multithread) }
}

/// wsgi.multiprocess (default true).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_multiprocess(
    handler: *mut gw_handler,
    value: bool,
) -> Status {
    unsafe { set_flag(handler, value, |s| &mut s.multiprocess) }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_multiprocess(
    handler: *const gw_handler,
    out: *mut bool,
) -> Status {
    unsafe { get(handler, out, |s, o| *o = s.multiprocess) }
}

/// wsgi.run_once (default false).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_run_once(handler: *mut gw_handler, value: bool) -> Status {
    unsafe { set_flag(handler, value, |s| &mut s.run_once) }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_run_once(
    handler: *const gw_handler,
    out: *mut bool,
) -> Status {
    unsafe { get(handler, out, |s, o| *o = s.run_once) }
}

/// true (default): an origin server, writing `HTTP/<version> <status>`, Date and Server.
/// false: CGI output, `Status: <status>` and never Date or Server.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_origin_server(
    handler: *mut gw_handler,
    value: bool,
) -> Status {
    unsafe { set_flag(handler, value, |s| &mut s.origin_server) }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_origin_server(
    handler: *const gw_handler,
    out: *mut bool,
) -> Status {
    unsafe { get(handler, out, |s, o| *o = s.origin_server) }
}

/// Whether wsgi.file_wrapper (gw_request_set_body_file) is offered (default true).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_file_wrapper(
    handler: *mut gw_handler,
    value: bool,
) -> Status {
    unsafe { set_flag(handler, value, |s| &mut s.file_wrapper) }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_file_wrapper(
    handler: *const gw_handler,
    out: *mut bool,
) -> Status {
    unsafe { get(handler, out, |s, o| *o = s.file_wrapper) }
}

/// How many bytes of a request body the application left unread the library reads and
/// discards after the response, so the connection can carry the next request (default
/// GW_DEFAULT_DRAIN_LIMIT; 0 turns draining off). A larger unread body, decided before the head goes out,
/// makes the head say `Connection: close` (HTTP/1.1) and the keep-alive verdict false.
/// A chunked body's size is not known before it is read: the drain counts its decoded
/// bytes and stops past the limit (the verdict then turns false, the head having promised
/// to keep the connection).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_drain_limit(
    handler: *mut gw_handler,
    bytes: u64,
) -> Status {
    unsafe {
        set(handler, |s| {
            s.drain_limit = bytes;
            Ok(())
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_drain_limit(
    handler: *const gw_handler,
    out: *mut u64,
) -> Status {
    unsafe { get(handler, out, |s, o| *o = s.drain_limit) }
}

/// The largest request body the application may read, in decoded bytes (0, the default, is
/// no limit, as in wsgiref: a server that does not limit request bodies itself should set
/// one). It applies to every framing: a CONTENT_LENGTH above it fails the first
/// gw_request_input_* call at once, without reading (and without `100 Continue`); a chunked
/// or terminated body fails the read that passes it. The read fails with
/// GW_STATUS_TOO_LARGE, as every later read does; the failure is logged once and the
/// connection is not kept. An application that then fails before any output gets
/// `413 Content Too Large` (`Content-Type: text/plain`, a one-line body) instead of the
/// error page, whether or not gw_handler_set_error_page replaced it: that page describes
/// the application's failures, and this one is the client's.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_max_request_body(
    handler: *mut gw_handler,
    bytes: u64,
) -> Status {
    unsafe {
        set(handler, |s| {
            s.max_request_body = bytes;
            Ok(())
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_max_request_body(
    handler: *const gw_handler,
    out: *mut u64,
) -> Status {
    unsafe { get(handler, out, |s, o| *o = s.max_request_body) }
}

/// The version in the status line, `1*DIGIT "." 1*DIGIT` (default "1.0", wsgiref's). Copied.
/// With "1.1" an origin server takes charge of the connection: it sends a body of unknown
/// length to an HTTP/1.1 client with `Transfer-Encoding: chunked`, keeps connections (see
/// gw_handler_last_keep_alive) and says so in the head: `Connection: close` whenever it will
/// not keep one, `Connection: keep-alive` to an HTTP/1.0 client it keeps. With "1.0" no
/// Connection header is written and no connection is kept (wsgiref's bytes).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_http_version(
    handler: *mut gw_handler,
    version: *const c_char,
    len: usize,
) -> Status {
    unsafe {
        set(handler, |s| {
            let version = bytes_arg(version, len, "version")?;
            s.set_http_version(version)
        })
    }
}

/// Borrowed until the setting changes or the handler is freed.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_http_version(
    handler: *const gw_handler,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> Status {
    unsafe { get_bytes(handler, out, out_len, |s| Some(s.http_version())) }
}

/// The Server header and default SERVER_SOFTWARE of an origin server. NULL or empty turns
/// it off (the default). Must be a valid header value. Copied.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_server_software(
    handler: *mut gw_handler,
    software: *const c_char,
    len: usize,
) -> Status {
    unsafe {
        set(handler, |s| {
            let software = bytes_arg(software, len, "software")?;
            s.set_server_software(Some(software))
        })
    }
}

/// NULL and 0 when not set; otherwise borrowed until the setting changes or the handler is freed.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_server_software(
    handler: *const gw_handler,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> Status {
    unsafe { get_bytes(handler, out, out_len, Settings::server_software) }
}

/// The base environ under every request's environ (wsgiref's os_environ). The handler keeps
/// a snapshot shared, not copied, between every handler given the same environ, read-only
/// from any thread; later changes to `environ` do not reach it. `environ` stays the caller's.
/// NULL means empty (the default: unlike wsgiref, the process environment is opt-in, with
/// gw_environ_new_from_process).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_os_environ(
    handler: *mut gw_handler,
    environ: *mut gw_environ,
) -> Status {
    boundary(|| {
        let h = unsafe { idle(handler) }?;
        h.settings.os_environ = if environ.is_null() {
            None
        } else {
            Some(unsafe { env_mut(environ) }?.share())
        };
        Ok(())
    })
}

/// A new environ holding the handler's base environ (sharing its storage, which is never
/// changed in place); free it with gw_environ_free.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_copy_os_environ(
    handler: *const gw_handler,
    out: *mut *mut gw_environ,
) -> Status {
    boundary(|| {
        let h = unsafe { idle_ref(handler) }?;
        let out = unsafe { out_arg(out, "out") }?;
        let mut env = Environ::new();
        env.reset(h.settings.os_environ.clone());
        *out = Box::into_raw(Box::new(env)).cast();
        Ok(())
    })
}

/// The error page sent when the application fails before any output (wsgiref's
/// error_status, error_headers, error_body); checked by start_response's rules. Copied.
/// The default is `500 Internal Server Error`, `Content-Type: text/plain` and the 59-byte
/// "A server error occurred.  Please contact the administrator."
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_error_page(
    handler: *mut gw_handler,
    status: *const c_char,
    status_len: usize,
    headers: *const gw_header,
    header_count: usize,
    body: *const c_void,
    body_len: usize,
) -> Status {
    unsafe {
        set(handler, |s| {
            let status = bytes_arg(status, status_len, "status")?;
            let headers = check_headers(headers, header_count)?;
            let body = bytes_arg(body, body_len, "body")?;
            s.set_error_page(status, header_iter(headers), body)
        })
    }
}

/// Borrowed until the error page changes or the handler is freed.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_error_status(
    handler: *const gw_handler,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> Status {
    unsafe { get_bytes(handler, out, out_len, |s| Some(s.error_status())) }
}

/// Borrowed until the error page changes or the handler is freed.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_error_body(
    handler: *const gw_handler,
    out: *mut *const c_char,
    out_len: *mut usize,
) -> Status {
    unsafe { get_bytes(handler, out, out_len, |s| Some(s.error_body())) }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_error_header_count(
    handler: *const gw_handler,
    out: *mut usize,
) -> Status {
    unsafe { get(handler, out, |s, o| *o = s.error_headers().len()) }
}

/// The error page's header number `index`, borrowed until the error page changes or the
/// handler is freed. GW_STATUS_NOT_FOUND past the last one.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_error_header(
    handler: *const gw_handler,
    index: usize,
    out: *mut gw_header,
) -> Status {
    boundary(|| {
        let h = unsafe { idle_ref(handler) }?;
        let out = unsafe { out_arg(out, "out") }?;
        let (name, value) = h
            .settings
            .error_headers()
            .get(index)
            .ok_or_else(|| Error::new(Status::NotFound, format!("no error header {index}")))?;
        *out = gw_header {
            name: name.as_ptr().cast(),
            name_len: name.len(),
            value: value.as_ptr().cast(),
            value_len: value.len(),
        };
        Ok(())
    })
}

// ---- presets --------------------------------------------------------------------------------

/// A preset handler over three file descriptors, with `base_env` merged into every request.
fn fd_preset(
    fds: [c_int; 3],
    base_env: Arc<Environ>,
    settings: Settings,
    out: *mut *mut gw_handler,
) -> Result<(), Error> {
    if out.is_null() {
        return Err(null("out"));
    }
    if fds.iter().any(|&fd| fd < 0) {
        return Err(Error::new(
            Status::InvalidArgument,
            "file descriptors must not be negative",
        ));
    }
    let [stdin_fd, stdout_fd, stderr_fd] = fds;
    let mut handler = Handler::new(FfiHost::new(HostIo::Fds(FdHost {
        stdin_fd,
        stdout_fd,
        stderr_fd,
        base_env,
    })));
    handler.settings = settings;
    publish(handler, out)
}

/// SimpleHandler and BaseCGIHandler: the caller's descriptors and environ snapshot.
unsafe fn simple_preset(
    fds: [c_int; 3],
    environ: *mut gw_environ,
    origin_server: bool,
    out: *mut *mut gw_handler,
) -> Status {
    boundary(|| {
        let base_env = if environ.is_null() {
            Arc::new(Environ::new())
        } else {
            unsafe { env_mut(environ) }?.share()
        };
        let mut settings = Settings::default();
        settings.origin_server = origin_server;
        fd_preset(fds, base_env, settings, out)
    })
}

/// CGIHandler and IISCGIHandler: the process's streams and environment.
fn cgi_preset(iis_path_fix: bool, out: *mut *mut gw_handler) -> Status {
    boundary(|| {
        let mut env = Environ::from_process()?;
        if iis_path_fix {
            let script = env.get(b"SCRIPT_NAME").unwrap_or(b"").to_vec();
            let path = env.get(b"PATH_INFO").unwrap_or(b"").to_vec();
            if let Some(fixed) = iis_path_info(&script, &path) {
                env.set(b"PATH_INFO", &fixed)?;
            }
        }
        let mut settings = Settings::default();
        settings.multithread = false;
        settings.multiprocess = true;
        settings.run_once = true;
        settings.origin_server = false;
        fd_preset([0, 1, 2], Arc::new(env), settings, out)
    })
}

/// wsgiref's SimpleHandler: an origin server over the host's file descriptors (never closed
/// by the library), with `environ` (a snapshot, as for gw_handler_set_os_environ; NULL means
/// empty) merged into every request, and BaseHandler's defaults (wsgiref's SimpleHandler
/// takes multithread and multiprocess as arguments: use gw_handler_set_multithread and
/// gw_handler_set_multiprocess). Writes complete short writes and retry EINTR.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_new_simple(
    stdin_fd: c_int,
    stdout_fd: c_int,
    stderr_fd: c_int,
    environ: *mut gw_environ,
    out: *mut *mut gw_handler,
) -> Status {
    let fds = [stdin_fd, stdout_fd, stderr_fd];
    unsafe { simple_preset(fds, environ, true, out) }
}

/// wsgiref's BaseCGIHandler: gw_handler_new_simple with CGI output (`Status:`, no Date or
/// Server).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_new_base_cgi(
    stdin_fd: c_int,
    stdout_fd: c_int,
    stderr_fd: c_int,
    environ: *mut gw_environ,
    out: *mut *mut gw_handler,
) -> Status {
    let fds = [stdin_fd, stdout_fd, stderr_fd];
    unsafe { simple_preset(fds, environ, false, out) }
}

/// wsgiref's CGIHandler: the process's stdin, stdout and stderr, the process environment
/// (read now, byte for byte) as the request's variables, an empty base environ, CGI output,
/// multithread false, multiprocess true, run_once true.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_new_cgi(out: *mut *mut gw_handler) -> Status {
    cgi_preset(false, out)
}

/// wsgiref's IISCGIHandler: gw_handler_new_cgi, with IIS's PATH_INFO fixed: when PATH_INFO
/// starts with SCRIPT_NAME (followed by '/' or nothing), that prefix is removed.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_new_iis_cgi(out: *mut *mut gw_handler) -> Status {
    cgi_preset(true, out)
}
