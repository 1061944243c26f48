//! `chunked_body`: a chunked request body (`Transfer-Encoding: chunked`, no CONTENT_LENGTH),
//! decoded by the library from a read hook that hands it out in scripted short pieces, with
//! the next pipelined request right behind it. The fuzz bytes either build a valid encoding
//! (chunk sizes in either hex case with leading zeros, extensions, trailers), cut one short,
//! or are the wire bytes themselves. The rules:
//! - a valid body reads back exactly (gw_request_input_read_all), and the connection is kept;
//! - a body cut short fails with GW_STATUS_INPUT_ERROR, and the connection is not kept;
//! - a valid or cut body: the hook is never asked past the body's last byte, so the pipelined
//!   request behind it stays unread;
//! - any wire: the answer is OK or INPUT_ERROR, and a kept connection means OK.

use std::cell::{Cell, RefCell};

use crate::ffi::{Config, Env, Handler, HookResult, Host, Req, Status};
use crate::script::Reader;

/// What follows the body on the connection: the next request, which must stay unread.
const NEXT: &[u8] = b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n";

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Valid,
    Cut,
    Raw,
}

#[derive(Debug)]
struct Plan {
    kind: Kind,
    /// The decoded body a valid encoding carries.
    body: Vec<u8>,
    /// The body as sent (without NEXT).
    wire: Vec<u8>,
    /// Sizes of the hook's pieces, in turn.
    pieces: Vec<usize>,
}

fn hex(n: usize, upper: bool, zeros: usize) -> String {
    let digits = if upper {
        format!("{n:X}")
    } else {
        format!("{n:x}")
    };
    format!("{}{digits}", "0".repeat(zeros))
}

impl Plan {
    fn decode(r: &mut Reader) -> Plan {
        let kind = match r.below(4) {
            0 | 1 => Kind::Valid,
            2 => Kind::Cut,
            _ => Kind::Raw,
        };
        let pieces = (0..1 + r.below(4)).map(|_| 1 + r.below(24)).collect();
        if kind == Kind::Raw {
            let wire = std::iter::from_fn(|| (!r.is_empty()).then(|| r.byte())).collect();
            return Plan {
                kind,
                body: Vec::new(),
                wire,
                pieces,
            };
        }
        let mut body = Vec::new();
        let mut wire = Vec::new();
        for _ in 0..r.below(6) {
            let len = if r.below(8) == 0 {
                8000 + r.below(64) * 64
            } else {
                1 + r.below(40)
            };
            let data: Vec<u8> = (0..len).map(|i| r.byte() ^ i as u8).collect();
            wire.extend(hex(len, r.flag(), r.below(3)).bytes());
            if r.below(4) == 0 {
                wire.extend_from_slice(b";name=\"value\"");
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(&data);
            wire.extend_from_slice(b"\r\n");
            body.extend_from_slice(&data);
        }
        wire.extend(hex(0, false, r.below(2)).bytes());
        wire.extend_from_slice(b"\r\n");
        for i in 0..r.below(3) {
            wire.extend(format!("X-Trailer-{i}: v{i}\r\n").bytes());
        }
        wire.extend_from_slice(b"\r\n");
        if kind == Kind::Cut {
            let keep = r.below(256) * wire.len() / 256;
            wire.truncate(keep);
        }
        Plan {
            kind,
            body,
            wire,
            pieces,
        }
    }
}

struct Client<'p> {
    plan: &'p Plan,
    /// The body and the next request, as the socket holds them.
    stream: Vec<u8>,
    given: Cell<usize>,
    calls: Cell<usize>,
    out: RefCell<Vec<u8>>,
}

impl Host for Client<'_> {
    fn write(&self, data: &[u8]) -> HookResult {
        self.out.borrow_mut().extend_from_slice(data);
        Ok(data.len())
    }

    fn read(&self, buf: &mut [u8]) -> HookResult {
        let pieces = &self.plan.pieces;
        let piece = pieces[self.calls.get() % pieces.len()];
        self.calls.set(self.calls.get() + 1);
        let at = self.given.get();
        let n = buf.len().min(piece).min(self.stream.len() - at);
        buf[..n].copy_from_slice(&self.stream[at..at + n]);
        self.given.set(at + n);
        Ok(n)
    }

    fn add_cgi_vars(&self, env: Env) -> Status {
        for (name, value) in [
            (&b"REQUEST_METHOD"[..], &b"POST"[..]),
            (b"SERVER_PROTOCOL", b"HTTP/1.1"),
            (b"HTTP_TRANSFER_ENCODING", b"chunked"),
        ] {
            let status = env.set(name, value);
            if status != Status::Ok {
                return status;
            }
        }
        Status::Ok
    }
}

pub fn run(data: &[u8]) {
    let plan = Plan::decode(&mut Reader::new(data));
    crate::debug(&plan);
    // A cut body ends where the client closed: nothing follows it.
    let mut stream = plan.wire.clone();
    if plan.kind != Kind::Cut {
        stream.extend_from_slice(NEXT);
    }
    let client = Client {
        plan: &plan,
        stream,
        given: Cell::new(0),
        calls: Cell::new(0),
        out: RefCell::default(),
    };
    let config = Config {
        origin: true,
        http11: true,
        file_wrapper: true,
    };
    let handler = Handler::new(&client, config);
    let mut read = (Status::Ok, Vec::new());
    let date = (b"Date".to_vec(), b"Thu, 01 Jan 1970 00:00:00 GMT".to_vec());
    let status = handler.run(|req: Req| {
        read = req.input_read_all();
        match req.start_response(b"200 OK", std::slice::from_ref(&date), 0) {
            Status::Ok => req.set_body_bytes(b"ok"),
            failed => failed,
        }
    });
    assert_eq!(status, Status::Ok);
    let keep = handler.keep_alive();
    let given = client.given.get();
    // Raw bytes may not end a body where they end: then the next request's bytes are body.
    assert!(
        plan.kind == Kind::Raw || given <= plan.wire.len(),
        "read {given} bytes of a {}-byte body",
        plan.wire.len()
    );
    match plan.kind {
        Kind::Valid => {
            assert_eq!(read.0, Status::Ok, "a valid body");
            assert!(
                read.1 == plan.body,
                "decoded {} bytes of {}",
                read.1.len(),
                plan.body.len()
            );
            assert_eq!(given, plan.wire.len(), "the whole body read");
            assert!(keep, "a valid body read to its end keeps the connection");
        }
        Kind::Cut => {
            assert_eq!(read.0, Status::InputError, "a body cut short");
            assert!(!keep, "a cut body cannot keep the connection");
        }
        Kind::Raw => {
            assert!(
                matches!(read.0, Status::Ok | Status::InputError),
                "{:?}",
                read.0
            );
            assert!(!keep || read.0 == Status::Ok, "kept after a failed read");
        }
    }
}
