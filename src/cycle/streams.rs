//! The request's streams: wsgi.input (with lazy `100 Continue` and the drain after the
//! application), wsgi.errors, and the library's own log lines.

use std::mem;

use super::{Phase, Request};
use crate::host::{write_fully, Host, WriteFailure};
use crate::status::{Error, Status};

impl<H: Host> Request<'_, H> {
    // ---- wsgi.input ---------------------------------------------------------------------------

    /// PEP 3333's second way to honour `Expect: 100-continue`: the interim response goes out
    /// when the application first reads a body that is still to come, and never once the
    /// final response has started.
    pub(super) fn continue_if_expected(&mut self) -> Result<(), Error> {
        if !mem::take(&mut self.st.expect_continue)
            || matches!(self.st.phase, Phase::HeadSent(_))
            || !self.st.input.body_left()
        {
            return Ok(());
        }
        self.check_output()?;
        self.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        self.flush()
    }

    /// A wsgi.input call's result: a failure is recorded for the app's error log and, the
    /// first time the body fails (truncated, unreadable, a bad CONTENT_LENGTH), logged
    /// itself, since an app may swallow it. A disconnect stays quiet, and a failed write of
    /// `100 Continue` is logged once by handle_error.
    fn input_outcome<T>(&mut self, result: Result<T, Error>) -> Result<T, Error> {
        if let Err(e) = &result {
            let output_failed = self.check_output().is_err();
            if e.status != Status::ClientGone
                && !output_failed
                && !mem::replace(&mut self.st.input_failure_logged, true)
            {
                self.log_error("request body: ", e.message.as_bytes());
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

    /// Reads and discards what the application left of the request body, so the connection
    /// can carry the next request; true when it reached the end. The head only promised
    /// this for a body within the drain limit (a chunked body's size is only known here:
    /// past the limit the drain stops quietly); a failure here is logged and costs the
    /// connection, nothing more.
    pub(super) fn drain_input(&mut self) -> bool {
        let result = self.st.input.drain(self.host, self.settings.drain_limit);
        self.input_outcome(result).unwrap_or(false)
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
    pub(super) fn log(&mut self, message: &[u8]) {
        self.log_error("", message);
    }

    pub(super) fn log_error(&mut self, prefix: &str, message: &[u8]) {
        let mut line = mem::take(&mut self.st.log_line);
        line.clear();
        line.extend_from_slice(b"gateway: ");
        line.extend_from_slice(prefix.as_bytes());
        line.extend_from_slice(message);
        line.push(b'\n');
        let _ = self.errors_write(&line).and_then(|()| self.errors_flush());
        self.st.log_line = line;
    }
}
