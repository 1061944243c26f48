//! wsgi.input: the request body, read through the host's read hook in one of three framings
//! (see `request_framing`): never past CONTENT_LENGTH (absent or empty means no body), chunks
//! decoded by `chunked` (never asking the hook for bytes past the last chunk), or a stream
//! the host says ends with its input. After the end every read returns nothing, so `read to
//! end` can never block on a kept-open connection (gh-66077). A body that ends early
//! (before CONTENT_LENGTH, inside the chunks) is an error, never a shorter body that looks
//! complete; so is a body larger than the handler's limit.

use crate::chunked::Decoder;
use crate::host::{is_disconnect, retry_interrupted, Host};
use crate::request_framing::RequestFraming;
use crate::spool::Spool;
use crate::status::{escape_bytes, Error, Status};

const BUFFER_SIZE: usize = 8192;

/// Per-request input state; its buffers are kept between requests.
#[derive(Debug)]
pub struct Input {
    framing: RequestFraming,
    /// Body bytes not yet asked of the host (Length).
    remaining: u64,
    /// CONTENT_LENGTH, for the message when the body ends early.
    length: u64,
    /// The chunked body's decoder, and its wire bytes read but not decoded yet.
    decoder: Decoder,
    wire: Vec<u8>,
    wire_pos: usize,
    wire_end: usize,
    /// Chunked or terminated: the end was reached.
    ended: bool,
    /// Body bytes handed over so far (decoded), against `limit`.
    received: u64,
    /// The handler's request body limit (0: none).
    limit: u64,
    /// Set when CONTENT_LENGTH could not be parsed: reads fail with this message.
    bad_length: Option<String>,
    /// Set after the host failed or disconnected, or the body broke a rule: reads fail the
    /// same way again.
    failed: Option<Error>,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Holds what read_all / next_line / readlines return.
    scratch: Vec<u8>,
    /// Line boundaries in `scratch` for readlines.
    lines: Vec<(usize, usize)>,
    /// Non-blocking mode: the body as read ahead of the application (see `prefetch`).
    spool: Spool,
    /// The memory the spool may keep between requests.
    spool_memory: usize,
    /// `prefetch` is reading: the read hook may answer "would block".
    prefetching: bool,
    /// Reads come from the spool (the body was read ahead), from this offset.
    replaying: bool,
    replay_pos: u64,
    /// How reading ahead ended when it failed: given to the application when its reads reach
    /// that point, as a blocking read would have.
    deferred: Option<Error>,
}

impl Default for Input {
    fn default() -> Input {
        Input {
            framing: RequestFraming::NoBody,
            remaining: 0,
            length: 0,
            decoder: Decoder::new(),
            wire: Vec::new(),
            wire_pos: 0,
            wire_end: 0,
            ended: true,
            received: 0,
            limit: 0,
            bad_length: None,
            failed: None,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            scratch: Vec::new(),
            lines: Vec::new(),
            spool: Spool::default(),
            spool_memory: 0,
            prefetching: false,
            replaying: false,
            replay_pos: 0,
            deferred: None,
        }
    }
}

impl Input {
    /// Starts a request framed so, whose CONTENT_LENGTH is `content_length` (None when
    /// absent), with a body limit of `limit` bytes (0: none).
    pub fn reset(&mut self, framing: RequestFraming, content_length: Option<&[u8]>, limit: u64) {
        self.framing = framing;
        self.pos = 0;
        self.end = 0;
        self.failed = None;
        self.bad_length = None;
        self.remaining = 0;
        self.length = 0;
        self.decoder = Decoder::new();
        self.wire_pos = 0;
        self.wire_end = 0;
        self.ended = !matches!(
            framing,
            RequestFraming::Chunked | RequestFraming::Terminated
        );
        self.received = 0;
        self.limit = limit;
        self.spool.clear(self.spool_memory);
        self.replaying = false;
        self.replay_pos = 0;
        self.deferred = None;
        match (framing, content_length) {
            (RequestFraming::Length, Some(value)) if !value.is_empty() => {
                match crate::headers::parse_content_length(value) {
                    Some(n) if limit > 0 && n > limit => {
                        // Refused before a byte is read: the client may still be waiting
                        // for `100 Continue`, which it then never gets.
                        self.failed = Some(too_large(limit));
                    }
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
                }
            }
            _ => {}
        }
        if self.buf.len() != BUFFER_SIZE {
            self.buf.resize(BUFFER_SIZE, 0);
        }
        if framing == RequestFraming::Chunked && self.wire.len() != BUFFER_SIZE {
            self.wire.resize(BUFFER_SIZE, 0);
        }
    }

    /// Whether body bytes remain to be asked of the host (false once reads fail).
    pub fn body_left(&self) -> bool {
        !self.failed()
            && match self.framing {
                RequestFraming::Length => self.remaining > 0,
                RequestFraming::Chunked | RequestFraming::Terminated => !self.ended,
                RequestFraming::NoBody => false,
            }
    }

    /// Whether the whole body was read: nothing left at the host, nothing buffered, no failure.
    pub fn fully_read(&self) -> bool {
        !self.body_left() && self.pos == self.end && !self.failed()
    }

    /// Whether reads fail: the host failed, the body broke a rule, or CONTENT_LENGTH could
    /// not be parsed.
    pub fn failed(&self) -> bool {
        self.bad_length.is_some() || self.failed.is_some()
    }

    /// Whether reads fail because the body is larger than the limit.
    pub fn too_large(&self) -> bool {
        self.failed
            .as_ref()
            .is_some_and(|e| e.status == Status::TooLarge)
    }

    /// Whether the body runs until the end of the input: the connection ends with it.
    pub fn until_eof(&self) -> bool {
        self.framing == RequestFraming::Terminated
    }

    /// Whether what is left of the body can be drained within `limit` decoded bytes, as far
    /// as can be told before reading it: a Content-Length body by its length; a chunked one
    /// only when draining is on (the drain itself stops at the limit).
    pub fn drainable_within(&self, limit: u64) -> bool {
        match self.framing {
            RequestFraming::Length | RequestFraming::NoBody => self.remaining <= limit,
            RequestFraming::Chunked => limit > 0,
            RequestFraming::Terminated => false,
        }
    }

    /// Reads and discards the rest of the body, up to `limit` decoded bytes: Ok(false) when
    /// more was left (the connection is then not kept; nothing is wrong with the request).
    pub fn drain<H: Host>(&mut self, host: &mut H, limit: u64) -> Result<bool, Error> {
        self.check()?;
        self.pos = self.end;
        let mut buf = std::mem::take(&mut self.buf);
        let mut drained = 0u64;
        let mut result = Ok(true);
        while self.body_left() {
            if drained > limit {
                result = Ok(false);
                break;
            }
            match self.read_body(host, &mut buf) {
                Ok(n) => drained += n as u64,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.buf = buf;
        match result {
            Ok(true) if drained > limit => Ok(false),
            other => other,
        }
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

    /// Reads body bytes (decoded) into `dst`; 0 at the end of the body. Every read path
    /// comes through here, so the framing and the limit hold for all of them.
    fn read_body<H: Host>(&mut self, host: &mut H, dst: &mut [u8]) -> Result<usize, Error> {
        if dst.is_empty() {
            return Ok(0);
        }
        if self.replaying {
            return self.replay(dst);
        }
        // Never more than the limit allows, so where a read fails does not depend on how
        // the host splits the body: up to the limit every byte is handed over; at the limit
        // one more byte is asked for, and any byte there is too many.
        let dst = match self.limit {
            0 => dst,
            limit => {
                let allowed = usize::try_from(limit.saturating_sub(self.received))
                    .unwrap_or(usize::MAX)
                    .max(1);
                let len = dst.len().min(allowed);
                &mut dst[..len]
            }
        };
        let n = match self.framing {
            RequestFraming::Length => self.read_host(host, dst)?,
            RequestFraming::Chunked => self.read_chunked(host, dst)?,
            RequestFraming::Terminated if self.ended => 0,
            RequestFraming::Terminated => {
                let n = self.read_host(host, dst)?;
                self.ended = n == 0;
                n
            }
            RequestFraming::NoBody => 0,
        };
        self.received += n as u64;
        if self.limit > 0 && self.received > self.limit {
            return Err(self.fail(too_large(self.limit)));
        }
        Ok(n)
    }

    /// Reads the body read ahead; at its end, the failure that ended reading ahead, if any.
    fn replay(&mut self, dst: &mut [u8]) -> Result<usize, Error> {
        let n = match self.spool.read_at(self.replay_pos, dst) {
            Ok(n) => n,
            Err(e) => {
                return Err(self.fail(Error::new(
                    Status::InputError,
                    format!("reading back the request body failed: {e}"),
                )))
            }
        };
        if n == 0 {
            if let Some(e) = self.deferred.take() {
                return Err(self.fail(e));
            }
        }
        self.replay_pos += n as u64;
        Ok(n)
    }

    /// Non-blocking mode: reads what the host has of the body, decoded and within the limit,
    /// into the spool (memory up to `memory_limit` bytes, then a temporary file), without
    /// waiting. True when nothing more is to be read: the whole body is in, or reading it
    /// failed (that failure then reaches the application where its reads reach it, as with
    /// a blocking read); false when the read hook would block. From then on every read
    /// comes from the spool and never calls the host.
    pub fn prefetch<H: Host>(&mut self, host: &mut H, memory_limit: usize) -> bool {
        self.spool_memory = memory_limit;
        if self.replaying {
            return true;
        }
        let mut buf = std::mem::take(&mut self.buf);
        let done = loop {
            if self.failed() || !self.body_left() {
                break true;
            }
            self.prefetching = true;
            let result = self.read_body(host, &mut buf);
            self.prefetching = false;
            match result {
                Ok(0) => break true,
                Ok(n) => {
                    if let Err(e) = self.spool.append(&buf[..n], memory_limit) {
                        self.deferred = Some(Error::new(
                            Status::InputError,
                            format!("holding the request body failed: {e}"),
                        ));
                        break true;
                    }
                }
                Err(e) if e.status == Status::Pending => break false,
                Err(e) => {
                    // Not failed yet: the application meets it after the bytes before it.
                    self.failed = None;
                    self.deferred = Some(e);
                    break true;
                }
            }
        };
        self.buf = buf;
        if done {
            self.replaying = true;
            self.replay_pos = 0;
            self.pos = 0;
            self.end = 0;
        }
        done
    }

    /// Lets go of a body read ahead (its temporary file, memory beyond the limit) once the
    /// request is over, so an idle connection holds none of it.
    pub fn release_spool(&mut self) {
        self.spool.clear(self.spool_memory);
    }

    /// The body was read ahead: reads never reach the host.
    pub fn replaying(&self) -> bool {
        self.replaying
    }

    /// Keeps a failure so every later read fails the same way.
    fn fail(&mut self, err: Error) -> Error {
        self.failed = Some(err.clone());
        err
    }

    /// Decodes chunks into `dst`, reading wire bytes as needed, never past the last chunk.
    fn read_chunked<H: Host>(&mut self, host: &mut H, dst: &mut [u8]) -> Result<usize, Error> {
        loop {
            if self.decoder.is_done() {
                self.ended = true;
                return Ok(0);
            }
            if self.wire_pos == self.wire_end {
                let want = usize::try_from(self.decoder.min_remaining())
                    .unwrap_or(usize::MAX)
                    .min(self.wire.len());
                let mut wire = std::mem::take(&mut self.wire);
                let n = self.read_hook(host, &mut wire[..want]);
                self.wire = wire;
                match n? {
                    0 => {
                        return Err(self.fail(Error::new(
                            Status::InputError,
                            format!(
                                "chunked request body ended early, after {} bytes",
                                self.received
                            ),
                        )))
                    }
                    n => (self.wire_pos, self.wire_end) = (0, n),
                }
            }
            match self
                .decoder
                .decode(&self.wire[self.wire_pos..self.wire_end], dst)
            {
                Ok((used, produced)) => {
                    self.wire_pos += used;
                    if produced > 0 {
                        return Ok(produced);
                    }
                }
                Err(e) => {
                    return Err(self.fail(Error::new(
                        Status::InputError,
                        format!("chunked request body: {e}"),
                    )))
                }
            }
        }
    }

    /// One call of the read hook (EINTR retried); Ok(0) is the end of input.
    fn read_hook<H: Host>(&mut self, host: &mut H, dst: &mut [u8]) -> Result<usize, Error> {
        let want = dst.len();
        let err = match retry_interrupted(|| host.read_stdin(dst)) {
            Err(e) if self.prefetching && e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(Error::new(Status::Pending, "the read hook would block"))
            }
            Ok(n) if n > want => Error::new(
                Status::IoError,
                format!("read hook reported {n} bytes for a {want}-byte buffer"),
            ),
            Ok(n) => return Ok(n),
            Err(e) if is_disconnect(&e) => {
                Error::new(Status::ClientGone, format!("client went away: {e}"))
            }
            Err(e) => Error::new(Status::InputError, format!("read hook failed: {e}")),
        };
        Err(self.fail(err))
    }

    /// Reads from the host into `dst`: at most what is left of a Content-Length body, any
    /// amount of a terminated one.
    fn read_host<H: Host>(&mut self, host: &mut H, dst: &mut [u8]) -> Result<usize, Error> {
        let want = match self.framing {
            RequestFraming::Length => dst
                .len()
                .min(usize::try_from(self.remaining).unwrap_or(usize::MAX)),
            _ => dst.len(),
        };
        if want == 0 {
            return Ok(0);
        }
        match self.read_hook(host, &mut dst[..want])? {
            // The client stopped before the length it announced: the body is truncated.
            0 if self.framing == RequestFraming::Length => Err(self.fail(Error::new(
                Status::InputError,
                format!(
                    "request body ended after {} of {} bytes (CONTENT_LENGTH)",
                    self.length - self.remaining,
                    self.length
                ),
            ))),
            n => {
                if self.framing == RequestFraming::Length {
                    self.remaining -= n as u64;
                }
                Ok(n)
            }
        }
    }

    /// Refills the buffer when it is empty; false at the end of the body.
    fn fill<H: Host>(&mut self, host: &mut H) -> Result<bool, Error> {
        if self.pos < self.end {
            return Ok(true);
        }
        let mut buf = std::mem::take(&mut self.buf);
        let n = self.read_body(host, &mut buf);
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
                let n = self.read_body(host, &mut out[done..])?;
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
            let want = self.left_to_read().min(64 * 1024);
            if want == 0 {
                break;
            }
            self.scratch.resize(len + want, 0);
            let mut scratch = std::mem::take(&mut self.scratch);
            let n = self.read_body(host, &mut scratch[len..]);
            scratch.truncate(len + *n.as_ref().unwrap_or(&0));
            self.scratch = scratch;
            if n? == 0 {
                break;
            }
        }
        Ok(())
    }

    /// An upper bound of the body bytes left to read (at least 1 while a read can still fail).
    fn left_to_read(&self) -> usize {
        if self.replaying {
            let left = self.spool.len() - self.replay_pos;
            return match left {
                0 if self.deferred.is_some() => 1,
                left => usize::try_from(left).unwrap_or(usize::MAX),
            };
        }
        match self.framing {
            RequestFraming::Length => usize::try_from(self.remaining).unwrap_or(usize::MAX),
            _ if self.body_left() => usize::MAX,
            _ => 0,
        }
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

/// The failure of a body larger than the handler's limit.
fn too_large(limit: u64) -> Error {
    Error::new(
        Status::TooLarge,
        format!("request body larger than the limit of {limit} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::environ::Environ;
    use std::io;

    /// A host whose read hook serves `wire` at most `step` bytes per call.
    struct Scripted {
        wire: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl Host for Scripted {
        type Body = ();
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn read_stdin(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.step).min(self.wire.len() - self.pos);
            buf[..n].copy_from_slice(&self.wire[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
        fn write_stderr(&mut self, data: &[u8]) -> io::Result<usize> {
            Ok(data.len())
        }
        fn flush_stderr(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn add_cgi_vars(&mut self, _environ: &mut Environ) -> Result<(), Error> {
            Ok(())
        }
    }

    const WIRE: &[u8] =
        b"6;x=y\r\none\ntw\r\n0A\r\no\nthree\nfo\r\n2\r\nur\r\n0\r\nT: 1\r\n\r\nNEXT";
    const BODY: &[u8] = b"one\ntwo\nthree\nfour";

    /// Reads the whole body through one of the read paths.
    fn read_with(how: usize, input: &mut Input, host: &mut Scripted) -> Result<Vec<u8>, Error> {
        match read_until_error(how, input, host) {
            (body, None) => Ok(body),
            (_, Some(e)) => Err(e),
        }
    }

    /// Reads through one of the read paths until the end or a failure: what was read before
    /// it, and the failure.
    fn read_until_error(
        how: usize,
        input: &mut Input,
        host: &mut Scripted,
    ) -> (Vec<u8>, Option<Error>) {
        let mut body = Vec::new();
        loop {
            let mut buf = [0u8; 3];
            let n = match how {
                0 => input.read(host, &mut buf),
                1 => input.readline(host, &mut buf),
                2 => {
                    let result = input.read_all(host);
                    body.extend_from_slice(input.result());
                    return (body, result.err());
                }
                3 => input.next_line(host).map(|()| {
                    body.extend_from_slice(input.result());
                    input.result().len()
                }),
                _ => {
                    let result = input.readlines(host, 0);
                    input.lines().for_each(|l| body.extend_from_slice(l));
                    return (body, result.err());
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => return (body, Some(e)),
            };
            if how < 3 {
                body.extend_from_slice(&buf[..n]);
            }
            if n == 0 {
                return (body, None);
            }
        }
    }

    fn chunked(wire: &[u8], step: usize, limit: u64) -> (Input, Scripted) {
        let mut input = Input::default();
        input.reset(RequestFraming::Chunked, None, limit);
        let host = Scripted {
            wire: wire.to_vec(),
            pos: 0,
            step,
        };
        (input, host)
    }

    #[test]
    fn chunked_through_every_read_path() {
        for how in 0..5 {
            for step in [1, 2, 5, 4096] {
                let (mut input, mut host) = chunked(WIRE, step, 0);
                assert!(input.body_left());
                assert_eq!(
                    read_with(how, &mut input, &mut host).unwrap(),
                    BODY,
                    "{how} {step}"
                );
                assert!(input.fully_read());
                // Never a byte past the last chunk: the next request stays at the host.
                assert_eq!(&host.wire[host.pos..], b"NEXT", "{how} {step}");
                let mut buf = [0u8; 4];
                assert_eq!(input.read(&mut host, &mut buf).unwrap(), 0);
            }
        }
    }

    #[test]
    fn chunked_early_end_at_every_byte_is_an_input_error() {
        let body_end = WIRE.len() - 4;
        for cut in 0..body_end {
            for how in 0..5 {
                let (mut input, mut host) = chunked(&WIRE[..cut], 1, 0);
                let err = read_with(how, &mut input, &mut host).unwrap_err();
                assert_eq!(err.status, Status::InputError, "cut {cut}");
                assert!(err.message.contains("ended early"), "{}", err.message);
                // Every later read fails the same way.
                assert_eq!(
                    input.read(&mut host, &mut [0u8; 4]).unwrap_err().status,
                    Status::InputError
                );
                assert!(!input.fully_read());
            }
        }
    }

    #[test]
    fn malformed_chunks_fail_every_read_path() {
        for how in 0..5 {
            let (mut input, mut host) = chunked(b"5\r\nhello\n0\r\n\r\n", 1, 0);
            let err = read_with(how, &mut input, &mut host).unwrap_err();
            assert_eq!(err.status, Status::InputError);
            assert_eq!(
                err.message,
                "chunked request body: chunk data not followed by CRLF"
            );
            assert!(input.failed());
        }
    }

    /// The blocking read's outcome (the body, or the failure) and what it left at the host.
    fn outcome(
        framing: RequestFraming,
        length: Option<&[u8]>,
        wire: &[u8],
        limit: u64,
        how: usize,
        read_ahead: bool,
    ) -> ((Vec<u8>, Option<Error>), bool, usize) {
        let mut input = Input::default();
        input.reset(framing, length, limit);
        let mut host = Scripted {
            wire: wire.to_vec(),
            pos: 0,
            step: 2,
        };
        if read_ahead {
            // A host that has nothing on every other call: read ahead until it is all in.
            let mut stalls = 0;
            let mut stalling = Stalling(&mut host, false);
            loop {
                if input.prefetch(&mut stalling, 5) {
                    break;
                }
                stalls += 1;
                assert!(stalls < 10_000);
            }
            assert!(input.replaying());
            host.step = 0; // from now on the host must not be asked
        }
        let result = read_until_error(how, &mut input, &mut host);
        (result, input.fully_read(), host.pos)
    }

    /// Scripted, answering "would block" on every other call.
    struct Stalling<'a>(&'a mut Scripted, bool);

    impl Host for Stalling<'_> {
        type Body = ();
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn read_stdin(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.0.read_stdin(buf)
        }
        fn write_stderr(&mut self, data: &[u8]) -> io::Result<usize> {
            Ok(data.len())
        }
        fn flush_stderr(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn add_cgi_vars(&mut self, _environ: &mut Environ) -> Result<(), Error> {
            Ok(())
        }
    }

    #[test]
    fn a_body_read_ahead_reads_back_as_a_blocking_read_would() {
        let length = BODY.len().to_string();
        // (framing, CONTENT_LENGTH, the wire, the size limit)
        type Case<'a> = (RequestFraming, Option<&'a [u8]>, Vec<u8>, u64);
        let mut cases: Vec<Case> = Vec::new();
        for cut in 0..=WIRE.len() {
            cases.push((RequestFraming::Chunked, None, WIRE[..cut].to_vec(), 0));
        }
        for cut in 0..=BODY.len() {
            cases.push((
                RequestFraming::Length,
                Some(length.as_bytes()),
                BODY[..cut].to_vec(),
                0,
            ));
            cases.push((RequestFraming::Terminated, None, BODY[..cut].to_vec(), 0));
        }
        for limit in [1, 7, 17, 18] {
            cases.push((RequestFraming::Chunked, None, WIRE.to_vec(), limit));
            cases.push((RequestFraming::Terminated, None, BODY.to_vec(), limit));
            cases.push((
                RequestFraming::Length,
                Some(length.as_bytes()),
                BODY.to_vec(),
                limit,
            ));
        }
        cases.push((
            RequestFraming::Chunked,
            None,
            b"5\r\nhello\n0\r\n\r\n".to_vec(),
            0,
        ));
        cases.push((RequestFraming::Length, Some(b"x1"), BODY.to_vec(), 0));
        cases.push((RequestFraming::NoBody, None, BODY.to_vec(), 0));
        for (framing, length, wire, limit) in &cases {
            for how in 0..5 {
                let blocking = outcome(*framing, *length, wire, *limit, how, false);
                let ahead = outcome(*framing, *length, wire, *limit, how, true);
                assert_eq!(
                    ahead, blocking,
                    "{framing:?} {wire:?} limit {limit} how {how}"
                );
            }
        }
    }

    #[test]
    fn the_size_limit_fails_at_the_same_byte_however_the_body_is_split() {
        // A 30-byte chunk against a limit of 10, read 7 bytes at a time, the wire split at
        // every point: 7 bytes, then a failure, every time (the bytes before the limit are
        // never lost to a block that crosses it).
        let wire = b"1e\r\nabcdefghijklmnopqrstuvwxyz0123\r\n0\r\n\r\n";
        for step in 1..=wire.len() {
            let (mut input, mut host) = chunked(wire, step, 10);
            let mut buf = [0u8; 7];
            assert_eq!(input.read(&mut host, &mut buf), Ok(7), "step {step}");
            assert_eq!(&buf, b"abcdefg");
            let err = input.read(&mut host, &mut buf).unwrap_err();
            assert_eq!(err.status, Status::TooLarge, "step {step}");
            // One byte at a time: exactly the limit, then the failure.
            let (mut input, mut host) = chunked(wire, step, 10);
            for i in 0..10 {
                assert_eq!(
                    input.read(&mut host, &mut buf[..1]),
                    Ok(1),
                    "step {step} byte {i}"
                );
            }
            assert_eq!(
                input.read(&mut host, &mut buf[..1]).unwrap_err().status,
                Status::TooLarge
            );
        }
    }

    #[test]
    fn drain_of_a_chunked_body() {
        let (mut input, mut host) = chunked(WIRE, 3, 0);
        assert_eq!(input.drain(&mut host, 64), Ok(true));
        assert!(input.fully_read());
        assert_eq!(&host.wire[host.pos..], b"NEXT");
        // Past the drain limit the drain stops, quietly.
        let (mut input, mut host) = chunked(WIRE, 3, 0);
        assert_eq!(input.drain(&mut host, 4), Ok(false));
        assert!(!input.failed());
    }

    #[test]
    fn size_limit_in_every_framing() {
        // Chunked: fails the read that passes the limit, every path.
        for how in 0..5 {
            let (mut input, mut host) = chunked(WIRE, 1, BODY.len() as u64);
            assert_eq!(read_with(how, &mut input, &mut host).unwrap(), BODY);
            let (mut input, mut host) = chunked(WIRE, 1, BODY.len() as u64 - 1);
            let err = read_with(how, &mut input, &mut host).unwrap_err();
            assert_eq!(err.status, Status::TooLarge);
            assert!(input.too_large());
        }
        // Content-Length above the limit: refused before a byte is asked of the host.
        let mut host = Scripted {
            wire: BODY.to_vec(),
            pos: 0,
            step: 100,
        };
        let mut input = Input::default();
        input.reset(RequestFraming::Length, Some(b"18"), 17);
        assert!(!input.body_left());
        assert_eq!(
            input.read(&mut host, &mut [0u8; 4]).unwrap_err().status,
            Status::TooLarge
        );
        assert_eq!(host.pos, 0);
        input.reset(RequestFraming::Length, Some(b"18"), 18);
        assert_eq!(read_with(2, &mut input, &mut host).unwrap(), BODY);
        // Terminated: until the end of input, then the limit.
        for limit in [0, 18, 17] {
            let mut host = Scripted {
                wire: BODY.to_vec(),
                pos: 0,
                step: 1,
            };
            input.reset(RequestFraming::Terminated, None, limit);
            assert!(input.until_eof());
            let got = read_with(0, &mut input, &mut host);
            if limit == 17 {
                assert_eq!(got.unwrap_err().status, Status::TooLarge);
            } else {
                assert_eq!(got.unwrap(), BODY);
                assert!(input.fully_read());
            }
        }
    }
}
