//! `cycle`: a whole gw_handler_run with a scripted application (start_response, gw_request_write, a
//! body of bytes, an iterator that may fail or lie about its length, or a file; returning OK
//! or failing) and scripted hooks (a write that fails from its k-th call on with EPIPE, EIO,
//! EAGAIN or EINTR, short, empty and over-reported writes, failing flushes, a failing error
//! log, a failing add_cgi_vars), in origin mode (HTTP/1.1 with chunking, or 1.0) or CGI mode.
//! The rules:
//! - the run returns OK, APP_ERROR, RESPONSE_INCOMPLETE, CLIENT_GONE or IO_ERROR; the first
//!   failing write or flush decides (a disconnect: CLIENT_GONE; anything else: IO_ERROR), and
//!   neither hook is called again after it;
//! - the last chunk `0\r\n\r\n` goes out only after a body that ended well and before any write
//!   or flush failed: a run that did not return OK never has it, unless the failure came in the
//!   call that carried it or after it;
//! - OK: the wire holds one complete, well-framed response with the app's status, headers and
//!   body; APP_ERROR: exactly the error page; otherwise what went out is a well-formed start;
//!   the keep-alive verdict is true exactly for OK runs on HTTP/1.1;
//! - a body iterator is closed exactly once when set_body_iter accepted it, never otherwise; a
//!   descriptor handed with close_fd=true is closed (even when refused), others never are;
//! - every line the library logs reaches write_stderr in one call (continued only after a
//!   short write) as `gateway: <printable ASCII>\n`;
//! - afterwards the same handler serves a normal request with healthy hooks byte for byte as a
//!   fresh handler does.

pub(crate) mod check;
pub(crate) mod host;

use crate::ffi::{Config, Failure, Handler, Host, Pair, Req, Status};
use crate::script::{text, Reader};
use crate::wire::show;
use check::{check_bodies, check_cgi_failure, check_log, check_outcome};
use host::{Chunks, Faults, Faulty, File};

const EXC_INFO: u32 = gateway::ffi::GW_START_RESPONSE_EXC_INFO;
const DATE: &[u8] = b"Thu, 01 Jan 1970 00:00:00 GMT";

const STATUSES: &[&[u8]] = &[
    b"200 OK",
    b"200 OK",
    b"201 Created",
    b"404 Not Found",
    b"204 No Content",
    b"304 Not Modified",
    b"100 Continue",
];

const FAILURES: &[Failure] = &[
    Failure::Code(libc::EPIPE),
    Failure::Code(libc::ECONNRESET),
    Failure::Code(libc::ECONNABORTED),
    Failure::Code(libc::EIO),
    Failure::Code(libc::EAGAIN),
    Failure::Code(libc::EINTR),
    Failure::Errno(libc::EPIPE),
    Failure::Errno(libc::EIO),
    Failure::Code(-5),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// http_version 1.1 answering HTTP/1.1: bodies of unknown length are chunked.
    Origin11,
    /// http_version 1.0 answering HTTP/1.1.
    Origin10,
    Cgi,
}

#[derive(Debug)]
pub(crate) struct IterPlan {
    pub(crate) chunks: Vec<Vec<u8>>,
    /// What block_count says (it may lie).
    pub(crate) count: Option<usize>,
    /// `next` fails (gw_request_fail) at this call.
    pub(crate) fail_at: Option<usize>,
    pub(crate) close_fails: bool,
    /// The first `next` calls start_response.
    pub(crate) starts: bool,
    /// The last chunk comes with the end flag (no separate end call).
    pub(crate) end_with_last: bool,
}

#[derive(Debug)]
pub(crate) struct FilePlan {
    pub(crate) data: Vec<u8>,
    /// A write-only descriptor: reading the body fails.
    pub(crate) unreadable: bool,
    pub(crate) close_fd: bool,
    pub(crate) block_size: usize,
}

#[derive(Debug)]
pub(crate) enum Action {
    Start { exc_info: bool },
    Write(Vec<u8>),
    Bytes(Vec<u8>),
    Iter(IterPlan),
    File(FilePlan),
    Errors(Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Return {
    Ok,
    Fail,
    /// The status of the app's last failed call (OK if none failed).
    LastFailure,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) mode: Mode,
    pub(crate) head_request: bool,
    /// add_cgi_vars fails with this status: the app is never called.
    pub(crate) cgi_fails: Option<Status>,
    pub(crate) file_wrapper: bool,
    pub(crate) status: &'static [u8],
    pub(crate) headers: Vec<Pair>,
    pub(crate) actions: Vec<Action>,
    pub(crate) ret: Return,
    pub(crate) faults: Faults,
}

fn chunk(r: &mut Reader) -> Vec<u8> {
    text(r.below(24), 7)
}

fn dead(r: &mut Reader, one_in: u8, calls: usize) -> Option<(usize, Failure)> {
    let at = r.sometimes(one_in, calls)?;
    Some((at, r.pick(FAILURES)))
}

impl Plan {
    pub(crate) fn decode(r: &mut Reader) -> Plan {
        let mode = r.pick(&[Mode::Origin11, Mode::Origin11, Mode::Origin10, Mode::Cgi]);
        let head_request = r.below(4) == 3;
        let cgi_failures = [
            Status::ClientGone,
            Status::AppError,
            Status::InvalidArgument,
        ];
        let cgi_fails = r.sometimes(16, 3).map(|i| cgi_failures[i]);
        let file_wrapper = r.below(8) != 7;
        let status = r.pick(STATUSES);
        let length_delta = r.pick(&[None, None, Some(0), Some(-1), Some(1)]);
        let own_date = r.flag();
        let mut actions = Vec::new();
        if r.below(4) != 3 {
            actions.push(Action::Start { exc_info: false });
        }
        for _ in 0..1 + r.below(5) {
            actions.push(match r.below(8) {
                0 => Action::Start { exc_info: r.flag() },
                1 | 2 => Action::Write(chunk(r)),
                3 => Action::Bytes(chunk(r)),
                4 | 5 => Action::Iter(IterPlan {
                    chunks: (0..r.below(5)).map(|_| chunk(r)).collect(),
                    count: r.pick(&[None, None, Some(1), Some(3)]),
                    fail_at: r.sometimes(4, 5),
                    close_fails: r.below(4) == 3,
                    starts: r.below(4) == 3,
                    end_with_last: r.flag(),
                }),
                6 => Action::File(FilePlan {
                    data: text(r.below(8) * r.below(256), 9),
                    unreadable: r.below(8) == 7,
                    close_fd: r.flag(),
                    block_size: r.pick(&[0, 0, 1, 7, 4096, 16 * 1024 * 1024 + 1]),
                }),
                _ => Action::Errors(r.bytes(12).to_vec()),
            });
        }
        let ret = r.pick(&[
            Return::Ok,
            Return::Ok,
            Return::Ok,
            Return::Fail,
            Return::LastFailure,
        ]);
        let faults = Faults {
            write: r.bytes(24).to_vec(),
            write_dead: dead(r, 3, 12),
            flush_dead: dead(r, 4, 8),
            stderr: r.bytes(16).to_vec(),
            stderr_dead: dead(r, 4, 12),
            flush_stderr_dead: dead(r, 4, 6),
        };
        let mut headers = vec![(b"Content-Type".to_vec(), b"text/plain".to_vec())];
        if own_date {
            headers.push((b"Date".to_vec(), DATE.to_vec()));
        }
        if let Some(delta) = length_delta {
            let length = planned_length(&actions).saturating_add_signed(delta);
            headers.push((b"Content-Length".to_vec(), length.to_string().into_bytes()));
        }
        Plan {
            mode,
            head_request,
            cgi_fails,
            file_wrapper,
            status,
            headers,
            actions,
            ret,
            faults,
        }
    }

    pub(crate) fn config(&self) -> Config {
        Config {
            origin: self.mode != Mode::Cgi,
            http11: self.mode != Mode::Origin10,
            file_wrapper: self.file_wrapper,
        }
    }

    fn version(&self) -> &'static str {
        match self.mode {
            Mode::Origin10 => "1.0",
            _ => "1.1",
        }
    }
}

/// What the app means to send: its writes and the first body it returns.
fn planned_length(actions: &[Action]) -> usize {
    let writes: usize = actions
        .iter()
        .map(|a| match a {
            Action::Write(data) => data.len(),
            _ => 0,
        })
        .sum();
    let body = actions.iter().find_map(|a| match a {
        Action::Bytes(data) => Some(data.len()),
        Action::Iter(it) => Some(it.chunks.iter().map(Vec::len).sum()),
        Action::File(f) => Some(f.data.len()),
        _ => None,
    });
    writes + body.unwrap_or(0)
}

/// The application playing a plan, and what it saw.
pub(crate) struct App<'p> {
    pub(crate) plan: &'p Plan,
    pub(crate) host: &'p Faulty,
    pub(crate) iters: &'p [Chunks<'p>],
    pub(crate) files: &'p [File<'p>],
    pub(crate) called: bool,
    /// A start_response call of the app succeeded.
    pub(crate) started: bool,
    /// The bytes the app produced, in order: its successful writes...
    pub(crate) produced: Vec<u8>,
    /// ...then the body set_body_* accepted.
    pub(crate) body: Vec<u8>,
    /// What each Write's gw_request_write returned, and how much of the wire the host had
    /// when it was called.
    pub(crate) writes: Vec<(Status, usize)>,
    /// Writes to answer GW_STATUS_WOULD_BLOCK without calling gw_request_write (the
    /// `nonblocking` target replays a non-blocking run's refusals in blocking mode).
    pub(crate) refused: Vec<bool>,
}

impl App<'_> {
    pub(crate) fn serve(&mut self, req: Req) -> Status {
        self.called = true;
        let (mut iters, mut files) = (self.iters.iter(), self.files.iter());
        let mut last_failure = Status::Ok;
        for action in &self.plan.actions {
            let result = match action {
                Action::Start { exc_info } => {
                    let flags = if *exc_info { EXC_INFO } else { 0 };
                    let result = req.start_response(self.plan.status, &self.plan.headers, flags);
                    self.started |= result == Status::Ok;
                    result
                }
                Action::Write(data) => {
                    let wire = self.host.out.borrow().len();
                    let result = match self.refused.get(self.writes.len()) {
                        Some(true) => Status::WouldBlock,
                        _ => req.write(data),
                    };
                    self.writes.push((result, wire));
                    if result == Status::Ok {
                        self.produced.extend_from_slice(data);
                    }
                    result
                }
                Action::Bytes(data) => self.body(req.set_body_bytes(data), data),
                Action::Iter(it) => {
                    let iter = iters.next().expect("one Chunks per Iter");
                    let result = req.set_body_iter(iter);
                    iter.accepted.set(result == Status::Ok);
                    self.body(result, &it.chunks.concat())
                }
                Action::File(f) => {
                    let file = files.next().expect("one File per File");
                    let result = req.set_body_file(file.fd, f.block_size, f.close_fd);
                    file.result.set(Some(result));
                    self.body(result, if f.unreadable { &[] } else { &f.data })
                }
                Action::Errors(data) => {
                    self.host.app_writing.set(true);
                    let result = req.errors_write(data);
                    self.host.app_writing.set(false);
                    result
                }
            };
            if result != Status::Ok {
                last_failure = result;
            }
        }
        match self.plan.ret {
            Return::Ok => Status::Ok,
            Return::Fail => req.fail(b"the app failed"),
            Return::LastFailure => last_failure,
        }
    }

    fn body(&mut self, result: Status, content: &[u8]) -> Status {
        if result == Status::Ok {
            self.body = content.to_vec();
        }
        result
    }
}

/// What one run produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) status: Status,
    pub(crate) wire: Vec<u8>,
    /// The library's log lines, and apart from them what the app wrote to wsgi.errors.
    pub(crate) log: Vec<u8>,
    pub(crate) app_log: Vec<u8>,
    pub(crate) keep_alive: bool,
    pub(crate) last_response: (u16, u64),
}

pub(crate) fn outcome<H: Host>(handler: &Handler<H>, host: &Faulty, status: Status) -> Outcome {
    Outcome {
        status,
        wire: host.out.take(),
        log: host.log.take(),
        app_log: host.app_log.take(),
        keep_alive: handler.keep_alive(),
        last_response: handler.last_response(),
    }
}

pub fn run(data: &[u8]) {
    let plan = Plan::decode(&mut Reader::new(data));
    crate::debug(&plan);
    let host = Faulty::new(plan.faults.clone(), plan.head_request, plan.cgi_fails);
    let healthy = Faulty::default();
    let mut handler = Handler::new(&host, plan.config());

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
            Action::File(f) => Some(File::new(f)),
            _ => None,
        })
        .collect();
    let mut app = App {
        plan: &plan,
        host: &host,
        iters: &iters,
        files: &files,
        called: false,
        started: false,
        produced: Vec::new(),
        body: Vec::new(),
        writes: Vec::new(),
        refused: Vec::new(),
    };
    let status = handler.run(|req: Req| app.serve(req));
    let faulty = outcome(&handler, &host, status);
    match plan.cgi_fails {
        Some(failure) => check_cgi_failure(&plan, &host, &faulty, failure, app.called),
        None => {
            assert!(app.called, "the app was not called");
            let started = app.started || iters.iter().any(|it| it.started.get());
            let produced = [app.produced, app.body].concat();
            check_outcome(&plan, &host, &faulty, started, &produced);
        }
    }
    check_bodies(&iters, &files);
    check_log(&faulty.log, &host.log_cuts.borrow());

    // The same handler, healthy hooks, a normal request: as a fresh handler serves it.
    handler.set_host(&healthy);
    let reused = serve_normal(&handler, &healthy);
    let fresh_host = Faulty::default();
    let fresh = serve_normal(&Handler::new(&fresh_host, plan.config()), &fresh_host);
    assert!(
        reused == fresh,
        "after the faulty run the handler serves {:?}\nwhere a fresh one serves {:?}",
        (reused.status, show(&reused.wire), show(&reused.log)),
        (fresh.status, show(&fresh.wire), show(&fresh.log))
    );
}

/// A normal request: its own Date (so that the bytes do not depend on the clock), a write,
/// then two chunks of unknown count.
pub(crate) fn serve_normal<H: Host>(handler: &Handler<H>, host: &Faulty) -> Outcome {
    let plan = IterPlan {
        chunks: vec![b"wor".to_vec(), b"ld\n".to_vec()],
        count: None,
        fail_at: None,
        close_fails: false,
        starts: false,
        end_with_last: false,
    };
    let headers = [(b"Date".to_vec(), DATE.to_vec())];
    let iter = Chunks::new(&plan, b"200 OK", &headers);
    let status = handler.run(|req: Req| {
        assert_eq!(req.start_response(b"200 OK", &headers, 0), Status::Ok);
        assert_eq!(req.write(b"hello "), Status::Ok);
        let result = req.set_body_iter(&iter);
        iter.accepted.set(result == Status::Ok);
        result
    });
    let closes = iter.closes.get();
    assert_eq!(closes, 1, "the normal request's body closed {closes} times");
    outcome(handler, host, status)
}
