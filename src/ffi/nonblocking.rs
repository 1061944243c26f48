//! Non-blocking mode for event-loop hosts: the settings, and resuming, inspecting and
//! cancelling a cycle that paused because the client was not ready.

use std::sync::atomic::Ordering;

use super::handler::{
    cell, check_not_running, get, gw_handler, gw_wait, set, set_flag, settle, Running,
};
use super::{boundary, fail, guard, out_arg};
use crate::status::{Error, Status};

/// Non-blocking mode (default false). When true, the write, flush, read_stdin and send_file
/// hooks may answer EAGAIN (or EWOULDBLOCK) instead of waiting, and gw_handler_run (and
/// gw_handler_resume) then return GW_STATUS_PENDING: gw_handler_pending says whether to
/// wait for the client's socket to be readable or writable, then call gw_handler_resume.
/// In this mode:
/// - the request body is read before the application is called, as it arrives (with a lazy
///   `100 Continue` first when the client asked for one), within gw_handler_set_max_request_body,
///   held in memory up to gw_handler_set_body_memory_limit and in an anonymous temporary file
///   beyond it; gw_request_input_* then read it from there and never block;
/// - what the client does not take at once is queued; body iterators and file bodies are
///   pulled only when the queue is empty, so a slow client holds the producer back;
/// - gw_request_write never blocks: it is refused with GW_STATUS_WOULD_BLOCK while the queue
///   holds gw_handler_set_write_high_water bytes or more (hand large bodies over as an
///   iterator instead);
/// - write_stderr, flush_stderr, add_cgi_vars, send_head, send_interim and end_body are
///   called as in blocking mode and must not block (buffer log lines in the host).
///
/// The bytes on the wire are those of blocking mode, with one difference: the body is read
/// before the application runs, so a `100 Continue` is always sent when asked for, and a
/// body the application leaves unread never costs the connection.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_nonblocking(
    handler: *mut gw_handler,
    value: bool,
) -> Status {
    unsafe { set_flag(handler, value, |s| &mut s.nonblocking) }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_nonblocking(
    handler: *const gw_handler,
    out: *mut bool,
) -> Status {
    unsafe { get(handler, out, |s, out| *out = s.nonblocking) }
}

/// Non-blocking mode: how many bytes may wait for a slow client before gw_request_write is
/// refused with GW_STATUS_WOULD_BLOCK (default GW_DEFAULT_WRITE_HIGH_WATER, 64 KiB; at least
/// 1). A write is accepted whole while the queue is below the mark, so the queue holds at
/// most the mark plus one write; an iterator's blocks are pulled only when it is empty.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_write_high_water(
    handler: *mut gw_handler,
    bytes: usize,
) -> Status {
    unsafe {
        set(handler, |s| {
            if bytes == 0 {
                return Err(Error::new(
                    Status::InvalidArgument,
                    "the high-water mark must be at least 1 byte",
                ));
            }
            s.write_high_water = bytes;
            Ok(())
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_write_high_water(
    handler: *const gw_handler,
    out: *mut usize,
) -> Status {
    unsafe { get(handler, out, |s, out| *out = s.write_high_water) }
}

/// Non-blocking mode: how much of a request body read ahead is held in memory (default
/// GW_DEFAULT_BODY_MEMORY_LIMIT, 64 KiB); beyond it the body goes to an anonymous file in
/// $TMPDIR (or /tmp), removed when the request ends. 0 sends every body to a file.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_body_memory_limit(
    handler: *mut gw_handler,
    bytes: usize,
) -> Status {
    unsafe {
        set(handler, |s| {
            s.body_memory = bytes;
            Ok(())
        })
    }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_body_memory_limit(
    handler: *const gw_handler,
    out: *mut usize,
) -> Status {
    unsafe { get(handler, out, |s, out| *out = s.body_memory) }
}

/// What the handler's pending cycle waits for: GW_WAIT_READ, GW_WAIT_WRITE, or GW_WAIT_NONE
/// when no cycle is pending. A const getter: may run on any thread, also while another
/// thread resumes (it then sees the state before or after).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_pending(
    handler: *const gw_handler,
    out: *mut gw_wait,
) -> Status {
    boundary(|| {
        let cell = unsafe { cell(handler) }?;
        let out = unsafe { out_arg(out, "out") }?;
        *out = match cell.wait.load(Ordering::Acquire) {
            1 => gw_wait::Read,
            2 => gw_wait::Write,
            _ => gw_wait::None,
        };
        Ok(())
    })
}

/// Goes on with a pending cycle: call it when the socket is ready for what
/// gw_handler_pending said (calling it early is harmless: the cycle pauses again). May call
/// the application (when the request body is complete) and the hooks, on the calling
/// thread; any thread may resume, one at a time. Returns GW_STATUS_PENDING again, or what
/// gw_handler_run returns at the end of a cycle. GW_STATUS_INVALID_STATE when no cycle is
/// pending.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_resume(handler: *mut gw_handler) -> Status {
    guard(|| {
        let cell = match unsafe { cell(handler) } {
            Ok(cell) => cell,
            Err(e) => return fail(e),
        };
        if let Err(e) = check_not_running(cell) {
            return fail(e);
        }
        if cell.wait.load(Ordering::Acquire) == gw_wait::None as i32 {
            return fail(Error::new(
                Status::InvalidState,
                "no cycle is pending on this handler",
            ));
        }
        // SAFETY: not running, and the caller has exclusive access (documented).
        let h = unsafe { &mut *cell.handler.get() };
        let _running = Running::start(cell);
        let progress = h.resume();
        settle(h, cell, progress)
    })
}

/// Abandons a pending cycle (the client went away, the server shuts down): the body is
/// closed exactly once, nothing more is written or read, no hook is called but the body's
/// close (and write_stderr and flush_stderr for a log line when that close fails), and the
/// handler is ready for the next request (gw_handler_last_keep_alive is then false). GW_STATUS_OK, also when no cycle was pending (so a host may call it on every
/// connection it closes).
#[no_mangle]
pub unsafe extern "C" fn gw_handler_cancel(handler: *mut gw_handler) -> Status {
    boundary(|| {
        let cell = unsafe { cell(handler) }?;
        check_not_running(cell)?;
        // SAFETY: not running, and the caller has exclusive access (documented).
        let h = unsafe { &mut *cell.handler.get() };
        let _running = Running::start(cell);
        h.cancel();
        cell.wait.store(gw_wait::None as i32, Ordering::Release);
        // SAFETY: exclusive access.
        unsafe { *cell.app.get() = None };
        Ok(())
    })
}
