//! A request head (request line and header fields) turned into CGI variables, as
//! wsgiref.simple_server's `get_environ` does, with its weaknesses fixed.
//!
//! httparse does the syntax of the request line and of each field line; this module does
//! what it does not check: line endings (CRLF only), obs-fold, limits, HTTP/0.9, the
//! request target's form and path rules, Host, the Content-Length and Transfer-Encoding
//! framing rules (the smuggling cases), and the mapping of field names to environ names.
//! A refused head changes nothing in the environ.

use std::borrow::Cow;

use crate::environ::Environ;
use crate::status::Error;

/// Default longest request line (method, target, version; without CRLF), as nginx's 8 KiB
/// header buffer. Longer is 414.
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8192;
/// Default most header fields, as gunicorn's limit_request_fields. More is 431.
pub const DEFAULT_MAX_FIELDS: usize = 100;
/// Default longest field line (name, colon, value; without CRLF). Longer is 431.
pub const DEFAULT_MAX_FIELD_SIZE: usize = 8192;
/// Default longest head (every line with its CRLF). Longer is 431.
pub const DEFAULT_MAX_HEAD: usize = 65536;
/// The most fields a head may ever hold: httparse fills a table of this many on the stack.
pub const MAX_FIELDS_LIMIT: usize = 256;

/// What the host knows of the connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct Connection<'a> {
    /// REMOTE_ADDR (set when not empty).
    pub remote_addr: &'a [u8],
    /// REMOTE_PORT (set when not 0).
    pub remote_port: u16,
    /// SERVER_NAME: the server's own name (required).
    pub server_name: &'a [u8],
    /// SERVER_PORT (required).
    pub server_port: u16,
    /// HTTPS=on.
    pub tls: bool,
    /// The mount prefix: SCRIPT_NAME. Empty, or `/` and more without a trailing `/`.
    pub script_name: &'a [u8],
}

/// Limits and policies; a zero limit means its default, so an all-zero value is the default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub max_request_line: usize,
    pub max_fields: usize,
    pub max_field_size: usize,
    pub max_head: usize,
    /// Keep fields whose names hold bytes other than letters, digits and `-`, under names
    /// that no other field can produce (see `env_name`); dropped otherwise.
    pub keep_unusual_names: bool,
    /// Let a decoded `%00` into PATH_INFO.
    pub allow_nul_in_path: bool,
    /// Accept an HTTP/0.9 request line (`GET /path`).
    pub allow_http09: bool,
}

/// Options with their defaults filled in, checked.
#[derive(Clone, Copy, Debug)]
struct Limits {
    request_line: usize,
    fields: usize,
    field_size: usize,
    head: usize,
}

impl Options {
    fn limits(&self) -> Result<Limits, Error> {
        let or = |v: usize, d: usize| if v == 0 { d } else { v };
        if self.max_fields > MAX_FIELDS_LIMIT {
            return Err(Error::new(
                crate::status::Status::InvalidArgument,
                "max_fields is larger than GW_REQUEST_HEAD_MAX_FIELDS_LIMIT (256)",
            ));
        }
        Ok(Limits {
            request_line: or(self.max_request_line, DEFAULT_MAX_REQUEST_LINE),
            fields: or(self.max_fields, DEFAULT_MAX_FIELDS),
            field_size: or(self.max_field_size, DEFAULT_MAX_FIELD_SIZE),
            head: or(self.max_head, DEFAULT_MAX_HEAD),
        })
    }
}

/// A head the host should answer with `status` (then close the connection).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub message: Cow<'static, str>,
}

fn reject(status: u16, message: impl Into<Cow<'static, str>>) -> Rejection {
    Rejection {
        status,
        message: message.into(),
    }
}

/// How a head ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The head is complete and the environ filled: it used `consumed` bytes; `chunked` says
    /// the body is chunked (CONTENT_LENGTH is then absent).
    Head { consumed: usize, chunked: bool },
    /// More bytes are needed; nothing was set.
    Incomplete,
}

/// Why nothing was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A bad request: answer with its status.
    Rejected(Rejection),
    /// The caller's mistake (bad connection facts or options) or an environ limit.
    Error(Error),
}

impl From<Rejection> for Failure {
    fn from(r: Rejection) -> Failure {
        Failure::Rejected(r)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Error(e)
    }
}

/// Buffers reused from one request to the next, so a warmed-up caller does not allocate.
#[derive(Debug, Default)]
pub struct Scratch {
    decoded: Vec<u8>,
    path: Vec<u8>,
    /// The HTTP_* names of the fields, one after another.
    names: Vec<u8>,
    /// The values of fields sent more than once, joined, one after another.
    joined: Vec<u8>,
    /// The variable of each field name kept, in order.
    vars: Vec<FieldVar>,
    /// The Content-Length and Transfer-Encoding fields (indices), in order.
    framing_fields: Vec<usize>,
    /// Each field repeating an earlier name: (its variable in `vars`, or `CONTENT_TYPE_VAR`;
    /// the field's index), in order.
    repeats: Vec<(usize, usize)>,
}

/// The variable of `Scratch::repeats` that stands for CONTENT_TYPE (not in `vars`).
const CONTENT_TYPE_VAR: usize = usize::MAX;

/// The variable a field name becomes: its name in `Scratch::names`, its value.
#[derive(Clone, Copy, Debug)]
struct FieldVar {
    name: (usize, usize),
    value: FieldValue,
}

/// A variable's value: the value of its one field (by index), or the values of its fields
/// joined in `Scratch::joined`.
#[derive(Clone, Copy, Debug)]
enum FieldValue {
    Field(usize),
    Joined(usize, usize),
    /// Field `first` and the later ones of its name (`Scratch::repeats`): joined once every
    /// field is seen.
    Repeated(usize),
}

/// What the line scan found.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    Incomplete,
    /// A head of `consumed` bytes with `fields` field lines.
    Head {
        consumed: usize,
    },
    /// An HTTP/0.9 request line (no version, no fields) of `consumed` bytes.
    Http09 {
        start: usize,
        consumed: usize,
    },
}

/// Finds the end of the head and enforces what httparse leaves alone: every line ends in
/// CRLF (a bare LF or CR is 400: a front end that splits lines differently would see other
/// requests), no obs-fold (400, RFC 9112 §5.2), and the limits, also while incomplete, so
/// an endless head is refused early.
fn scan(buf: &[u8], limits: &Limits) -> Result<Scan, Rejection> {
    // RFC 9112 §2.2: empty lines before the request line are ignored.
    let mut pos = 0;
    while buf[pos..].starts_with(b"\r\n") {
        pos += 2;
    }
    let mut first = true;
    let mut fields = 0;
    loop {
        if pos > limits.head {
            return Err(reject(431, "request head is larger than its limit"));
        }
        let start = pos;
        let line = match crlf_line(&buf[start..]) {
            Some(len) => Some(&buf[start..start + len]),
            None => odd_line(buf, start, first, limits)?,
        };
        let Some(line) = line else {
            return Ok(Scan::Incomplete);
        };
        pos = start + line.len() + 2;
        if first {
            if line.len() > limits.request_line {
                return Err(reject(414, "request line is longer than its limit"));
            }
            first = false;
            // One space (HTTP/0.9) when the first is also the last: the method and the
            // version are short, so neither search goes far.
            let first_space = line.iter().position(|&b| b == b' ');
            if first_space.is_some() && first_space == line.iter().rposition(|&b| b == b' ') {
                return Ok(Scan::Http09 {
                    start,
                    consumed: pos,
                });
            }
            continue;
        }
        if line.is_empty() {
            if pos > limits.head {
                return Err(reject(431, "request head is larger than its limit"));
            }
            return Ok(Scan::Head { consumed: pos });
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(reject(
                400,
                "obsolete line folding (a field line starting with whitespace)",
            ));
        }
        if line.len() > limits.field_size {
            return Err(reject(431, "a header field is longer than its limit"));
        }
        fields += 1;
        if fields > limits.fields {
            return Err(reject(431, "too many header fields"));
        }
    }
}

/// The length of the line at the start of `rest` when it ends in CRLF and holds no other CR
/// or LF: the first CR or LF is the CR of a CRLF. Else None (`odd_line` tells why). Eight
/// bytes are tested at a time: lines are short, and most are plain.
#[inline(always)]
fn crlf_line(rest: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // The lanes of `w` that are zero, at their high bit; a lane above a zero one may show
    // too (a borrow), but never one below it, so the lowest is exact.
    let zero_lanes = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let is_crlf = |at: usize| rest.get(at..at + 2) == Some(b"\r\n");
    let mut chunks = rest.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let breaks =
            zero_lanes(w ^ (ONES * u64::from(b'\r'))) | zero_lanes(w ^ (ONES * u64::from(b'\n')));
        if breaks != 0 {
            let at = offset + (breaks.trailing_zeros() / 8) as usize;
            return is_crlf(at).then_some(at);
        }
        offset += 8;
    }
    let at = offset
        + chunks
            .remainder()
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')?;
    is_crlf(at).then_some(at)
}

/// The line at `start` when `crlf_line` did not take it: None when it has not ended yet
/// (within its limits), else it without its CRLF, or why it is refused.
#[cold]
fn odd_line<'b>(
    buf: &'b [u8],
    start: usize,
    first: bool,
    limits: &Limits,
) -> Result<Option<&'b [u8]>, Rejection> {
    let Some(lf) = buf[start..].iter().position(|&b| b == b'\n') else {
        let partial = buf.len() - start;
        // The partial line may still get its CR: allow one byte for it.
        if first && partial > limits.request_line + 1 {
            return Err(reject(414, "request line is longer than its limit"));
        }
        if !first && partial > limits.field_size + 1 {
            return Err(reject(431, "a header field is longer than its limit"));
        }
        if buf.len() > limits.head {
            return Err(reject(431, "request head is larger than its limit"));
        }
        return Ok(None);
    };
    let end = start + lf;
    if lf == 0 || buf[end - 1] != b'\r' {
        return Err(reject(400, "a line ends in a bare LF, not CRLF"));
    }
    let line = &buf[start..end - 1];
    if line.contains(&b'\r') {
        return Err(reject(400, "a bare CR inside a line"));
    }
    Ok(Some(line))
}

/// The request target's form (RFC 9112 §3.2).
#[derive(Debug, PartialEq, Eq)]
enum Form<'a> {
    /// `/path?query`
    Origin { path: &'a [u8], query: &'a [u8] },
    /// `http://authority/path?query`: the host comes from the target.
    Absolute {
        authority: &'a [u8],
        path: &'a [u8],
        query: &'a [u8],
    },
    /// `*` (OPTIONS only)
    Asterisk,
}

fn split_query(target: &[u8]) -> (&[u8], &[u8]) {
    match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, b""),
    }
}

/// Classifies the target. httparse lets UTF-8 and `#` through: a target is visible ASCII
/// (RFC 3986: anything else is percent-encoded) without a fragment.
fn target_form<'a>(method: &[u8], target: &'a [u8]) -> Result<Form<'a>, Rejection> {
    if method == b"CONNECT" {
        return Err(reject(501, "CONNECT is not served by a gateway"));
    }
    let (plain, query_at) = target_marks(target);
    if !plain {
        if !target.iter().all(|b| (0x21..0x7f).contains(b)) {
            return Err(reject(
                400,
                "request target holds a byte that is not visible ASCII",
            ));
        }
        return Err(reject(400, "request target holds a fragment ('#')"));
    }
    if target == b"*" {
        return if method == b"OPTIONS" {
            Ok(Form::Asterisk)
        } else {
            Err(reject(400, "the '*' target is for OPTIONS only"))
        };
    }
    if target.first() == Some(&b'/') {
        let (path, query) = match query_at {
            Some(q) => (&target[..q], &target[q + 1..]),
            None => (target, &b""[..]),
        };
        return Ok(Form::Origin { path, query });
    }
    let rest = strip_prefix_ignore_case(target, b"http://")
        .or_else(|| strip_prefix_ignore_case(target, b"https://"))
        .ok_or_else(|| {
            reject(
                400,
                "request target is not origin-form, an http(s) absolute URI or '*'",
            )
        })?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let authority = &rest[..end];
    if !valid_host(authority) {
        return Err(reject(400, "absolute-form target has an invalid authority"));
    }
    let (path, query) = split_query(&rest[end..]);
    Ok(Form::Absolute {
        authority,
        path: if path.is_empty() { b"/" } else { path },
        query,
    })
}

/// Whether `target` is plain (visible ASCII, no '#'), and where its first '?' is, eight
/// bytes at a time.
fn target_marks(target: &[u8]) -> (bool, Option<usize>) {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut odd = 0;
    let mut query = None;
    let mut chunks = target.chunks_exact(8);
    for (k, chunk) in (&mut chunks).enumerate() {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // Per lane, on its low seven bits (a lane with the high bit is odd anyway): adding
        // 0x80 - c sets the high bit exactly when the lane is at least c, with no carry out.
        let low = w & !HIGHS;
        let below_visible = !(low + ONES * (0x80 - 0x21)) & HIGHS;
        let past_visible = (low + ONES) & HIGHS; // 0x80 - 0x7f is 1
        odd |= (w & HIGHS) | below_visible | past_visible | lanes_equal(w, b'#');
        let marks = lanes_equal(w, b'?');
        if query.is_none() && marks != 0 {
            query = Some(8 * k + (marks.trailing_zeros() / 8) as usize);
        }
    }
    let rest_at = target.len() - chunks.remainder().len();
    for (i, &b) in chunks.remainder().iter().enumerate() {
        odd |= u64::from(!(0x21..0x7f).contains(&b) || b == b'#');
        if query.is_none() && b == b'?' {
            query = Some(rest_at + i);
        }
    }
    (odd == 0, query)
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// RFC 3986 `host [ ":" port ]` without userinfo: an IP literal in brackets, or a reg-name
/// (which covers IPv4) that is not empty; a port of at most 5 digits up to 65535.
pub fn valid_host(v: &[u8]) -> bool {
    let unreserved_or_sub = |b: u8| UNRESERVED_OR_SUB_DELIM[usize::from(b)];
    // Most hosts are a name of plain bytes, then perhaps a port: one pass to the first byte
    // that is not plain decides. Anything else ('%', an IP literal) goes the general way.
    let plain_end = v
        .iter()
        .position(|&b| !unreserved_or_sub(b))
        .unwrap_or(v.len());
    let (host_ok, rest) = if plain_end == v.len() || v[plain_end] == b':' {
        (plain_end > 0, &v[plain_end..])
    } else if v.first() == Some(&b'[') {
        match v.iter().position(|&b| b == b']') {
            Some(close) => (
                close > 1
                    && v[1..close]
                        .iter()
                        .all(|&b| unreserved_or_sub(b) || b == b':'),
                &v[close + 1..],
            ),
            None => return false,
        }
    } else {
        let colon = v.iter().position(|&b| b == b':').unwrap_or(v.len());
        let host = &v[..colon];
        (
            !host.is_empty() && reg_name_ok(host, unreserved_or_sub),
            &v[colon..],
        )
    };
    let port_ok = match rest {
        [] => true,
        [b':', digits @ ..] => {
            digits.len() <= 5
                && digits.iter().all(u8::is_ascii_digit)
                && parse_decimal(digits).is_none_or(|p| p <= 65535)
        }
        _ => false,
    };
    host_ok && port_ok
}

/// RFC 3986's unreserved and sub-delims bytes: letters, digits and `-._~!$&'()*+,;=`.
static UNRESERVED_OR_SUB_DELIM: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&'()*+,;=";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

fn reg_name_ok(host: &[u8], plain: impl Fn(u8) -> bool) -> bool {
    let mut i = 0;
    while i < host.len() {
        if host[i] == b'%' {
            if !is_hex_pair(&host[i + 1..]) {
                return false;
            }
            i += 3;
        } else if plain(host[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

fn is_hex_pair(s: &[u8]) -> bool {
    s.len() >= 2 && s[0].is_ascii_hexdigit() && s[1].is_ascii_hexdigit()
}

fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// A non-empty run of ASCII digits as a number (leading zeros allowed); None when it does
/// not fit in 64 bits or is not all digits.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// How the body is framed, from Content-Length and Transfer-Encoding.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// The framing rules that keep two parsers of one byte stream from disagreeing about where
/// a request ends (RFC 9112 §6): refused, never guessed.
fn framing<'h>(
    fields: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    http11: bool,
) -> Result<Framing, Rejection> {
    let mut length: Option<u64> = None;
    let mut te_seen = false;
    let mut codings = 0usize;
    let mut chunked_count = 0usize;
    let mut last_is_chunked = false;
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(b"content-length") {
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
                return Err(reject(
                    400,
                    "Content-Length is not a plain decimal number (1*DIGIT)",
                ));
            }
            let n = parse_decimal(value)
                .ok_or_else(|| reject(400, "Content-Length does not fit in 64 bits"))?;
            if length.is_some_and(|l| l != n) {
                return Err(reject(400, "Content-Length fields disagree"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te_seen = true;
            for coding in value.split(|&b| b == b',') {
                let coding = trim_ows(coding);
                if coding.is_empty() {
                    continue; // RFC 9110 §5.6.1: empty list elements are ignored
                }
                codings += 1;
                last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
                chunked_count += usize::from(last_is_chunked);
            }
        }
    }
    if !te_seen {
        return Ok(length.map_or(Framing::None, Framing::Length));
    }
    if !http11 {
        return Err(reject(
            400,
            "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: faulty framing)",
        ));
    }
    if length.is_some() {
        return Err(reject(
            400,
            "both Transfer-Encoding and Content-Length: refused, not guessed",
        ));
    }
    if codings == 0 || !last_is_chunked {
        return Err(reject(
            400,
            "Transfer-Encoding whose final coding is not chunked (RFC 9112 §6.3)",
        ));
    }
    if chunked_count > 1 {
        return Err(reject(400, "chunked applied more than once"));
    }
    if codings > 1 {
        return Err(reject(
            501,
            "a transfer coding other than chunked is not implemented",
        ));
    }
    Ok(Framing::Chunked)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Percent-decodes `raw` (bytes, latin-1 semantics), then resolves `.` and `..` segments
/// (RFC 3986 §5.2.4 on the decoded path, so `%2E%2E` and `%2F` count), refusing a path that
/// climbs above the root, a `%` without two hex digits, and by default a decoded NUL. The
/// path is `raw` itself when it holds no `%` and no dot segment (most paths), else it is
/// built in `decoded` or `path`.
fn decode_path<'p>(
    raw: &'p [u8],
    allow_nul: bool,
    decoded: &'p mut Vec<u8>,
    path: &'p mut Vec<u8>,
) -> Result<&'p [u8], Rejection> {
    let (percent, mut slash_dot) = path_marks(raw);
    let decoded: &[u8] = if percent {
        percent_decode(raw, allow_nul, decoded)?;
        // `%2E` and `%2F` count: the decoded path is looked at again, unless a literal
        // "/." (which decoding keeps) already decided.
        slash_dot = slash_dot || path_marks(decoded).1;
        decoded
    } else {
        raw
    };
    // A segment `.` or `..` follows a '/'; with no "/." at all, resolving changes nothing.
    if !slash_dot {
        return Ok(decoded);
    }
    resolve_dot_segments(decoded, path)?;
    Ok(path)
}

/// Whether `path` holds a '%', and whether it holds "/.", eight bytes at a time.
fn path_marks(path: &[u8]) -> (bool, bool) {
    let mut percent = 0;
    let mut slash_dot = 0;
    // A '/' ending the previous word, at the high bit of lane 0.
    let mut carried_slash = 0;
    let mut chunks = path.chunks_exact(8);
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let slashes = lanes_equal(w, b'/');
        percent |= lanes_equal(w, b'%');
        slash_dot |= (slashes << 8 | carried_slash) & lanes_equal(w, b'.');
        carried_slash = slashes >> 56;
    }
    let mut after_slash = carried_slash != 0;
    for &b in chunks.remainder() {
        percent |= u64::from(b == b'%');
        slash_dot |= u64::from(after_slash && b == b'.');
        after_slash = b == b'/';
    }
    (percent != 0, slash_dot != 0)
}

/// The lanes of `w` that hold `byte`, at their high bit; exact (no borrow between lanes).
#[inline(always)]
fn lanes_equal(w: u64, byte: u8) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const LOW7: u64 = u64::from_ne_bytes([0x7f; 8]);
    let t = w ^ (ONES * u64::from(byte));
    !(((t & LOW7) + LOW7) | t) & !LOW7
}

/// `raw` percent-decoded into `decoded`; a `%` without two hex digits is refused, and a
/// decoded NUL unless allowed.
fn percent_decode(raw: &[u8], allow_nul: bool, decoded: &mut Vec<u8>) -> Result<(), Rejection> {
    decoded.clear();
    let mut rest = raw;
    while let Some(percent) = rest.iter().position(|&b| b == b'%') {
        decoded.extend_from_slice(&rest[..percent]);
        let escape = &rest[percent + 1..];
        if !is_hex_pair(escape) {
            return Err(reject(
                400,
                "a '%' in the path is not followed by two hex digits",
            ));
        }
        let byte = hex(escape[0]) << 4 | hex(escape[1]);
        if byte == 0 && !allow_nul {
            return Err(reject(400, "the path holds %00"));
        }
        decoded.push(byte);
        rest = &escape[2..];
    }
    decoded.extend_from_slice(rest);
    Ok(())
}

/// The decoded path (it starts with '/') with its `.` and `..` segments resolved, into
/// `path`; a path climbing above the root is refused.
fn resolve_dot_segments(decoded: &[u8], path: &mut Vec<u8>) -> Result<(), Rejection> {
    path.clear();
    // Origin-form paths start with '/': everything after it, segment by segment.
    let mut segments = decoded[1..].split(|&b| b == b'/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            b"." => {}
            b".." => {
                let Some(slash) = path.iter().rposition(|&b| b == b'/') else {
                    return Err(reject(400, "the path climbs above the root ('..')"));
                };
                path.truncate(slash);
            }
            _ => {
                path.push(b'/');
                path.extend_from_slice(segment);
                continue;
            }
        }
        if last {
            path.push(b'/');
        }
    }
    if path.is_empty() {
        path.push(b'/');
    }
    Ok(())
}

/// PATH_INFO: the path below the mount prefix; a path outside it is 404.
fn below_prefix<'p>(path: &'p [u8], prefix: &[u8]) -> Result<&'p [u8], Rejection> {
    match path.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest[0] == b'/' => Ok(rest),
        _ => Err(reject(404, "the path is outside the mount prefix")),
    }
}

/// The environ name for a field name, into `out` ("HTTP_" and the name upper-cased with
/// `-` as `_`), or false when the field is dropped. Names of letters, digits and `-` map
/// as CGI says. Any other byte (RFC 9110 token bytes such as `_` or `.`) could make two
/// fields share one name (`X_Y` posing as `X-Y`), so such fields are dropped, or with
/// `keep` written as `%XX` (`X_Y` is HTTP_X%5FY): no other field name maps there, since
/// `-` is the only byte that becomes `_` and `%` itself is written `%25`.
pub fn env_name(name: &[u8], keep: bool, out: &mut Vec<u8>) -> bool {
    out.clear();
    push_env_name(name, keep, out)
}

/// What a field-name byte becomes in its variable's name: letters upper-cased, digits as
/// they are, `-` as `_`; 0 for any other byte (an unusual name, see `env_name`).
static ENV_NAME_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            c @ b'a'..=b'z' => c - b'a' + b'A',
            c @ (b'A'..=b'Z' | b'0'..=b'9') => c,
            b'-' => b'_',
            _ => 0,
        };
        b += 1;
    }
    table
};

/// `env_name`, appended to `out`, with a hash of the variable's name (for finding repeats);
/// None when the field is dropped, and then `out` is as it was. The usual name (letters,
/// digits, `-`) is mapped by `ENV_NAME_BYTE` as it is copied, in one pass.
fn push_env_name_hashed(name: &[u8], keep: bool, out: &mut Vec<u8>) -> Option<u32> {
    let start = out.len();
    out.reserve(5 + name.len());
    out.extend_from_slice(b"HTTP_");
    let mut unusual = false;
    let mut hash = 0u32;
    out.extend(name.iter().map(|&b| {
        let mapped = ENV_NAME_BYTE[usize::from(b)];
        unusual |= mapped == 0;
        hash = hash.rotate_left(5) ^ u32::from(mapped);
        mapped
    }));
    if !unusual {
        return Some(hash);
    }
    out.truncate(start);
    if !keep || !push_env_name(name, true, out) {
        return None;
    }
    Some(
        out[start + 5..]
            .iter()
            .fold(0u32, |h, &b| h.rotate_left(5) ^ u32::from(b)),
    )
}

/// `env_name`, appended to `out`; when the field is dropped, `out` is as it was.
fn push_env_name(name: &[u8], keep: bool, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    out.extend_from_slice(b"HTTP_");
    for &b in name {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => out.push(b.to_ascii_uppercase()),
            b'-' => out.push(b'_'),
            _ if keep => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
            _ => {
                out.truncate(start);
                return false;
            }
        }
    }
    true
}

/// What `map_fields` found besides the HTTP_* variables.
struct FieldMap {
    /// The first Host field, and whether there is another.
    host: Option<usize>,
    more_hosts: bool,
    /// CONTENT_TYPE's value.
    content_type: Option<FieldValue>,
}

/// Maps the fields to variables in one pass: the HTTP_* names into `scratch.names` and their
/// values into `scratch.vars` (one per name, in order of first appearance; repeats joined
/// into `scratch.joined`), the framing fields into `scratch.framing_fields`. Two field names
/// are one name (any case) exactly when their variable names are equal (`env_name` is
/// injective up to case), so names are compared as variable names, and only when their
/// hashes meet in a 256-bit set: most heads repeat no name and compare none.
///
/// The mapping handles some fields itself: CGI's two without the HTTP_ prefix, Host
/// (validated, and replaced by the target's authority in absolute-form) and Proxy (httpoxy:
/// an HTTP_PROXY variable would pose as the proxy setting of CGI programs and libraries).
fn map_fields(fields: &[httparse::Header], keep: bool, scratch: &mut Scratch) -> FieldMap {
    scratch.names.clear();
    scratch.joined.clear();
    scratch.vars.clear();
    scratch.framing_fields.clear();
    scratch.repeats.clear();
    let mut map = FieldMap {
        host: None,
        more_hosts: false,
        content_type: None,
    };
    let mut seen = [0u64; 4];
    for (i, field) in fields.iter().enumerate() {
        let start = scratch.names.len();
        let Some(hash) = push_env_name_hashed(field.name.as_bytes(), keep, &mut scratch.names)
        else {
            continue;
        };
        let var = &scratch.names[start..];
        // Special names are told apart by length first (one compare for most names).
        let handled = match var.len() {
            9 if var == b"HTTP_HOST" => {
                map.more_hosts |= map.host.is_some();
                map.host.get_or_insert(i);
                true
            }
            10 => var == b"HTTP_PROXY",
            17 if var == b"HTTP_CONTENT_TYPE" => {
                match map.content_type {
                    None => map.content_type = Some(FieldValue::Field(i)),
                    Some(FieldValue::Field(first)) => {
                        map.content_type = Some(FieldValue::Repeated(first));
                        scratch.repeats.push((CONTENT_TYPE_VAR, i));
                    }
                    Some(_) => scratch.repeats.push((CONTENT_TYPE_VAR, i)),
                }
                true
            }
            19 if var == b"HTTP_CONTENT_LENGTH" => {
                scratch.framing_fields.push(i);
                true
            }
            22 if var == b"HTTP_TRANSFER_ENCODING" => {
                scratch.framing_fields.push(i);
                false
            }
            _ => false,
        };
        if handled {
            scratch.names.truncate(start);
            continue;
        }
        let (word, bit) = ((hash >> 6) as usize & 3, 1u64 << (hash & 63));
        if seen[word] & bit != 0 {
            let names = &scratch.names;
            let earlier = scratch
                .vars
                .iter()
                .position(|v| names[v.name.0..v.name.1] == names[start..]);
            if let Some(k) = earlier {
                if let FieldValue::Field(first) = scratch.vars[k].value {
                    scratch.vars[k].value = FieldValue::Repeated(first);
                }
                scratch.repeats.push((k, i));
                scratch.names.truncate(start);
                continue;
            }
        }
        seen[word] |= bit;
        scratch.vars.push(FieldVar {
            name: (start, scratch.names.len()),
            value: FieldValue::Field(i),
        });
    }
    if scratch.repeats.is_empty() {
        return map;
    }
    if let Some(FieldValue::Repeated(first)) = map.content_type {
        map.content_type = Some(joined_value(
            fields,
            first,
            CONTENT_TYPE_VAR,
            b", ",
            scratch,
        ));
    }
    for k in 0..scratch.vars.len() {
        if let FieldValue::Repeated(first) = scratch.vars[k].value {
            let (start, end) = scratch.vars[k].name;
            let separator: &[u8] = if &scratch.names[start..end] == b"HTTP_COOKIE" {
                b"; "
            } else {
                b", "
            };
            scratch.vars[k].value = joined_value(fields, first, k, separator, scratch);
        }
    }
    map
}

/// The value of variable `var`, whose first field is `first` and whose later ones are in
/// `scratch.repeats`: every value joined with `separator` (", "; Cookie's is "; ", RFC 9114
/// §4.2.1's rule, since a cookie may hold a comma) into `scratch.joined`.
fn joined_value(
    fields: &[httparse::Header],
    first: usize,
    var: usize,
    separator: &[u8],
    scratch: &mut Scratch,
) -> FieldValue {
    let joined = &mut scratch.joined;
    let start = joined.len();
    joined.extend_from_slice(fields[first].value);
    for &(_, i) in scratch.repeats.iter().filter(|&&(v, _)| v == var) {
        joined.extend_from_slice(separator);
        joined.extend_from_slice(fields[i].value);
    }
    FieldValue::Joined(start, joined.len())
}

/// Checks the connection facts the caller gave.
fn check_connection(conn: &Connection) -> Result<(), Error> {
    let bad = |m: &'static str| Err(Error::new(crate::status::Status::InvalidArgument, m));
    if conn.server_name.is_empty() {
        return bad("facts->server_name is required");
    }
    if conn.server_port == 0 {
        return bad("facts->server_port is required");
    }
    let p = conn.script_name;
    if !p.is_empty() && (p[0] != b'/' || p.ends_with(b"/")) {
        return bad("facts->script_name must be empty or start with '/' and not end with '/'");
    }
    Ok(())
}

/// Parses the request head at the start of `buf` and, when it is complete and acceptable,
/// sets its CGI variables in `env`. See `gw_environ_set_from_request_head` for the rules.
pub fn set_from_request_head(
    env: &mut Environ,
    buf: &[u8],
    conn: &Connection,
    options: &Options,
    scratch: &mut Scratch,
) -> Result<Parsed, Failure> {
    check_connection(conn)?;
    let limits = options.limits()?;
    let (consumed, http09_start) = match scan(buf, &limits)? {
        Scan::Incomplete => return Ok(Parsed::Incomplete),
        Scan::Head { consumed } => (consumed, None),
        Scan::Http09 { start, consumed } => (consumed, Some(start)),
    };
    let head = &buf[..consumed];
    if let Some(start) = http09_start {
        let line = &head[start..consumed - 2];
        let space = line.iter().position(|&b| b == b' ').unwrap_or(0);
        let (method, target) = (&line[..space], &line[space + 1..]);
        if method != b"GET" || target.first() != Some(&b'/') {
            return Err(reject(400, "malformed request line").into());
        }
        if !options.allow_http09 {
            return Err(reject(505, "HTTP/0.9 request refused (allow_http09 is off)").into());
        }
        let Form::Origin { path, query } = target_form(method, target)? else {
            return Err(reject(400, "malformed request line").into());
        };
        let map = map_fields(&[], options.keep_unusual_names, scratch);
        let fill = Fill {
            protocol: b"HTTP/0.9",
            method,
            target,
            form: Form::Origin { path, query },
            fields: &[],
            host: None,
            content_type: map.content_type,
            framing: Framing::None,
        };
        fill.apply(env, conn, options, scratch)?;
        return Ok(Parsed::Head {
            consumed,
            chunked: false,
        });
    }

    // Left uninitialized: httparse writes the fields it finds (filling 256 empty ones first
    // would cost more than the parse).
    let mut table = [std::mem::MaybeUninit::<httparse::Header>::uninit(); MAX_FIELDS_LIMIT];
    let mut request = httparse::Request::new(&mut []);
    match request.parse_with_uninit_headers(head, &mut table[..limits.fields]) {
        Ok(httparse::Status::Complete(n)) if n == consumed => {}
        Ok(_) => return Err(reject(400, "malformed request head").into()),
        Err(e) => return Err(syntax_rejection(e, head).into()),
    }
    let method = request.method.unwrap_or_default().as_bytes();
    let target = request.path.unwrap_or_default().as_bytes();
    let http11 = request.version == Some(1);
    let fields: &[httparse::Header] = request.headers;
    let form = target_form(method, target)?;

    let map = map_fields(fields, options.keep_unusual_names, scratch);
    let host_field = map.host.map(|i| fields[i].value);
    if map.more_hosts {
        return Err(reject(400, "more than one Host field").into());
    }
    match host_field {
        None if http11 => return Err(reject(400, "HTTP/1.1 request without Host").into()),
        Some(h) if !valid_host(h) => return Err(reject(400, "invalid Host field").into()),
        _ => {}
    }
    // RFC 9112 §3.2.2: in absolute-form the target's authority wins over Host.
    let host = match form {
        Form::Absolute { authority, .. } => Some(authority),
        _ => host_field,
    };
    let framing_fields = scratch.framing_fields.iter().map(|&i| &fields[i]);
    let framing = framing(framing_fields.map(|f| (f.name.as_bytes(), f.value)), http11)?;
    let chunked = framing == Framing::Chunked;
    let fill = Fill {
        protocol: if http11 { b"HTTP/1.1" } else { b"HTTP/1.0" },
        method,
        target,
        form,
        fields,
        host,
        content_type: map.content_type,
        framing,
    };
    fill.apply(env, conn, options, scratch)?;
    Ok(Parsed::Head { consumed, chunked })
}

/// httparse's verdict as a status: a version that is well-formed but not 1.0 or 1.1 is 505.
fn syntax_rejection(e: httparse::Error, head: &[u8]) -> Rejection {
    match e {
        httparse::Error::Version => {
            let line_end = head.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
            let line = &head[..line_end];
            let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
            match version {
                [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
                    if major.is_ascii_digit() && minor.is_ascii_digit() =>
                {
                    reject(505, "HTTP version not supported (only 1.0 and 1.1)")
                }
                _ => reject(400, "malformed HTTP version"),
            }
        }
        httparse::Error::HeaderName => reject(
            400,
            "invalid header field name (or whitespace before its colon)",
        ),
        httparse::Error::HeaderValue => reject(
            400,
            "a header field value holds a control byte (such as NUL)",
        ),
        httparse::Error::TooManyHeaders => reject(431, "too many header fields"),
        _ => reject(400, "malformed request line"),
    }
}

/// A checked head, ready to become CGI variables.
struct Fill<'a, 'h> {
    protocol: &'static [u8],
    method: &'a [u8],
    target: &'a [u8],
    form: Form<'a>,
    fields: &'h [httparse::Header<'a>],
    host: Option<&'a [u8]>,
    content_type: Option<FieldValue>,
    framing: Framing,
}

impl Fill<'_, '_> {
    /// Every check that can refuse runs before the first set, so a refusal changes nothing.
    fn apply(
        &self,
        env: &mut Environ,
        conn: &Connection,
        options: &Options,
        scratch: &mut Scratch,
    ) -> Result<(), Failure> {
        let (raw_path, query): (&[u8], &[u8]) = match self.form {
            Form::Origin { path, query } | Form::Absolute { path, query, .. } => (path, query),
            Form::Asterisk => (b"*", b""),
        };
        let Scratch {
            decoded,
            path,
            names,
            joined,
            vars,
            ..
        } = scratch;
        let path_info: &[u8] = if self.form == Form::Asterisk {
            b"*"
        } else {
            let path = decode_path(raw_path, options.allow_nul_in_path, decoded, path)?;
            below_prefix(path, conn.script_name)?
        };

        let (mut server_port, mut remote_port) = ([0u8; 20], [0u8; 20]);
        // The number, not the field: `007` is passed on as `7`.
        let mut digits = [0u8; 20];
        let content_length = match self.framing {
            Framing::Length(n) => Some(decimal(n, &mut digits)),
            _ => None,
        };
        let value = |v: FieldValue| match v {
            FieldValue::Field(i) | FieldValue::Repeated(i) => self.fields[i].value,
            FieldValue::Joined(start, end) => &joined[start..end],
        };
        let fixed: [Option<(&[u8], &[u8])>; 15] = [
            Some((b"GATEWAY_INTERFACE", b"CGI/1.1")),
            Some((b"SERVER_NAME", conn.server_name)),
            Some((
                b"SERVER_PORT",
                decimal(u64::from(conn.server_port), &mut server_port),
            )),
            Some((b"SERVER_PROTOCOL", self.protocol)),
            Some((b"REQUEST_METHOD", self.method)),
            Some((b"REQUEST_URI", self.target)),
            Some((b"SCRIPT_NAME", conn.script_name)),
            Some((b"PATH_INFO", path_info)),
            Some((b"QUERY_STRING", query)),
            (!conn.remote_addr.is_empty()).then_some((b"REMOTE_ADDR", conn.remote_addr)),
            (conn.remote_port != 0).then(|| {
                (
                    &b"REMOTE_PORT"[..],
                    decimal(u64::from(conn.remote_port), &mut remote_port),
                )
            }),
            conn.tls.then_some((b"HTTPS", b"on")),
            self.content_type.map(|v| (&b"CONTENT_TYPE"[..], value(v))),
            content_length.map(|digits| (&b"CONTENT_LENGTH"[..], digits)),
            self.host.map(|host| (&b"HTTP_HOST"[..], host)),
        ];
        let fields = vars
            .iter()
            .map(|v| (&names[v.name.0..v.name.1], value(v.value)));
        // All of them in one go, as that many sets would (a name already in the environ
        // keeps its place), or none.
        let pairs = fixed.iter().flatten().copied().chain(fields);
        Ok(env.set_many(pairs)?)
    }
}

/// `n` as decimal text in `buf`, without allocating.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONN: Connection = Connection {
        remote_addr: b"192.0.2.7",
        remote_port: 50000,
        server_name: b"gw.test",
        server_port: 8080,
        tls: false,
        script_name: b"",
    };

    /// The variables every accepted HTTP/1.x request gets first, in order.
    fn base(
        protocol: &str,
        method: &str,
        uri: &str,
        path: &str,
        query: &str,
    ) -> Vec<(String, String)> {
        [
            ("GATEWAY_INTERFACE", "CGI/1.1"),
            ("SERVER_NAME", "gw.test"),
            ("SERVER_PORT", "8080"),
            ("SERVER_PROTOCOL", protocol),
            ("REQUEST_METHOD", method),
            ("REQUEST_URI", uri),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", path),
            ("QUERY_STRING", query),
            ("REMOTE_ADDR", "192.0.2.7"),
            ("REMOTE_PORT", "50000"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
    }

    fn with(mut vars: Vec<(String, String)>, more: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.extend(more.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        vars
    }

    fn run_with(
        head: &[u8],
        conn: &Connection,
        options: &Options,
    ) -> (Result<Parsed, Failure>, Vec<(String, String)>) {
        let mut env = Environ::new();
        let mut scratch = Scratch::default();
        let outcome = set_from_request_head(&mut env, head, conn, options, &mut scratch);
        let mut vars = Vec::new();
        let mut cursor = 0;
        while let Some((n, v)) = env.next(&mut cursor) {
            // latin-1: each byte one char, so the tests can show bytes >= 0x80.
            let s = |b: &[u8]| b.iter().map(|&c| c as char).collect::<String>();
            vars.push((s(n), s(v)));
        }
        (outcome, vars)
    }

    fn run(head: &[u8]) -> (Result<Parsed, Failure>, Vec<(String, String)>) {
        run_with(head, &CONN, &Options::default())
    }

    /// An accepted head: its whole environ, and the bytes it used.
    fn accepted(head: &[u8]) -> Vec<(String, String)> {
        let (outcome, vars) = run(head);
        assert_eq!(
            outcome,
            Ok(Parsed::Head {
                consumed: head.len(),
                chunked: false
            }),
            "{}",
            String::from_utf8_lossy(head)
        );
        vars
    }

    /// A refused head: its status; the environ stays empty.
    fn refused_with(head: &[u8], options: &Options) -> u16 {
        let (outcome, vars) = run_with(head, &CONN, options);
        assert!(vars.is_empty(), "a refusal set {vars:?}");
        match outcome {
            Err(Failure::Rejected(r)) => r.status,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(head)),
        }
    }

    fn refused(head: &[u8]) -> u16 {
        refused_with(head, &Options::default())
    }

    #[test]
    fn a_simple_get() {
        assert_eq!(
            accepted(b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: gw.test:8080\r\nAccept: */*\r\n\r\n"),
            with(
                base("HTTP/1.1", "GET", "/a/b?x=1&y=%20", "/a/b", "x=1&y=%20"),
                &[("HTTP_HOST", "gw.test:8080"), ("HTTP_ACCEPT", "*/*")]
            )
        );
    }

    #[test]
    fn http10_needs_no_host_and_tls_sets_https() {
        let conn = Connection {
            tls: true,
            remote_port: 0,
            remote_addr: b"",
            ..CONN
        };
        let (outcome, vars) = run_with(b"HEAD / HTTP/1.0\r\n\r\n", &conn, &Options::default());
        assert!(outcome.is_ok());
        let mut want = base("HTTP/1.0", "HEAD", "/", "/", "");
        want.retain(|(n, _)| !n.starts_with("REMOTE_"));
        assert_eq!(vars, with(want, &[("HTTPS", "on")]));
    }

    #[test]
    fn content_type_and_length_have_no_http_prefix() {
        assert_eq!(
            accepted(
                b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
            ),
            with(
                base("HTTP/1.1", "POST", "/f", "/f", ""),
                &[
                    ("CONTENT_TYPE", "text/plain"),
                    ("CONTENT_LENGTH", "12"),
                    ("HTTP_HOST", "h")
                ]
            )
        );
    }

    #[test]
    fn repeated_fields_are_joined_and_cookies_with_semicolons() {
        assert_eq!(
            accepted(
                b"GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nCookie: x=1\r\nX-Y: 1\r\naccept: b\r\ncookie: y=2\r\nACCEPT: \r\n\r\n"
            ),
            with(
                base("HTTP/1.1", "GET", "/", "/", ""),
                &[
                    ("HTTP_HOST", "h"),
                    ("HTTP_ACCEPT", "a, b, "),
                    ("HTTP_COOKIE", "x=1; y=2"),
                    ("HTTP_X_Y", "1")
                ]
            )
        );
    }

    #[test]
    fn underscore_names_are_dropped_or_kept_apart() {
        let head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Y: dash\r\nX_Y: underscore\r\nX.Y: dot\r\nX%5FY: pct\r\n\r\n";
        assert_eq!(
            accepted(head),
            with(
                base("HTTP/1.1", "GET", "/", "/", ""),
                &[("HTTP_HOST", "h"), ("HTTP_X_Y", "dash")]
            )
        );
        let keep = Options {
            keep_unusual_names: true,
            ..Options::default()
        };
        let (outcome, vars) = run_with(head, &CONN, &keep);
        assert!(outcome.is_ok());
        assert_eq!(
            vars,
            with(
                base("HTTP/1.1", "GET", "/", "/", ""),
                &[
                    ("HTTP_HOST", "h"),
                    ("HTTP_X_Y", "dash"),
                    ("HTTP_X%5FY", "underscore"),
                    ("HTTP_X%2EY", "dot"),
                    ("HTTP_X%255FY", "pct")
                ]
            )
        );
    }

    #[test]
    fn env_name_is_injective_over_token_bytes() {
        // Every pair of distinct (case-folded) names over a token alphabet maps apart.
        let alphabet = b"aZ9-_.%!~";
        let mut names = vec![Vec::new()];
        for _ in 0..3 {
            let longer: Vec<Vec<u8>> = names
                .iter()
                .flat_map(|n: &Vec<u8>| {
                    alphabet.iter().map(move |&b| {
                        let mut m = n.clone();
                        m.push(b);
                        m
                    })
                })
                .collect();
            names.extend(longer);
        }
        let mut seen = std::collections::HashMap::new();
        let mut out = Vec::new();
        for name in names.iter().filter(|n| !n.is_empty()) {
            assert!(env_name(name, true, &mut out));
            if let Some(other) = seen.insert(out.clone(), name.to_ascii_lowercase()) {
                assert_eq!(other, name.to_ascii_lowercase(), "{out:?}");
            }
        }
    }

    #[test]
    fn no_http_proxy() {
        assert_eq!(
            accepted(b"GET / HTTP/1.1\r\nHost: h\r\nProxy: http://evil:1\r\n\r\n"),
            with(base("HTTP/1.1", "GET", "/", "/", ""), &[("HTTP_HOST", "h")])
        );
    }

    #[test]
    fn host_rules() {
        assert_eq!(refused(b"GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(
            refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
            400
        );
        assert_eq!(
            refused(b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
            400
        );
        for bad in [
            &b""[..],
            b"a b",
            b"a/b",
            b"user@a",
            b"a:http",
            b"a:123456",
            b"a:65536",
            b"[::1",
            b"[]",
            b"a%zz",
            b":80",
        ] {
            let mut head = b"GET / HTTP/1.1\r\nHost: ".to_vec();
            head.extend_from_slice(bad);
            head.extend_from_slice(b"\r\n\r\n");
            assert_eq!(refused(&head), 400, "{}", String::from_utf8_lossy(bad));
        }
        for good in [
            &b"a.b"[..],
            b"a:80",
            b"a:",
            b"[::1]:8080",
            b"192.0.2.1",
            b"xn--a%41",
        ] {
            let mut head = b"GET / HTTP/1.1\r\nHost: ".to_vec();
            head.extend_from_slice(good);
            head.extend_from_slice(b"\r\n\r\n");
            assert!(run(&head).0.is_ok(), "{}", String::from_utf8_lossy(good));
        }
    }

    #[test]
    fn absolute_form_takes_its_host_from_the_target() {
        assert_eq!(
            accepted(b"GET HTTP://Other.test:81/p%41th?q=1 HTTP/1.1\r\nHost: gw.test\r\n\r\n"),
            with(
                base(
                    "HTTP/1.1",
                    "GET",
                    "HTTP://Other.test:81/p%41th?q=1",
                    "/pAth",
                    "q=1"
                ),
                &[("HTTP_HOST", "Other.test:81")]
            )
        );
        assert_eq!(
            accepted(b"GET https://o.test?q HTTP/1.0\r\n\r\n"),
            with(
                base("HTTP/1.0", "GET", "https://o.test?q", "/", "q"),
                &[("HTTP_HOST", "o.test")]
            )
        );
        assert_eq!(refused(b"GET http://o.test/ HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(
            refused(b"GET http://u@o.test/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            400
        );
        assert_eq!(refused(b"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(
            refused(b"GET ftp://o.test/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            400
        );
        assert_eq!(refused(b"GET x HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    }

    #[test]
    fn options_asterisk_and_connect() {
        assert_eq!(
            accepted(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
            with(
                base("HTTP/1.1", "OPTIONS", "*", "*", ""),
                &[("HTTP_HOST", "h")]
            )
        );
        assert_eq!(refused(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
        assert_eq!(
            refused(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"),
            501
        );
    }

    #[test]
    fn percent_decoding() {
        let path = |target: &str| {
            let head = format!("GET {target} HTTP/1.0\r\n\r\n");
            let vars = accepted(head.as_bytes());
            vars.into_iter().find(|(n, _)| n == "PATH_INFO").unwrap().1
        };
        assert_eq!(path("/a%2Fb"), "/a/b");
        assert_eq!(path("/%41%62%e9%FF"), "/Ab\u{e9}\u{ff}");
        assert_eq!(path("/a%20b+c"), "/a b+c");
        assert_eq!(path("/a%2F..%2Fb"), "/b");
        assert_eq!(path("/x/%2E%2E%2Fy/.."), "/");
        assert_eq!(path("/a/%2e/b/%2E%2e/c"), "/a/c");
        assert_eq!(path("/a/./"), "/a/");
        assert_eq!(path("/a/b/."), "/a/b/");
        assert_eq!(path("/a/b/.."), "/a/");
        assert_eq!(path("//a//b/"), "//a//b/");
        assert_eq!(path("/a/.b/..c/..."), "/a/.b/..c/...");
        assert_eq!(path("/%0a"), "/\n");
        for bad in ["/%00", "/a%00b", "/%", "/%4", "/%zz", "/%4g", "/a%"] {
            let head = format!("GET {bad} HTTP/1.0\r\n\r\n");
            assert_eq!(refused(head.as_bytes()), 400, "{bad}");
        }
        let nul = Options {
            allow_nul_in_path: true,
            ..Options::default()
        };
        let (outcome, vars) = run_with(b"GET /a%00 HTTP/1.0\r\n\r\n", &CONN, &nul);
        assert!(outcome.is_ok());
        assert!(vars.contains(&("PATH_INFO".into(), "/a\0".into())));
    }

    #[test]
    fn request_uri_and_query_stay_raw() {
        assert_eq!(
            accepted(b"GET /a%2Fb/../c?x=%2F&y=a?b HTTP/1.0\r\n\r\n"),
            base(
                "HTTP/1.0",
                "GET",
                "/a%2Fb/../c?x=%2F&y=a?b",
                "/a/c",
                "x=%2F&y=a?b"
            )
        );
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        for bad in [
            "/..",
            "/../../etc/passwd",
            "/a/../..",
            "/%2e%2e/x",
            "/a/..%2F..",
            "/./..",
            "/%2E%2E%2Fx",
        ] {
            let head = format!("GET {bad} HTTP/1.0\r\n\r\n");
            assert_eq!(refused(head.as_bytes()), 400, "{bad}");
        }
    }

    #[test]
    fn bad_targets() {
        assert_eq!(refused(b"GET /a#f HTTP/1.0\r\n\r\n"), 400);
        assert_eq!(refused("GET /\u{e9} HTTP/1.0\r\n\r\n".as_bytes()), 400);
        assert_eq!(refused(b"GET /\xe9 HTTP/1.0\r\n\r\n"), 400);
        assert_eq!(refused(b"GET /a\x01 HTTP/1.0\r\n\r\n"), 400);
    }

    #[test]
    fn mount_prefix() {
        let conn = Connection {
            script_name: b"/app",
            ..CONN
        };
        let path_of = |target: &str| {
            let head = format!("GET {target} HTTP/1.0\r\n\r\n");
            let (outcome, vars) = run_with(head.as_bytes(), &conn, &Options::default());
            match outcome {
                Ok(_) => {
                    let get = |k: &str| vars.iter().find(|(n, _)| n == k).unwrap().1.clone();
                    Ok((get("SCRIPT_NAME"), get("PATH_INFO")))
                }
                Err(Failure::Rejected(r)) => Err(r.status),
                Err(e) => panic!("{e:?}"),
            }
        };
        assert_eq!(path_of("/app/x"), Ok(("/app".into(), "/x".into())));
        assert_eq!(path_of("/app"), Ok(("/app".into(), "".into())));
        assert_eq!(path_of("/app/"), Ok(("/app".into(), "/".into())));
        assert_eq!(path_of("/%61pp/x"), Ok(("/app".into(), "/x".into())));
        assert_eq!(path_of("/x/../app/y"), Ok(("/app".into(), "/y".into())));
        assert_eq!(path_of("/apple"), Err(404));
        assert_eq!(path_of("/"), Err(404));
        assert_eq!(path_of("/app/../etc"), Err(404));
        for bad in [&b"app"[..], b"/app/", b"/"] {
            let conn = Connection {
                script_name: bad,
                ..CONN
            };
            let (outcome, _) = run_with(b"GET / HTTP/1.0\r\n\r\n", &conn, &Options::default());
            assert!(matches!(outcome, Err(Failure::Error(_))));
        }
    }

    #[test]
    fn connection_facts_are_required() {
        for conn in [
            Connection {
                server_name: b"",
                ..CONN
            },
            Connection {
                server_port: 0,
                ..CONN
            },
        ] {
            let (outcome, vars) = run_with(b"GET / HTTP/1.0\r\n\r\n", &conn, &Options::default());
            assert!(matches!(outcome, Err(Failure::Error(_))));
            assert!(vars.is_empty());
        }
    }

    #[test]
    fn content_length_rules() {
        let cl = |value: &str| {
            let head = format!("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: {value}\r\n\r\n");
            let (outcome, vars) = run(head.as_bytes());
            match outcome {
                Ok(_) => Ok(vars
                    .into_iter()
                    .find(|(n, _)| n == "CONTENT_LENGTH")
                    .unwrap()
                    .1),
                Err(Failure::Rejected(r)) => Err(r.status),
                Err(e) => panic!("{e:?}"),
            }
        };
        assert_eq!(cl("0"), Ok("0".into()));
        assert_eq!(cl("  42  "), Ok("42".into())); // OWS around a field value is not part of it
        assert_eq!(cl("007"), Ok("7".into()));
        assert_eq!(
            cl("18446744073709551615"),
            Ok("18446744073709551615".into())
        );
        assert_eq!(
            cl("000000000000000000000000018446744073709551615"),
            Ok("18446744073709551615".into())
        );
        for bad in [
            "",
            "+5",
            "-5",
            "5 5",
            "0x5",
            "5,5",
            "5, 5",
            "1e3",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            assert_eq!(cl(bad), Err(400), "{bad:?}");
        }
        // Repeats must agree (by value: `5` and `05` are one length).
        assert_eq!(
            accepted(
                b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 05\r\n\r\n"
            ),
            with(
                base("HTTP/1.1", "PUT", "/", "/", ""),
                &[("CONTENT_LENGTH", "5"), ("HTTP_HOST", "h")]
            )
        );
        assert_eq!(
            refused(b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"),
            400
        );
    }

    /// The smuggling matrix: heads two parsers could frame differently.
    #[test]
    fn smuggling_matrix() {
        let cases: &[(&[u8], u16)] = &[
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n Transfer-Encoding: chunked\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", 400),
            (b"POST / HTTP/1.1\nHost: h\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\nContent-Length: 5\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\n\n", 400),
            (b"\nPOST / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\rX: 1\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nX\x00: b\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400),
            (b"POST / HTTP/1.1\r\n Host: h\r\n\r\n", 400),
        ];
        for (head, status) in cases {
            assert_eq!(refused(head), *status, "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn chunked_requests_leave_content_length_to_the_body() {
        let head = b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n";
        let (outcome, vars) = run(head);
        assert_eq!(
            outcome,
            Ok(Parsed::Head {
                consumed: head.len(),
                chunked: true
            })
        );
        assert_eq!(
            vars,
            with(
                base("HTTP/1.1", "POST", "/up", "/up", ""),
                &[("HTTP_HOST", "h"), ("HTTP_TRANSFER_ENCODING", "Chunked")]
            )
        );
        // A list over two fields, and empty elements, still end in one chunked.
        let head = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\r\nTransfer-Encoding: chunked ,\r\n\r\n";
        assert!(matches!(
            run(head).0,
            Ok(Parsed::Head { chunked: true, .. })
        ));
    }

    #[test]
    fn versions() {
        assert_eq!(refused(b"GET / HTTP/1.2\r\nHost: h\r\n\r\n"), 505);
        assert_eq!(refused(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(refused(b"GET / HTTP/1.10\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / http/1.1\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1 \r\n\r\n"), 400);
        assert_eq!(refused(b"GET  / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(refused(b"GET / HTTP/1.1 x\r\n\r\n"), 400);
        assert_eq!(refused(b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
    }

    #[test]
    fn http09_only_when_allowed() {
        assert_eq!(refused(b"GET /x\r\n"), 505);
        assert_eq!(refused(b"POST /x\r\n"), 400);
        let allow = Options {
            allow_http09: true,
            ..Options::default()
        };
        let (outcome, vars) = run_with(b"GET /a%20b?q\r\nGET /next\r\n", &CONN, &allow);
        assert_eq!(
            outcome,
            Ok(Parsed::Head {
                consumed: 14,
                chunked: false
            })
        );
        assert_eq!(vars, base("HTTP/0.9", "GET", "/a%20b?q", "/a b", "q"));
        assert_eq!(refused_with(b"POST /x\r\n", &allow), 400);
        assert_eq!(refused_with(b"GET x\r\n", &allow), 400);
        assert_eq!(refused_with(b"GET /../x\r\n", &allow), 400);
        assert_eq!(refused_with(b"GET /\x01\r\n", &allow), 400);
        assert_eq!(run_with(b"GET /x", &CONN, &allow).0, Ok(Parsed::Incomplete));
    }

    #[test]
    fn incomplete_heads_set_nothing() {
        let full = b"\r\nPOST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n";
        for cut in 0..full.len() {
            let (outcome, vars) = run(&full[..cut]);
            assert_eq!(outcome, Ok(Parsed::Incomplete), "{cut}");
            assert!(vars.is_empty());
        }
        assert_eq!(
            run(full).0,
            Ok(Parsed::Head {
                consumed: full.len(),
                chunked: false
            })
        );
    }

    #[test]
    fn pipelined_requests_are_taken_one_at_a_time() {
        let two = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
        let (outcome, vars) = run(two);
        assert_eq!(
            outcome,
            Ok(Parsed::Head {
                consumed: 28,
                chunked: false
            })
        );
        assert!(vars.contains(&("PATH_INFO".into(), "/1".into())));
        let (outcome, vars) = run(&two[28..]);
        assert!(matches!(outcome, Ok(Parsed::Head { consumed: 28, .. })));
        assert!(vars.contains(&("PATH_INFO".into(), "/2".into())));
    }

    #[test]
    fn limits() {
        let small = Options {
            max_request_line: 20,
            max_fields: 2,
            max_field_size: 10,
            max_head: 60,
            ..Options::default()
        };
        let check = |head: &[u8]| match run_with(head, &CONN, &small).0 {
            Ok(Parsed::Head { .. }) => 0,
            Ok(Parsed::Incomplete) => 1,
            Err(Failure::Rejected(r)) => r.status,
            Err(e) => panic!("{e:?}"),
        };
        // The request line: 20 bytes pass, 21 are 414, complete or not.
        assert_eq!(check(b"GET /abcdef HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
        assert_eq!(check(b"GET /abcdefg HTTP/1.1\r\nHost: h\r\n\r\n"), 414);
        assert_eq!(check(b"GET /abcdef HTTP/1.1\r"), 1);
        assert_eq!(check(b"GET /abcdefghijklmnopq"), 414);
        // A field line: 10 bytes pass, 11 are 431.
        assert_eq!(check(b"GET / HTTP/1.1\r\nHost: h\r\nX: 3456789\r\n\r\n"), 0);
        assert_eq!(
            check(b"GET / HTTP/1.1\r\nHost: h\r\nX: 34567890\r\n\r\n"),
            431
        );
        assert_eq!(check(b"GET / HTTP/1.1\r\nHost: h\r\nX: 3456789012"), 431);
        // Two fields pass, three are 431.
        assert_eq!(
            check(b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"),
            431
        );
        assert_eq!(check(b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n"), 0);
        // The whole head: 60 bytes pass, 61 are 431, complete or not.
        let mut head = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n".to_vec();
        head.extend_from_slice(b"\r\n");
        assert_eq!(check(&head), 0);
        let mut padded = b"\r\n".repeat(14);
        padded.extend_from_slice(&head);
        assert_eq!(padded.len(), 61);
        assert_eq!(check(&padded[..60]), 1);
        assert_eq!(check(&padded), 431);
        assert_eq!(check(&b"\r\n".repeat(31)), 431);
        // The defaults: 100 fields pass, 101 are 431.
        let many = |n: usize| {
            let mut h = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
            for i in 1..n {
                h.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
            }
            h.extend_from_slice(b"\r\n");
            h
        };
        assert!(matches!(
            run(&many(DEFAULT_MAX_FIELDS)).0,
            Ok(Parsed::Head { .. })
        ));
        assert_eq!(refused(&many(DEFAULT_MAX_FIELDS + 1)), 431);
        let too_many = Options {
            max_fields: MAX_FIELDS_LIMIT + 1,
            ..Options::default()
        };
        assert!(matches!(
            run_with(b"GET / HTTP/1.0\r\n\r\n", &CONN, &too_many).0,
            Err(Failure::Error(_))
        ));
        let most = Options {
            max_fields: MAX_FIELDS_LIMIT,
            ..Options::default()
        };
        assert!(matches!(
            run_with(&many(MAX_FIELDS_LIMIT), &CONN, &most).0,
            Ok(Parsed::Head { .. })
        ));
    }

    #[test]
    fn obs_text_values_pass_as_latin1_bytes() {
        assert_eq!(
            accepted(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xe9\t x\r\n\r\n"),
            with(
                base("HTTP/1.1", "GET", "/", "/", ""),
                &[("HTTP_HOST", "h"), ("HTTP_X_A", "caf\u{e9}\t x")]
            )
        );
    }

    #[test]
    fn a_reused_environ_and_scratch_are_filled_alike() {
        let head = b"GET /a/../b?q HTTP/1.1\r\nHost: h\r\nCookie: a\r\nCookie: b\r\n\r\n";
        let mut env = Environ::new();
        let mut scratch = Scratch::default();
        let mut first = Vec::new();
        for round in 0..3 {
            env.reset(None);
            set_from_request_head(&mut env, head, &CONN, &Options::default(), &mut scratch)
                .unwrap();
            let mut vars = Vec::new();
            let mut cursor = 0;
            while let Some((n, v)) = env.next(&mut cursor) {
                vars.push((n.to_vec(), v.to_vec()));
            }
            if round == 0 {
                first = vars;
            } else {
                assert_eq!(vars, first);
            }
        }
    }

    /// Variables already in the environ take the head's values in their places, as sets one
    /// by one would; a value past the environ's limit sets nothing at all.
    #[test]
    fn an_environ_with_variables_is_updated_in_place_or_not_at_all() {
        let head = b"GET /p HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nX-A: 2\r\n\r\n";
        let mut env = Environ::new();
        env.set(b"HTTP_X_A", b"old").unwrap();
        env.set(b"KEEP", b"k").unwrap();
        env.set(b"PATH_INFO", b"/old").unwrap();
        let mut scratch = Scratch::default();
        set_from_request_head(&mut env, head, &CONN, &Options::default(), &mut scratch).unwrap();
        let mut vars = Vec::new();
        let mut cursor = 0;
        while let Some((n, v)) = env.next(&mut cursor) {
            vars.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ));
        }
        let firsts: Vec<(&str, &str)> =
            vars.iter().take(3).map(|(n, v)| (&n[..], &v[..])).collect();
        assert_eq!(
            firsts,
            [("HTTP_X_A", "1, 2"), ("KEEP", "k"), ("PATH_INFO", "/p")]
        );
        assert_eq!(vars.len(), 3 + 11);

        // A joined value past the environ's limit: an error, and the environ as it was.
        let field = format!("X-Big: {}\r\n", "v".repeat(8000));
        let fields = 1 + crate::environ::MAX_VALUE_LEN / 8000;
        let big = format!("GET /q HTTP/1.1\r\nHost: h\r\n{}\r\n", field.repeat(fields));
        let options = Options {
            max_fields: MAX_FIELDS_LIMIT,
            max_head: 2 * big.len(),
            ..Options::default()
        };
        // (Not under Miri: a megabyte of head.)
        if fields <= MAX_FIELDS_LIMIT && !cfg!(miri) {
            let before = env.len();
            let outcome =
                set_from_request_head(&mut env, big.as_bytes(), &CONN, &options, &mut scratch);
            assert!(
                matches!(outcome, Err(Failure::Error(ref e)) if e.status == crate::status::Status::TooLarge),
                "{outcome:?}"
            );
            assert_eq!(env.len(), before);
            assert_eq!(env.get(b"PATH_INFO"), Some(&b"/p"[..]));
        }
    }
}
