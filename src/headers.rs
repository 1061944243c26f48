//! Response status and header rules, and the header list the handler keeps for a response.
//!
//! Every rule is checked over the full byte length, always: there is no debug switch that
//! turns validation off (wsgiref's `__debug__`-only checks, gh-150726).

use crate::status::{escape_bytes, Error, Status};

/// wsgiref.util's hop-by-hop set, exactly (note `trailers`, the RFC 2616 spelling).
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

/// wsgiref.util.is_hop_by_hop: case-insensitive, whole-name comparison.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// RFC 9110 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Status: 3 ASCII digits from 100 to 599, one space, a reason without control bytes
/// (HTAB included, as wsgiref's patched check). Bytes 0x80-0xFF pass: they are latin-1 text.
pub fn check_status(status: &[u8]) -> Result<(), Error> {
    let fail = |msg: &str| {
        Err(Error::new(
            Status::InvalidStatusLine,
            format!("{msg}: '{}'", escape_bytes(status)),
        ))
    };
    if status.iter().any(|&b| is_control(b)) {
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

/// A header name is a non-empty token; a value has no control byte but HTAB; hop-by-hop
/// names are refused.
pub fn check_header(name: &[u8], value: &[u8]) -> Result<(), Error> {
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(Error::new(
            Status::InvalidHeader,
            format!("Header name must be a token: '{}'", escape_bytes(name)),
        ));
    }
    if value.iter().any(|&b| is_control(b) && b != b'\t') {
        return Err(Error::new(
            Status::InvalidHeader,
            format!(
                "Control characters not allowed in header value of '{}'",
                escape_bytes(name)
            ),
        ));
    }
    if is_hop_by_hop(name) {
        return Err(Error::new(
            Status::HopByHopHeader,
            format!(
                "Hop-by-hop header, '{}: {}', not allowed",
                escape_bytes(name),
                escape_bytes(value)
            ),
        ));
    }
    Ok(())
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

#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    len: usize,
}

/// Headers copied out of the caller's memory into one reusable arena.
#[derive(Clone, Debug, Default)]
pub struct HeaderList {
    arena: Vec<u8>,
    items: Vec<(Span, Span)>,
}

impl HeaderList {
    pub fn clear(&mut self) {
        self.arena.clear();
        self.items.clear();
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn span(&mut self, bytes: &[u8]) -> Span {
        let start = self.arena.len();
        self.arena.extend_from_slice(bytes);
        Span {
            start,
            len: bytes.len(),
        }
    }

    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let name = self.span(name);
        let value = self.span(value);
        self.items.push((name, value));
    }

    pub fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        let (n, v) = *self.items.get(index)?;
        Some((
            &self.arena[n.start..n.start + n.len],
            &self.arena[v.start..v.start + v.len],
        ))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        (0..self.items.len()).filter_map(move |i| self.get(i))
    }

    /// Whether a header with this name is present (case-insensitive, whole name).
    pub fn contains(&self, name: &[u8]) -> bool {
        self.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    pub fn copy_from(&mut self, other: &HeaderList) {
        self.arena.clear();
        self.arena.extend_from_slice(&other.arena);
        self.items.clear();
        self.items.extend_from_slice(&other.items);
    }

    /// The response's declared length: every Content-Length must be a plain decimal number
    /// and all of them must agree.
    pub fn content_length(&self) -> Result<Option<u64>, Error> {
        let mut declared = None;
        for (name, value) in self.iter() {
            if !name.eq_ignore_ascii_case(b"content-length") {
                continue;
            }
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
