//! One request cycle, wsgiref's `BaseHandler.run` with its weaknesses fixed:
//! setup_environ → application → finish_response (iterate, write, finish_content) → close,
//! with the error page before the head, a logged truncation after it, and a quiet end when
//! the client goes away. All per-request buffers live in `State` and are reused.
//!
//! The cycle runs in steps (`Stage`), so that in non-blocking mode it can pause whenever the
//! client is not ready and resume later; in blocking mode the steps simply follow each other.
//!
//! This file holds the cycle itself; `response.rs` writes the response (start_response, the
//! head, body framing), `output.rs` hands bytes to the host (at once, or queued for a slow
//! client), `streams.rs` holds wsgi.input, wsgi.errors and the log.

mod output;
mod response;
mod streams;

use std::borrow::Cow;
use std::cell::{RefCell, RefMut};
use std::mem;

use crate::environ::Environ;
use crate::framing::Framing;
use crate::headers::HeaderList;
use crate::host::{BodySource, Chunk, FileRange, Host};
use crate::input::Input;
use crate::request_framing::RequestFraming;
use crate::settings::Settings;
use crate::status::{Error, Status};
use crate::validate::{Severity, ITERATED_BEFORE_START};

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

/// Where the response stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// start_response has not been called.
    Unstarted,
    /// It was called and refused: no status is set, and a second call still needs exc_info.
    Refused,
    /// A status and headers are set; nothing went out yet.
    StatusSet,
    /// The head went out, framed so; body blocks follow.
    HeadSent(Framing),
}

/// Whether the client can still be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Output {
    Open,
    /// A write or flush met a disconnect.
    ClientGone,
    /// A write or flush failed otherwise (or made no progress).
    Failed,
}

/// Where a cycle is between its steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// No cycle is under way.
    Idle,
    /// Non-blocking mode: the request body is being read ahead of the application.
    ReadingBody,
    /// The application is to be called (its caller holds it).
    AppDue,
    /// finish_response: the body is going out.
    SendingBody,
    /// The outcome is known; queued bytes, a flush or a structured host's end of the body
    /// may still be due.
    Ending,
}

/// What a paused cycle waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// More of the request body (the read hook would block).
    Readable,
    /// The client taking more bytes (the write, flush or send_file hook would block).
    Writable,
}

/// Where a cycle stands after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The application is due: call `Handler::call_app`.
    AppDue,
    /// Paused: call `Handler::resume` when the client is ready (non-blocking mode only).
    Wait(Wait),
    /// The cycle is over: what `run` returns.
    Done(Result<(), Status>),
}

/// A file body on its way through the host's send_file hook.
#[derive(Clone, Copy, Debug)]
struct FileSend {
    range: FileRange,
    /// Bytes of the range sent so far.
    sent: u64,
    /// A chunk of a chunked body: its CRLF follows the file.
    chunk: bool,
}

/// What a step of the body did.
enum BodyStep {
    More,
    Done,
    /// The send_file hook would block.
    Blocked,
}

/// Per-request state, kept in the handler so its buffers are reused.
struct State<B> {
    stage: Stage,
    /// The cycle's outcome, once known (Stage::Ending).
    outcome: Result<(), Error>,
    phase: Phase,
    output: Output,
    status: Vec<u8>,
    headers: HeaderList,
    /// Where start_response validates a new header list before it replaces `headers`.
    staged_headers: HeaderList,
    /// The application's own Content-Length (validated).
    app_length: Option<u64>,
    /// The status code that went out (0 before the head did), for the host's access log.
    sent_code: u16,
    body_sent: u64,
    /// The chunked body's last chunk went out (with the final block).
    terminated: bool,
    /// A structured host was told the body ended.
    body_ended: bool,
    /// The headers a structured host gets (Date, Server, the app's).
    head_headers: HeaderList,
    body: Body<B>,
    bytes_body: Vec<u8>,
    input: Input,
    /// The client sent `Expect: 100-continue` and has not been told to go on yet.
    expect_continue: bool,
    /// The last cycle left the connection fit for another request (see `keep_alive`).
    keep_alive: bool,
    /// The head and the first body block are assembled here.
    out: Vec<u8>,
    /// One log line is assembled here, so it reaches the stderr hook in one call.
    log_line: Vec<u8>,
    /// The message of the app's last failure (its own, or a failed gw call's), for the log.
    app_message: String,
    /// Why the last run failed, for the host.
    failure: String,
    /// A buffer `app_message` handed over with a failure, back for the next one: a failing
    /// request allocates no more than a good one.
    spare: String,
    overflow_logged: bool,
    input_failure_logged: bool,
    /// Non-blocking mode: bytes the client has not taken yet, from `queue_pos`.
    queue: Vec<u8>,
    queue_pos: usize,
    /// Non-blocking mode: a flush, and a structured host's end of the body, wait for the
    /// queue to empty.
    flush_due: bool,
    end_due: Option<bool>,
    /// A hook said "would block" since the cycle last resumed: nothing is tried again
    /// before the host says the client is ready.
    blocked: bool,
    /// Whether the body iterator has one block (asked once, before its first block).
    one_block: Option<bool>,
    file: Option<FileSend>,
}

impl<B> Default for State<B> {
    fn default() -> State<B> {
        State {
            stage: Stage::Idle,
            outcome: Ok(()),
            phase: Phase::Unstarted,
            output: Output::Open,
            status: Vec::new(),
            headers: HeaderList::default(),
            staged_headers: HeaderList::default(),
            app_length: None,
            sent_code: 0,
            body_sent: 0,
            terminated: false,
            body_ended: false,
            head_headers: HeaderList::default(),
            body: Body::Unset,
            bytes_body: Vec::new(),
            input: Input::default(),
            expect_continue: false,
            keep_alive: false,
            out: Vec::new(),
            log_line: Vec::new(),
            app_message: String::new(),
            failure: String::new(),
            spare: String::new(),
            overflow_logged: false,
            input_failure_logged: false,
            queue: Vec::new(),
            queue_pos: 0,
            flush_due: false,
            end_due: None,
            blocked: false,
            one_block: None,
            file: None,
        }
    }
}

impl<B> State<B> {
    /// Forgets the previous request; keeps every buffer's capacity.
    fn reset(&mut self) {
        self.phase = Phase::Unstarted;
        self.output = Output::Open;
        self.status.clear();
        self.headers.clear();
        self.app_length = None;
        self.sent_code = 0;
        self.body_sent = 0;
        self.terminated = false;
        self.body_ended = false;
        self.body = Body::Unset;
        self.bytes_body.clear();
        self.expect_continue = false;
        // The input is reset once, by setup_environ, on every path.
        self.keep_alive = false;
        self.app_message.clear();
        self.failure.clear();
        self.overflow_logged = false;
        self.input_failure_logged = false;
        self.outcome = Ok(());
        self.clear_queue();
        self.one_block = None;
        self.file = None;
    }

    /// Forgets what waited for the client.
    fn clear_queue(&mut self) {
        self.queue.clear();
        self.queue_pos = 0;
        self.flush_due = false;
        self.end_due = None;
        self.blocked = false;
    }

    /// Keeps a failure's message for `Handler::failure` and its buffer for reuse.
    fn remember_failure(&mut self, err: Error) -> Status {
        self.failure.clear();
        self.failure.push_str(&err.message);
        if let Cow::Owned(mut buffer) = err.message {
            if buffer.capacity() > self.spare.capacity() {
                buffer.clear();
                self.spare = buffer;
            }
        }
        err.status
    }

    fn framing(&self) -> Option<Framing> {
        match self.phase {
            Phase::HeadSent(framing) => Some(framing),
            _ => None,
        }
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
            environ: RefCell::new(Environ::for_request()),
            state: State::default(),
        }
    }

    /// Whether the last cycle left the connection fit for another request: the head said
    /// so (see `framing::decide`), the response went out in full and the request body was
    /// read, or drained, to its end.
    pub fn keep_alive(&self) -> bool {
        self.state.keep_alive
    }

    /// Why the last run failed ("" after one that succeeded).
    pub fn failure(&self) -> &str {
        &self.state.failure
    }

    /// The environ of the last request (empty before the first).
    pub fn environ(&mut self) -> &Environ {
        self.environ.get_mut()
    }

    /// The last request's status code (0 when no head went out) and the body bytes that
    /// went out: what an access log line needs.
    pub fn last_response(&self) -> (u16, u64) {
        (self.state.sent_code, self.state.body_sent)
    }
}

impl<H: Host> Handler<H>
where
    H::Body: for<'r> BodySource<Request<'r, H>>,
{
    /// Runs one whole cycle. Ok(()) when the response went out in full; otherwise the status
    /// says what happened (AppError: error page sent; ResponseIncomplete: close the
    /// connection; ClientGone; IoError) and `failure()` says why. In non-blocking mode a
    /// cycle that has to wait returns Err(Pending) (use `begin`, `call_app` and `resume`
    /// there instead: the application may be due after a pause).
    pub fn run(&mut self, app: impl FnOnce(&mut Request<'_, H>) -> Status) -> Result<(), Status> {
        let mut app = Some(app);
        let mut progress = self.begin();
        loop {
            progress = match progress {
                Progress::Done(outcome) => return outcome,
                Progress::Wait(_) => return Err(Status::Pending),
                Progress::AppDue => match app.take() {
                    Some(app) => self.call_app(app),
                    None => return Err(Status::InvalidState),
                },
            }
        }
    }

    fn request(&mut self) -> Request<'_, H> {
        Request {
            host: &mut self.host,
            settings: &self.settings,
            environ: &self.environ,
            st: &mut self.state,
        }
    }

    /// Whether a cycle is under way (paused, in non-blocking mode).
    pub fn is_pending(&self) -> bool {
        self.state.stage != Stage::Idle
    }

    /// Starts a cycle: the environ, then (non-blocking mode) the request body read ahead.
    /// A cycle that is still pending is cancelled first.
    pub fn begin(&mut self) -> Progress {
        self.cancel();
        self.state.reset();
        let mut req = self.request();
        match req.setup_environ() {
            Ok(()) if req.settings.nonblocking => req.st.stage = Stage::ReadingBody,
            Ok(()) => {
                // What `drive` would answer at once.
                req.st.stage = Stage::AppDue;
                return Progress::AppDue;
            }
            Err(e) => req.conclude(Err(e)),
        }
        req.drive()
    }

    /// Calls the application (when `begin` or `resume` said it is due), then sends what it
    /// returned as far as the client takes it.
    pub fn call_app(&mut self, app: impl FnOnce(&mut Request<'_, H>) -> Status) -> Progress {
        if self.state.stage != Stage::AppDue {
            return Progress::Done(Err(Status::InvalidState));
        }
        let mut req = self.request();
        req.st.stage = Stage::SendingBody;
        match app(&mut req) {
            Status::Ok => {}
            failed => {
                req.close_body();
                let e = req.app_failure(failed);
                req.conclude(Err(e));
            }
        }
        req.drive()
    }

    /// Goes on with a paused cycle once the client is ready (any time is safe: a hook that
    /// still would block just pauses it again).
    pub fn resume(&mut self) -> Progress {
        if self.state.stage == Stage::Idle {
            return Progress::Done(Err(Status::InvalidState));
        }
        self.state.blocked = false;
        self.request().drive()
    }

    /// Abandons a cycle under way (the client went away while it waited): the body is
    /// closed, nothing more is written, and the handler is ready for the next request.
    /// False when no cycle was under way.
    #[inline(always)]
    pub fn cancel(&mut self) -> bool {
        if self.state.stage == Stage::Idle {
            return false;
        }
        self.cancel_pending();
        true
    }

    fn cancel_pending(&mut self) {
        let mut req = self.request();
        req.close_body();
        let st = &mut *req.st;
        st.clear_queue();
        st.file = None;
        st.output = Output::ClientGone;
        st.failure.clear();
        st.failure.push_str("the cycle was cancelled by the host");
        st.keep_alive = false;
        st.input.release_spool();
        st.body = Body::Unset;
        st.stage = Stage::Idle;
    }
}

impl<H: Host> Request<'_, H> {
    // ---- environ -------------------------------------------------------------------------

    /// wsgiref's setup_environ: base environ, add_cgi_vars, the wsgi.* keys, SERVER_SOFTWARE.
    fn setup_environ(&mut self) -> Result<(), Error> {
        let s = self.settings;
        let mut env = self.environ.borrow_mut();
        env.reset(s.os_environ.clone());
        if let Err(e) = self.host.add_cgi_vars(&mut env) {
            // No body when the environ could not be built.
            self.st.input.reset(RequestFraming::NoBody, None, 0);
            return Err(e);
        }
        // Before wsgi.input_terminated is set for the app: the host's own value is rule 3.
        let content_length = env.get(b"CONTENT_LENGTH");
        let framing = crate::request_framing::decide(
            content_length,
            env.get(b"HTTP_TRANSFER_ENCODING"),
            env.get(b"wsgi.input_terminated"),
        );
        self.st
            .input
            .reset(framing, content_length, s.max_request_body);
        let https = crate::util::guess_scheme(env.get(b"HTTPS")) == b"https";
        if let Err(e) = env.add_request_keys(&s.request_keys(), https) {
            // No body until the environ is complete.
            self.st.input.reset(RequestFraming::NoBody, None, 0);
            return Err(e);
        }
        drop(env);
        if s.validate {
            self.validate_environ()?;
        }
        // A structured host (a server library) answers Expect itself.
        self.st.expect_continue = !self.host.takes_head()
            && self.speaks_http11()
            && self.environ_has(b"HTTP_EXPECT", |v| v.eq_ignore_ascii_case(b"100-continue"));
        Ok(())
    }

    /// wsgiref.validate's checks of the host's environ: warnings logged, an error refuses it.
    #[cold]
    #[inline(never)]
    fn validate_environ(&mut self) -> Result<(), Error> {
        let violations = crate::validate::check_environ(&self.environ.borrow());
        for v in violations {
            match v.severity {
                Severity::Warning => self.log_error("validate warning: ", v.message.as_bytes()),
                Severity::Error => {
                    return Err(Error::new(
                        Status::AppError,
                        format!("validate: the host's environ: {}", v.message),
                    ))
                }
            }
        }
        Ok(())
    }

    /// Whether the environ holds `name` with a value that passes `test`. The environ is
    /// borrowed only for the call: the application may hold a pointer to it.
    fn environ_has(&self, name: &[u8], test: impl FnOnce(&[u8]) -> bool) -> bool {
        self.environ.borrow().get(name).is_some_and(test)
    }

    /// An origin server with http_version 1.1 answering an HTTP/1.1 client.
    #[inline(always)]
    fn speaks_http11(&self) -> bool {
        self.settings.origin_server
            && self.settings.http11()
            && self.environ_has(b"SERVER_PROTOCOL", |p| p.eq_ignore_ascii_case(b"HTTP/1.1"))
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

    /// Keeps the message of a failed call for the error log, then hands the result back.
    #[inline]
    fn record<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result {
            self.keep_message(e);
        }
        result
    }

    fn keep_message(&mut self, e: &Error) {
        self.st.app_message.clear();
        self.st.app_message.push_str(&e.message);
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
        crate::status::escape_bytes_into(&mut self.st.app_message, message);
    }

    /// A block of the returned body. An empty block before the head does not commit it
    /// (wsgiref does: weakness 8.2.5), so a later failure can still get the error page.
    fn send_block(&mut self, data: &[u8], last: bool) -> Result<(), Error> {
        if data.is_empty() && self.st.framing().is_none() {
            return Ok(());
        }
        self.write_block(data, last)
    }

    /// After a response that went out in full: reads what is left of a request body the
    /// head promised to drain, and gives the verdict on the connection.
    fn keep_connection(&mut self) -> bool {
        let Some(framing) = self.st.framing() else {
            return false;
        };
        if !framing.keep_alive {
            return false;
        }
        if !self.st.input.fully_read() && !self.drain_input() {
            return false;
        }
        self.st.input.fully_read()
    }

    // ---- failures ---------------------------------------------------------------------------

    /// The error for an application (or its body iterator) that returned a failure status:
    /// the message it recorded with its failure, else the status's text.
    pub fn app_failure(&mut self, status: Status) -> Error {
        let message = if self.st.app_message.is_empty() {
            Cow::Borrowed(status.describe())
        } else {
            let spare = mem::take(&mut self.st.spare);
            Cow::Owned(mem::replace(&mut self.st.app_message, spare))
        };
        let status = match status {
            Status::ClientGone => Status::ClientGone,
            _ => Status::AppError,
        };
        Error::new(status, message)
    }

    /// The cycle's result is known: a failure is handled (logged, the error page), and what
    /// is still queued goes out before the end.
    #[inline(always)]
    fn conclude(&mut self, result: Result<(), Error>) {
        self.st.outcome = match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.conclude_failure(e)),
        };
        self.st.stage = Stage::Ending;
    }

    fn conclude_failure(&mut self, e: Error) -> Error {
        let e = self.handle_error(e);
        // A structured host hears that the body was cut short (its close is quiet).
        let _ = self.end_body(false);
        e
    }

    /// The end of a cycle whose output went out: the failure kept for the host, the verdict
    /// on the connection (after draining what the application left of the request body).
    fn end_cycle(&mut self) -> Result<(), Status> {
        let outcome = match mem::replace(&mut self.st.outcome, Ok(())) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.st.remember_failure(e)),
        };
        self.st.keep_alive = outcome.is_ok() && self.keep_connection();
        self.st.input.release_spool();
        self.st.body = Body::Unset;
        self.st.stage = Stage::Idle;
        outcome
    }

    /// wsgiref's handle_error, fixed: a disconnect ends quietly; otherwise log, then the error
    /// page if nothing was sent yet, else tell the host to close.
    fn handle_error(&mut self, err: Error) -> Error {
        if self.st.output == Output::ClientGone || err.status == Status::ClientGone {
            return Error::new(Status::ClientGone, err.message);
        }
        if self.st.output == Output::Failed {
            self.log(err.message.as_bytes());
            return Error::new(Status::IoError, err.message);
        }
        if self.st.framing().is_some() {
            self.log_error("response cut short: ", err.message.as_bytes());
            return Error::new(Status::ResponseIncomplete, err.message);
        }
        self.log_error("application error: ", err.message.as_bytes());
        match self.send_error_page() {
            Ok(()) => Error::new(Status::AppError, err.message),
            Err(e) if e.status == Status::ClientGone => e,
            Err(e) => {
                self.log(e.message.as_bytes());
                e
            }
        }
    }
}

/// What drives the body: it needs the source to take this cycle's request.
impl<H: Host> Request<'_, H>
where
    H::Body: for<'r> BodySource<Request<'r, H>>,
{
    #[inline(always)]
    fn close_body(&mut self) {
        if let Body::Source(mut source) = mem::replace(&mut self.st.body, Body::Taken) {
            if let Err(e) = source.close() {
                self.log_error("closing the response body failed: ", e.message.as_bytes());
            }
        }
    }

    /// Takes the cycle as far as it goes without waiting: to its end, to the application,
    /// or (non-blocking mode) to a hook that would block.
    fn drive(&mut self) -> Progress {
        loop {
            match self.st.stage {
                Stage::Idle => return Progress::Done(Err(Status::InvalidState)),
                Stage::AppDue => return Progress::AppDue,
                Stage::ReadingBody => {
                    // Lazy `100 Continue`: the body is read now, so the client is told to send it.
                    match self.continue_if_expected().and_then(|()| self.pump()) {
                        Err(e) => self.conclude(Err(e)),
                        Ok(false) => return Progress::Wait(Wait::Writable),
                        Ok(true) => {
                            if !self.st.input.prefetch(self.host, self.settings.body_memory) {
                                return Progress::Wait(Wait::Readable);
                            }
                            self.st.stage = Stage::AppDue;
                        }
                    }
                }
                Stage::SendingBody => match self.pump() {
                    Ok(false) => return Progress::Wait(Wait::Writable),
                    Ok(true) => match self.body_step() {
                        Ok(BodyStep::More) => {}
                        Ok(BodyStep::Blocked) => return Progress::Wait(Wait::Writable),
                        Ok(BodyStep::Done) => {
                            self.close_body();
                            self.conclude(Ok(()));
                        }
                        Err(e) => {
                            self.close_body();
                            self.conclude(Err(e));
                        }
                    },
                    Err(e) => {
                        self.close_body();
                        self.conclude(Err(e));
                    }
                },
                Stage::Ending => match self.pump() {
                    Ok(false) => return Progress::Wait(Wait::Writable),
                    Ok(true) => return Progress::Done(self.end_cycle()),
                    // What a blocking write of these bytes would have met.
                    Err(e) => {
                        let e = self.handle_error(e);
                        let _ = self.end_body(false);
                        self.st.outcome = Err(e);
                    }
                },
            }
        }
    }

    /// One step of wsgiref's finish_response (iterate, write each block, finish_content).
    fn body_step(&mut self) -> Result<BodyStep, Error> {
        match mem::replace(&mut self.st.body, Body::Taken) {
            Body::Unset | Body::Taken => self.finish_content().map(|()| BodyStep::Done),
            Body::Bytes => {
                let data = mem::take(&mut self.st.bytes_body);
                let result = self.send_block(&data, true);
                self.st.bytes_body = data;
                result?;
                self.finish_content().map(|()| BodyStep::Done)
            }
            Body::Source(mut source) => {
                let result = self.stream_step(&mut source);
                self.st.body = Body::Source(source);
                result
            }
        }
    }

    /// One block of an iterator. A block count of 1 makes the first block the whole body
    /// (Content-Length computed) when the head has not gone out yet (wsgiref's rule); a block
    /// the iterator marks as its last goes out together with the end of the body. A file
    /// body goes to a host that sends files as a range instead.
    fn stream_step(&mut self, source: &mut H::Body) -> Result<BodyStep, Error> {
        if self.st.one_block.is_none() {
            self.st.one_block = Some(source.block_count() == Some(1));
            if self.host.sends_files() {
                if let Some(range) = source.file_range() {
                    self.start_file(range)?;
                    // The head goes out before the file's first byte.
                    return Ok(BodyStep::More);
                }
            }
        }
        if self.st.file.is_some() {
            return self.file_step();
        }
        let one_block = self.st.one_block == Some(true);
        if let Some(Chunk { data, last }) = source.next_chunk(self)? {
            if self.settings.validate && matches!(self.st.phase, Phase::Unstarted | Phase::Refused)
            {
                return Err(Error::new(
                    Status::AppError,
                    format!("validate: {ITERATED_BEFORE_START}"),
                ));
            }
            let whole = one_block && self.st.framing().is_none();
            self.send_block(data, whole || last)?;
            if !last {
                return Ok(BodyStep::More);
            }
        }
        self.finish_content().map(|()| BodyStep::Done)
    }
}
