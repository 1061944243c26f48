//! One request cycle, wsgiref's `BaseHandler.run` with its weaknesses fixed:
//! setup_environ → application → finish_response (iterate, write, finish_content) → close,
//! with the error page before headers, a logged truncation after them, and a quiet end when
//! the client goes away. All per-request buffers live in `State` and are reused.

use std::cell::{RefCell, RefMut};
use std::mem;

use crate::date::http_date_now;
use crate::environ::Environ;
use crate::headers::{check_header, check_status, HeaderList};
use crate::host::{is_disconnect, write_fully, BodySource, Host, WriteFailure};
use crate::input::Input;
use crate::settings::Settings;
use crate::status::{Error, Status};

/// A first body block up to this size goes to the write hook in the same call as the headers.
const COALESCE_LIMIT: usize = 16 * 1024;

/// What the application returned as its body.
enum Body<B> {
    /// Nothing yet: an empty body.
    Unset,
    /// One block, copied into `State::bytes_body`.
    Bytes,
    /// A chunk iterator (or a file).
    Source(B),
    /// Taken by finish_response or closed; no new body may be set.
    Taken,
}

/// Per-request state, kept in the handler so its buffers are reused.
struct State<B> {
    input: Input,
    status: Vec<u8>,
    has_status: bool,
    start_response_called: bool,
    headers: HeaderList,
    /// Where start_response validates a new header list before it replaces `headers`.
    staged_headers: HeaderList,
    /// The app's Content-Length, or the one the library computed.
    declared_length: Option<u64>,
    headers_sent: bool,
    /// The status code that went out (0 before the headers did), for the host's access log.
    sent_code: u16,
    /// The response carries no body (HEAD, 1xx, 204, 304): body bytes are not written.
    no_body: bool,
    /// The body goes out in chunked transfer coding (HTTP/1.1 on both sides, length unknown).
    chunked: bool,
    /// The client sent `Expect: 100-continue` and has not been told to go on yet.
    expect_continue: bool,
    /// The last cycle left the connection fit for another request (see `keep_alive`).
    keep_alive: bool,
    body_sent: u64,
    body: Body<B>,
    bytes_body: Vec<u8>,
    out: Vec<u8>,
    /// One log line is assembled here, so it reaches the stderr hook in one call.
    log_line: Vec<u8>,
    /// The message of the app's last failure (its own, or a failed gw call's), for the log.
    app_message: String,
    client_gone: bool,
    io_failed: bool,
    overflow_logged: bool,
    input_failure_logged: bool,
}

impl<B> Default for State<B> {
    fn default() -> State<B> {
        State {
            input: Input::default(),
            status: Vec::new(),
            has_status: false,
            start_response_called: false,
            headers: HeaderList::default(),
            staged_headers: HeaderList::default(),
            declared_length: None,
            headers_sent: false,
            sent_code: 0,
            no_body: false,
            chunked: false,
            expect_continue: false,
            keep_alive: false,
            body_sent: 0,
            body: Body::Unset,
            bytes_body: Vec::new(),
            out: Vec::new(),
            log_line: Vec::new(),
            app_message: String::new(),
            client_gone: false,
            io_failed: false,
            overflow_logged: false,
            input_failure_logged: false,
        }
    }
}

impl<B> State<B> {
    /// Forgets the previous request; keeps every buffer's capacity.
    fn reset(&mut self) {
        self.status.clear();
        self.has_status = false;
        self.start_response_called = false;
        self.headers.clear();
        self.declared_length = None;
        self.headers_sent = false;
        self.sent_code = 0;
        self.no_body = false;
        self.chunked = false;
        self.expect_continue = false;
        self.keep_alive = false;
        self.body_sent = 0;
        self.body = Body::Unset;
        self.bytes_body.clear();
        self.app_message.clear();
        self.client_gone = false;
        self.io_failed = false;
        self.overflow_logged = false;
        self.input_failure_logged = false;
    }
}

/// A handler: the host's I/O, the settings, and the reusable per-request state.
pub struct Handler<H: Host> {
    pub host: H,
    pub settings: Settings,
    /// The request environ. It sits apart from `state`, behind a RefCell, because the
    /// application may hold a pointer to it for the whole request: the cycle only ever
    /// borrows it for a moment, never through an exclusive borrow of the whole state.
    environ: RefCell<Environ>,
    state: State<H::Body>,
}

/// The request an application works on during one cycle.
pub struct Request<'a, H: Host> {
    host: &'a mut H,
    settings: &'a Settings,
    environ: &'a RefCell<Environ>,
    st: &'a mut State<H::Body>,
}

impl<H: Host> Handler<H> {
    pub fn new(host: H) -> Handler<H> {
        Handler {
            host,
            settings: Settings::default(),
            environ: RefCell::new(Environ::new()),
            state: State::default(),
        }
    }

    /// Runs one whole cycle. Ok(()) when the response went out in full; otherwise the status
    /// says what happened (AppError: error page sent; ResponseIncomplete: close the
    /// connection; ClientGone; IoError) and the message why.
    pub fn run(&mut self, app: impl FnOnce(&mut Request<'_, H>) -> Status) -> Result<(), Error> {
        self.state.reset();
        let mut req = Request {
            host: &mut self.host,
            settings: &self.settings,
            environ: &self.environ,
            st: &mut self.state,
        };
        let result = match req.setup_environ() {
            Ok(()) => match app(&mut req) {
                Status::Ok => req.finish_response(),
                failed => {
                    req.close_body();
                    Err(req.app_failure(failed))
                }
            },
            Err(e) => Err(e),
        };
        // An application that ignored a failed write still gets the cycle's true outcome.
        let result = match result {
            Ok(()) if req.st.client_gone => Err(Error::new(Status::ClientGone, "client went away")),
            Ok(()) if req.st.io_failed => Err(Error::new(
                Status::IoError,
                "a write to the client failed and the application went on",
            )),
            other => other,
        };
        let outcome = match result {
            Ok(()) => Ok(()),
            Err(e) => Err(req.handle_error(e)),
        };
        req.st.keep_alive = outcome.is_ok() && req.connection_reusable();
        req.st.body = Body::Unset;
        outcome
    }

    /// Whether the last cycle left the connection fit for another request: it ended well,
    /// both sides speak HTTP/1.1 and the client did not ask to close, the response was framed
    /// (Content-Length, chunked, or no body) and the request body was read to its end.
    pub fn keep_alive(&self) -> bool {
        self.state.keep_alive
    }

    /// The environ of the last request (empty before the first).
    pub fn environ(&mut self) -> &Environ {
        self.environ.get_mut()
    }

    /// The last request's status code (0 when no headers went out) and the body bytes that
    /// went out: what an access log line needs.
    pub fn last_response(&self) -> (u16, u64) {
        (self.state.sent_code, self.state.body_sent)
    }
}

impl<H: Host> Request<'_, H> {
    // ---- environ -------------------------------------------------------------------------

    /// wsgiref's setup_environ: base environ, add_cgi_vars, the wsgi.* keys, SERVER_SOFTWARE.
    fn setup_environ(&mut self) -> Result<(), Error> {
        let s = self.settings;
        let mut env = self.environ.borrow_mut();
        env.reset(s.os_environ.clone());
        self.host.add_cgi_vars(&mut env)?;
        let flag = |b: bool| if b { &b"1"[..] } else { &b"0"[..] };
        let scheme = crate::util::guess_scheme(env.get(b"HTTPS"));
        env.set(b"wsgi.input", b"gw_input")?;
        env.set(b"wsgi.errors", b"gw_errors")?;
        env.set(b"wsgi.version", b"1.0")?;
        env.set(b"wsgi.run_once", flag(s.run_once))?;
        env.set(b"wsgi.url_scheme", scheme)?;
        env.set(b"wsgi.multithread", flag(s.multithread))?;
        env.set(b"wsgi.multiprocess", flag(s.multiprocess))?;
        if s.file_wrapper {
            env.set(b"wsgi.file_wrapper", b"gw_request_set_body_file")?;
        }
        env.set(b"wsgi.input_terminated", b"1")?;
        if s.origin_server {
            if let Some(software) = s.server_software() {
                env.set_default(b"SERVER_SOFTWARE", software)?;
            }
        }
        self.st.input.reset(env.get(b"CONTENT_LENGTH"));
        drop(env);
        self.st.expect_continue = self.speaks_http11()
            && self.environ_has(b"HTTP_EXPECT", |v| v.eq_ignore_ascii_case(b"100-continue"));
        Ok(())
    }

    /// Whether the environ holds `name` with a value that passes `test`. The environ is
    /// borrowed only for the call: the application may hold a pointer to it.
    fn environ_has(&self, name: &[u8], test: impl FnOnce(&[u8]) -> bool) -> bool {
        self.environ.borrow().get(name).is_some_and(test)
    }

    /// An origin server with http_version 1.1 answering an HTTP/1.1 client.
    fn speaks_http11(&self) -> bool {
        self.settings.origin_server
            && self.settings.http_version() == b"1.1"
            && self.environ_has(b"SERVER_PROTOCOL", |p| p.eq_ignore_ascii_case(b"HTTP/1.1"))
    }

    fn connection_reusable(&self) -> bool {
        let st = &*self.st;
        let client_closes = self.environ_has(b"HTTP_CONNECTION", |v| {
            v.split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
        });
        let framed = st.headers_sent && (st.no_body || st.chunked || st.declared_length.is_some());
        self.speaks_http11() && !client_closes && framed && st.input.fully_read()
    }

    /// PEP 3333's second way to honour `Expect: 100-continue`: the interim response goes out
    /// when the application first reads a body that is still to come, and never once the
    /// final response has started.
    fn continue_if_expected(&mut self) -> Result<(), Error> {
        if !std::mem::take(&mut self.st.expect_continue)
            || self.st.headers_sent
            || !self.st.input.body_left()
        {
            return Ok(());
        }
        self.check_output()?;
        self.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        self.flush()
    }

    /// The request environ; the app may read and change it.
    pub fn environ(&self) -> RefMut<'_, Environ> {
        self.environ.borrow_mut()
    }

    /// The request environ's cell, for a caller that lends the environ out by pointer for
    /// the whole request (the C ABI): such a pointer must come from `RefCell::as_ptr`, so it
    /// never aliases an exclusive borrow of the request.
    pub fn environ_cell(&self) -> &RefCell<Environ> {
        self.environ
    }

    // ---- start_response and write ---------------------------------------------------------

    /// Keeps the message of a failed call for the error log, then hands the result back.
    fn record<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result {
            self.st.app_message.clear();
            self.st.app_message.push_str(&e.message);
        }
        result
    }

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
        if exc_info {
            if st.headers_sent {
                return Err(Error::new(
                    Status::HeadersAlreadySent,
                    "start_response() with exc_info after the headers were sent: the error is re-raised",
                ));
            }
        } else if st.start_response_called {
            return Err(Error::new(
                Status::HeadersAlreadySet,
                "Headers already set!",
            ));
        }
        st.start_response_called = true;
        // Everything is checked into `staged_headers` first: a refused call (an exc_info call
        // with a bad status, say) leaves the previous, valid response in place.
        check_status(status)?;
        st.staged_headers.clear();
        for (name, value) in headers {
            check_header(name, value)?;
            st.staged_headers.push(name, value);
        }
        let declared_length = st.staged_headers.content_length()?;
        mem::swap(&mut st.headers, &mut st.staged_headers);
        st.declared_length = declared_length;
        st.status.clear();
        st.status.extend_from_slice(status);
        st.has_status = true;
        Ok(())
    }

    /// The write callable: commits the headers (even for empty data, as PEP 3333 says of
    /// write), then sends `data` and flushes.
    pub fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        let result = self.write_block(data, false);
        self.record(result)
    }

    fn write_block(&mut self, data: &[u8], one_block: bool) -> Result<(), Error> {
        self.check_output()?;
        if !self.st.has_status {
            return Err(Error::new(
                Status::InvalidState,
                "write() before start_response()",
            ));
        }
        if self.st.headers_sent {
            self.st.out.clear();
            self.send_body(data)?;
        } else {
            self.send_headers(data, one_block)?;
        }
        self.flush()
    }

    fn check_output(&self) -> Result<(), Error> {
        if self.st.client_gone {
            return Err(Error::new(Status::ClientGone, "client went away"));
        }
        if self.st.io_failed {
            return Err(Error::new(
                Status::IoError,
                "an earlier write to the client failed",
            ));
        }
        Ok(())
    }

    /// How much of a `len`-byte block may still go out under the declared Content-Length;
    /// the rest is dropped and logged once (wsgiref sends it: weakness 8.2.4).
    fn body_allowance(&mut self, len: usize) -> usize {
        if self.st.no_body {
            // HEAD, 1xx, 204, 304: the app's bytes are consumed but never sent (wsgiref
            // sends them: weakness 8.2.2-3).
            return 0;
        }
        let allowed = match self.st.declared_length {
            Some(declared) => {
                let left = declared.saturating_sub(self.st.body_sent);
                usize::try_from(left).map_or(len, |left| left.min(len))
            }
            None => len,
        };
        if allowed < len && !self.st.overflow_logged {
            self.st.overflow_logged = true;
            self.log(b"response body longer than its Content-Length; the extra bytes were dropped");
        }
        self.st.body_sent += allowed as u64;
        allowed
    }

    /// send_preamble + the headers + the first block, in as few write calls as possible.
    fn send_headers(&mut self, first: &[u8], one_block: bool) -> Result<(), Error> {
        let s = self.settings;
        let head = self.environ_has(b"REQUEST_METHOD", |m| m == b"HEAD");
        let client_http09 =
            self.environ_has(b"SERVER_PROTOCOL", |p| p.eq_ignore_ascii_case(b"HTTP/0.9"));
        let client_http11 =
            self.environ_has(b"SERVER_PROTOCOL", |p| p.eq_ignore_ascii_case(b"HTTP/1.1"));
        let st = &mut *self.st;
        st.headers_sent = true;
        st.sent_code = st.status[..3]
            .iter()
            .fold(0, |code, d| code * 10 + u16::from(d - b'0'));
        // 1xx and 204 must not carry Content-Length, and for 304 it would describe the
        // representation, which an empty block does not; HEAD gets the length of the block
        // the app produced, unless it produced none.
        let bodiless_status = st.sent_code < 200 || st.sent_code == 204 || st.sent_code == 304;
        st.no_body = head || bodiless_status;
        let compute = one_block
            && !bodiless_status
            && (!head || !first.is_empty())
            && !st.headers.contains(b"content-length");
        let computed = if compute {
            st.declared_length = Some(first.len() as u64);
            Some(first.len())
        } else {
            None
        };
        let modern = !s.origin_server || !client_http09;
        // An HTTP/1.1 exchange whose length is unknown is framed with chunks, so the
        // connection can stay open (wsgiref leaves the client to wait for a close: 8.2.1).
        st.chunked = s.origin_server
            && modern
            && !st.no_body
            && computed.is_none()
            && st.declared_length.is_none()
            && s.http_version() == b"1.1"
            && client_http11;
        let out = &mut st.out;
        out.clear();
        if modern {
            if s.origin_server {
                out.extend_from_slice(b"HTTP/");
                out.extend_from_slice(s.http_version());
                out.push(b' ');
                out.extend_from_slice(&st.status);
                out.extend_from_slice(b"\r\n");
                if !st.headers.contains(b"date") {
                    out.extend_from_slice(b"Date: ");
                    out.extend_from_slice(&http_date_now());
                    out.extend_from_slice(b"\r\n");
                }
                if let Some(software) = s.server_software() {
                    if !st.headers.contains(b"server") {
                        out.extend_from_slice(b"Server: ");
                        out.extend_from_slice(software);
                        out.extend_from_slice(b"\r\n");
                    }
                }
            } else {
                out.extend_from_slice(b"Status: ");
                out.extend_from_slice(&st.status);
                out.extend_from_slice(b"\r\n");
            }
            // RFC 9110 §8.6: no Content-Length on a 1xx or 204 response, even the app's own.
            let forbids_length = st.sent_code < 200 || st.sent_code == 204;
            for (name, value) in st.headers.iter() {
                if forbids_length && name.eq_ignore_ascii_case(b"content-length") {
                    continue;
                }
                out.extend_from_slice(name);
                out.extend_from_slice(b": ");
                out.extend_from_slice(value);
                out.extend_from_slice(b"\r\n");
            }
            if let Some(len) = computed {
                out.extend_from_slice(b"Content-Length: ");
                let mut digits = [0u8; 20];
                out.extend_from_slice(format_decimal(len as u64, &mut digits));
                out.extend_from_slice(b"\r\n");
            }
            if st.chunked {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            }
            out.extend_from_slice(b"\r\n");
        }
        self.send_body(first)
    }

    /// Sends what `out` holds (the preamble, or nothing) and then a body block, as a chunk
    /// when the response is chunked, in as few write calls as possible.
    fn send_body(&mut self, data: &[u8]) -> Result<(), Error> {
        let n = self.body_allowance(data.len());
        let data = &data[..n];
        // An empty chunk would end the body: empty blocks send nothing.
        let chunked = self.st.chunked && !data.is_empty();
        let mut out = mem::take(&mut self.st.out);
        if chunked {
            let mut digits = [0u8; 16];
            out.extend_from_slice(format_hex(data.len() as u64, &mut digits));
            out.extend_from_slice(b"\r\n");
        }
        let result = if out.is_empty() {
            self.write_all(data)
        } else if out.len() + data.len() + 2 <= COALESCE_LIMIT {
            out.extend_from_slice(data);
            if chunked {
                out.extend_from_slice(b"\r\n");
            }
            self.write_all(&out)
        } else {
            let end: &[u8] = if chunked { b"\r\n" } else { b"" };
            self.write_all(&out)
                .and_then(|()| self.write_all(data))
                .and_then(|()| self.write_all(end))
        };
        self.st.out = out;
        result
    }

    /// Hands all of `data` to the write hook: short writes are completed, a write that makes
    /// no progress or fails ends the cycle, a disconnect is remembered.
    fn write_all(&mut self, data: &[u8]) -> Result<(), Error> {
        let host = &mut *self.host;
        match write_fully(|d| host.write(d), data) {
            Ok(()) => Ok(()),
            Err(WriteFailure::NoProgress) => {
                self.st.io_failed = true;
                Err(Error::new(Status::IoError, "write hook made no progress"))
            }
            Err(WriteFailure::Overreported(claimed, given)) => {
                self.st.io_failed = true;
                Err(Error::new(
                    Status::IoError,
                    format!("write hook reported {claimed} bytes written of {given}"),
                ))
            }
            Err(WriteFailure::Hook(e)) => Err(self.output_failure("write", e)),
        }
    }

    fn flush(&mut self) -> Result<(), Error> {
        match self.host.flush() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.output_failure("flush", e)),
        }
    }

    fn output_failure(&mut self, what: &str, e: std::io::Error) -> Error {
        if is_disconnect(&e) {
            self.st.client_gone = true;
            Error::new(Status::ClientGone, format!("client went away: {e}"))
        } else {
            self.st.io_failed = true;
            Error::new(Status::IoError, format!("{what} hook failed: {e}"))
        }
    }

    // ---- the body ---------------------------------------------------------------------------

    fn check_body_unset(&self) -> Result<(), Error> {
        match self.st.body {
            Body::Unset => Ok(()),
            _ => Err(Error::new(
                Status::InvalidState,
                "the application already returned a body",
            )),
        }
    }

    /// Returns one block of bytes as the body (copied), so Content-Length can be computed.
    pub fn set_body_bytes(&mut self, data: &[u8]) -> Result<(), Error> {
        let result = self.check_body_unset();
        self.record(result)?;
        self.st.bytes_body.clear();
        self.st.bytes_body.extend_from_slice(data);
        self.st.body = Body::Bytes;
        Ok(())
    }

    /// Returns a chunk iterator as the body; the cycle closes it exactly once. On failure the
    /// source is handed back untouched (not closed).
    pub fn set_body_source(&mut self, source: H::Body) -> Result<(), (Error, H::Body)> {
        if let Err(e) = self.record(self.check_body_unset()) {
            return Err((e, source));
        }
        self.st.body = Body::Source(source);
        Ok(())
    }

    pub fn file_wrapper_enabled(&self) -> bool {
        self.settings.file_wrapper
    }

    /// The app's own failure message for the error log.
    pub fn set_failure_message(&mut self, message: &[u8]) {
        self.st.app_message.clear();
        self.st
            .app_message
            .push_str(&crate::status::escape_bytes(message));
    }

    fn close_body(&mut self) {
        if let Body::Source(mut source) = mem::replace(&mut self.st.body, Body::Taken) {
            if let Err(e) = source.close() {
                self.log_error("closing the response body failed: ", &e.message);
            }
        }
    }

    /// wsgiref's finish_response: iterate, write each block, finish_content; close the body.
    fn finish_response(&mut self) -> Result<(), Error> {
        match mem::replace(&mut self.st.body, Body::Taken) {
            Body::Unset | Body::Taken => self.finish_content(),
            Body::Bytes => {
                let data = mem::take(&mut self.st.bytes_body);
                let result = self.send_block(&data, true);
                self.st.bytes_body = data;
                result?;
                self.finish_content()
            }
            Body::Source(mut source) => {
                let result = self.drain(&mut source);
                self.st.body = Body::Source(source);
                self.close_body();
                result
            }
        }
    }

    fn drain(&mut self, source: &mut H::Body) -> Result<(), Error> {
        let one_block = source.block_count() == Some(1);
        while let Some(chunk) = source.next_chunk(self)? {
            self.send_block(chunk, one_block)?;
        }
        self.finish_content()
    }

    /// A block of the returned body. An empty block before the headers does not commit them
    /// (wsgiref does: weakness 8.2.5), so a later failure can still get the error page.
    fn send_block(&mut self, data: &[u8], one_block: bool) -> Result<(), Error> {
        if data.is_empty() && !self.st.headers_sent {
            return Ok(());
        }
        self.write_block(data, one_block)
    }

    /// wsgiref's finish_content: an empty body gets its headers (Content-Length: 0 unless the
    /// app set one or the response carries no body); then a body shorter than its
    /// Content-Length is reported.
    fn finish_content(&mut self) -> Result<(), Error> {
        // A write that failed earlier (and that the application chose to ignore) means the
        // body is already incomplete: no last chunk, no flush, nothing that looks finished.
        self.check_output()?;
        if !self.st.headers_sent {
            if !self.st.has_status {
                return Err(Error::new(
                    Status::AppError,
                    "the application returned without calling start_response()",
                ));
            }
            self.send_headers(b"", true)?;
            self.flush()?;
        }
        if self.st.chunked {
            // The last chunk: only a body that ended well gets it, so a client can tell a
            // cut-short response from a complete one.
            self.write_all(b"0\r\n\r\n")?;
            self.flush()?;
        }
        if let Some(declared) = self.st.declared_length {
            if self.st.body_sent < declared && !self.st.no_body {
                return Err(Error::new(
                    Status::ResponseIncomplete,
                    format!(
                        "response body shorter than its Content-Length ({} of {declared} bytes)",
                        self.st.body_sent
                    ),
                ));
            }
        }
        Ok(())
    }

    // ---- failures ---------------------------------------------------------------------------

    /// The error for an application (or its body iterator) that returned a failure status:
    /// the message it recorded with its failure, else the status's text.
    pub fn app_failure(&mut self, status: Status) -> Error {
        let message = if self.st.app_message.is_empty() {
            status.describe().to_string()
        } else {
            mem::take(&mut self.st.app_message)
        };
        let status = match status {
            Status::ClientGone => Status::ClientGone,
            _ => Status::AppError,
        };
        Error::new(status, message)
    }

    /// wsgiref's handle_error, fixed: a disconnect ends quietly; otherwise log, then the error
    /// page if nothing was sent yet, else tell the host to close.
    fn handle_error(&mut self, err: Error) -> Error {
        if self.st.client_gone || err.status == Status::ClientGone {
            return Error::new(Status::ClientGone, err.message);
        }
        if self.st.io_failed {
            self.log(err.message.as_bytes());
            return Error::new(Status::IoError, err.message);
        }
        if self.st.headers_sent {
            self.log_error("response cut short: ", &err.message);
            return Error::new(Status::ResponseIncomplete, err.message);
        }
        self.log_error("application error: ", &err.message);
        match self.send_error_page() {
            Ok(()) => Error::new(Status::AppError, err.message),
            Err(e) if e.status == Status::ClientGone => e,
            Err(e) => {
                self.log(e.message.as_bytes());
                e
            }
        }
    }

    /// wsgiref's error_output: start_response(error_status, error_headers, exc_info) and a
    /// one-block body, so Content-Length is computed.
    fn send_error_page(&mut self) -> Result<(), Error> {
        let s = self.settings;
        let st = &mut *self.st;
        st.status.clear();
        st.status.extend_from_slice(s.error_status());
        st.headers.copy_from(s.error_headers());
        st.declared_length = st.headers.content_length()?;
        st.has_status = true;
        st.body_sent = 0;
        self.send_headers(s.error_body(), true)?;
        self.flush()
    }

    // ---- wsgi.errors and the log ----------------------------------------------------------

    /// wsgi.errors write: all of `data` goes to the stderr hook.
    pub fn errors_write(&mut self, data: &[u8]) -> Result<(), Error> {
        let host = &mut *self.host;
        match write_fully(|d| host.write_stderr(d), data) {
            Ok(()) => Ok(()),
            Err(WriteFailure::NoProgress | WriteFailure::Overreported(..)) => Err(Error::new(
                Status::IoError,
                "stderr write hook made no progress",
            )),
            Err(WriteFailure::Hook(e)) => Err(Error::new(
                Status::IoError,
                format!("stderr write hook failed: {e}"),
            )),
        }
    }

    pub fn errors_flush(&mut self) -> Result<(), Error> {
        self.host
            .flush_stderr()
            .map_err(|e| Error::new(Status::IoError, format!("stderr flush hook failed: {e}")))
    }

    /// One log line through the stderr hooks: `gateway: <message>\n`, handed over in one
    /// piece so the stream never holds half a line of ours; a failing log is dropped, never
    /// retried.
    fn log(&mut self, message: &[u8]) {
        self.log_error("", message);
    }

    fn log_error(&mut self, prefix: &str, message: impl AsRef<[u8]>) {
        let mut line = mem::take(&mut self.st.log_line);
        line.clear();
        line.extend_from_slice(b"gateway: ");
        line.extend_from_slice(prefix.as_bytes());
        line.extend_from_slice(message.as_ref());
        line.push(b'\n');
        let _ = self.errors_write(&line).and_then(|()| self.errors_flush());
        self.st.log_line = line;
    }

    // ---- wsgi.input ---------------------------------------------------------------------------

    /// A wsgi.input call's result: a failure is recorded for the app's error log and, the
    /// first time the body fails (truncated, unreadable, a bad CONTENT_LENGTH), logged
    /// itself, since an app may swallow it. A disconnect stays quiet, and a failed write of
    /// `100 Continue` is logged once by handle_error.
    fn input_outcome<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result {
            let output_failed = self.st.client_gone || self.st.io_failed;
            if e.status != Status::ClientGone
                && !output_failed
                && !mem::replace(&mut self.st.input_failure_logged, true)
            {
                self.log_error("request body: ", &e.message);
            }
        }
        self.record(result)
    }

    pub fn input_read(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let result = self
            .continue_if_expected()
            .and_then(|()| self.st.input.read(self.host, out));
        self.input_outcome(result)
    }

    pub fn input_readline(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        let result = self
            .continue_if_expected()
            .and_then(|()| self.st.input.readline(self.host, out));
        self.input_outcome(result)
    }

    pub fn input_read_all(&mut self) -> Result<&[u8], Error> {
        let result = self
            .continue_if_expected()
            .and_then(|()| self.st.input.read_all(self.host));
        self.input_outcome(result)?;
        Ok(self.st.input.result())
    }

    pub fn input_next_line(&mut self) -> Result<&[u8], Error> {
        let result = self
            .continue_if_expected()
            .and_then(|()| self.st.input.next_line(self.host));
        self.input_outcome(result)?;
        Ok(self.st.input.result())
    }

    /// readlines(hint); the lines are then read with `host_and_lines`.
    pub fn input_readlines(&mut self, hint: usize) -> Result<usize, Error> {
        let result = self
            .continue_if_expected()
            .and_then(|()| self.st.input.readlines(self.host, hint));
        self.input_outcome(result)?;
        Ok(self.st.input.line_count())
    }

    /// The host and the lines of the last readlines, borrowed together.
    pub fn host_and_lines(&mut self) -> (&mut H, impl Iterator<Item = &[u8]>) {
        (&mut *self.host, self.st.input.lines())
    }
}

/// Writes `n` in lower-case hexadecimal into `buf`, returning the digits.
fn format_hex(mut n: u64, buf: &mut [u8; 16]) -> &[u8] {
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

/// Writes `n` in decimal into `buf`, returning the digits.
fn format_decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}
