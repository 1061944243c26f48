//! `nonblocking`: a differential target for non-blocking mode. A plan is decoded as the
//! `cycle` target decodes it (its scripted app: start_response, writes, bytes, iterators,
//! files, wsgi.errors, exc_info; origin HTTP/1.1 or 1.0, or CGI; HEAD; a failing
//! add_cgi_vars; a failing error log), plus a request body (CONTENT_LENGTH or chunked, whole
//! or cut short, with or without `Expect: 100-continue`) that the app reads first through
//! the gw_request_input_* calls, files as pipes, regular files, or regular files handed to
//! the send_file hook, and an EAGAIN schedule for each of write, flush, read_stdin and
//! send_file (with 1-byte and half transfers), and an optional cancel point. The plan runs
//! once blocking with healthy hooks and once non-blocking with the schedule, resumed until
//! it ends (or cancelled at its k-th pause). The rules:
//! - same wire, error log, wsgi.errors, status, keep-alive verdict and
//!   gw_handler_last_response in both modes, and the same bytes and statuses for every read
//!   of the request body;
//! - every EAGAIN pauses the cycle exactly once: PENDING comes back after each one and only
//!   then, gw_handler_pending says what the hook waited for (READ for read_stdin, WRITE for
//!   the others), no write, flush, read or send_file call comes before the host resumes, and
//!   getters are refused while a cycle is pending;
//! - the read hook is never asked for more than CONTENT_LENGTH in total, send_file never
//!   for 0 bytes;
//! - every iterator set_body_iter accepted is closed exactly once, never otherwise; a file
//!   handed with close_fd=true is closed, others never are (in both modes);
//! - gw_handler_cancel at a pause: no hook is called after it but the body's close (and
//!   write_stderr for the log line of a close that fails, which the header does not
//!   mention), the body is closed once (not again by a second cancel), what was written and
//!   logged before it is a prefix of the blocking run's, keep-alive is false, nothing is
//!   pending and gw_handler_resume is refused;
//! - afterwards (cancelled or not) the same handler serves a normal request byte for byte as
//!   a fresh non-blocking handler does, and as a fresh blocking one.
//!
//! The high-water mark is the default (64 KiB, never reached) or 1 to 256 bytes: a write is
//! refused (WOULD_BLOCK) exactly when the bytes queued reach it, and the blocking run plays
//! the same refusals (answers WOULD_BLOCK without calling gw_request_write), so the
//! comparison holds (but for the log of an app returning a refused write's status). Known,
//! reported library bugs are steered around (`NbPlan::steer`) and replayed from
//! `regressions/nonblocking/known-bugs/` by `run_known_bugs`.

use std::cell::Cell;
use std::ffi::c_int;

use crate::cycle::check::{check_bodies, check_log};
use crate::cycle::host::{Chunks, Faults, Faulty, File};
use crate::cycle::{outcome, serve_normal, Action, App, Outcome, Plan, Return};
use crate::ffi::{pread_into, Env, Failure, Handler, HookResult, Host, Req, Status, Wait};
use crate::script::{text, Reader};
use crate::wire::show;

/// How one call of a write, flush, read_stdin or send_file hook is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Takes (or gives, or sends) all it can.
    All,
    EAgain,
    /// One byte.
    One,
    /// Half (at least one byte).
    Half,
}

/// What comes after a schedule's script.
#[derive(Clone, Copy, Debug)]
enum Tail {
    All,
    /// Every other call answers EAGAIN, the others take all.
    Alternate,
    /// Every other call answers EAGAIN, the others move one byte.
    AlternateOne,
}

/// A hook's answers, one script byte per call, then the tail.
#[derive(Clone, Debug)]
struct Schedule {
    script: Vec<u8>,
    tail: Tail,
}

impl Schedule {
    const HEALTHY: Schedule = Schedule {
        script: Vec::new(),
        tail: Tail::All,
    };

    fn decode(r: &mut Reader) -> Schedule {
        Schedule {
            script: r.bytes(16).to_vec(),
            // Past the end of the input: every call answers EAGAIN once.
            tail: r.pick(&[Tail::Alternate, Tail::All, Tail::AlternateOne, Tail::All]),
        }
    }

    fn answer(&self, k: usize) -> Answer {
        match self.script.get(k) {
            Some(b) => match b % 4 {
                1 => Answer::EAgain,
                2 => Answer::One,
                3 => Answer::Half,
                _ => Answer::All,
            },
            None => match (self.tail, (k - self.script.len()) % 2) {
                (Tail::All, _) => Answer::All,
                (_, 0) => Answer::EAgain,
                (Tail::Alternate, _) => Answer::All,
                (Tail::AlternateOne, _) => Answer::One,
            },
        }
    }

    /// How many of `len` bytes a call answered `answer` moves.
    fn take(answer: Answer, len: usize) -> usize {
        match answer {
            Answer::One => len.min(1),
            Answer::Half => (len / 2).max(1).min(len),
            _ => len,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length,
    Chunked,
}

/// The request body the client sends.
#[derive(Debug)]
struct ReqBody {
    framing: Framing,
    /// The body's content.
    data: Vec<u8>,
    /// What the read hook gives: the content, or its chunked encoding; cut short maybe.
    sent: Vec<u8>,
    expect_continue: bool,
}

impl ReqBody {
    fn decode(r: &mut Reader) -> ReqBody {
        let data = text(r.below(4) * r.below(200), r.pick(&[0, 5, 17]));
        let framing = r.pick(&[Framing::Length, Framing::Chunked]);
        let mut sent = match framing {
            Framing::Length => data.clone(),
            Framing::Chunked => {
                let upper = r.flag();
                let mut out = Vec::new();
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let n = (1 + r.below(64)).min(rest.len());
                    let size = match upper {
                        true => format!("{n:X}\r\n"),
                        false => format!("{n:x}\r\n"),
                    };
                    out.extend_from_slice(size.as_bytes());
                    out.extend_from_slice(&rest[..n]);
                    out.extend_from_slice(b"\r\n");
                    rest = &rest[n..];
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
        };
        // The client sends less than it announced (or stops inside the chunks).
        if let Some(at) = r.sometimes(6, sent.len().max(1)) {
            sent.truncate(at);
        }
        ReqBody {
            framing,
            data,
            sent,
            expect_continue: r.below(4) == 3,
        }
    }
}

/// One read of the request body by the app.
#[derive(Clone, Copy, Debug)]
enum ReadOp {
    Read(usize),
    Readline(usize),
    ReadAll,
    NextLine,
    Readlines(usize),
}

const CAPS: &[usize] = &[0, 1, 7, 64, 4096];

impl ReadOp {
    fn decode(r: &mut Reader) -> ReadOp {
        match r.below(5) {
            0 => ReadOp::Read(r.pick(CAPS)),
            1 => ReadOp::Readline(r.pick(CAPS)),
            2 => ReadOp::ReadAll,
            3 => ReadOp::NextLine,
            _ => ReadOp::Readlines(r.pick(&[0, 10, 100])),
        }
    }

    /// What the read returned: its status and the lines (one piece but for readlines).
    fn play(self, req: Req) -> (Status, Vec<Vec<u8>>) {
        let (status, data) = match self {
            ReadOp::Read(cap) => req.input_read(cap),
            ReadOp::Readline(cap) => req.input_readline(cap),
            ReadOp::ReadAll => req.input_read_all(),
            ReadOp::NextLine => req.input_next_line(),
            ReadOp::Readlines(hint) => return req.input_readlines(hint),
        };
        (status, vec![data])
    }
}

/// How the app's file bodies are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Files {
    Pipes,
    Regular,
    /// Regular files, and the host has a send_file hook.
    SendFile,
}

#[derive(Debug)]
struct NbPlan {
    plan: Plan,
    /// How many input bytes the cycle plan took (to make seeds: the rest is this target's).
    #[allow(dead_code)] // read through Debug (FUZZ_DEBUG)
    plan_bytes: usize,
    body: Option<ReqBody>,
    /// The app reads the body so first (then plays the plan).
    reads: Vec<ReadOp>,
    files: Files,
    body_memory_limit: Option<usize>,
    write: Schedule,
    flush: Schedule,
    read: Schedule,
    send_file: Schedule,
    /// gw_handler_cancel at this pause (counted from 0), when the run pauses so often.
    cancel_at: Option<usize>,
    /// gw_handler_set_max_request_body: a body past it fails the reads (413).
    max_request_body: Option<u64>,
    /// gw_handler_set_write_high_water (None: the default, 64 KiB).
    high_water: Option<usize>,
}

impl NbPlan {
    fn decode(r: &mut Reader, known_bugs: KnownBugs) -> NbPlan {
        let before = r.left();
        let plan = Plan::decode(r);
        let plan_bytes = before - r.left();
        let body = (r.below(3) == 2).then(|| ReqBody::decode(r));
        let mut reads: Vec<ReadOp> = (0..r.below(5)).map(|_| ReadOp::decode(r)).collect();
        // Blocking mode sends `100 Continue` when the app first reads, non-blocking mode
        // always (the documented difference): an app that was asked for it reads.
        if body.as_ref().is_some_and(|b| b.expect_continue) && reads.is_empty() {
            reads.push(ReadOp::ReadAll);
        }
        NbPlan {
            plan,
            plan_bytes,
            body,
            reads,
            files: r.pick(&[
                Files::SendFile,
                Files::Pipes,
                Files::Regular,
                Files::SendFile,
            ]),
            body_memory_limit: r.pick(&[None, None, Some(0), Some(16)]),
            write: Schedule::decode(r),
            flush: Schedule::decode(r),
            read: Schedule::decode(r),
            send_file: Schedule::decode(r),
            cancel_at: r.sometimes(4, 12),
            max_request_body: r.pick(&[None, None, Some(0), Some(10), Some(100)]),
            high_water: r.pick(&[None, None, Some(1), Some(8), Some(64), Some(256)]),
        }
        .steer(known_bugs)
    }

    /// Leaves out what meets a known bug, unless asked to play it. None is known now (the
    /// first, a chunked body past gw_handler_set_max_request_body failing the reads at a
    /// point that depended on how the read hook split the chunks, was fixed: its inputs are
    /// in regressions/nonblocking/limit-*). When a bug is reported and not fixed at once,
    /// steer around its case here and keep its inputs in regressions/nonblocking/known-bugs/.
    fn steer(self, known_bugs: KnownBugs) -> NbPlan {
        let _ = known_bugs;
        self
    }

    /// The cycle plan's stderr faults only: the write and flush hooks are healthy but for
    /// the EAGAIN schedule.
    fn stderr_faults(&self) -> Faults {
        let f = &self.plan.faults;
        Faults {
            stderr: f.stderr.clone(),
            stderr_dead: f.stderr_dead,
            flush_stderr_dead: f.flush_stderr_dead,
            ..Faults::default()
        }
    }
}

/// More pauses than this: the cycle makes no progress. (The largest plan moves a few
/// thousand bytes; a 1-byte transfer after every EAGAIN pauses once a byte.)
const MAX_PAUSES: usize = 50_000;

/// GW_DEFAULT_WRITE_HIGH_WATER.
const DEFAULT_HIGH_WATER: usize = gateway::ffi::GW_DEFAULT_WRITE_HIGH_WATER;

/// The log line of a failing close.
const CLOSE_FAILED: &[u8] = b"gateway: closing the response body failed: ";

const WRITE: usize = 0;
const FLUSH: usize = 1;
const READ: usize = 2;
const SEND_FILE: usize = 3;
const HOOKS: [&str; 4] = ["write", "flush", "read_stdin", "send_file"];

/// A host playing an EAGAIN schedule over a `Faulty` host (which records the wire and the
/// log, and plays the plan's stderr faults and add_cgi_vars), and serving the request body.
struct NbHost<'p> {
    inner: Faulty,
    body: Option<&'p ReqBody>,
    schedules: [Schedule; 4],
    calls: [Cell<usize>; 4],
    eagains: Cell<usize>,
    by_hook: [Cell<usize>; 4],
    /// What the last EAGAIN waits for, until the host resumes.
    paused: Cell<Option<Wait>>,
    cancelled: Cell<bool>,
    /// How much of the body the read hook gave.
    given: Cell<usize>,
}

impl<'p> NbHost<'p> {
    fn new(inner: Faulty, body: Option<&'p ReqBody>, schedules: [Schedule; 4]) -> NbHost<'p> {
        NbHost {
            inner,
            body,
            schedules,
            calls: Default::default(),
            eagains: Cell::new(0),
            by_hook: Default::default(),
            paused: Cell::new(None),
            cancelled: Cell::new(false),
            given: Cell::new(0),
        }
    }

    fn healthy() -> NbHost<'p> {
        NbHost::new(Faulty::default(), None, [Schedule::HEALTHY; 4])
    }

    fn not_cancelled(&self, hook: &str) {
        assert!(
            !self.cancelled.get(),
            "the {hook} hook was called after gw_handler_cancel"
        );
    }

    /// The answer of this call of `hook`; an EAGAIN pauses until the host resumes.
    fn answer(&self, hook: usize) -> Answer {
        self.not_cancelled(HOOKS[hook]);
        if let Some(wait) = self.paused.get() {
            panic!(
                "the {} hook was called after an EAGAIN ({wait:?}) before the host resumed",
                HOOKS[hook]
            );
        }
        let k = self.calls[hook].get();
        self.calls[hook].set(k + 1);
        let answer = self.schedules[hook].answer(k);
        if answer == Answer::EAgain {
            self.eagains.set(self.eagains.get() + 1);
            self.by_hook[hook].set(self.by_hook[hook].get() + 1);
            let wait = if hook == READ {
                Wait::Read
            } else {
                Wait::Write
            };
            self.paused.set(Some(wait));
        }
        answer
    }

    /// EAGAIN, as an errno value or as -1 with errno (EWOULDBLOCK is the same number).
    fn eagain(&self, hook: usize) -> Failure {
        match self.calls[hook].get() % 2 {
            0 => Failure::Code(libc::EAGAIN),
            _ => Failure::Errno(libc::EWOULDBLOCK),
        }
    }
}

impl Host for NbHost<'_> {
    fn write(&self, data: &[u8]) -> HookResult {
        match self.answer(WRITE) {
            Answer::EAgain => Err(self.eagain(WRITE)),
            answer => self
                .inner
                .write(&data[..Schedule::take(answer, data.len())]),
        }
    }

    fn flush(&self) -> Result<(), Failure> {
        match self.answer(FLUSH) {
            Answer::EAgain => Err(self.eagain(FLUSH)),
            _ => self.inner.flush(),
        }
    }

    fn read(&self, buf: &mut [u8]) -> HookResult {
        let answer = self.answer(READ);
        let body = self
            .body
            .expect("read_stdin called for a request without a body");
        let from = self.given.get();
        if body.framing == Framing::Length {
            assert!(
                from + buf.len() <= body.data.len(),
                "read_stdin asked for {} bytes after {from}: more than CONTENT_LENGTH ({})",
                buf.len(),
                body.data.len()
            );
        }
        if answer == Answer::EAgain {
            return Err(self.eagain(READ));
        }
        let n = Schedule::take(answer, buf.len()).min(body.sent.len() - from);
        buf[..n].copy_from_slice(&body.sent[from..from + n]);
        self.given.set(from + n);
        Ok(n)
    }

    fn send_file(&self, fd: c_int, offset: u64, length: u64) -> Result<u64, Failure> {
        assert!(length > 0, "send_file called for 0 bytes");
        match self.answer(SEND_FILE) {
            Answer::EAgain => Err(self.eagain(SEND_FILE)),
            answer => {
                let want = Schedule::take(answer, usize::try_from(length).unwrap_or(usize::MAX));
                let data = pread_into(fd, offset, want.min(1 << 20))
                    .unwrap_or_else(|e| panic!("send_file: pread of fd {fd} failed: {e}"));
                self.inner.out.borrow_mut().extend_from_slice(&data);
                Ok(data.len() as u64)
            }
        }
    }

    /// Called after a cancel too, for the log line of a failing close (checked in `play`).
    fn write_stderr(&self, data: &[u8]) -> HookResult {
        self.inner.write_stderr(data)
    }

    fn flush_stderr(&self) -> Result<(), Failure> {
        self.inner.flush_stderr()
    }

    fn add_cgi_vars(&self, env: Env) -> Status {
        self.not_cancelled("add_cgi_vars");
        let status = self.inner.add_cgi_vars(env);
        let Some(body) = self.body.filter(|_| status == Status::Ok) else {
            return status;
        };
        let mut set: Vec<(&[u8], &[u8])> = Vec::new();
        let length = body.data.len().to_string();
        match body.framing {
            Framing::Length => set.push((b"CONTENT_LENGTH", length.as_bytes())),
            Framing::Chunked => set.push((b"HTTP_TRANSFER_ENCODING", b"chunked")),
        }
        if body.expect_continue {
            set.push((b"HTTP_EXPECT", b"100-continue"));
        }
        for (name, value) in set {
            let status = env.set(name, value);
            if status != Status::Ok {
                return status;
            }
        }
        Status::Ok
    }
}

/// What one mode's run produced.
struct Played {
    /// None when cancelled.
    status: Option<Status>,
    outcome: Outcome,
    /// Every read of the request body: status and lines.
    input: Vec<(Status, Vec<Vec<u8>>)>,
    /// What each gw_request_write of the app returned, and the wire's length then.
    writes: Vec<(Status, usize)>,
    app_called: bool,
    pauses: usize,
    /// EAGAINs answered by write, flush, read_stdin and send_file.
    eagains: [usize; 4],
    /// The normal request the handler served afterwards.
    next: Outcome,
}

/// Plays the plan in one mode; `refused` are the writes to fail with WOULD_BLOCK without
/// calling gw_request_write (the blocking run replays the non-blocking run's refusals).
fn play(nb: &NbPlan, nonblocking: bool, refused: Vec<bool>) -> Played {
    let plan = &nb.plan;
    // Declared before the handler, so that they outlive it (a failing check unwinds through
    // its drop, which cancels a pending cycle and closes its body).
    let iters: Vec<Chunks> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Iter(it) => Some(Chunks::new(it, plan.status, &plan.headers)),
            _ => None,
        })
        .collect();
    let files: Vec<File> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::File(f) if nb.files == Files::Pipes => Some(File::new(f)),
            Action::File(f) => Some(File::regular(f)),
            _ => None,
        })
        .collect();
    let schedules = match nonblocking {
        true => [&nb.write, &nb.flush, &nb.read, &nb.send_file].map(Clone::clone),
        false => [Schedule::HEALTHY; 4],
    };
    let faulty = Faulty::new(nb.stderr_faults(), plan.head_request, plan.cgi_fails);
    let host = NbHost::new(faulty, nb.body.as_ref(), schedules);
    let healthy = NbHost::healthy();
    let mut handler = Handler::with_send_file(&host, plan.config(), nb.files == Files::SendFile);
    handler.set_nonblocking(nonblocking);
    if let Some(limit) = nb.body_memory_limit {
        handler.set_body_memory_limit(limit);
    }
    if let Some(limit) = nb.max_request_body {
        handler.set_max_request_body(limit);
    }
    if let Some(mark) = nb.high_water {
        handler.set_write_high_water(mark);
    }

    let mut app = App {
        plan,
        host: &host.inner,
        iters: &iters,
        files: &files,
        called: false,
        started: false,
        produced: Vec::new(),
        body: Vec::new(),
        writes: Vec::new(),
        refused,
    };
    let mut input = Vec::new();
    let mut pauses = 0;
    let mut log_at_cancel = 0;
    let status = handler.drive(
        |req: Req| {
            input.extend(nb.reads.iter().map(|op| op.play(req)));
            app.serve(req)
        },
        |handler| {
            let waited = host
                .paused
                .take()
                .expect("gw_handler_run/resume returned PENDING though no hook answered EAGAIN");
            assert_eq!(
                handler.pending(),
                waited,
                "gw_handler_pending at pause {pauses}"
            );
            assert_eq!(
                handler.keep_alive_status(),
                Status::InvalidState,
                "gw_handler_last_keep_alive while a cycle is pending"
            );
            assert!(
                pauses < MAX_PAUSES,
                "no end after {MAX_PAUSES} pauses: the cycle makes no progress"
            );
            let go_on = nb.cancel_at != Some(pauses);
            pauses += 1;
            if !go_on {
                host.cancelled.set(true);
                log_at_cancel = host.inner.log.borrow().len();
            }
            go_on
        },
    );
    if let Some(wait) = host.paused.get() {
        panic!("a hook answered EAGAIN ({wait:?}) but the cycle did not pause: {status:?}");
    }
    assert_eq!(
        host.eagains.get(),
        pauses,
        "{} EAGAINs for {pauses} pauses",
        host.eagains.get()
    );
    assert_eq!(
        handler.pending(),
        Wait::None,
        "pending after the cycle ended"
    );
    let mut out = outcome(&handler, &host.inner, status.unwrap_or(Status::Ok));
    out.wire = mask_dates(&out.wire);
    check_log(&out.log, &host.inner.log_cuts.borrow());
    if status.is_none() {
        // The one call the cancel makes besides the body's close: the close's failure is
        // logged (a line, cut maybe by a failing stderr hook). It is left out of the log
        // compared with the blocking run's. (gw_handler_cancel says no hook is called but
        // the body's close: reported as a discrepancy.)
        let late = out.log.split_off(log_at_cancel);
        let close_failed = iters
            .iter()
            .any(|it| it.accepted.get() && it.plan_close_fails());
        assert!(
            late.is_empty()
                || close_failed
                    && CLOSE_FAILED.starts_with(&late[..late.len().min(CLOSE_FAILED.len())])
                    && late.iter().filter(|&&b| b == b'\n').count() <= 1,
            "logged after gw_handler_cancel: {:?}",
            show(&late)
        );
        assert!(!out.keep_alive, "keep-alive after gw_handler_cancel");
        assert_eq!(
            handler.resume_status(),
            Status::InvalidState,
            "gw_handler_resume after gw_handler_cancel"
        );
        // A second cancel has nothing to cancel: the body is not closed again.
        handler.cancel();
    }
    check_bodies(&iters, &files);

    host.cancelled.set(false);
    handler.set_host(&healthy);
    let mut next = serve_normal(&handler, &healthy.inner);
    next.wire = mask_dates(&next.wire);
    Played {
        status,
        outcome: out,
        input,
        writes: app.writes,
        app_called: app.called,
        pauses,
        eagains: host.by_hook.clone().map(Cell::into_inner),
        next,
    }
}

/// gw_request_write is refused exactly when the bytes queued for the client reach the
/// high-water mark: the library's output before the k-th write is what the blocking run
/// (which plays the same refusals) had on the wire then, so the queue is that minus what
/// the non-blocking run's client had taken. Both runs' writes answered alike.
fn check_refusals(nb: &NbPlan, blocking: &[(Status, usize)], nonblocking: &[(Status, usize)]) {
    let mark = nb.high_water.unwrap_or(DEFAULT_HIGH_WATER);
    let statuses = |writes: &[(Status, usize)]| writes.iter().map(|w| w.0).collect::<Vec<_>>();
    if nonblocking.len() == blocking.len() {
        assert_eq!(
            statuses(nonblocking),
            statuses(blocking),
            "gw_request_write's answers differ between the modes (non-blocking, blocking)"
        );
    }
    for (k, (&(status, taken), &(_, produced))) in nonblocking.iter().zip(blocking).enumerate() {
        if !matches!(status, Status::Ok | Status::WouldBlock) {
            continue;
        }
        let queued = produced.checked_sub(taken).unwrap_or_else(|| {
            panic!(
                "write {k}: the client had {taken} bytes, more than the blocking run's {produced}"
            )
        });
        assert_eq!(
            status == Status::WouldBlock,
            queued >= mark,
            "write {k} answered {status:?} with {queued} bytes queued (high-water mark {mark})"
        );
    }
}

/// The normal request on a fresh handler.
fn fresh(nb: &NbPlan, nonblocking: bool) -> Outcome {
    let host = NbHost::healthy();
    let handler = Handler::with_send_file(&host, nb.plan.config(), nb.files == Files::SendFile);
    handler.set_nonblocking(nonblocking);
    let mut next = serve_normal(&handler, &host.inner);
    next.wire = mask_dates(&next.wire);
    next
}

/// The wire with every Date value (the library's clock; a date cut short too) replaced by a
/// fixed one, so that two runs a second apart compare equal.
fn mask_dates(wire: &[u8]) -> Vec<u8> {
    const NAME: &[u8] = b"\r\nDate: ";
    const FIXED: &[u8] = b"Thu, 01 Jan 1970 00:00:00 GMT";
    let mut out = wire.to_vec();
    let mut at = 0;
    while let Some(i) = out[at..].windows(NAME.len()).position(|w| w == NAME) {
        let start = at + i + NAME.len();
        let end = (start + FIXED.len()).min(out.len());
        out[start..end].copy_from_slice(&FIXED[..end - start]);
        at = end;
    }
    out
}

fn shown(run: &Outcome) -> String {
    format!(
        "{:?} keep-alive {} last_response {:?}\n  wire: {:?}\n  log: {:?}\n  errors: {:?}",
        run.status,
        run.keep_alive,
        run.last_response,
        show(&run.wire),
        show(&run.log),
        show(&run.app_log)
    )
}

/// Whether a plan plays the cases of the library's known, reported bugs (see `steer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KnownBugs {
    Avoid,
    Play,
}

/// The target: plans steer around known bugs, so that the fuzzer looks for new ones.
pub fn run(data: &[u8]) {
    run_plan(data, KnownBugs::Avoid);
}

/// The same with the known bugs' cases played: replays `regressions/nonblocking/known-bugs/`
/// (each input there fails until its bug is fixed).
pub fn run_known_bugs(data: &[u8]) {
    run_plan(data, KnownBugs::Play);
}

fn run_plan(data: &[u8], known_bugs: KnownBugs) {
    let nb = NbPlan::decode(&mut Reader::new(data), known_bugs);
    crate::debug(&nb);
    let nonblocking = play(&nb, true, Vec::new());
    let refused: Vec<bool> = nonblocking
        .writes
        .iter()
        .map(|&(status, _)| status == Status::WouldBlock)
        .collect();
    let blocking = play(&nb, false, refused.clone());
    assert!(blocking.status.is_some() && blocking.pauses == 0);
    let (b, n) = (&blocking.outcome, &nonblocking.outcome);
    check_refusals(&nb, &blocking.writes, &nonblocking.writes);
    // An app that returns the status of its last failed call, a refused write: the library
    // logs the message it kept of that call, which the blocking run (where the refusal is
    // played without a call) does not have.
    let log_may_differ = matches!(nb.plan.ret, Return::LastFailure) && refused.contains(&true);
    crate::debug(&format_args!(
        "blocking: {:?}, app called: {}; non-blocking: {:?} after {} pauses, EAGAINs by hook {:?}, {} reads, {} writes refused",
        blocking.status,
        blocking.app_called,
        nonblocking.status,
        nonblocking.pauses,
        nonblocking.eagains,
        blocking.input.len(),
        refused.iter().filter(|&&r| r).count(),
    ));
    match nonblocking.status {
        Some(_) => {
            let same_log = b.log == n.log || log_may_differ;
            assert!(
                (b.status, &b.wire, &b.app_log, b.keep_alive, b.last_response)
                    == (n.status, &n.wire, &n.app_log, n.keep_alive, n.last_response)
                    && same_log,
                "non-blocking mode ({} pauses) differs from blocking mode\nblocking: {}\n  reads: {:?}\nnon-blocking: {}\n  reads: {:?}",
                nonblocking.pauses,
                shown(b),
                blocking.input,
                shown(n),
                nonblocking.input,
            );
            assert_eq!(
                nonblocking.app_called, blocking.app_called,
                "whether the app was called"
            );
            assert!(
                nonblocking.input == blocking.input,
                "the app's reads of the request body differ: blocking {:?}, non-blocking {:?}",
                blocking.input,
                nonblocking.input
            );
        }
        None => {
            let log = if log_may_differ { &b.log } else { &n.log };
            for (what, got, all) in [
                ("wire", &n.wire, &b.wire),
                ("log", log, &b.log),
                ("wsgi.errors", &n.app_log, &b.app_log),
            ] {
                assert!(
                    all.starts_with(got),
                    "the {what} before the cancel is not a prefix of the blocking run's: {:?} / {:?}",
                    show(got),
                    show(all)
                );
            }
        }
    }
    let fresh_nb = fresh(&nb, true);
    let fresh_b = fresh(&nb, false);
    for (what, run) in [
        ("after a blocking run", &blocking.next),
        ("after the non-blocking run", &nonblocking.next),
        ("on a fresh blocking handler", &fresh_b),
    ] {
        assert!(
            *run == fresh_nb,
            "the normal request {what}: {}\non a fresh non-blocking handler: {}",
            shown(run),
            shown(&fresh_nb)
        );
    }
}
