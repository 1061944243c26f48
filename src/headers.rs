//! Response status and header rules, and the header list the handler keeps for a response.
//!
//! Every rule is checked over the full byte length, always: there is no debug switch that
//! turns validation off (wsgiref's `__debug__`-only checks, gh-150726).

use crate::status::{escape_bytes, Error, Status};

/// wsgiref.util's hop-by-hop set, exactly (note `trailers`, the RFC 2616 spelling); what
/// `classify` checks by length.
#[cfg(test)]
const HOP_BY_HOP: [&[u8]; 8] = [
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailers",
    b"transfer-encoding",
    b"upgrade",
];

/// What a header name is to the library, found once per header (`classify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderClass {
    Other,
    /// wsgiref's hop-by-hop set: refused from applications.
    HopByHop,
    Date,
    Server,
    ContentLength,
}

impl HeaderClass {
    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The lengths of the names `classify` knows, as bits.
const KNOWN_LENGTHS: u32 =
    1 << 2 | 1 << 4 | 1 << 6 | 1 << 7 | 1 << 8 | 1 << 10 | 1 << 14 | 1 << 17 | 1 << 18 | 1 << 19;

/// The class of a header name (case-insensitive, whole name): its length picks the one or
/// two names it could be, so most names cost one test of a bit (inline) and the others one
/// comparison of lengths.
#[inline]
pub fn classify(name: &[u8]) -> HeaderClass {
    if name.len() >= 32 || KNOWN_LENGTHS & (1 << name.len()) == 0 {
        return HeaderClass::Other;
    }
    classify_known_length(name)
}

fn classify_known_length(name: &[u8]) -> HeaderClass {
    let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
    match name.len() {
        2 if is(b"te") => HeaderClass::HopByHop,
        4 if is(b"date") => HeaderClass::Date,
        6 if is(b"server") => HeaderClass::Server,
        7 if is(b"upgrade") => HeaderClass::HopByHop,
        8 if is(b"trailers") => HeaderClass::HopByHop,
        10 if is(b"connection") || is(b"keep-alive") => HeaderClass::HopByHop,
        14 if is(b"content-length") => HeaderClass::ContentLength,
        17 if is(b"transfer-encoding") => HeaderClass::HopByHop,
        18 if is(b"proxy-authenticate") => HeaderClass::HopByHop,
        19 if is(b"proxy-authorization") => HeaderClass::HopByHop,
        _ => HeaderClass::Other,
    }
}

/// wsgiref.util.is_hop_by_hop: case-insensitive, whole-name comparison.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    classify(name) == HeaderClass::HopByHop
}

/// Byte classes, one table lookup per byte: an RFC 9110 tchar; a byte a header value may
/// hold (anything but a control byte, HTAB allowed); a byte a status may hold (no control
/// byte at all). Bytes 0x80-0xFF are latin-1 text in values and statuses.
const TCHAR: u8 = 1;
const VALUE: u8 = 2;
const TEXT: u8 = 4;

const BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        let control = c < 0x20 || c == 0x7f;
        let mut class = 0;
        if !control {
            class |= VALUE | TEXT;
        }
        if c == b'\t' {
            class |= VALUE;
        }
        let tchar_punct = matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        );
        if c.is_ascii_alphanumeric() || tchar_punct {
            class |= TCHAR;
        }
        table[b] = class;
        b += 1;
    }
    table
};

/// Whether every byte of `bytes` is in `class` (no early exit: one AND per byte, eight
/// bytes a round).
fn all_in(bytes: &[u8], class: u8) -> bool {
    let of = |b: u8| BYTE_CLASS[b as usize];
    let mut words = bytes.chunks_exact(8);
    let mut acc = class;
    for w in &mut words {
        acc &=
            of(w[0]) & of(w[1]) & of(w[2]) & of(w[3]) & of(w[4]) & of(w[5]) & of(w[6]) & of(w[7]);
    }
    words.remainder().iter().fold(acc, |acc, &b| acc & of(b)) == class
}

/// Whether a header value is free of control bytes (HTAB allowed): `all_in(value, VALUE)`,
/// eight bytes at a time (the last word overlapping; a short value by the table).
fn value_ok(value: &[u8]) -> bool {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // The high bit of each byte below 0x20, or equal to `c` (exact per byte: no carries).
    let below_space = |v: u64| !(((v & LOW7) + ONES * 0x60) | v) & HIGH;
    let equal = |v: u64, c: u8| {
        let x = v ^ (ONES * u64::from(c));
        !(((x & LOW7) + LOW7) | x) & HIGH
    };
    let bad = |v: u64| (below_space(v) & !equal(v, b'\t')) | equal(v, 0x7f);
    let word = |at: usize| u64::from_le_bytes(value[at..at + 8].try_into().expect("8 bytes"));
    let len = value.len();
    if len < 8 {
        return all_in(value, VALUE);
    }
    let mut found = 0;
    let mut at = 0;
    while at + 8 < len {
        found |= bad(word(at));
        at += 8;
    }
    found | bad(word(len - 8)) == 0
}

/// Status: 3 ASCII digits from 100 to 599, one space, a reason without control bytes
/// (HTAB included, as wsgiref's patched check). Bytes 0x80-0xFF pass: they are latin-1 text.
#[inline]
pub fn check_status(status: &[u8]) -> Result<(), Error> {
    // The common case in one pass; a status that fails it is checked again in wsgiref's
    // order, which picks the message.
    if let [b'1'..=b'5', b'0'..=b'9', b'0'..=b'9', b' ', reason @ ..] = status {
        if all_in(reason, TEXT) {
            return Ok(());
        }
    }
    check_status_in_order(status)
}

#[cold]
#[inline(never)]
fn check_status_in_order(status: &[u8]) -> Result<(), Error> {
    let fail = |msg: &'static str| Err(bad_status(msg, status));
    if !all_in(status, TEXT) {
        return fail("Control characters are not allowed in status");
    }
    if status.len() < 4 {
        return fail("Status must be at least 4 characters");
    }
    if !status[..3].iter().all(u8::is_ascii_digit) {
        return fail("Status message must begin w/3-digit code");
    }
    if status[3] != b' ' {
        return fail("Status message must have a space after code");
    }
    if !(b'1'..=b'5').contains(&status[0]) {
        return fail("Status code must be between 100 and 599");
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn bad_status(msg: &str, status: &[u8]) -> Error {
    Error::new(
        Status::InvalidStatusLine,
        format!("{msg}: '{}'", escape_bytes(status)),
    )
}

/// A header name is a non-empty token; a value has no control byte but HTAB; hop-by-hop
/// names are refused.
pub fn check_header(name: &[u8], value: &[u8]) -> Result<(), Error> {
    check_classified(name, value).map(|_| ())
}

/// `check_header`, giving the name's class (found once, for `HeaderList::push_classified`).
/// Inlined into start_response's loop; the messages are built out of line.
#[inline]
pub fn check_classified(name: &[u8], value: &[u8]) -> Result<HeaderClass, Error> {
    if name.is_empty() || !all_in(name, TCHAR) {
        return Err(bad_name(name));
    }
    if !value_ok(value) {
        return Err(bad_value(name));
    }
    let class = classify(name);
    if class == HeaderClass::HopByHop {
        return Err(hop_by_hop(name, value));
    }
    Ok(class)
}

#[cold]
#[inline(never)]
fn bad_name(name: &[u8]) -> Error {
    Error::new(
        Status::InvalidHeader,
        format!("Header name must be a token: '{}'", escape_bytes(name)),
    )
}

#[cold]
#[inline(never)]
fn bad_value(name: &[u8]) -> Error {
    Error::new(
        Status::InvalidHeader,
        format!(
            "Control characters not allowed in header value of '{}'",
            escape_bytes(name)
        ),
    )
}

#[cold]
#[inline(never)]
fn hop_by_hop(name: &[u8], value: &[u8]) -> Error {
    Error::new(
        Status::HopByHopHeader,
        format!(
            "Hop-by-hop header, '{}: {}', not allowed",
            escape_bytes(name),
            escape_bytes(value)
        ),
    )
}

/// Parses a Content-Length value strictly: 1*DIGIT, no sign, no spaces, no overflow.
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// One header of a `HeaderList`: its line starts at `start`, the value after the name's
/// `": "`.
#[derive(Clone, Copy, Debug)]
struct Item {
    start: usize,
    name_len: usize,
    value_len: usize,
    class: HeaderClass,
}

impl Item {
    fn value_start(&self) -> usize {
        self.start + self.name_len + 2
    }

    /// `name: value\r\n`.
    fn line_len(&self) -> usize {
        self.name_len + self.value_len + 4
    }
}

/// Headers copied out of the caller's memory into one reusable buffer, each with its class,
/// so the head and the framing decision ask about Date, Server and Content-Length without
/// comparing every name again. The buffer holds each header as the head writes it,
/// `name: value\r\n`, so a head copies all of them at once.
#[derive(Clone, Debug, Default)]
pub struct HeaderList {
    /// Kept at its largest length (zero-filled when it grows), so a push is a copy into
    /// memory that is already there; the first `used` bytes are the lines.
    buf: Vec<u8>,
    used: usize,
    items: Vec<Item>,
    /// `HeaderClass::bit` of every class present.
    present: u8,
}

impl HeaderList {
    pub fn clear(&mut self) {
        self.used = 0;
        self.items.clear();
        self.present = 0;
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.push_classified(name, value, classify(name));
    }

    /// `push` with the class `check_classified` already found.
    #[inline(always)]
    pub fn push_classified(&mut self, name: &[u8], value: &[u8], class: HeaderClass) {
        let item = Item {
            start: self.used,
            name_len: name.len(),
            value_len: value.len(),
            class,
        };
        let end = item.start + item.line_len();
        if end > self.buf.len() {
            self.grow(end);
        }
        let line = &mut self.buf[item.start..end];
        let (name_part, rest) = line.split_at_mut(name.len());
        name_part.copy_from_slice(name);
        let (separator, rest) = rest.split_at_mut(2);
        separator.copy_from_slice(b": ");
        let (value_part, crlf) = rest.split_at_mut(value.len());
        value_part.copy_from_slice(value);
        crlf.copy_from_slice(b"\r\n");
        self.used = end;
        self.items.push(item);
        self.present |= class.bit();
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, needed: usize) {
        let size = needed.max(self.buf.len() * 2).max(256);
        self.buf.resize(size, 0);
    }

    fn pair(&self, item: &Item) -> (&[u8], &[u8]) {
        let value = item.value_start();
        (
            &self.buf[item.start..item.start + item.name_len],
            &self.buf[value..value + item.value_len],
        )
    }

    pub fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        Some(self.pair(self.items.get(index)?))
    }

    /// The class of header `index`.
    pub fn class(&self, index: usize) -> Option<HeaderClass> {
        self.items.get(index).map(|item| item.class)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.items.iter().map(move |item| self.pair(item))
    }

    /// Every header as the head writes it, `name: value\r\n`, in order.
    pub fn lines(&self) -> &[u8] {
        &self.buf[..self.used]
    }

    /// Appends the lines of every header but those of `class` to `out`.
    pub fn lines_without(&self, class: HeaderClass, out: &mut Vec<u8>) {
        for item in self.items.iter().filter(|item| item.class != class) {
            out.extend_from_slice(&self.buf[item.start..item.start + item.line_len()]);
        }
    }

    /// Whether a header of this class is present (no name is compared).
    pub fn has(&self, class: HeaderClass) -> bool {
        self.present & class.bit() != 0
    }

    /// Whether a header with this name is present (case-insensitive, whole name). Date,
    /// Server and Content-Length are answered from the classes found when they were pushed.
    pub fn contains(&self, name: &[u8]) -> bool {
        match classify(name) {
            HeaderClass::Other | HeaderClass::HopByHop => {
                self.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
            }
            class => self.has(class),
        }
    }

    pub fn copy_from(&mut self, other: &HeaderList) {
        self.clear();
        if other.used > self.buf.len() {
            self.grow(other.used);
        }
        self.buf[..other.used].copy_from_slice(other.lines());
        self.used = other.used;
        self.items.extend_from_slice(&other.items);
        self.present = other.present;
    }

    /// The response's declared length: every Content-Length must be a plain decimal number
    /// and all of them must agree.
    #[inline]
    pub fn content_length(&self) -> Result<Option<u64>, Error> {
        if !self.has(HeaderClass::ContentLength) {
            return Ok(None);
        }
        self.declared_length()
    }

    fn declared_length(&self) -> Result<Option<u64>, Error> {
        let mut declared = None;
        for item in &self.items {
            if item.class != HeaderClass::ContentLength {
                continue;
            }
            let (_, value) = self.pair(item);
            let Some(n) = parse_content_length(value) else {
                return Err(Error::new(
                    Status::InvalidHeader,
                    format!(
                        "Content-Length must be a decimal number: '{}'",
                        escape_bytes(value)
                    ),
                ));
            };
            if declared.is_some_and(|d| d != n) {
                return Err(Error::new(
                    Status::InvalidHeader,
                    "Content-Length headers disagree",
                ));
            }
            declared = Some(n);
        }
        Ok(declared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rules_in_wsgirefs_order() {
        assert!(check_status(b"200 OK").is_ok());
        assert!(check_status(b"200 ").is_ok());
        assert!(check_status(b"200  OK ").is_ok());
        assert!(check_status(b"599 \xe9").is_ok());
        let msg = |s: &[u8]| check_status(s).unwrap_err().message;
        assert!(msg(b"200").starts_with("Status must be at least 4"));
        assert!(msg(b"2x0 OK").starts_with("Status message must begin"));
        assert!(msg(b"2000 OK").starts_with("Status message must have a space"));
        assert!(msg(b"200 OK\r\nX: y").starts_with("Control characters"));
        assert!(msg(b"200\tOK").starts_with("Control characters"));
        assert!(msg(b"600 X").contains("between 100 and 599"));
        assert!(msg(b"099 X").contains("between 100 and 599"));
    }

    /// The one-pass check accepts exactly what the checks in wsgiref's order accept.
    #[test]
    fn the_fast_status_check_is_the_ordered_one() {
        let bytes: &[u8] = if cfg!(miri) {
            &[b'1', b'6', b' ', 0x7f]
        } else {
            &[
                b'0', b'1', b'5', b'6', b'9', b' ', b'A', b'\t', 0x7f, 0xe9, 0,
            ]
        };
        let mut statuses: Vec<Vec<u8>> = vec![vec![], b"2".to_vec(), b"20".to_vec()];
        for &a in bytes {
            for &b in bytes {
                for &c in bytes {
                    for &d in bytes {
                        statuses.push(vec![a, b, c, d]);
                        for &e in bytes {
                            statuses.push(vec![a, b, c, d, b'O', e]);
                        }
                    }
                }
            }
        }
        for status in statuses {
            assert_eq!(
                check_status(&status).is_ok(),
                check_status_in_order(&status).is_ok(),
                "{status:?}"
            );
        }
    }

    #[test]
    fn header_rules() {
        assert!(check_header(b"X-A", b"a\tb \xe9").is_ok());
        assert_eq!(
            check_header(b"X A", b"v").unwrap_err().status,
            Status::InvalidHeader
        );
        assert_eq!(
            check_header(b"", b"v").unwrap_err().status,
            Status::InvalidHeader
        );
        assert_eq!(
            check_header(b"X:", b"v").unwrap_err().status,
            Status::InvalidHeader
        );
        assert_eq!(
            check_header(b"X", b"a\nb").unwrap_err().status,
            Status::InvalidHeader
        );
        assert_eq!(
            check_header(b"X", b"a\0b").unwrap_err().status,
            Status::InvalidHeader
        );
        assert_eq!(
            check_header(b"X", b"a\x7f").unwrap_err().status,
            Status::InvalidHeader
        );
        let e = check_header(b"Connection", b"close").unwrap_err();
        assert_eq!(e.status, Status::HopByHopHeader);
        assert_eq!(
            e.message,
            "Hop-by-hop header, 'Connection: close', not allowed"
        );
        assert!(is_hop_by_hop(b"TRAILERS"));
        assert!(!is_hop_by_hop(b"Trailer"));
        assert!(!is_hop_by_hop(b"Proxy-Connection"));
    }

    /// The byte table against the rules written out plainly, for all 256 bytes.
    #[test]
    fn byte_classes_match_the_rules() {
        for b in 0..=255u8 {
            let control = b < 0x20 || b == 0x7f;
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(all_in(&[b'a', b], TCHAR), tchar, "tchar {b:#x}");
            assert_eq!(
                all_in(&[b, b'a'], VALUE),
                !control || b == b'\t',
                "value {b:#x}"
            );
            assert_eq!(all_in(&[b], TEXT), !control, "text {b:#x}");
            let name = [b'X', b];
            assert_eq!(check_header(&name, b"v").is_ok(), tchar, "name {b:#x}");
            // The word-at-a-time value check, the byte at every place of every length.
            let lens: &[usize] = if cfg!(miri) {
                &[1, 8, 9, 17]
            } else {
                &[
                    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                ]
            };
            for &len in lens {
                for pos in 0..len {
                    let mut value = vec![b'a'; len];
                    value[pos] = b;
                    assert_eq!(
                        value_ok(&value),
                        all_in(&value, VALUE),
                        "{b:#x} {len} {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn known_lengths_are_the_known_names() {
        let names: [&[u8]; 11] = [
            b"te",
            b"date",
            b"server",
            b"upgrade",
            b"trailers",
            b"connection",
            b"keep-alive",
            b"content-length",
            b"transfer-encoding",
            b"proxy-authenticate",
            b"proxy-authorization",
        ];
        let bits = names.iter().fold(0u32, |bits, n| bits | 1 << n.len());
        assert_eq!(bits, KNOWN_LENGTHS);
        for name in names {
            assert_ne!(classify(name), HeaderClass::Other);
        }
    }

    #[test]
    fn names_are_classified_whole_and_in_any_case() {
        for name in HOP_BY_HOP {
            assert_eq!(classify(name), HeaderClass::HopByHop);
            assert_eq!(classify(&name.to_ascii_uppercase()), HeaderClass::HopByHop);
            assert_eq!(classify(&name[1..]), HeaderClass::Other);
            let mut longer = name.to_vec();
            longer.push(b's');
            assert_eq!(classify(&longer), HeaderClass::Other);
        }
        assert_eq!(classify(b"DATE"), HeaderClass::Date);
        assert_eq!(classify(b"Server"), HeaderClass::Server);
        assert_eq!(classify(b"Content-length"), HeaderClass::ContentLength);
        assert_eq!(classify(b"Content-Type"), HeaderClass::Other);
        assert_eq!(classify(b"Dates"), HeaderClass::Other);
        assert_eq!(classify(b"Keep_Alive"), HeaderClass::Other);
        let mut h = HeaderList::default();
        h.push(b"X-A", b"1");
        assert!(!h.contains(b"date") && !h.has(HeaderClass::Date));
        h.push(b"dAtE", b"x");
        h.push(b"Server", b"s");
        assert!(h.contains(b"Date") && h.contains(b"SERVER") && h.contains(b"x-a"));
        assert!(!h.contains(b"content-length") && !h.contains(b"X-B"));
        assert_eq!(h.class(1), Some(HeaderClass::Date));
        let mut copy = HeaderList::default();
        copy.copy_from(&h);
        assert!(copy.has(HeaderClass::Server));
        h.clear();
        assert!(!h.has(HeaderClass::Server) && !h.contains(b"date"));
    }

    #[test]
    fn lines_are_the_heads_bytes() {
        let mut h = HeaderList::default();
        h.push(b"X-A", b"1");
        h.push(b"Content-Length", b"5");
        h.push(b"X-Empty", b"");
        assert_eq!(h.lines(), b"X-A: 1\r\nContent-Length: 5\r\nX-Empty: \r\n");
        let mut out = b"head\r\n".to_vec();
        h.lines_without(HeaderClass::ContentLength, &mut out);
        assert_eq!(out, b"head\r\nX-A: 1\r\nX-Empty: \r\n");
        assert_eq!(h.get(1), Some((&b"Content-Length"[..], &b"5"[..])));
        // Past the buffer's first size, and again after a clear (the buffer kept).
        let long = vec![b'v'; 300];
        for _ in 0..2 {
            h.clear();
            h.push(b"X-Long", &long);
            h.push(b"X-B", b"2");
            assert_eq!(h.get(0), Some((&b"X-Long"[..], &long[..])));
            assert_eq!(h.lines().len(), 6 + 2 + 300 + 2 + 8);
            let mut copy = HeaderList::default();
            copy.copy_from(&h);
            assert_eq!(copy.lines(), h.lines());
            assert_eq!(copy.iter().count(), 2);
        }
    }

    #[test]
    fn content_length_is_strict() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"0012"), Some(12));
        for bad in [
            &b""[..],
            b"-5",
            b"+5",
            b" 5",
            b"5 ",
            b"5_0",
            b"0x10",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
        let mut h = HeaderList::default();
        h.push(b"content-length", b"3");
        h.push(b"Content-Length", b"3");
        assert_eq!(h.content_length().unwrap(), Some(3));
        h.push(b"CONTENT-LENGTH", b"4");
        assert!(h.content_length().is_err());
    }
}
