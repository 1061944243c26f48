//! Reading back what the library handed to the write hook: the response head and a chunked
//! body, strictly, so that any malformed byte is a failure.

use crate::ffi::Pair;

/// A response head: its first line (`HTTP/1.1 200 OK` or CGI's `Status: 200 OK`) and headers.
pub struct Head {
    pub start: Vec<u8>,
    pub headers: Vec<Pair>,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Splits `wire` into a head and what follows it; Ok(None) while the head is incomplete.
/// Every line must be free of CR, LF and NUL, and every header `token: value` with a value
/// free of control bytes but HTAB.
pub fn parse_head(wire: &[u8]) -> Result<Option<(Head, &[u8])>, String> {
    let Some(end) = find(wire, b"\r\n\r\n") else {
        return Ok(None);
    };
    let mut lines = Vec::new();
    let mut head = &wire[..end];
    while let Some(i) = find(head, b"\r\n") {
        lines.push(&head[..i]);
        head = &head[i + 2..];
    }
    lines.push(head);
    if let Some(bad) = lines
        .iter()
        .find(|l| l.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f))
    {
        return Err(format!("control byte in a head line: {:?}", show(bad)));
    }
    let start = lines[0].to_vec();
    if start.contains(&b'\t') {
        return Err(format!("HTAB in the status line: {:?}", show(&start)));
    }
    let mut headers = Vec::new();
    for line in &lines[1..] {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| format!("header line without a colon: {:?}", show(line)))?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value
            .strip_prefix(b" ")
            .ok_or_else(|| format!("no space after the colon: {:?}", show(line)))?;
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(format!("header name is not a token: {:?}", show(line)));
        }
        headers.push((name.to_vec(), value.to_vec()));
    }
    Ok(Some((Head { start, headers }, &wire[end + 4..])))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Head {
    /// The value of the header called `name` (case-insensitive); repeats must agree.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice());
        let first = found.next()?;
        assert!(
            found.all(|v| v == first),
            "{name} headers disagree in {self:?}"
        );
        Some(first)
    }

    /// The Content-Length: every one plain digits, all of the same number.
    pub fn content_length(&self) -> Option<u64> {
        let mut lengths = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"content-length"))
            .map(|(_, v)| {
                let digits = !v.is_empty() && v.iter().all(u8::is_ascii_digit);
                let n = std::str::from_utf8(v)
                    .ok()
                    .filter(|_| digits)
                    .and_then(|t| t.parse().ok());
                n.unwrap_or_else(|| panic!("bad Content-Length {:?} in {self:?}", show(v)))
            });
        let first = lengths.next()?;
        assert!(
            lengths.all(|n| n == first),
            "Content-Length headers disagree in {self:?}"
        );
        Some(first)
    }

    pub fn chunked(&self) -> bool {
        match self.get("transfer-encoding") {
            None => false,
            Some(b"chunked") => true,
            Some(other) => panic!("unexpected Transfer-Encoding {:?}", show(other)),
        }
    }

    /// The status code of the start line (`HTTP/x.y 200 ...` or `Status: 200 ...`).
    pub fn code(&self) -> u16 {
        let after = self
            .start
            .iter()
            .position(|&b| b == b' ')
            .map_or(0, |i| i + 1);
        std::str::from_utf8(self.start.get(after..after + 3).unwrap_or_default())
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status code in {:?}", show(&self.start)))
    }

    /// Checks the head the library wrote for the app's `status` and `headers`: the start
    /// line; in origin mode a Date first unless the app sent one; the app's headers in their
    /// order, unchanged (but 1xx and 204 carry no Content-Length at all); then at most one
    /// framing header of the library's (Content-Length when the app sent none and the status
    /// allows a body, or chunked in origin mode) and, from an HTTP/1.1 origin server, a
    /// `Connection` header; nothing else.
    pub fn check(&self, origin: bool, version: &str, status: &[u8], headers: &[Pair]) {
        let expected_start = match origin {
            true => [format!("HTTP/{version} ").as_bytes(), status].concat(),
            false => [b"Status: ", status].concat(),
        };
        assert_eq!(
            show(&self.start),
            show(&expected_start),
            "start line of {self:?}"
        );
        let code = self.code();
        let is = |name: &[u8], wanted: &str| name.eq_ignore_ascii_case(wanted.as_bytes());
        let app_has = |wanted: &str| headers.iter().any(|(n, _)| is(n, wanted));
        let no_length = code < 200 || code == 204;
        let app_headers: Vec<Pair> = headers
            .iter()
            .filter(|(n, _)| !(no_length && is(n, "content-length")))
            .cloned()
            .collect();
        let mut rest = &self.headers[..];
        if origin && !app_has("date") {
            let (name, value) = rest
                .first()
                .unwrap_or_else(|| panic!("no Date in {self:?}"));
            assert!(
                name == b"Date" && value.len() == 29 && value.ends_with(b" GMT"),
                "{self:?}"
            );
            rest = &rest[1..];
        }
        assert!(
            rest.len() >= app_headers.len() && rest[..app_headers.len()] == *app_headers,
            "the app's headers {:?} not sent as given: {self:?}",
            show_pairs(&app_headers)
        );
        rest = &rest[app_headers.len()..];
        let bodiless = no_length || code == 304;
        match rest.first() {
            Some((name, value))
                if name == b"Content-Length" && !app_has("content-length") && !bodiless =>
            {
                assert!(value.iter().all(u8::is_ascii_digit), "{self:?}");
                rest = &rest[1..];
            }
            Some((name, value))
                if origin && name == b"Transfer-Encoding" && value == b"chunked" =>
            {
                rest = &rest[1..];
            }
            _ => {}
        }
        match rest {
            [] => {}
            [(name, value)]
                if origin
                    && version == "1.1"
                    && name == b"Connection"
                    && (value == b"close" || value == b"keep-alive") => {}
            extra => panic!(
                "headers the app did not send: {:?} in {self:?}",
                show_pairs(extra)
            ),
        }
    }

    /// The library's `Connection: close`.
    pub fn closes(&self) -> bool {
        self.get("connection") == Some(b"close")
    }
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("start", &show(&self.start))
            .field("headers", &show_pairs(&self.headers))
            .finish()
    }
}

/// A chunked body as far as it went.
pub struct Chunks<'a> {
    pub data: Vec<u8>,
    /// Where the last chunk (`0\r\n\r\n`, written in full or in part) starts.
    pub last_chunk: Option<usize>,
    /// `0\r\n\r\n` was written in full.
    pub complete: bool,
    /// Bytes after the complete body.
    pub trailing: &'a [u8],
}

/// Reads a chunked body: lower-case hex sizes without extensions, no empty chunk before the
/// last, each chunk's data followed by CRLF. A body cut anywhere is fine (`complete` false);
/// any other deviation is an error.
pub fn parse_chunked(body: &[u8]) -> Result<Chunks<'_>, String> {
    let mut data = Vec::new();
    let mut wire = body;
    loop {
        let at = body.len() - wire.len();
        let cut = |data, last: bool| Chunks {
            data,
            last_chunk: last.then_some(at),
            complete: false,
            trailing: &[],
        };
        let digits = wire
            .iter()
            .take_while(|b| b"0123456789abcdef".contains(b))
            .count();
        let (size, after) = wire.split_at(digits);
        let bad_size =
            digits == 0 && !wire.is_empty() || digits > 16 || digits > 1 && size[0] == b'0';
        if bad_size || !b"\r\n".starts_with(&after[..after.len().min(2)]) {
            return Err(format!(
                "bad chunk size line: {:?}",
                show(&wire[..wire.len().min(24)])
            ));
        }
        if after.len() < 2 {
            return Ok(cut(data, size == b"0"));
        }
        let size = usize::from_str_radix(std::str::from_utf8(size).unwrap_or_default(), 16)
            .map_err(|e| format!("chunk size: {e}"))?;
        let (chunk, tail) = after[2..].split_at(after[2..].len().min(size));
        data.extend_from_slice(chunk);
        if chunk.len() < size {
            return Ok(cut(data, false));
        }
        if !b"\r\n".starts_with(&tail[..tail.len().min(2)]) {
            return Err(format!(
                "chunk data not followed by CRLF: {:?}",
                show(&tail[..tail.len().min(24)])
            ));
        }
        match (tail.len() >= 2, size == 0) {
            (false, last) => return Ok(cut(data, last)),
            (true, true) => {
                let trailing = &tail[2..];
                return Ok(Chunks {
                    data,
                    last_chunk: Some(at),
                    complete: true,
                    trailing,
                });
            }
            (true, false) => wire = &tail[2..],
        }
    }
}

/// Checks the body of a response that went out in full: empty when the response carries none
/// (HEAD, 1xx, 204, 304), otherwise what the app produced cut to the Content-Length, or all of
/// it in complete chunks; nothing may follow. Returns the body's length.
pub fn check_body(head: &Head, rest: &[u8], app: &[u8], no_body: bool) -> usize {
    let body = match head.chunked() {
        true => {
            let chunks = parse_chunked(rest).unwrap_or_else(|e| panic!("{e}"));
            assert!(chunks.complete, "chunked body cut short: {:?}", show(rest));
            assert!(
                chunks.trailing.is_empty(),
                "bytes after the last chunk: {:?}",
                show(rest)
            );
            chunks.data
        }
        false => rest.to_vec(),
    };
    let expected = match (no_body, head.content_length()) {
        (true, _) => &[][..],
        (false, Some(n)) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            assert!(
                app.len() >= n,
                "Content-Length {n} but the app produced {} bytes",
                app.len()
            );
            &app[..n]
        }
        (false, None) => app,
    };
    assert_eq!(show(&body), show(expected), "body of {head:?}");
    body.len()
}

/// wsgiref's error page, the library's default: what an app that failed before any output gets.
pub const ERROR_BODY: &[u8] = b"A server error occurred.  Please contact the administrator.";

/// Checks that `wire` is exactly the default error page, in full (no body for HEAD).
pub fn check_error_page(wire: &[u8], origin: bool, version: &str, head_request: bool) {
    let (head, rest) = parse_head(wire)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no complete error page: {:?}", show(wire)));
    let headers = [(b"Content-Type".to_vec(), b"text/plain".to_vec())];
    head.check(origin, version, b"500 Internal Server Error", &headers);
    assert_eq!(
        head.content_length(),
        Some(ERROR_BODY.len() as u64),
        "{head:?}"
    );
    check_body(&head, rest, ERROR_BODY, head_request);
}

/// Bytes as text for messages: printable ASCII as is, the rest escaped (`{:?}` quotes it).
pub fn show(bytes: &[u8]) -> Shown {
    Shown(bytes.escape_ascii().to_string())
}

#[derive(PartialEq, Eq)]
pub struct Shown(String);

impl std::fmt::Debug for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

pub fn show_pairs(pairs: &[Pair]) -> Vec<(Shown, Shown)> {
    pairs.iter().map(|(n, v)| (show(n), show(v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_strictly() {
        let wire = b"HTTP/1.1 200 OK\r\nA: b\tc\r\nX-Y:  z\r\n\r\nbody";
        let (head, rest) = parse_head(wire).unwrap().unwrap();
        assert_eq!((head.code(), rest), (200, &b"body"[..]));
        assert_eq!(head.headers[1], (b"X-Y".to_vec(), b" z".to_vec()));
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nA: b\r\n")
            .unwrap()
            .is_none());
        for bad in [
            &b"HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA:b\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA B: c\r\n\r\n",
            b"HTTP/1.1 200\0OK\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{:?}", show(bad));
        }
    }

    #[test]
    fn chunked_bodies_may_be_cut_but_not_malformed() {
        let full = parse_chunked(b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\nX").unwrap();
        assert_eq!(full.data, b"abc0123456789abcdef");
        assert_eq!(
            (full.last_chunk, full.complete, full.trailing),
            (Some(30), true, &b"X"[..])
        );
        let cut = parse_chunked(b"3\r\nabc\r\n0\r\n").unwrap();
        assert_eq!((cut.last_chunk, cut.complete), (Some(8), false));
        assert_eq!(parse_chunked(b"3\r\nab").unwrap().data, b"ab");
        for bad in [
            &b"3\r\nabcd\r\n"[..],
            b"0003\r\nabc\r\n",
            b"3;x=y\r\nabc\r\n",
            b"A\r\n",
        ] {
            assert!(parse_chunked(bad).is_err(), "{:?}", show(bad));
        }
    }
}
