//! The `request_head` target: gw_environ_set_from_request_head on arbitrary bytes. The first
//! byte picks the choices (TLS, a mount prefix, the three policy options); the rest is the
//! head. Rules checked:
//! - the answer is OK, INCOMPLETE or BAD_REQUEST, and the same for the same bytes;
//! - INCOMPLETE and BAD_REQUEST set nothing; BAD_REQUEST carries 400, 404, 414, 431, 501 or
//!   505, and gw_error_response frames that status with `Connection: close`;
//! - OK consumed a prefix ending in the head's last LF, and that prefix alone gives the same
//!   answer and environ, while one byte less is INCOMPLETE (pipelining is safe);
//! - the environ: REQUEST_METHOD and a known SERVER_PROTOCOL; CONTENT_LENGTH plain digits and
//!   never with a chunked body; no HTTP_PROXY, HTTP_CONTENT_LENGTH or HTTP_CONTENT_TYPE;
//!   HTTP_* names from letters, digits and `_` only (plus `%XX` when unusual names are
//!   kept); PATH_INFO without `.` or `..` segments, and without NUL unless allowed.

use crate::ffi::{error_response, HeadAnswer, HeadChoices, OwnedEnv, Pair, Status};
use crate::script::Reader;

pub fn run(data: &[u8]) {
    let mut reader = Reader::new(data);
    let flags = reader.byte();
    let choices = HeadChoices {
        tls: flags & 1 != 0,
        mounted: flags & 2 != 0,
        keep_unusual_names: flags & 4 != 0,
        allow_nul_in_path: flags & 8 != 0,
        allow_http09: flags & 16 != 0,
    };
    let head = data.get(1..).unwrap_or(&[]);
    crate::debug(&(choices, String::from_utf8_lossy(head)));
    let (answer, pairs) = parse(head, choices);
    assert_eq!(
        parse(head, choices),
        (answer, pairs.clone()),
        "not deterministic"
    );
    match answer.status {
        Status::Incomplete => assert!(pairs.is_empty(), "an incomplete head set {pairs:?}"),
        Status::BadRequest => check_refusal(&answer, &pairs),
        Status::Ok => check_accepted(head, choices, &answer, &pairs),
        other => panic!("unexpected answer {other:?} ({answer:?})"),
    }
}

fn parse(head: &[u8], choices: HeadChoices) -> (HeadAnswer, Vec<Pair>) {
    let env = OwnedEnv::new();
    let answer = env.env().set_from_request_head(head, choices);
    (answer, env.env().pairs())
}

fn check_refusal(answer: &HeadAnswer, pairs: &[Pair]) {
    assert!(pairs.is_empty(), "a refused head set {pairs:?}");
    let code = answer.http_status;
    assert!(
        [400, 404, 414, 431, 501, 505].contains(&code),
        "refused with HTTP status {code}"
    );
    let (status, bytes) = error_response(code);
    assert_eq!(status, Status::Ok, "gw_error_response({code})");
    let text = String::from_utf8(bytes).expect("an error response is ASCII");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with(&format!("HTTP/1.1 {code} ")), "{head}");
    assert!(head.contains("\r\nConnection: close"), "{head}");
    let length = format!("\r\nContent-Length: {}", body.len());
    assert!(head.contains(&length), "{head} / {} body bytes", body.len());
}

fn check_accepted(head: &[u8], choices: HeadChoices, answer: &HeadAnswer, pairs: &[Pair]) {
    let n = answer.consumed;
    assert!(n >= 1 && n <= head.len(), "consumed {n} of {}", head.len());
    assert_eq!(head[n - 1], b'\n', "the head does not end at a line end");
    assert_eq!(answer.http_status, 0);
    // Pipelining: the head alone answers the same; one byte less is not a request yet.
    assert_eq!(parse(&head[..n], choices), (*answer, pairs.to_vec()));
    assert_eq!(parse(&head[..n - 1], choices).0.status, Status::Incomplete);
    let get = |name: &[u8]| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert!(get(b"REQUEST_METHOD").is_some_and(|m| !m.is_empty()));
    let protocol = get(b"SERVER_PROTOCOL").expect("SERVER_PROTOCOL");
    assert!(
        protocol == b"HTTP/1.1"
            || protocol == b"HTTP/1.0"
            || (protocol == b"HTTP/0.9" && choices.allow_http09),
        "SERVER_PROTOCOL {protocol:?}"
    );
    if let Some(length) = get(b"CONTENT_LENGTH") {
        assert!(
            !length.is_empty() && length.iter().all(u8::is_ascii_digit),
            "{length:?}"
        );
        assert!(!answer.chunked, "CONTENT_LENGTH with a chunked body");
    }
    for (name, _) in pairs {
        for refused in [
            &b"HTTP_PROXY"[..],
            b"HTTP_CONTENT_LENGTH",
            b"HTTP_CONTENT_TYPE",
        ] {
            assert_ne!(&name[..], refused);
        }
        if let Some(rest) = name.strip_prefix(b"HTTP_") {
            let plain = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_';
            let escaped =
                |b: &u8| choices.keep_unusual_names && (*b == b'%' || b.is_ascii_hexdigit());
            assert!(
                !rest.is_empty() && rest.iter().all(|b| plain(b) || escaped(b)),
                "field name mapped to {:?}",
                String::from_utf8_lossy(name)
            );
        }
    }
    let path = get(b"PATH_INFO").unwrap_or_default();
    for segment in path.split(|&b| b == b'/') {
        assert!(segment != b"." && segment != b"..", "PATH_INFO {path:?}");
    }
    assert!(
        choices.allow_nul_in_path || !path.contains(&0),
        "NUL in PATH_INFO"
    );
}
