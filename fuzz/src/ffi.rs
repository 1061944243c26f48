//! The C side of the targets: `extern "C"` trampolines that turn the library's hook and
//! application calls into calls on Rust values, and thin wrappers over the `gw_*` functions.
//! Every `unsafe` of the fuzz crate is here.
//!
//! A panic (a failed check) inside a callback must not unwind into the library: the
//! trampolines catch it, keep it and return a failure, and `Handler::run` re-raises it once
//! `gw_handler_run` is back. (Under libFuzzer the panic hook aborts at once anyway.)

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

pub use gateway::ffi::gw_wait as Wait;
use gateway::ffi::*;
pub use gateway::Status;

thread_local! {
    static PANIC: RefCell<Option<Box<dyn Any + Send>>> = const { RefCell::new(None) };
}

/// Runs a callback's body; a panic is kept for `rethrow` and `failed` is returned instead.
fn guard<T>(failed: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        PANIC.with(|p| {
            p.borrow_mut().get_or_insert(payload);
        });
        failed
    })
}

/// Re-raises the first panic a callback kept.
fn rethrow() {
    if let Some(payload) = PANIC.with(|p| p.borrow_mut().take()) {
        resume_unwind(payload);
    }
}

/// How a hook reports a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Returns this value (an errno, or any other non-zero number).
    Code(c_int),
    /// Sets errno to this value and returns -1.
    Errno(c_int),
}

impl Failure {
    fn report(self) -> c_int {
        match self {
            Failure::Code(rc) => rc,
            Failure::Errno(e) => {
                // SAFETY: errno is this thread's; nothing runs between this and the return.
                unsafe { *libc::__errno_location() = e };
                -1
            }
        }
    }

    /// The errno the library will see.
    pub fn errno(self) -> c_int {
        match self {
            Failure::Code(rc) if rc > 0 => rc,
            Failure::Errno(e) if e != 0 => e,
            _ => libc::EIO,
        }
    }

    /// EPIPE, ECONNRESET and ECONNABORTED: the client went away.
    pub fn is_disconnect(self) -> bool {
        matches!(
            self.errno(),
            libc::EPIPE | libc::ECONNRESET | libc::ECONNABORTED
        )
    }
}

pub type HookResult = Result<usize, Failure>;

/// A scripted host. The hooks get `&self` because the test reads the host while a run is on:
/// implementations keep their state in cells.
pub trait Host {
    fn write(&self, data: &[u8]) -> HookResult;
    fn flush(&self) -> Result<(), Failure> {
        Ok(())
    }
    fn read(&self, _buf: &mut [u8]) -> HookResult {
        Ok(0)
    }
    fn write_stderr(&self, data: &[u8]) -> HookResult {
        Ok(data.len())
    }
    fn flush_stderr(&self) -> Result<(), Failure> {
        Ok(())
    }
    fn add_cgi_vars(&self, _environ: Env) -> Status {
        Status::Ok
    }
    /// The send_file hook (installed only by `Handler::with_send_file`): how many bytes of
    /// `fd` from `offset` (at most `length`) went to the client.
    fn send_file(&self, _fd: c_int, _offset: u64, _length: u64) -> Result<u64, Failure> {
        Err(Failure::Code(libc::ENOSYS))
    }
}

unsafe fn host<'a, H: Host>(userdata: *mut c_void) -> &'a H {
    // SAFETY: the userdata of every handler made by `Handler::new` is a live `H`.
    unsafe { &*userdata.cast::<H>() }
}

fn report(result: HookResult, out: *mut usize) -> c_int {
    match result {
        Ok(n) => {
            // SAFETY: the library passes a valid out-parameter.
            unsafe { *out = n };
            0
        }
        Err(failure) => failure.report(),
    }
}

unsafe extern "C" fn write_hook<H: Host>(
    userdata: *mut c_void,
    data: *const c_void,
    len: usize,
    out: *mut usize,
) -> c_int {
    guard(libc::EIO, || {
        let data = unsafe { bytes(data, len) };
        report(unsafe { host::<H>(userdata) }.write(data), out)
    })
}

unsafe extern "C" fn flush_hook<H: Host>(userdata: *mut c_void) -> c_int {
    guard(libc::EIO, || {
        unsafe { host::<H>(userdata) }
            .flush()
            .map_or_else(Failure::report, |()| 0)
    })
}

unsafe extern "C" fn read_hook<H: Host>(
    userdata: *mut c_void,
    buf: *mut c_void,
    len: usize,
    out: *mut usize,
) -> c_int {
    guard(libc::EIO, || {
        let buf: &mut [u8] = match len {
            0 => &mut [],
            // SAFETY: the library passes `len` writable bytes.
            _ => unsafe { std::slice::from_raw_parts_mut(buf.cast(), len) },
        };
        report(unsafe { host::<H>(userdata) }.read(buf), out)
    })
}

unsafe extern "C" fn write_stderr_hook<H: Host>(
    userdata: *mut c_void,
    data: *const c_void,
    len: usize,
    out: *mut usize,
) -> c_int {
    guard(libc::EIO, || {
        let data = unsafe { bytes(data, len) };
        report(unsafe { host::<H>(userdata) }.write_stderr(data), out)
    })
}

unsafe extern "C" fn flush_stderr_hook<H: Host>(userdata: *mut c_void) -> c_int {
    guard(libc::EIO, || {
        unsafe { host::<H>(userdata) }
            .flush_stderr()
            .map_or_else(Failure::report, |()| 0)
    })
}

unsafe extern "C" fn add_cgi_vars_hook<H: Host>(
    userdata: *mut c_void,
    environ: *mut gw_environ,
) -> i32 {
    guard(Status::AppError as i32, || {
        unsafe { host::<H>(userdata) }.add_cgi_vars(Env(environ)) as i32
    })
}

unsafe extern "C" fn send_file_hook<H: Host>(
    userdata: *mut c_void,
    fd: c_int,
    offset: u64,
    length: u64,
    out: *mut u64,
) -> c_int {
    guard(libc::EIO, || {
        match unsafe { host::<H>(userdata) }.send_file(fd, offset, length) {
            Ok(n) => {
                // SAFETY: the library passes a valid out-parameter.
                unsafe { *out = n };
                0
            }
            Err(failure) => failure.report(),
        }
    })
}

unsafe extern "C" fn app_trampoline<F: FnMut(Req) -> Status>(
    userdata: *mut c_void,
    request: *mut gw_request,
) -> i32 {
    // SAFETY: `Handler::run` passes its closure as the userdata.
    guard(Status::AppError as i32, || unsafe {
        (*userdata.cast::<F>())(Req(request)) as i32
    })
}

/// `len` bytes at `data` (which may be NULL when `len` is 0).
unsafe fn bytes<'a>(data: *const c_void, len: usize) -> &'a [u8] {
    match len {
        0 => &[],
        // SAFETY: the caller passes `len` readable bytes.
        _ => unsafe { std::slice::from_raw_parts(data.cast(), len) },
    }
}

/// A handler over a host of type `H`, freed on drop.
pub struct Handler<'h, H: Host> {
    raw: *mut gw_handler,
    _host: PhantomData<&'h H>,
}

/// The settings the targets vary.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    pub origin: bool,
    pub http11: bool,
    pub file_wrapper: bool,
}

impl<'h, H: Host> Handler<'h, H> {
    pub fn new(host: &'h H, config: Config) -> Handler<'h, H> {
        Handler::with_send_file(host, config, false)
    }

    /// A handler whose hooks include `send_file` (`Host::send_file`) when `send_file` is true.
    pub fn with_send_file(host: &'h H, config: Config, send_file: bool) -> Handler<'h, H> {
        let hooks = gw_handler_hooks {
            size: std::mem::size_of::<gw_handler_hooks>(),
            userdata: (host as *const H).cast_mut().cast(),
            write: Some(write_hook::<H>),
            flush: Some(flush_hook::<H>),
            read_stdin: Some(read_hook::<H>),
            write_stderr: Some(write_stderr_hook::<H>),
            flush_stderr: Some(flush_stderr_hook::<H>),
            add_cgi_vars: Some(add_cgi_vars_hook::<H>),
            send_file: if send_file {
                Some(send_file_hook::<H>)
            } else {
                None
            },
            // Every other hook NULL, as a C host's `{ .write = ... }` leaves them: these
            // targets play a host that writes bytes (no structured-host hooks).
            // SAFETY: the table holds only pointers and nullable function pointers.
            ..unsafe { std::mem::zeroed() }
        };
        let mut raw = std::ptr::null_mut();
        // SAFETY: valid hooks and out-parameter.
        unsafe {
            assert_eq!(gw_handler_new(&hooks, &mut raw), Status::Ok);
            assert_eq!(gw_handler_set_origin_server(raw, config.origin), Status::Ok);
            assert_eq!(
                gw_handler_set_file_wrapper(raw, config.file_wrapper),
                Status::Ok
            );
            if config.http11 {
                assert_eq!(
                    gw_handler_set_http_version(raw, c"1.1".as_ptr(), 3),
                    Status::Ok
                );
            }
        }
        Handler {
            raw,
            _host: PhantomData,
        }
    }

    /// Hands the hooks another host of the same type (gw_handler_set_userdata).
    pub fn set_host(&mut self, host: &'h H) {
        let userdata = (host as *const H).cast_mut().cast();
        // SAFETY: a live handler; `host` outlives it.
        assert_eq!(
            unsafe { gw_handler_set_userdata(self.raw, userdata) },
            Status::Ok
        );
    }

    /// gw_handler_run with `app` as the application; re-raises a panic from any callback.
    /// A cycle that pauses (non-blocking mode) is cancelled, and that is a failure: `app`
    /// does not outlive this call (`drive` plays pausing cycles).
    pub fn run<F: FnMut(Req) -> Status>(&self, mut app: F) -> Status {
        let userdata = (&mut app as *mut F).cast();
        // SAFETY: a live handler; `app` outlives the call (a pending cycle is cancelled).
        let status = unsafe { gw_handler_run(self.raw, Some(app_trampoline::<F>), userdata) };
        if status == Status::Pending {
            self.cancel();
            rethrow();
            panic!("gw_handler_run paused where no hook answered EAGAIN");
        }
        rethrow();
        status
    }

    /// A whole cycle in non-blocking mode: gw_handler_run, then while it returns PENDING,
    /// `pause` is asked whether to go on (gw_handler_resume) or to give up
    /// (gw_handler_cancel). Returns the final status, or None when cancelled. `app` lives
    /// here for the whole cycle; a panic from a callback cancels a pending cycle first.
    pub fn drive<F: FnMut(Req) -> Status>(
        &self,
        mut app: F,
        mut pause: impl FnMut(&Self) -> bool,
    ) -> Option<Status> {
        let userdata = (&mut app as *mut F).cast();
        // SAFETY: a live handler; `app` outlives the cycle (it ends or is cancelled here).
        let mut status = unsafe { gw_handler_run(self.raw, Some(app_trampoline::<F>), userdata) };
        loop {
            if status == Status::Pending && PANIC.with(|p| p.borrow().is_some()) {
                self.cancel();
            }
            rethrow();
            if status != Status::Pending {
                return Some(status);
            }
            let go_on = catch_unwind(AssertUnwindSafe(|| pause(self))).unwrap_or_else(|payload| {
                self.cancel();
                resume_unwind(payload)
            });
            if !go_on {
                self.cancel();
                rethrow();
                return None;
            }
            // SAFETY: a live handler with a pending cycle.
            status = unsafe { gw_handler_resume(self.raw) };
        }
    }

    /// gw_handler_cancel (OK whether or not a cycle is pending).
    pub fn cancel(&self) {
        // SAFETY: a live handler.
        assert_eq!(unsafe { gw_handler_cancel(self.raw) }, Status::Ok);
    }

    /// gw_handler_resume's status alone (for the refusal when nothing is pending).
    pub fn resume_status(&self) -> Status {
        // SAFETY: a live handler.
        let status = unsafe { gw_handler_resume(self.raw) };
        rethrow();
        status
    }

    /// What a pending cycle waits for (gw_handler_pending).
    pub fn pending(&self) -> gw_wait {
        let mut out = gw_wait::None;
        // SAFETY: a live handler and out-parameter.
        assert_eq!(
            unsafe { gw_handler_pending(self.raw, &mut out) },
            Status::Ok
        );
        out
    }

    /// gw_handler_last_keep_alive's status alone (refused while a cycle is pending).
    pub fn keep_alive_status(&self) -> Status {
        let mut out = false;
        // SAFETY: a live handler and out-parameter.
        unsafe { gw_handler_last_keep_alive(self.raw, &mut out) }
    }

    pub fn set_nonblocking(&self, value: bool) {
        // SAFETY: a live, idle handler.
        assert_eq!(
            unsafe { gw_handler_set_nonblocking(self.raw, value) },
            Status::Ok
        );
    }

    pub fn set_write_high_water(&self, bytes: usize) {
        // SAFETY: a live, idle handler.
        assert_eq!(
            unsafe { gw_handler_set_write_high_water(self.raw, bytes) },
            Status::Ok
        );
    }

    pub fn set_max_request_body(&self, bytes: u64) {
        // SAFETY: a live, idle handler.
        assert_eq!(
            unsafe { gw_handler_set_max_request_body(self.raw, bytes) },
            Status::Ok
        );
    }

    pub fn set_body_memory_limit(&self, bytes: usize) {
        // SAFETY: a live, idle handler.
        assert_eq!(
            unsafe { gw_handler_set_body_memory_limit(self.raw, bytes) },
            Status::Ok
        );
    }

    pub fn keep_alive(&self) -> bool {
        let mut out = false;
        // SAFETY: a live, idle handler.
        assert_eq!(
            unsafe { gw_handler_last_keep_alive(self.raw, &mut out) },
            Status::Ok
        );
        out
    }

    /// (status code, body bytes) of the last run.
    pub fn last_response(&self) -> (u16, u64) {
        let (mut code, mut bytes) = (0, 0);
        // SAFETY: a live, idle handler.
        let status = unsafe { gw_handler_last_response(self.raw, &mut code, &mut bytes) };
        assert_eq!(status, Status::Ok);
        (code, bytes)
    }

    /// gw_handler_set_os_environ (None: NULL).
    pub fn set_os_environ(&self, environ: Option<Env>) -> Status {
        let environ = environ.map_or(std::ptr::null_mut(), |e| e.0);
        // SAFETY: a live handler and environ (or NULL).
        unsafe { gw_handler_set_os_environ(self.raw, environ) }
    }

    /// gw_handler_copy_os_environ.
    pub fn os_environ(&self) -> Result<OwnedEnv, Status> {
        let mut raw = std::ptr::null_mut();
        // SAFETY: a live handler and out-parameter.
        match unsafe { gw_handler_copy_os_environ(self.raw, &mut raw) } {
            Status::Ok => Ok(OwnedEnv(Env(raw))),
            failed => Err(failed),
        }
    }
}

impl<H: Host> Drop for Handler<'_, H> {
    fn drop(&mut self) {
        // SAFETY: made by gw_handler_new, freed once.
        unsafe { gw_handler_free(self.raw) }
    }
}

/// The request of the running application, valid during the app's and the iterator's calls
/// (the only places the trampolines make one).
#[derive(Clone, Copy)]
pub struct Req(*mut gw_request);

pub type Pair = (Vec<u8>, Vec<u8>);

impl Req {
    pub fn environ(self) -> Env {
        let mut env = std::ptr::null_mut();
        // SAFETY: a live request.
        assert_eq!(unsafe { gw_request_environ(self.0, &mut env) }, Status::Ok);
        Env(env)
    }

    pub fn start_response(self, status: &[u8], headers: &[Pair], flags: u32) -> Status {
        let headers: Vec<gw_header> = headers
            .iter()
            .map(|(name, value)| gw_header {
                name: name.as_ptr().cast(),
                name_len: name.len(),
                value: value.as_ptr().cast(),
                value_len: value.len(),
            })
            .collect();
        // SAFETY: a live request; every pointer comes with its length.
        unsafe {
            gw_request_start_response(
                self.0,
                status.as_ptr().cast(),
                status.len(),
                headers.as_ptr(),
                headers.len(),
                flags,
            )
        }
    }

    pub fn write(self, data: &[u8]) -> Status {
        // SAFETY: a live request and a slice.
        unsafe { gw_request_write(self.0, data.as_ptr().cast(), data.len()) }
    }

    pub fn set_body_bytes(self, data: &[u8]) -> Status {
        // SAFETY: a live request and a slice.
        unsafe { gw_request_set_body_bytes(self.0, data.as_ptr().cast(), data.len()) }
    }

    pub fn set_body_file(self, fd: c_int, block_size: usize, close_fd: bool) -> Status {
        // SAFETY: a live request; the fd is the caller's to hand over.
        unsafe { gw_request_set_body_file(self.0, fd, block_size, close_fd) }
    }

    pub fn fail(self, message: &[u8]) -> Status {
        // SAFETY: a live request and a slice.
        unsafe { gw_request_fail(self.0, message.as_ptr().cast(), message.len()) }
    }

    pub fn errors_write(self, data: &[u8]) -> Status {
        // SAFETY: a live request and a slice.
        unsafe { gw_request_errors_write(self.0, data.as_ptr().cast(), data.len()) }
    }

    /// gw_request_input_read into a `cap`-byte buffer.
    pub fn input_read(self, cap: usize) -> (Status, Vec<u8>) {
        let mut buf = vec![0u8; cap];
        let mut n = 0;
        // SAFETY: a live request and a `cap`-byte buffer.
        let status = unsafe { gw_request_input_read(self.0, buf.as_mut_ptr().cast(), cap, &mut n) };
        buf.truncate(if status == Status::Ok { n } else { 0 });
        (status, buf)
    }

    pub fn input_readline(self, cap: usize) -> (Status, Vec<u8>) {
        let mut buf = vec![0u8; cap];
        let mut n = 0;
        // SAFETY: a live request and a `cap`-byte buffer.
        let status =
            unsafe { gw_request_input_readline(self.0, buf.as_mut_ptr().cast(), cap, &mut n) };
        buf.truncate(if status == Status::Ok { n } else { 0 });
        (status, buf)
    }

    pub fn input_read_all(self) -> (Status, Vec<u8>) {
        let (mut data, mut len) = (std::ptr::null(), 0);
        // SAFETY: a live request; the result is copied before the next call.
        let status = unsafe { gw_request_input_read_all(self.0, &mut data, &mut len) };
        (status, copied(status, data.cast(), len))
    }

    pub fn input_next_line(self) -> (Status, Vec<u8>) {
        let (mut data, mut len) = (std::ptr::null(), 0);
        // SAFETY: as input_read_all.
        let status = unsafe { gw_request_input_next_line(self.0, &mut data, &mut len) };
        (status, copied(status, data.cast(), len))
    }

    pub fn input_readlines(self, hint: usize) -> (Status, Vec<Vec<u8>>) {
        let (mut lines, mut count) = (std::ptr::null(), 0);
        // SAFETY: a live request; the array and lines are copied before the next call.
        let status = unsafe { gw_request_input_readlines(self.0, hint, &mut lines, &mut count) };
        if status != Status::Ok || count == 0 {
            return (status, Vec::new());
        }
        let lines = unsafe { std::slice::from_raw_parts(lines, count) };
        let lines = lines
            .iter()
            .map(|l| unsafe { bytes(l.data.cast(), l.len) }.to_vec())
            .collect();
        (status, lines)
    }

    /// gw_request_set_body_iter over an iterator table built by `Iter`.
    pub fn set_body_iter<I: Iter>(self, iter: &I) -> Status {
        let table = gw_body_iter {
            size: std::mem::size_of::<gw_body_iter>(),
            userdata: (iter as *const I).cast_mut().cast(),
            next: Some(iter_next::<I>),
            block_count: Some(iter_block_count::<I>),
            close: Some(iter_close::<I>),
        };
        // SAFETY: a live request; the iterator outlives the run (the caller's promise).
        unsafe { gw_request_set_body_iter(self.0, &table) }
    }
}

fn copied(status: Status, data: *const c_void, len: usize) -> Vec<u8> {
    match status {
        // SAFETY: on success the library hands out `len` readable bytes.
        Status::Ok => unsafe { bytes(data, len) }.to_vec(),
        _ => Vec::new(),
    }
}

/// A body iterator. `next` returns a chunk borrowed from `self` (valid until the next call)
/// and whether the body ends with it (an empty chunk and true: the plain end), or a failure.
pub trait Iter {
    fn next(&self, req: Req) -> Result<(&[u8], bool), Status>;
    fn block_count(&self) -> Option<usize>;
    fn close(&self) -> Status;
}

unsafe extern "C" fn iter_next<I: Iter>(
    userdata: *mut c_void,
    request: *mut gw_request,
    out_data: *mut *const c_void,
    out_len: *mut usize,
    out_end: *mut bool,
) -> i32 {
    guard(Status::AppError as i32, || {
        // SAFETY: the userdata is the `I` given to set_body_iter; the out-parameters are valid.
        match unsafe { &*userdata.cast::<I>() }.next(Req(request)) {
            Ok((chunk, end)) => unsafe {
                *out_data = chunk.as_ptr().cast();
                *out_len = chunk.len();
                *out_end = end;
                Status::Ok as i32
            },
            Err(status) => status as i32,
        }
    })
}

unsafe extern "C" fn iter_block_count<I: Iter>(userdata: *mut c_void, out: *mut usize) -> bool {
    guard(false, || {
        // SAFETY: as iter_next.
        match unsafe { &*userdata.cast::<I>() }.block_count() {
            Some(n) => unsafe {
                *out = n;
                true
            },
            None => false,
        }
    })
}

unsafe extern "C" fn iter_close<I: Iter>(userdata: *mut c_void) -> i32 {
    // SAFETY: as iter_next.
    guard(Status::AppError as i32, || {
        unsafe { &*userdata.cast::<I>() }.close() as i32
    })
}

/// A borrowed environ (the request's, or an `OwnedEnv`'s).
#[derive(Clone, Copy)]
pub struct Env(*mut gw_environ);

impl Env {
    pub fn set(self, name: &[u8], value: &[u8]) -> Status {
        // SAFETY: a live environ and two slices.
        unsafe {
            gw_environ_set(
                self.0,
                name.as_ptr().cast(),
                name.len(),
                value.as_ptr().cast(),
                value.len(),
            )
        }
    }

    /// gw_environ_get; also checks the NUL the header promises after every value.
    pub fn get(self, name: &[u8]) -> Result<Vec<u8>, Status> {
        let (mut value, mut len) = (std::ptr::null(), 0);
        // SAFETY: a live environ, a slice and out-parameters.
        let status = unsafe {
            gw_environ_get(
                self.0,
                name.as_ptr().cast(),
                name.len(),
                &mut value,
                &mut len,
            )
        };
        match status {
            Status::Ok => Ok(unsafe { terminated(value.cast(), len) }.to_vec()),
            failed => Err(failed),
        }
    }

    pub fn remove(self, name: &[u8]) -> Status {
        // SAFETY: a live environ and a slice.
        unsafe { gw_environ_remove(self.0, name.as_ptr().cast(), name.len()) }
    }

    pub fn len(self) -> usize {
        let mut n = 0;
        // SAFETY: a live environ.
        assert_eq!(unsafe { gw_environ_len(self.0, &mut n) }, Status::Ok);
        n
    }

    /// Hands every entry to `visit` in order (gw_environ_next), without copying, until it
    /// returns false.
    pub fn visit(self, mut visit: impl FnMut(&[u8], &[u8]) -> bool) {
        let mut cursor = 0;
        loop {
            let (mut name, mut name_len, mut value, mut value_len) =
                (std::ptr::null(), 0, std::ptr::null(), 0);
            // SAFETY: a live environ and out-parameters.
            let status = unsafe {
                gw_environ_next(
                    self.0,
                    &mut cursor,
                    &mut name,
                    &mut name_len,
                    &mut value,
                    &mut value_len,
                )
            };
            let more = match status {
                // SAFETY: the entry is valid until the environ changes, after this call.
                Status::Ok => unsafe {
                    visit(
                        bytes(name.cast(), name_len),
                        terminated(value.cast(), value_len),
                    )
                },
                Status::NotFound => return,
                other => panic!("gw_environ_next returned {other:?}"),
            };
            if !more {
                return;
            }
        }
    }

    /// Every entry, in order.
    pub fn pairs(self) -> Vec<Pair> {
        let mut out = Vec::new();
        self.visit(|name, value| {
            out.push((name.to_vec(), value.to_vec()));
            true
        });
        out
    }
}

/// A value the library hands out: `len` bytes and then a NUL (documented for environ values).
unsafe fn terminated<'a>(value: *const u8, len: usize) -> &'a [u8] {
    // SAFETY: the library promises `len` bytes and a NUL after them.
    let with_nul = unsafe { std::slice::from_raw_parts(value, len + 1) };
    assert_eq!(with_nul[len], 0, "environ value not followed by a NUL");
    &with_nul[..len]
}

/// An environ the caller owns, freed on drop.
pub struct OwnedEnv(Env);

impl OwnedEnv {
    pub fn new() -> OwnedEnv {
        let mut raw = std::ptr::null_mut();
        // SAFETY: a valid out-parameter.
        assert_eq!(unsafe { gw_environ_new(&mut raw) }, Status::Ok);
        OwnedEnv(Env(raw))
    }

    pub fn from_process() -> OwnedEnv {
        let mut raw = std::ptr::null_mut();
        // SAFETY: a valid out-parameter.
        assert_eq!(unsafe { gw_environ_new_from_process(&mut raw) }, Status::Ok);
        OwnedEnv(Env(raw))
    }

    pub fn env(&self) -> Env {
        self.0
    }
}

impl Drop for OwnedEnv {
    fn drop(&mut self) {
        // SAFETY: made by the library for us, freed once.
        assert_eq!(unsafe { gw_environ_free(self.0 .0) }, Status::Ok);
    }
}

impl Env {
    /// gw_environ_free on an environ this code does not own (a request's): refused.
    pub fn free_borrowed(self) -> Status {
        // SAFETY: the library refuses to free a request's environ and changes nothing.
        unsafe { gw_environ_free(self.0) }
    }
}

/// gw_environ_free(NULL).
pub fn free_null_environ() -> Status {
    // SAFETY: NULL is a no-op.
    unsafe { gw_environ_free(std::ptr::null_mut()) }
}

/// Whether `fd` is an open descriptor.
pub fn fd_is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD only reads the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// A pipe holding `data` (at most the pipe's capacity), its write end closed: a file body.
/// Returns the read end.
pub fn pipe_with(data: &[u8]) -> c_int {
    let mut fds = [0; 2];
    // SAFETY: plain syscalls on descriptors we own.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        if !data.is_empty() {
            let n = libc::write(fds[1], data.as_ptr().cast(), data.len());
            assert_eq!(n, data.len() as isize);
        }
        libc::close(fds[1]);
    }
    fds[0]
}

/// A regular file (a memfd, at position 0) holding `data`: a file body the send_file hook
/// gets.
pub fn regular_file_with(data: &[u8]) -> c_int {
    // SAFETY: plain syscalls on a descriptor we own.
    unsafe {
        let fd = libc::memfd_create(c"gateway-fuzz".as_ptr(), libc::MFD_CLOEXEC);
        assert!(fd >= 0, "memfd_create failed");
        if !data.is_empty() {
            let n = libc::write(fd, data.as_ptr().cast(), data.len());
            assert_eq!(n, data.len() as isize);
        }
        assert_eq!(libc::lseek(fd, 0, libc::SEEK_SET), 0);
        fd
    }
}

/// Up to `len` bytes of `fd` from `offset` (pread: the position does not move).
pub fn pread_into(fd: c_int, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let offset = libc::off_t::try_from(offset).map_err(std::io::Error::other)?;
    // SAFETY: a `len`-byte buffer.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), len, offset) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// A write-only descriptor (a pipe's write end, its read end closed): reading it fails.
pub fn unreadable_fd() -> c_int {
    let mut fds = [0; 2];
    // SAFETY: plain syscalls on descriptors we own.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        libc::close(fds[0]);
    }
    fds[1]
}

pub fn close_fd(fd: c_int) {
    // SAFETY: a descriptor we own.
    unsafe { libc::close(fd) };
}

/// The choices a request-head parse takes besides the bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeadChoices {
    pub tls: bool,
    pub mounted: bool,
    pub keep_unusual_names: bool,
    pub allow_nul_in_path: bool,
    pub allow_http09: bool,
}

/// What gw_environ_set_from_request_head answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadAnswer {
    pub status: Status,
    pub consumed: usize,
    pub chunked: bool,
    pub http_status: u16,
}

impl Env {
    /// gw_environ_set_from_request_head with fixed connection facts (127.0.0.1:8000 from
    /// 192.0.2.7:4321) and `choices`.
    pub fn set_from_request_head(self, head: &[u8], choices: HeadChoices) -> HeadAnswer {
        let facts = gw_connection_facts {
            size: std::mem::size_of::<gw_connection_facts>(),
            remote_addr: c"192.0.2.7".as_ptr(),
            remote_addr_len: 9,
            server_name: c"127.0.0.1".as_ptr(),
            server_name_len: 9,
            script_name: if choices.mounted {
                c"/app".as_ptr()
            } else {
                c"".as_ptr()
            },
            script_name_len: if choices.mounted { 4 } else { 0 },
            remote_port: 4321,
            server_port: 8000,
            tls: choices.tls,
        };
        let options = gw_request_head_options {
            size: std::mem::size_of::<gw_request_head_options>(),
            keep_unusual_names: choices.keep_unusual_names,
            allow_nul_in_path: choices.allow_nul_in_path,
            allow_http09: choices.allow_http09,
            // SAFETY: the rest are sizes, where 0 means the default.
            ..unsafe { std::mem::zeroed() }
        };
        let mut answer = HeadAnswer {
            status: Status::Ok,
            consumed: usize::MAX,
            chunked: false,
            http_status: u16::MAX,
        };
        // SAFETY: a live environ, a slice, valid structs and out-parameters.
        answer.status = unsafe {
            gw_environ_set_from_request_head(
                self.0,
                head.as_ptr().cast(),
                head.len(),
                &facts,
                &options,
                &mut answer.consumed,
                &mut answer.chunked,
                &mut answer.http_status,
            )
        };
        answer
    }
}

/// gw_error_response into a buffer of GW_ERROR_RESPONSE_MAX_LEN bytes.
pub fn error_response(code: u16) -> (Status, Vec<u8>) {
    let mut buf = vec![0u8; GW_ERROR_RESPONSE_MAX_LEN];
    let mut len = 0;
    // SAFETY: a buffer of its length and an out-parameter.
    let status = unsafe { gw_error_response(code, buf.as_mut_ptr().cast(), buf.len(), &mut len) };
    buf.truncate(if status == Status::Ok { len } else { 0 });
    (status, buf)
}
