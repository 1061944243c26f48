//! `input`: wsgi.input under an arbitrary CONTENT_LENGTH and a scripted read hook (short
//! reads, EINTR, errors, disconnects, end of input early), read by a scripted sequence of
//! gw_request_input_read / readline / read_all / next_line / readlines calls. The rules:
//! - the hook is never asked for a byte past CONTENT_LENGTH;
//! - the app gets a prefix of what the hook supplied, in order, and a read returns less than
//!   it asked for only at the end of the body; lines end at their first newline;
//! - end of input before CONTENT_LENGTH bytes arrived fails the read that meets it with
//!   GW_STATUS_INPUT_ERROR, a hook error with INPUT_ERROR (CLIENT_GONE for a disconnect), and
//!   every later read fails the same way;
//! - a CONTENT_LENGTH that is not a decimal number fails every read with INPUT_ERROR;
//! - `Expect: 100-continue` on HTTP/1.1 gets `100 Continue` before the first read of a body;
//! - gw_handler_last_keep_alive is true when the app read the body to its end without a
//!   failure (on an HTTP/1.1 exchange), and never when the body was cut short or failed.

use std::cell::{Cell, RefCell};

use crate::ffi::{Config, Env, Failure, Handler, HookResult, Host, Req, Status};
use crate::script::{text, Reader};
use crate::wire::{parse_head, show};

/// More EINTRs in a row than this fail the read (GW_MAX_EINTR_RETRIES).
const EINTR_RETRIES: u32 = 64;

const ERRORS: &[Failure] = &[
    Failure::Code(libc::EIO),
    Failure::Code(libc::EPIPE),
    Failure::Code(libc::ECONNRESET),
    Failure::Code(libc::ECONNABORTED),
    Failure::Code(libc::EAGAIN),
    Failure::Errno(libc::ECONNRESET),
    Failure::Errno(libc::EIO),
    Failure::Errno(0),
    Failure::Code(-7),
];

/// What the read hook does on one call.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// As many bytes as asked for and the client still has.
    Full,
    /// At most this many bytes.
    Short(usize),
    Eintr,
    /// 0 bytes: end of input, whatever CONTENT_LENGTH said.
    Eof,
    Fail(Failure),
    /// Claims one byte more than asked for.
    Overreport,
}

#[derive(Debug)]
enum Op {
    Read(usize),
    Readline(usize),
    ReadAll,
    NextLine,
    Readlines(usize),
}

#[derive(Debug)]
struct Plan {
    http11: bool,
    /// The client sent `Expect: 100-continue`.
    expect: bool,
    content_length: Option<Vec<u8>>,
    /// What the client sends (the hook's supply).
    body: Vec<u8>,
    ops: Vec<Op>,
    /// One step per hook call; `Full` once it runs out.
    steps: Vec<Step>,
}

/// A size for a read: mostly small, sometimes past the library's 8 KiB buffer.
fn size(r: &mut Reader) -> usize {
    match r.below(8) {
        0 => 0,
        7 => 8192 + r.below(64) * 256,
        _ => r.below(64),
    }
}

impl Plan {
    fn decode(r: &mut Reader) -> Plan {
        let client = r.byte();
        let (http11, expect) = (client & 1 == 0, client & 2 != 0);
        let len = match r.below(4) {
            0 => r.below(16),
            1 | 2 => r.below(256),
            _ => 8192 + r.below(256) * 64,
        };
        let body = text(len, r.below(40));
        let content_length = match r.below(8) {
            0 => None,
            1 => Some(Vec::new()),
            2 | 3 => Some(len.to_string().into_bytes()),
            4 => Some((len + 1 + r.below(16)).to_string().into_bytes()),
            5 => Some(len.saturating_sub(1 + r.below(16)).to_string().into_bytes()),
            6 => Some(format!("00{len}").into_bytes()),
            _ => Some(r.pick_or_raw(
                &[b"-1", b" 5", b"5 ", b"0x10", b"+5", b"99999999999999999999"],
                8,
            )),
        };
        let ops = (0..1 + r.below(12))
            .map(|_| match r.below(5) {
                0 => Op::Read(size(r)),
                1 => Op::Readline(size(r)),
                2 => Op::ReadAll,
                3 => Op::NextLine,
                _ => Op::Readlines(size(r)),
            })
            .collect();
        let mut steps = Vec::new();
        while !r.is_empty() {
            steps.push(match r.below(10) {
                0..=2 => Step::Full,
                3 => Step::Short(1 + r.below(32)),
                4 => Step::Short(1),
                5 | 6 => Step::Eintr,
                7 => Step::Eof,
                8 => Step::Fail(r.pick(ERRORS)),
                _ => Step::Overreport,
            });
        }
        Plan {
            http11,
            expect,
            content_length,
            body,
            ops,
            steps,
        }
    }
}

/// CONTENT_LENGTH as the header documents it: absent or empty is 0, else plain digits.
fn parse_length(value: Option<&[u8]>) -> Option<u64> {
    match value {
        None | Some(b"") => Some(0),
        Some(v) if v.iter().all(u8::is_ascii_digit) => std::str::from_utf8(v).ok()?.parse().ok(),
        Some(_) => None,
    }
}

/// The client: plays the steps and records what it supplied and how the last call ended.
struct Client<'p> {
    plan: &'p Plan,
    /// CONTENT_LENGTH, when valid.
    length: Option<u64>,
    step: Cell<usize>,
    supplied: Cell<usize>,
    eintrs: Cell<u32>,
    /// The failure the library must report for what the hook did, once it did it.
    failure: Cell<Option<Status>>,
    out: RefCell<Vec<u8>>,
}

impl Client<'_> {
    fn next_step(&self) -> Step {
        let i = self.step.get();
        self.step.set(i + 1);
        self.plan.steps.get(i).copied().unwrap_or(Step::Full)
    }

    fn fail_with(&self, status: Status) {
        if self.failure.get().is_none() {
            self.failure.set(Some(status));
        }
    }
}

impl Host for Client<'_> {
    fn write(&self, data: &[u8]) -> HookResult {
        self.out.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }

    fn read(&self, buf: &mut [u8]) -> HookResult {
        let length = self
            .length
            .expect("read hook called under an invalid CONTENT_LENGTH");
        let supplied = self.supplied.get();
        assert!(!buf.is_empty(), "read hook asked for 0 bytes");
        assert!(
            (supplied + buf.len()) as u64 <= length,
            "read hook asked for {} bytes after {supplied} of CONTENT_LENGTH {length}",
            buf.len()
        );
        let step = self.next_step();
        if !matches!(step, Step::Eintr) {
            self.eintrs.set(0);
        }
        let left = &self.plan.body[supplied.min(self.plan.body.len())..];
        let n = match step {
            Step::Full => buf.len().min(left.len()),
            Step::Short(n) => n.min(buf.len()).min(left.len()),
            Step::Eof => 0,
            Step::Eintr => {
                self.eintrs.set(self.eintrs.get() + 1);
                if self.eintrs.get() > EINTR_RETRIES {
                    self.fail_with(Status::InputError);
                }
                return Err(Failure::Code(libc::EINTR));
            }
            Step::Fail(failure) => {
                let disconnect = failure.is_disconnect();
                self.fail_with(if disconnect {
                    Status::ClientGone
                } else {
                    Status::InputError
                });
                return Err(failure);
            }
            Step::Overreport => {
                self.fail_with(Status::IoError);
                return Ok(buf.len() + 1);
            }
        };
        buf[..n].copy_from_slice(&left[..n]);
        self.supplied.set(supplied + n);
        if n == 0 {
            // The client is gone before CONTENT_LENGTH bytes (the assert above: some are due).
            self.fail_with(Status::InputError);
        }
        Ok(n)
    }

    fn add_cgi_vars(&self, env: Env) -> Status {
        let protocol: &[u8] = if self.plan.http11 {
            b"HTTP/1.1"
        } else {
            b"HTTP/1.0"
        };
        let mut status = env.set(b"SERVER_PROTOCOL", protocol);
        if let (Status::Ok, Some(value)) = (status, &self.plan.content_length) {
            status = env.set(b"CONTENT_LENGTH", value);
        }
        if status == Status::Ok && self.plan.expect {
            status = env.set(b"HTTP_EXPECT", b"100-continue");
        }
        status
    }
}

/// The app's side: what it got so far, and the failure every read must now repeat.
struct App<'c, 'p> {
    client: &'c Client<'p>,
    received: Vec<u8>,
    failed: Option<Status>,
}

impl App<'_, '_> {
    fn at_end(&self) -> bool {
        Some(self.received.len() as u64) == self.client.length
    }

    fn play(&mut self, req: Req, op: &Op) {
        let (status, data, full) = match *op {
            Op::Read(cap) => {
                let (status, data) = req.input_read(cap);
                let full = data.len() == cap;
                (status, data, full)
            }
            Op::Readline(cap) => {
                let (status, data) = req.input_readline(cap);
                let full = data.len() == cap || data.ends_with(b"\n");
                (status, data, full)
            }
            Op::ReadAll => {
                let (status, data) = req.input_read_all();
                (status, data, false)
            }
            Op::NextLine => {
                let (status, data) = req.input_next_line();
                let full = data.ends_with(b"\n");
                (status, data, full)
            }
            Op::Readlines(hint) => {
                let (status, lines) = req.input_readlines(hint);
                for (i, line) in lines.iter().enumerate() {
                    // Every line ends at its first newline; only the last may have none.
                    let newlines = line.iter().filter(|&&b| b == b'\n').count();
                    let whole = newlines == 1 && line.ends_with(b"\n");
                    let last = i + 1 == lines.len() && newlines == 0 && !line.is_empty();
                    assert!(whole || last, "readlines line {i}: {:?}", show(line));
                }
                // Only the body's end leaves a line without its newline, or stops short of hint.
                let data = lines.concat();
                let full = hint > 0 && data.len() >= hint && data.ends_with(b"\n");
                (status, data, full)
            }
        };
        self.check(op, status, &data, full);
    }

    /// `full`: the op got all it asked for, so it need not be at the end of the body.
    fn check(&mut self, op: &Op, status: Status, data: &[u8], full: bool) {
        let length = self.client.length;
        let supplied = self.client.supplied.get();
        let expected = match (length, self.failed, self.client.failure.get()) {
            (None, ..) => Status::InputError,
            (_, Some(earlier), _) => earlier,
            (_, None, Some(now)) => now,
            (_, None, None) => Status::Ok,
        };
        assert!(
            status == expected || expected == Status::IoError && status == Status::InputError,
            "{op:?} returned {status:?}, expected {expected:?}: CONTENT_LENGTH {:?}, the hook \
             supplied {supplied} bytes, the app had {} before",
            self.client.plan.content_length.as_deref().map(show),
            self.received.len(),
        );
        if status != Status::Ok {
            self.failed = Some(status);
            return;
        }
        if matches!(op, Op::Readline(_) | Op::NextLine) {
            let body = &data[..data.len().saturating_sub(1)];
            assert!(
                !body.contains(&b'\n'),
                "{op:?} returned more than a line: {:?}",
                show(data)
            );
        }
        self.received.extend_from_slice(data);
        let got = &self.received;
        assert!(
            got.len() <= supplied && got[..] == self.client.plan.body[..got.len()],
            "the app got bytes the hook did not supply in that order"
        );
        assert!(
            full || self.at_end(),
            "{op:?} returned {} bytes, short of what it asked for, before the end of the body \
             ({} of {length:?} read)",
            data.len(),
            got.len()
        );
    }
}

pub fn run(data: &[u8]) {
    let plan = Plan::decode(&mut Reader::new(data));
    crate::debug(&plan);
    let client = Client {
        plan: &plan,
        length: parse_length(plan.content_length.as_deref()),
        step: Cell::new(0),
        supplied: Cell::new(0),
        eintrs: Cell::new(0),
        failure: Cell::new(None),
        out: RefCell::default(),
    };
    let config = Config {
        origin: true,
        http11: true,
        file_wrapper: true,
    };
    let handler = Handler::new(&client, config);
    let mut app = App {
        client: &client,
        received: Vec::new(),
        failed: None,
    };
    let date = (b"Date".to_vec(), b"Thu, 01 Jan 1970 00:00:00 GMT".to_vec());
    let status = handler.run(|req: Req| {
        for op in &plan.ops {
            app.play(req, op);
        }
        match req.start_response(b"200 OK", std::slice::from_ref(&date), 0) {
            Status::Ok => req.set_body_bytes(b"ok"),
            failed => failed,
        }
    });
    assert_eq!(status, Status::Ok);
    // The verdict: a body read to its end (by the app, or drained by the library after it)
    // without a failure, on an HTTP/1.1 exchange; never after a truncated body.
    let keep_alive = handler.keep_alive();
    let whole =
        client.failure.get().is_none() && client.length == Some(client.supplied.get() as u64);
    let read_by_app = app.at_end() && app.failed.is_none() && client.failure.get().is_none();
    let why = format!(
        "keep-alive {keep_alive}: the app read {} and the hook supplied {} of {:?} bytes, failure {:?}",
        app.received.len(),
        client.supplied.get(),
        client.length,
        client.failure.get()
    );
    assert!(!keep_alive || plan.http11 && whole, "{why}");
    assert!(keep_alive || !(plan.http11 && read_by_app), "{why}");
    // The first read of a body still to come tells a client that waits for it to go on.
    let wire = client.out.borrow();
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let body_due = client.length.is_some_and(|n| n > 0);
    let response = match plan.http11 && plan.expect && body_due {
        true => wire
            .strip_prefix(interim)
            .expect("no 100 Continue before the first read"),
        false => &wire[..],
    };
    let (head, _) = parse_head(response)
        .ok()
        .flatten()
        .expect("one response head");
    assert!(head.code() == 200, "{head:?} after {:?}", show(&wire));
    assert!(
        !(head.closes() && keep_alive),
        "Connection: close with a keep-alive verdict"
    );
}
