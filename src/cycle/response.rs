//! The response: start_response and its checks, the head (status line or CGI `Status:`,
//! Date, Server, the app's headers, the framing headers the decision calls for), body blocks
//! under that framing, and the end of the body. Writes are coalesced: the head, the first
//! block and its chunk framing go to the write hook in one call, and so does a final block
//! with the last chunk.

use std::mem;

use super::{Output, Phase, Request};
use crate::date::{date_line, http_date};
use crate::framing::{
    decide, BodyFraming, BodyShape, ClientAsks, ConnectionHeader, Facts, Framing, LengthHeader,
    Protocol, RequestBody,
};
use crate::headers::{check_classified, check_header, check_status, HeaderClass};
use crate::host::{Host, ResponseHead};
use crate::settings::{TOO_LARGE_BODY, TOO_LARGE_STATUS};
use crate::status::{Error, Status};

/// A first body block up to this size goes to the write hook in the same call as the head.
const COALESCE_LIMIT: usize = 16 * 1024;

/// Ends a chunked body.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

impl<H: Host> Request<'_, H> {
    /// start_response(status, headers, exc_info). Everything is validated here, so nothing
    /// invalid can reach the wire; a failed call changes nothing (a first call's valid
    /// response stays, and without one no response is started).
    pub fn start_response<'h>(
        &mut self,
        status: &[u8],
        headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
        exc_info: bool,
    ) -> Result<(), Error> {
        let result = self.start_response_checked(status, headers, exc_info);
        self.record(result)
    }

    fn start_response_checked<'h>(
        &mut self,
        status: &[u8],
        headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
        exc_info: bool,
    ) -> Result<(), Error> {
        let st = &mut *self.st;
        match (exc_info, st.phase) {
            (true, Phase::HeadSent(_)) => {
                return Err(Error::new(
                    Status::HeadersAlreadySent,
                    "start_response() with exc_info after the headers were sent: the error is re-raised",
                ))
            }
            (false, Phase::Refused | Phase::StatusSet | Phase::HeadSent(_)) => {
                return Err(Error::new(
                    Status::HeadersAlreadySet,
                    "Headers already set!",
                ))
            }
            _ => {}
        }
        if st.phase == Phase::Unstarted {
            st.phase = Phase::Refused;
        }
        // Everything is checked into `staged_headers` first: a refused call (an exc_info call
        // with a bad status, say) leaves the previous, valid response in place.
        check_status(status)?;
        st.staged_headers.clear();
        for (name, value) in headers {
            // Checked and classified in one pass (hop-by-hop, Date, Server, Content-Length).
            let class = check_classified(name, value)?;
            st.staged_headers.push_classified(name, value, class);
        }
        let app_length = st.staged_headers.content_length()?;
        if self.settings.validate {
            if let Some(rule) = crate::validate::check_response(status, &st.staged_headers) {
                return Err(Error::new(
                    Status::InvalidHeader,
                    format!("validate: {rule}"),
                ));
            }
        }
        mem::swap(&mut st.headers, &mut st.staged_headers);
        st.app_length = app_length;
        st.status.clear();
        st.status.extend_from_slice(status);
        st.phase = Phase::StatusSet;
        Ok(())
    }

    /// An interim (1xx) response before the final one, such as 103 Early Hints: validated
    /// like start_response (1xx but 100 and 101, which belong to the library and to protocol
    /// switches), then written at once as bytes to an HTTP/1.1 client of a handler speaking
    /// HTTP/1.1, or handed to a structured host. Elsewhere (an HTTP/1.0 client, CGI output, a
    /// structured host without interim responses) it is skipped: RFC 9110 forbids 1xx to
    /// HTTP/1.0 clients, and hints are optional. Ok(true) when it went out.
    pub fn send_interim<'h>(
        &mut self,
        status: &[u8],
        headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    ) -> Result<bool, Error> {
        let result = self.send_interim_checked(status, headers);
        self.record(result)
    }

    fn send_interim_checked<'h>(
        &mut self,
        status: &[u8],
        headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    ) -> Result<bool, Error> {
        if matches!(self.st.phase, Phase::HeadSent(_)) {
            return Err(Error::new(
                Status::InvalidState,
                "an interim response after the final response started",
            ));
        }
        check_status(status)?;
        if status[0] != b'1' || status.starts_with(b"100") || status.starts_with(b"101") {
            return Err(Error::new(
                Status::InvalidStatusLine,
                "an interim status is 1xx other than 100 and 101",
            ));
        }
        let st = &mut *self.st;
        st.head_headers.clear();
        for (name, value) in headers {
            check_header(name, value)?;
            if name.eq_ignore_ascii_case(b"content-length") {
                return Err(Error::new(
                    Status::InvalidHeader,
                    "an interim response has no Content-Length",
                ));
            }
            st.head_headers.push(name, value);
        }
        self.check_output()?;
        if self.host.takes_head() {
            let st = &*self.st;
            let head = ResponseHead {
                code: parse_code(status),
                reason: &status[4..],
                headers: &st.head_headers,
                body: BodyFraming::Omitted,
                content_length: None,
            };
            return match self.host.send_interim(&head) {
                Ok(sent) => Ok(sent),
                Err(e) => Err(self.output_failure("send_interim", e)),
            };
        }
        if !self.speaks_http11() {
            return Ok(false);
        }
        let mut out = mem::take(&mut self.st.out);
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status);
        out.extend_from_slice(b"\r\n");
        for (name, value) in self.st.head_headers.iter() {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        let result = self.write_all(&out).and_then(|()| self.flush());
        out.clear();
        self.st.out = out;
        result.map(|()| true)
    }

    /// The write callable: commits the head (even for empty data, as PEP 3333 says of
    /// write), then sends `data` and flushes.
    /// In non-blocking mode it never waits: what the client does not take at once is
    /// queued, and a write is refused (WouldBlock, nothing sent) while the queue holds the
    /// high-water mark or more.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        let result = self
            .check_queue_room()
            .and_then(|()| self.write_block(data, false));
        self.record(result)
    }

    /// Sends one body block, and the head first if it has not gone out. `last` says no block
    /// follows: before the head it makes the block the whole body (Content-Length computed),
    /// and a chunked body's last chunk goes out in the same write.
    pub(super) fn write_block(&mut self, data: &[u8], last: bool) -> Result<(), Error> {
        self.check_output()?;
        match self.st.phase {
            Phase::Unstarted | Phase::Refused => {
                return Err(Error::new(
                    Status::InvalidState,
                    "write() before start_response()",
                ))
            }
            Phase::StatusSet => self.start_head(body_shape(data, last), false)?,
            Phase::HeadSent(_) => self.st.out.clear(),
        }
        self.send_body(data, last)?;
        self.flush()
    }

    pub(super) fn check_output(&self) -> Result<(), Error> {
        match self.st.output {
            Output::Open => Ok(()),
            Output::ClientGone => Err(Error::new(Status::ClientGone, "client went away")),
            Output::Failed => Err(Error::new(
                Status::IoError,
                "an earlier write to the client failed",
            )),
        }
    }

    /// How the body's end is told, once the head went out.
    fn body_framing(&self) -> Option<BodyFraming> {
        self.st.framing().map(|f| f.body)
    }

    /// What the request body will be when the head goes out: read, drainable, or lost.
    fn request_body_state(&self) -> RequestBody {
        let input = &self.st.input;
        if input.until_eof() {
            // The end of the connection is the body's end: it cannot carry another request.
            RequestBody::Lost
        } else if input.fully_read() {
            RequestBody::Done
        } else if input.failed()
            || (self.st.expect_continue && input.body_left())
            || !input.drainable_within(self.settings.drain_limit)
        {
            // A client still waiting for `100 Continue` may never send the body.
            RequestBody::Lost
        } else {
            RequestBody::Drainable
        }
    }

    /// Decides the framing for a body of this shape and assembles the head in `out`
    /// (nothing is written yet).
    pub(super) fn start_head(&mut self, body: BodyShape, error_page: bool) -> Result<(), Error> {
        let s = self.settings;
        let structured = self.host.takes_head();
        // The client's protocol matters only to an origin server writing bytes, and its
        // Connection header only to one speaking HTTP/1.1 (see `decide`): the other
        // lookups are skipped.
        let client_matters = s.origin_server && !structured;
        let server_http11 = s.http11();
        let (head_request, client, client_asks) = {
            let env = self.environ.borrow();
            (
                env.get(b"REQUEST_METHOD") == Some(b"HEAD"),
                if client_matters {
                    Protocol::parse(env.get(b"SERVER_PROTOCOL"))
                } else {
                    Protocol::Other
                },
                if client_matters && server_http11 {
                    ClientAsks::parse(env.get(b"HTTP_CONNECTION"))
                } else {
                    ClientAsks::Nothing
                },
            )
        };
        let code = parse_code(&self.st.status);
        let facts = Facts {
            code,
            head_request,
            origin_server: s.origin_server,
            server_http11,
            client,
            client_asks,
            app_length: self.st.app_length,
            body,
            request_body: self.request_body_state(),
            error_page,
            structured,
        };
        let framing = decide(&facts);
        let st = &mut *self.st;
        st.phase = Phase::HeadSent(framing);
        st.sent_code = code;
        st.out.clear();
        if facts.structured {
            return self.send_structured_head(code, framing);
        }
        if !framing.head {
            return Ok(());
        }
        let out = &mut st.out;
        if s.origin_server {
            out.extend_from_slice(s.status_prefix());
            out.extend_from_slice(&st.status);
            out.extend_from_slice(b"\r\n");
            if !st.headers.has(HeaderClass::Date) {
                out.extend_from_slice(&date_line(self.host.unix_seconds()));
            }
            if let Some(server) = s.server_line() {
                if !st.headers.has(HeaderClass::Server) {
                    out.extend_from_slice(server);
                }
            }
        } else {
            out.extend_from_slice(b"Status: ");
            out.extend_from_slice(&st.status);
            out.extend_from_slice(b"\r\n");
        }
        if framing.length_header != LengthHeader::AppOwn
            && st.headers.has(HeaderClass::ContentLength)
        {
            st.headers.lines_without(HeaderClass::ContentLength, out);
        } else {
            out.extend_from_slice(st.headers.lines());
        }
        if let LengthHeader::Computed(len) = framing.length_header {
            out.extend_from_slice(length_line(len, &mut [0u8; LENGTH_LINE_MAX]));
        }
        if framing.body == BodyFraming::Chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        match framing.connection {
            ConnectionHeader::None => {}
            ConnectionHeader::Close => out.extend_from_slice(b"Connection: close\r\n"),
            ConnectionHeader::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    /// The head as data for a host that frames the response itself: the headers the byte
    /// writer would send (Date, Server, the app's), the length apart, no framing headers.
    fn send_structured_head(&mut self, code: u16, framing: Framing) -> Result<(), Error> {
        let s = self.settings;
        let st = &mut *self.st;
        let list = &mut st.head_headers;
        list.clear();
        if s.origin_server {
            if !st.headers.contains(b"date") {
                list.push(b"Date", &http_date(self.host.unix_seconds()));
            }
            if let Some(software) = s.server_software() {
                if !st.headers.contains(b"server") {
                    list.push(b"Server", software);
                }
            }
        }
        for (name, value) in st.headers.iter() {
            if !name.eq_ignore_ascii_case(b"content-length") {
                list.push(name, value);
            }
        }
        let head = ResponseHead {
            code,
            reason: &st.status[4..],
            headers: &st.head_headers,
            body: framing.body,
            content_length: match framing.length_header {
                LengthHeader::Absent => None,
                LengthHeader::AppOwn => st.app_length,
                LengthHeader::Computed(len) => Some(len),
            },
        };
        match self.host.send_head(&head) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.output_failure("send_head", e)),
        }
    }

    /// Tells a structured host the body ended (completely or not), once per response, after
    /// every byte of it (so later than this call while bytes wait in the queue).
    pub(super) fn end_body(&mut self, complete: bool) -> Result<(), Error> {
        if !self.host.takes_head()
            || self.st.framing().is_none()
            || mem::replace(&mut self.st.body_ended, true)
        {
            return Ok(());
        }
        if self.output_waits() {
            self.st.end_due = Some(complete);
            return Ok(());
        }
        match self.host.end_body(complete) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.output_failure("end_body", e)),
        }
    }

    /// How much of a `len`-byte block may still go out under the framing; beyond a
    /// Content-Length the rest is dropped and logged once (wsgiref sends it: 8.2.4).
    pub(super) fn body_allowance(&mut self, len: u64) -> u64 {
        let (allowed, overflow) = match self.body_framing() {
            // HEAD, 1xx, 204, 304: the app's bytes are consumed but never sent (wsgiref
            // sends them: weakness 8.2.2-3).
            None | Some(BodyFraming::Omitted) => (0, false),
            Some(BodyFraming::Length(declared)) => {
                let allowed = declared.saturating_sub(self.st.body_sent).min(len);
                (allowed, allowed < len)
            }
            Some(BodyFraming::Chunked | BodyFraming::UntilClose | BodyFraming::HostFramed) => {
                (len, false)
            }
        };
        if overflow && !mem::replace(&mut self.st.overflow_logged, true) {
            self.log(b"response body longer than its Content-Length; the extra bytes were dropped");
        }
        allowed
    }

    /// Sends what `out` holds (the head, or nothing) and then a body block, as a chunk when
    /// the response is chunked (with the last chunk after it when `last`), in as few write
    /// calls as possible.
    fn send_body(&mut self, data: &[u8], last: bool) -> Result<(), Error> {
        let n = self.body_allowance(data.len() as u64);
        // At most data.len(), so it fits a usize.
        let data = &data[..n as usize];
        let chunked = self.body_framing() == Some(BodyFraming::Chunked);
        // An empty chunk would end the body: empty blocks send no chunk.
        let chunk = chunked && !data.is_empty();
        let terminate = chunked && last && !self.st.terminated;
        let mut out = mem::take(&mut self.st.out);
        if chunk {
            let mut digits = [0u8; 16];
            out.extend_from_slice(format_hex(data.len() as u64, &mut digits));
            out.extend_from_slice(b"\r\n");
        }
        // What follows the data: the chunk's CRLF, the last chunk, both, or nothing.
        let tail: &[u8] = match (chunk, terminate) {
            (false, false) => b"",
            (true, false) => b"\r\n",
            (false, true) => LAST_CHUNK,
            (true, true) => b"\r\n0\r\n\r\n",
        };
        let result = if out.is_empty() && tail.is_empty() {
            // A later block of a body that needs no framing: no copy.
            self.write_all(data)
        } else if out.len() + data.len() + tail.len() <= COALESCE_LIMIT {
            out.extend_from_slice(data);
            out.extend_from_slice(tail);
            self.write_all(&out)
        } else {
            self.write_all(&out)
                .and_then(|()| self.write_all(data))
                .and_then(|()| self.write_all(tail))
        };
        out.clear();
        self.st.out = out;
        result?;
        // Counted once handed over: an access log never claims bytes a failed write lost.
        self.st.body_sent += data.len() as u64;
        if terminate {
            self.st.terminated = true;
        }
        Ok(())
    }

    /// wsgiref's finish_content: an empty body gets its head (Content-Length: 0 unless the
    /// app set one or the response carries no body); a chunked body gets its last chunk
    /// unless it went out with the final block; then a body shorter than its Content-Length
    /// is reported.
    pub(super) fn finish_content(&mut self) -> Result<(), Error> {
        // A write that failed earlier (and that the application chose to ignore) means the
        // body is already incomplete: no last chunk, no flush, nothing that looks finished.
        self.check_output()?;
        match self.st.phase {
            Phase::Unstarted | Phase::Refused => {
                return Err(Error::new(
                    Status::AppError,
                    "the application returned without calling start_response()",
                ))
            }
            Phase::StatusSet => self.write_block(b"", true)?,
            Phase::HeadSent(_) => {
                if self.body_framing() == Some(BodyFraming::Chunked) && !self.st.terminated {
                    self.write_all(LAST_CHUNK)?;
                    self.st.terminated = true;
                    self.flush()?;
                }
            }
        }
        if let Some(BodyFraming::Length(declared)) = self.body_framing() {
            if self.st.body_sent < declared {
                return Err(Error::new(
                    Status::ResponseIncomplete,
                    format!(
                        "response body shorter than its Content-Length ({} of {declared} bytes)",
                        self.st.body_sent
                    ),
                ));
            }
        }
        self.end_body(true)
    }

    /// wsgiref's error_output: start_response(error_status, error_headers, exc_info) and a
    /// one-block body, so Content-Length is computed.
    pub(super) fn send_error_page(&mut self) -> Result<(), Error> {
        let s = self.settings;
        let st = &mut *self.st;
        // A body past the size limit is the client's fault: 413, whatever the app's error
        // page says (that page describes the app's failures), with the default page's header.
        let too_large = st.input.too_large();
        st.status.clear();
        if too_large {
            st.status.extend_from_slice(TOO_LARGE_STATUS);
            st.headers.clear();
            st.headers.push(b"Content-Type", b"text/plain");
        } else {
            st.status.extend_from_slice(s.error_status());
            st.headers.copy_from(s.error_headers());
        }
        st.app_length = st.headers.content_length()?;
        st.phase = Phase::StatusSet;
        st.body_sent = 0;
        let body = if too_large {
            TOO_LARGE_BODY
        } else {
            s.error_body()
        };
        self.start_head(body_shape(body, true), true)?;
        self.send_body(body, true)?;
        self.flush()?;
        self.end_body(true)
    }
}

/// A block's shape: the whole body when no block follows it.
fn body_shape(block: &[u8], last: bool) -> BodyShape {
    if last {
        BodyShape::Whole(block.len() as u64)
    } else {
        BodyShape::Streamed
    }
}

/// The code of a status that passed check_status.
fn parse_code(status: &[u8]) -> u16 {
    status[..3]
        .iter()
        .fold(0, |code, d| code * 10 + u16::from(d - b'0'))
}

/// Writes `n` in lower-case hexadecimal into `buf`, returning the digits.
pub(super) fn format_hex(mut n: u64, buf: &mut [u8; 16]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// `Content-Length: ` and 20 digits (u64::MAX) and CRLF.
const LENGTH_LINE_MAX: usize = 16 + 20 + 2;

/// Writes `Content-Length: <n>\r\n` at the end of `buf`, returning the line.
fn length_line(mut n: u64, buf: &mut [u8; LENGTH_LINE_MAX]) -> &[u8] {
    let mut i = buf.len() - 2;
    buf[i..].copy_from_slice(b"\r\n");
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf[i - 16..i].copy_from_slice(b"Content-Length: ");
    &buf[i - 16..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_lines() {
        for n in [0, 7, 10, 13, 65_536, 1 << 40, u64::MAX] {
            let line = length_line(n, &mut [0u8; LENGTH_LINE_MAX]).to_vec();
            assert_eq!(line, format!("Content-Length: {n}\r\n").into_bytes());
        }
    }
}
