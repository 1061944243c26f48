//! The cycle target's host, whose hooks fail as the plan says and record what they got,
//! and the app's bodies: a chunk iterator and a file.

use std::cell::{Cell, RefCell};
use std::ffi::c_int;

use super::{FilePlan, IterPlan};
use crate::ffi::{
    pipe_with, regular_file_with, unreadable_fd, Env, Failure, HookResult, Host, Iter, Pair, Req,
    Status,
};
use crate::wire::show;

/// More EINTRs in a row than this fail a write (GW_MAX_EINTR_RETRIES).
const EINTR_RETRIES: u32 = 64;

/// The hooks' faults; the default is a healthy host.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// One byte per write call (see `Faulty::write`).
    pub write: Vec<u8>,
    /// From this write call on, every call fails so.
    pub write_dead: Option<(usize, Failure)>,
    pub flush_dead: Option<(usize, Failure)>,
    /// One byte per stderr write call (see `Faulty::write_stderr`).
    pub stderr: Vec<u8>,
    pub stderr_dead: Option<(usize, Failure)>,
    pub flush_stderr_dead: Option<(usize, Failure)>,
}

/// A host playing `Faults`, recording what the client and the error log received.
#[derive(Default)]
pub struct Faulty {
    faults: Faults,
    head_request: bool,
    cgi_fails: Option<Status>,
    pub out: RefCell<Vec<u8>>,
    /// What the library logged, and where a failing stderr write cut it.
    pub log: RefCell<Vec<u8>>,
    pub log_cuts: RefCell<Vec<usize>>,
    /// The rest of a log line a short or interrupted stderr write left to send.
    log_rest: RefCell<Vec<u8>>,
    /// What the app wrote to wsgi.errors (while `app_writing`).
    pub app_log: RefCell<Vec<u8>>,
    pub app_writing: Cell<bool>,
    pub writes: Cell<usize>,
    flushes: Cell<usize>,
    pub stderr_writes: Cell<usize>,
    stderr_flushes: Cell<usize>,
    eintrs: Cell<u32>,
    stderr_eintrs: Cell<u32>,
    /// The first failing write or flush: whether it was a disconnect.
    pub failed: Cell<Option<bool>>,
    /// How much of the wire had been handed over when that call returned.
    pub failed_at: Cell<usize>,
    /// Calls of the write (data) or flush (`<flush>`) hook after that.
    pub late: RefCell<Vec<Vec<u8>>>,
}

fn count(calls: &Cell<usize>) -> usize {
    let k = calls.get();
    calls.set(k + 1);
    k
}

/// Whether a write hook's result fails the write, and counts EINTRs in a row in `eintrs`:
/// only one past the library's retries fails.
fn write_fails(result: HookResult, len: usize, eintrs: &Cell<u32>) -> Option<bool> {
    match result {
        Err(f) if f.errno() == libc::EINTR => {
            eintrs.set(eintrs.get() + 1);
            (eintrs.get() > EINTR_RETRIES).then_some(false)
        }
        Err(f) => Some(f.is_disconnect()),
        Ok(n) if n == 0 || n > len => Some(false),
        Ok(_) => {
            eintrs.set(0);
            None
        }
    }
}

impl Faulty {
    pub fn new(faults: Faults, head_request: bool, cgi_fails: Option<Status>) -> Faulty {
        Faulty {
            faults,
            head_request,
            cgi_fails,
            ..Faulty::default()
        }
    }

    /// Each log line reaches write_stderr in one call, continued only where a call took part
    /// of it (or was interrupted); a failed call drops the rest, cutting the line.
    fn check_log_call(&self, data: &[u8], result: HookResult, failed: bool) {
        let mut rest = self.log_rest.borrow_mut();
        if rest.is_empty() {
            let lines = data.iter().filter(|&&b| b == b'\n').count();
            assert!(
                data.starts_with(b"gateway: ") && data.ends_with(b"\n") && lines == 1,
                "a log line not in one write_stderr call: {:?}",
                show(data)
            );
        } else {
            assert_eq!(
                show(data),
                show(&rest),
                "a log line not continued where it stopped"
            );
        }
        *rest = match (failed, result) {
            (true, _) => Vec::new(),
            (false, Ok(n)) => data[n.min(data.len())..].to_vec(),
            (false, Err(_)) => data.to_vec(),
        };
        if failed {
            self.log_cuts.borrow_mut().push(self.log.borrow().len());
        }
    }

    fn output_failed(&self, disconnect: bool) {
        if self.failed.get().is_none() {
            self.failed.set(Some(disconnect));
            self.failed_at.set(self.out.borrow().len());
        }
    }
}

impl Host for Faulty {
    /// Script bytes: 5 short, 6 one byte, 7 EINTR, 8 takes nothing, 9 over-reports, 10 EIO
    /// (this call only); anything else takes all.
    fn write(&self, data: &[u8]) -> HookResult {
        let k = count(&self.writes);
        if self.failed.get().is_some() {
            self.late.borrow_mut().push(data.to_vec());
        }
        let len = data.len();
        let result = match self.faults.write_dead {
            Some((at, failure)) if k >= at => Err(failure),
            _ => match self.faults.write.get(k).map_or(0, |b| b % 11) {
                5 => Ok((len / 2).max(1)),
                6 => Ok(1),
                7 => Err(Failure::Code(libc::EINTR)),
                8 => Ok(0),
                9 => Ok(len + 1),
                10 => Err(Failure::Code(libc::EIO)),
                _ => Ok(len),
            },
        };
        if let Ok(n) = result {
            self.out.borrow_mut().extend_from_slice(&data[..n.min(len)]);
        }
        if let Some(disconnect) = write_fails(result, len, &self.eintrs) {
            self.output_failed(disconnect);
        }
        result
    }

    fn flush(&self) -> Result<(), Failure> {
        let k = count(&self.flushes);
        if self.failed.get().is_some() {
            self.late.borrow_mut().push(b"<flush>".to_vec());
        }
        match self.faults.flush_dead {
            Some((at, failure)) if k >= at => {
                // Flushes are not retried, EINTR included.
                self.output_failed(failure.is_disconnect());
                Err(failure)
            }
            _ => Ok(()),
        }
    }

    /// Script bytes: 3 short, 4 takes nothing, 5 EINTR; anything else takes all.
    fn write_stderr(&self, data: &[u8]) -> HookResult {
        let k = count(&self.stderr_writes);
        let len = data.len();
        let result = match self.faults.stderr_dead {
            Some((at, failure)) if k >= at => Err(failure),
            _ => match self.faults.stderr.get(k).map_or(0, |b| b % 6) {
                3 => Ok((len / 2).max(1)),
                4 => Ok(0),
                5 => Err(Failure::Code(libc::EINTR)),
                _ => Ok(len),
            },
        };
        let log = match self.app_writing.get() {
            true => &self.app_log,
            false => &self.log,
        };
        if let Ok(n) = result {
            log.borrow_mut().extend_from_slice(&data[..n.min(len)]);
        }
        let failed = write_fails(result, len, &self.stderr_eintrs).is_some();
        if !self.app_writing.get() {
            self.check_log_call(data, result, failed);
        }
        result
    }

    fn flush_stderr(&self) -> Result<(), Failure> {
        let k = count(&self.stderr_flushes);
        match self.faults.flush_stderr_dead {
            Some((at, failure)) if k >= at => Err(failure),
            _ => Ok(()),
        }
    }

    fn add_cgi_vars(&self, env: Env) -> Status {
        let method: &[u8] = if self.head_request { b"HEAD" } else { b"GET" };
        let status = match env.set(b"REQUEST_METHOD", method) {
            Status::Ok => env.set(b"SERVER_PROTOCOL", b"HTTP/1.1"),
            failed => failed,
        };
        self.cgi_fails.unwrap_or(status)
    }
}

// ---- the application's bodies ---------------------------------------------------------------

/// A body iterator playing an `IterPlan`, counting its calls.
pub struct Chunks<'p> {
    plan: &'p IterPlan,
    status: &'p [u8],
    headers: &'p [Pair],
    pub accepted: Cell<bool>,
    /// Whether its start_response call succeeded.
    pub started: Cell<bool>,
    nexts: Cell<usize>,
    ended: Cell<bool>,
    pub closes: Cell<u32>,
}

impl<'p> Chunks<'p> {
    pub fn new(plan: &'p IterPlan, status: &'p [u8], headers: &'p [Pair]) -> Chunks<'p> {
        Chunks {
            plan,
            status,
            headers,
            accepted: Cell::new(false),
            started: Cell::new(false),
            nexts: Cell::new(0),
            ended: Cell::new(false),
            closes: Cell::new(0),
        }
    }
}

impl Chunks<'_> {
    /// Whether its close fails.
    pub fn plan_close_fails(&self) -> bool {
        self.plan.close_fails
    }
}

impl Iter for Chunks<'_> {
    fn next(&self, req: Req) -> Result<(&[u8], bool), Status> {
        assert!(
            self.accepted.get(),
            "next called on an iterator set_body_iter refused"
        );
        assert_eq!(self.closes.get(), 0, "next called after close");
        assert!(!self.ended.get(), "next called after the body ended");
        let i = count(&self.nexts);
        if i == 0 && self.plan.starts {
            match req.start_response(self.status, self.headers, 0) {
                Status::Ok => self.started.set(true),
                failed => return Err(failed),
            }
        }
        if self.plan.fail_at == Some(i) {
            return Err(req.fail(b"the body iterator failed"));
        }
        let chunks = &self.plan.chunks;
        let end = i >= chunks.len() || self.plan.end_with_last && i + 1 == chunks.len();
        self.ended.set(end);
        Ok((chunks.get(i).map_or(&[], Vec::as_slice), end))
    }

    fn block_count(&self) -> Option<usize> {
        self.plan.count
    }

    fn close(&self) -> Status {
        self.closes.set(self.closes.get() + 1);
        match self.plan.close_fails {
            true => Status::AppError,
            false => Status::Ok,
        }
    }
}

/// A file body's descriptor, made before the run so that no number is reused during it.
pub struct File<'p> {
    pub plan: &'p FilePlan,
    pub fd: c_int,
    /// What set_body_file returned, once the app called it.
    pub result: Cell<Option<Status>>,
}

impl<'p> File<'p> {
    pub fn new(plan: &'p FilePlan) -> File<'p> {
        let fd = match plan.unreadable {
            true => unreadable_fd(),
            false => pipe_with(&plan.data),
        };
        File {
            plan,
            fd,
            result: Cell::new(None),
        }
    }

    /// The same body as a regular file (which a send_file hook gets); an unreadable one is
    /// still a write-only pipe.
    pub fn regular(plan: &'p FilePlan) -> File<'p> {
        let fd = match plan.unreadable {
            true => unreadable_fd(),
            false => regular_file_with(&plan.data),
        };
        File {
            plan,
            fd,
            result: Cell::new(None),
        }
    }
}
