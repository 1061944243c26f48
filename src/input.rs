//! wsgi.input: the request body, read through the host's read hook and never past
//! CONTENT_LENGTH (absent or empty means no body). After the end every read returns nothing,
//! so `read to end` can never block on a kept-open connection (gh-66077). A body that ends
//! before CONTENT_LENGTH is an error, never a shorter body that looks complete.

use crate::host::{is_disconnect, retry_interrupted, Host};
use crate::status::{escape_bytes, Error, Status};

const BUFFER_SIZE: usize = 8192;

/// Per-request input state; its buffers are kept between requests.
#[derive(Debug, Default)]
pub struct Input {
    /// Body bytes not yet asked of the host.
    remaining: u64,
    /// CONTENT_LENGTH, for the message when the body ends early.
    length: u64,
    /// Set when CONTENT_LENGTH could not be parsed: reads fail with this message.
    bad_length: Option<String>,
    /// Set after the host failed or disconnected: reads fail the same way again.
    failed: Option<Error>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Holds what read_all / next_line / readlines return.
    scratch: Vec<u8>,
    /// Line boundaries in `scratch` for readlines.
    lines: Vec<(usize, usize)>,
}

impl Input {
    /// Starts a request whose CONTENT_LENGTH is `content_length` (None when absent).
    pub fn reset(&mut self, content_length: Option<&[u8]>) {
        self.pos = 0;
        self.end = 0;
        self.failed = None;
        self.bad_length = None;
        self.remaining = 0;
        self.length = 0;
        match content_length {
            None | Some(b"") => {}
            Some(value) => match crate::headers::parse_content_length(value) {
                Some(n) => {
                    self.remaining = n;
                    self.length = n;
                }
                None => {
                    self.bad_length = Some(format!(
                        "CONTENT_LENGTH is not a decimal length: '{}'",
                        escape_bytes(value)
                    ))
                }
            },
        }
        if self.buf.len() != BUFFER_SIZE {
            self.buf.resize(BUFFER_SIZE, 0);
        }
    }

    /// Whether body bytes remain to be asked of the host.
    pub fn body_left(&self) -> bool {
        self.remaining > 0
    }

    /// Whether the whole body was read: nothing left at the host, nothing buffered, no failure.
    pub fn fully_read(&self) -> bool {
        self.remaining == 0
            && self.pos == self.end
            && self.bad_length.is_none()
            && self.failed.is_none()
    }

    /// Whether reads fail: the host failed, or CONTENT_LENGTH could not be parsed.
    pub fn failed(&self) -> bool {
        self.bad_length.is_some() || self.failed.is_some()
    }

    /// Body bytes not yet asked of the host.
    pub fn unrequested(&self) -> u64 {
        self.remaining
    }

    /// Reads and discards the rest of the body.
    pub fn drain<H: Host>(&mut self, host: &mut H) -> Result<(), Error> {
        self.check()?;
        self.pos = self.end;
        let mut buf = std::mem::take(&mut self.buf);
        let mut result = Ok(());
        while self.remaining > 0 && result.is_ok() {
            result = self.read_host(host, &mut buf).map(drop);
        }
        self.buf = buf;
        result
    }

    fn check(&self) -> Result<(), Error> {
        if let Some(msg) = &self.bad_length {
            return Err(Error::new(Status::InputError, msg.clone()));
        }
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        Ok(())
    }

    /// Reads from the host into `dst`, at most what is left of the body.
    fn read_host<H: Host>(&mut self, host: &mut H, dst: &mut [u8]) -> Result<usize, Error> {
        let want = dst
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let err = match retry_interrupted(|| host.read_stdin(&mut dst[..want])) {
            Ok(n) if n > want => Error::new(
                Status::IoError,
                format!("read hook reported {n} bytes for a {want}-byte buffer"),
            ),
            // The client stopped before the length it announced: the body is truncated.
            Ok(0) => Error::new(
                Status::InputError,
                format!(
                    "request body ended after {} of {} bytes (CONTENT_LENGTH)",
                    self.length - self.remaining,
                    self.length
                ),
            ),
            Ok(n) => {
                self.remaining -= n as u64;
                return Ok(n);
            }
            Err(e) if is_disconnect(&e) => {
                Error::new(Status::ClientGone, format!("client went away: {e}"))
            }
            Err(e) => Error::new(Status::InputError, format!("read hook failed: {e}")),
        };
        self.failed = Some(err.clone());
        Err(err)
    }

    /// Refills the buffer when it is empty; false at the end of the body.
    fn fill<H: Host>(&mut self, host: &mut H) -> Result<bool, Error> {
        if self.pos < self.end {
            return Ok(true);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let n = self.read_host(host, &mut buf);
        self.buf = buf;
        let n = n?;
        self.pos = 0;
        self.end = n;
        Ok(n > 0)
    }

    /// read(size): fills `out` up to its length, stopping early only at the end of the body.
    pub fn read<H: Host>(&mut self, host: &mut H, out: &mut [u8]) -> Result<usize, Error> {
        self.check()?;
        let mut done = 0;
        while done < out.len() {
            if self.pos < self.end {
                let n = (self.end - self.pos).min(out.len() - done);
                out[done..done + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                done += n;
            } else if out.len() - done >= BUFFER_SIZE {
                // Large reads go straight into the caller's memory.
                let n = self.read_host(host, &mut out[done..])?;
                if n == 0 {
                    break;
                }
                done += n;
            } else if !self.fill(host)? {
                break;
            }
        }
        Ok(done)
    }

    /// Appends one line (up to and including b'\n') to `scratch`, at most `limit` bytes.
    fn line_into_scratch<H: Host>(&mut self, host: &mut H, limit: usize) -> Result<usize, Error> {
        let start = self.scratch.len();
        while self.scratch.len() - start < limit && self.fill(host)? {
            let room = limit - (self.scratch.len() - start);
            let avail = &self.buf[self.pos..self.end];
            let take = avail.len().min(room);
            let (n, newline) = match avail[..take].iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (take, false),
            };
            self.scratch.extend_from_slice(&avail[..n]);
            self.pos += n;
            if newline {
                break;
            }
        }
        Ok(self.scratch.len() - start)
    }

    /// readline(size): one line into `out`, at most `out.len()` bytes, newline included.
    pub fn readline<H: Host>(&mut self, host: &mut H, out: &mut [u8]) -> Result<usize, Error> {
        self.check()?;
        let mut done = 0;
        while done < out.len() && self.fill(host)? {
            let avail = &self.buf[self.pos..self.end];
            let take = avail.len().min(out.len() - done);
            let (n, newline) = match avail[..take].iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (take, false),
            };
            out[done..done + n].copy_from_slice(&avail[..n]);
            self.pos += n;
            done += n;
            if newline {
                break;
            }
        }
        Ok(done)
    }

    /// read(): the rest of the body into `result()`.
    pub fn read_all<H: Host>(&mut self, host: &mut H) -> Result<(), Error> {
        self.check()?;
        self.scratch.clear();
        self.scratch
            .extend_from_slice(&self.buf[self.pos..self.end]);
        self.pos = self.end;
        loop {
            let len = self.scratch.len();
            let want = usize::try_from(self.remaining)
                .unwrap_or(usize::MAX)
                .min(64 * 1024);
            if want == 0 {
                break;
            }
            self.scratch.resize(len + want, 0);
            let mut scratch = std::mem::take(&mut self.scratch);
            let n = self.read_host(host, &mut scratch[len..]);
            scratch.truncate(len + *n.as_ref().unwrap_or(&0));
            self.scratch = scratch;
            if n? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Line iteration: the next line of any length into `result()`; empty at the end.
    pub fn next_line<H: Host>(&mut self, host: &mut H) -> Result<(), Error> {
        self.check()?;
        self.scratch.clear();
        self.line_into_scratch(host, usize::MAX)?;
        Ok(())
    }

    /// What the last read_all or next_line produced.
    pub fn result(&self) -> &[u8] {
        &self.scratch
    }

    /// readlines(hint): the remaining lines, stopping once `hint` bytes were gathered when
    /// hint > 0. Returns the lines' (start, len) in `scratch()`.
    pub fn readlines<H: Host>(&mut self, host: &mut H, hint: usize) -> Result<(), Error> {
        self.check()?;
        self.scratch.clear();
        self.lines.clear();
        loop {
            let start = self.scratch.len();
            let n = self.line_into_scratch(host, usize::MAX)?;
            if n == 0 {
                break;
            }
            self.lines.push((start, n));
            if hint > 0 && self.scratch.len() >= hint {
                break;
            }
        }
        Ok(())
    }

    /// The lines gathered by the last readlines.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        self.lines.iter().map(|&(s, n)| &self.scratch[s..s + n])
    }

    pub fn line_count(&self) -> usize {
        self.lines.len()
    }
}
