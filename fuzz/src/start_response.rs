//! `start_response`: arbitrary status and header bytes, the exc_info flag, repeated calls and
//! writes in between, each call's status checked against a model of the documented rules;
//! then the response on the wire must be well-formed and carry exactly what was accepted.

use std::cell::RefCell;

use crate::ffi::{Config, Env, Handler, HookResult, Host, Pair, Req, Status};
use crate::script::Reader;
use crate::wire::{check_body, check_error_page, parse_head, show};

const EXC_INFO: u32 = gateway::ffi::GW_START_RESPONSE_EXC_INFO;

/// Statuses that pass and statuses that break each rule; raw bytes beyond.
const STATUSES: &[&[u8]] = &[
    b"200 OK",
    b"404 Not Found",
    b"204 No Content",
    b"304 Not Modified",
    b"100 Continue",
    b"599 \xe9",
    b"200 ",
    b"200",
    b"2x0 OK",
    b"2000 OK",
    b"600 X",
    b"099 X",
    b"200 OK\r\nX: y",
    b"200\tOK",
    b"200 \x7f",
];

const NAMES: &[&[u8]] = &[
    b"Content-Type",
    b"Content-Length",
    b"content-length",
    b"Date",
    b"X-A",
    b"Connection",
    b"Transfer-Encoding",
    b"Keep-Alive",
    b"TE",
    b"trailers",
    b"Upgrade",
    b"Proxy-Authenticate",
    b"proxy-authorization",
    b"Trailer",
    b"Proxy-Connection",
    b"X:Y",
    b"",
    b"X Y",
    b"X\r\nY",
    b"\xe9",
];

const VALUES: &[&[u8]] = &[
    b"text/plain",
    b"0",
    b"2",
    b"5",
    b"05",
    b" 5",
    b"-1",
    b"99999999999999999999",
    b"18446744073709551615",
    b"a\tb",
    b"a\r\nb",
    b"a\nb",
    b"\x7f",
    b"\0",
    b"\xe9",
    b"Thu, 01 Jan 1970 00:00:00 GMT",
    b"",
];

#[derive(Debug)]
enum Op {
    Start {
        flags: u32,
        status: Vec<u8>,
        headers: Vec<Pair>,
    },
    Write(Vec<u8>),
}

/// How the application ends.
#[derive(Debug)]
enum End {
    Return,
    Bytes(Vec<u8>),
    Fail,
}

#[derive(Debug)]
struct Plan {
    config: Config,
    ops: Vec<Op>,
    end: End,
}

impl Plan {
    fn decode(r: &mut Reader) -> Plan {
        let mode = r.byte();
        let config = Config {
            origin: mode & 1 == 0,
            http11: mode & 2 != 0,
            file_wrapper: true,
        };
        let ops = (0..1 + r.below(4))
            .map(|_| match r.below(4) {
                3 => Op::Write(r.bytes(8).to_vec()),
                _ => Op::Start {
                    flags: r.pick(&[0, 0, 0, EXC_INFO, EXC_INFO, 2, 3]),
                    status: r.pick_or_raw(STATUSES, 12),
                    headers: (0..r.below(5))
                        .map(|_| (r.pick_or_raw(NAMES, 12), r.pick_or_raw(VALUES, 12)))
                        .collect(),
                },
            })
            .collect();
        let end = match r.below(3) {
            0 => End::Return,
            1 => End::Bytes(r.bytes(8).to_vec()),
            _ => End::Fail,
        };
        Plan { config, ops, end }
    }
}

// ---- the model -------------------------------------------------------------------------------

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

fn status_ok(s: &[u8]) -> bool {
    s.len() >= 4
        && !s.iter().any(|&b| is_control(b))
        && s[..3].iter().all(u8::is_ascii_digit)
        && s[3] == b' '
        && (b'1'..=b'5').contains(&s[0])
}

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
];

/// The first header rule `(name, value)` breaks: a name that is not a token or a value with
/// a control byte (HTAB aside), then a hop-by-hop name.
fn header_error(name: &[u8], value: &[u8]) -> Option<Status> {
    let bad_name = name.is_empty() || !name.iter().all(|&b| is_tchar(b));
    let bad_value = value.iter().any(|&b| is_control(b) && b != b'\t');
    let hop_by_hop = HOP_BY_HOP
        .iter()
        .any(|h| h.as_bytes().eq_ignore_ascii_case(name));
    match (bad_name || bad_value, hop_by_hop) {
        (true, _) => Some(Status::InvalidHeader),
        (false, true) => Some(Status::HopByHopHeader),
        (false, false) => None,
    }
}

/// Content-Length values must be plain decimal numbers that fit and agree.
fn declared_length(headers: &[Pair]) -> Result<Option<u64>, Status> {
    let mut declared = None;
    for (_, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"content-length"))
    {
        let digits = !value.is_empty() && value.iter().all(u8::is_ascii_digit);
        let n = std::str::from_utf8(value)
            .ok()
            .filter(|_| digits)
            .and_then(|v| v.parse().ok());
        match (n, declared) {
            (None, _) => return Err(Status::InvalidHeader),
            (Some(n), Some(d)) if n != d => return Err(Status::InvalidHeader),
            (n, _) => declared = n,
        }
    }
    Ok(declared)
}

#[derive(Default)]
struct Model {
    called: bool,
    /// The status and headers in force, if any.
    current: Option<(Vec<u8>, Vec<Pair>)>,
    /// What went out, once the headers did.
    sent: Option<(Vec<u8>, Vec<Pair>)>,
}

impl Model {
    /// What start_response must return, and its effect: a good call replaces the response
    /// (until the head went out), a refused one changes nothing.
    fn start(&mut self, flags: u32, status: &[u8], headers: &[Pair]) -> Status {
        if flags & !EXC_INFO != 0 {
            // An argument error: refused before anything is looked at.
            return Status::InvalidArgument;
        }
        let result = self.check(flags & EXC_INFO != 0, status, headers);
        if result == Status::Ok {
            self.current = Some((status.to_vec(), headers.to_vec()));
        }
        result
    }

    fn check(&mut self, exc_info: bool, status: &[u8], headers: &[Pair]) -> Status {
        if exc_info && self.sent.is_some() {
            return Status::HeadersAlreadySent;
        }
        if !exc_info && self.called {
            return Status::HeadersAlreadySet;
        }
        self.called = true;
        if !status_ok(status) {
            return Status::InvalidStatusLine;
        }
        if let Some(error) = headers.iter().find_map(|(n, v)| header_error(n, v)) {
            return error;
        }
        declared_length(headers).err().unwrap_or(Status::Ok)
    }
}

// ---- the run -----------------------------------------------------------------------------------

struct Recorder {
    http11: bool,
    out: RefCell<Vec<u8>>,
}

impl Host for Recorder {
    fn write(&self, data: &[u8]) -> HookResult {
        self.out.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }

    fn add_cgi_vars(&self, env: Env) -> Status {
        let protocol: &[u8] = if self.http11 {
            b"HTTP/1.1"
        } else {
            b"HTTP/1.0"
        };
        match env.set(b"REQUEST_METHOD", b"GET") {
            Status::Ok => env.set(b"SERVER_PROTOCOL", protocol),
            failed => failed,
        }
    }
}

pub fn run(data: &[u8]) {
    let plan = Plan::decode(&mut Reader::new(data));
    crate::debug(&plan);
    let host = Recorder {
        http11: plan.config.http11,
        out: RefCell::default(),
    };
    let handler = Handler::new(&host, plan.config);
    let mut model = Model::default();
    let mut body = Vec::new();
    let status = handler.run(|req: Req| {
        for op in &plan.ops {
            match op {
                Op::Start {
                    flags,
                    status,
                    headers,
                } => {
                    let expected = model.start(*flags, status, headers);
                    let got = req.start_response(status, headers, *flags);
                    assert_eq!(got, expected, "start_response({:?}, {flags})", show(status));
                }
                Op::Write(data) => {
                    let expected = match &model.current {
                        Some(_) => Status::Ok,
                        None => Status::InvalidState,
                    };
                    assert_eq!(
                        req.write(data),
                        expected,
                        "write before/after start_response"
                    );
                    if expected == Status::Ok {
                        model.sent = model.sent.take().or(model.current.clone());
                        body.extend_from_slice(data);
                    }
                }
            }
        }
        match &plan.end {
            End::Return => Status::Ok,
            End::Bytes(data) => {
                assert_eq!(req.set_body_bytes(data), Status::Ok);
                body.extend_from_slice(data);
                Status::Ok
            }
            End::Fail => req.fail(b"the app failed"),
        }
    });

    let version = if plan.config.http11 { "1.1" } else { "1.0" };
    let wire = host.out.borrow();
    let failed = matches!(plan.end, End::Fail);
    let Some((sent_status, sent_headers)) = model.sent.or(model.current.filter(|_| !failed)) else {
        // Nothing valid was ever sent: the error page, in full.
        assert_eq!(status, Status::AppError);
        check_error_page(&wire, plan.config.origin, version, false);
        return;
    };
    let (head, rest) = parse_head(&wire)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no complete head: {:?}", show(&wire)));
    head.check(plan.config.origin, version, &sent_status, &sent_headers);
    let code = head.code();
    let no_body = code < 200 || code == 204 || code == 304;
    let declared = declared_length(&sent_headers).ok().flatten();
    let short = declared.is_some_and(|n| n > body.len() as u64) && !no_body;
    let expected = if failed || short {
        Status::ResponseIncomplete
    } else {
        Status::Ok
    };
    assert_eq!(status, expected, "run of {plan:?}");
    if status == Status::Ok {
        check_body(&head, rest, &body, no_body);
    }
}
