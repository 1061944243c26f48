//! Handing bytes to the host. In blocking mode every write is completed at once. In
//! non-blocking mode a hook may answer "would block": what the client does not take goes
//! to a queue that `pump` empties when the cycle resumes, and the flush (and a structured
//! host's end of the body) waits until it is empty. The bytes, and their order, are the
//! same either way.

use std::io;

use super::{BodyStep, FileSend, Output, Phase, Request};
use crate::framing::{BodyFraming, BodyShape};
use crate::host::{is_disconnect, retry_interrupted, write_fully, FileRange, Host, WriteFailure};
use crate::status::{Error, Status};

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl<H: Host> Request<'_, H> {
    fn nonblocking(&self) -> bool {
        self.settings.nonblocking
    }

    /// Bytes queued for the client and not taken yet.
    pub(super) fn queued(&self) -> usize {
        self.st.queue.len() - self.st.queue_pos
    }

    /// Whether output waits for the client: queued bytes or a flush not done yet.
    pub(super) fn output_waits(&self) -> bool {
        self.queued() > 0 || self.st.flush_due
    }

    /// Hands all of `data` to the write hook: short writes are completed, a write that makes
    /// no progress or fails ends the cycle, a disconnect is remembered. In non-blocking mode
    /// what the client does not take now is queued behind what already waits.
    pub(super) fn write_all(&mut self, data: &[u8]) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        if self.nonblocking() {
            let taken = if self.queued() == 0 && !self.st.blocked {
                self.write_some(data)?
            } else {
                0
            };
            if self.queued() == 0 {
                self.st.queue.clear();
                self.st.queue_pos = 0;
            }
            self.st.queue.extend_from_slice(&data[taken..]);
            return Ok(());
        }
        let host = &mut *self.host;
        match write_fully(|d| host.write(d), data) {
            Ok(()) => Ok(()),
            Err(WriteFailure::NoProgress) => Err(self.no_progress("write")),
            Err(WriteFailure::Overreported(claimed, given)) => {
                Err(self.overreported("write", claimed as u64, given as u64))
            }
            Err(WriteFailure::Hook(e)) => Err(self.output_failure("write", e)),
        }
    }

    /// Non-blocking mode: writes as much of `data` as the client takes now.
    fn write_some(&mut self, data: &[u8]) -> Result<usize, Error> {
        let mut done = 0;
        while done < data.len() {
            let rest = &data[done..];
            match retry_interrupted(|| self.host.write(rest)) {
                Ok(0) => return Err(self.no_progress("write")),
                Ok(n) if n > rest.len() => {
                    return Err(self.overreported("write", n as u64, rest.len() as u64))
                }
                Ok(n) => done += n,
                Err(e) if would_block(&e) => {
                    self.st.blocked = true;
                    break;
                }
                Err(e) => return Err(self.output_failure("write", e)),
            }
        }
        Ok(done)
    }

    /// Flushes the host's output; in non-blocking mode once the queue is empty.
    pub(super) fn flush(&mut self) -> Result<(), Error> {
        if self.nonblocking() {
            self.st.flush_due = true;
            return self.pump().map(drop);
        }
        match self.host.flush() {
            Ok(()) => Ok(()),
            Err(e) => Err(self.output_failure("flush", e)),
        }
    }

    /// Non-blocking mode: sends what waits, as far as the client takes it: the queue, then
    /// the flush, then a structured host's end of the body. True when nothing waits.
    #[inline]
    pub(super) fn pump(&mut self) -> Result<bool, Error> {
        if !self.nonblocking() {
            // Blocking writes complete at once: nothing ever waits.
            return Ok(true);
        }
        self.pump_queue()
    }

    fn pump_queue(&mut self) -> Result<bool, Error> {
        if self.st.output != Output::Open {
            self.st.clear_queue();
            return Ok(true);
        }
        if self.st.blocked {
            return Ok(self.queued() == 0 && !self.st.flush_due && self.st.end_due.is_none());
        }
        if self.queued() > 0 {
            let queue = std::mem::take(&mut self.st.queue);
            let written = self.write_some(&queue[self.st.queue_pos..]);
            self.st.queue = queue;
            match written {
                Ok(n) => self.st.queue_pos += n,
                Err(e) => {
                    self.st.clear_queue();
                    return Err(e);
                }
            }
            if self.queued() > 0 {
                return Ok(false);
            }
            self.st.queue.clear();
            self.st.queue_pos = 0;
        }
        if self.st.flush_due {
            // Not retried on EINTR, as in blocking mode (the header says which hooks are).
            match self.host.flush() {
                Ok(()) => self.st.flush_due = false,
                Err(e) if would_block(&e) => {
                    self.st.blocked = true;
                    return Ok(false);
                }
                Err(e) => {
                    self.st.clear_queue();
                    return Err(self.output_failure("flush", e));
                }
            }
        }
        if let Some(complete) = self.st.end_due.take() {
            if let Err(e) = self.host.end_body(complete) {
                return Err(self.output_failure("end_body", e));
            }
        }
        Ok(true)
    }

    /// Non-blocking mode: refuses an application's write while the queue is at or above
    /// the high-water mark (after trying to send some of it).
    pub(super) fn check_queue_room(&mut self) -> Result<(), Error> {
        if !self.nonblocking() || self.queued() < self.settings.write_high_water {
            return Ok(());
        }
        self.pump()?;
        if self.queued() >= self.settings.write_high_water {
            return Err(Error::new(
                Status::WouldBlock,
                format!(
                    "{} bytes wait for the client (high-water mark {}): return the rest of the body as an iterator",
                    self.queued(),
                    self.settings.write_high_water
                ),
            ));
        }
        Ok(())
    }

    fn no_progress(&mut self, what: &str) -> Error {
        self.st.output = Output::Failed;
        Error::new(Status::IoError, format!("{what} hook made no progress"))
    }

    fn overreported(&mut self, what: &str, claimed: u64, given: u64) -> Error {
        self.st.output = Output::Failed;
        Error::new(
            Status::IoError,
            format!("{what} hook reported {claimed} bytes written of {given}"),
        )
    }

    pub(super) fn output_failure(&mut self, what: &str, e: io::Error) -> Error {
        if is_disconnect(&e) {
            self.st.output = Output::ClientGone;
            Error::new(Status::ClientGone, format!("client went away: {e}"))
        } else {
            self.st.output = Output::Failed;
            Error::new(Status::IoError, format!("{what} hook failed: {e}"))
        }
    }

    // ---- file bodies through the host's send_file hook ------------------------------------

    /// Starts a file body the host sends itself: the head (with the file's length as the
    /// body's, so Content-Length is known) and a chunk's size line when the response is
    /// already chunked, then the range goes to `file_step`.
    pub(super) fn start_file(&mut self, range: FileRange) -> Result<(), Error> {
        self.check_output()?;
        match self.st.phase {
            Phase::Unstarted | Phase::Refused => {
                return Err(Error::new(
                    Status::InvalidState,
                    "write() before start_response()",
                ))
            }
            Phase::StatusSet => self.start_head(BodyShape::File(range.length), false)?,
            Phase::HeadSent(_) => self.st.out.clear(),
        }
        let length = self.body_allowance(range.length);
        let chunk = length > 0 && self.st.framing().map(|f| f.body) == Some(BodyFraming::Chunked);
        let mut out = std::mem::take(&mut self.st.out);
        if chunk {
            let mut digits = [0u8; 16];
            out.extend_from_slice(super::response::format_hex(length, &mut digits));
            out.extend_from_slice(b"\r\n");
        }
        let result = self.write_all(&out);
        out.clear();
        self.st.out = out;
        result?;
        self.st.file = Some(FileSend {
            range: FileRange { length, ..range },
            sent: 0,
            chunk,
        });
        Ok(())
    }

    /// Sends the file range through the host's send_file hook: all of it in blocking mode,
    /// as much as the client takes in non-blocking mode. Done once the body is finished.
    pub(super) fn file_step(&mut self) -> Result<BodyStep, Error> {
        let Some(mut file) = self.st.file else {
            return Ok(BodyStep::Done);
        };
        while file.sent < file.range.length {
            let left = file.range.length - file.sent;
            let offset = file.range.offset + file.sent;
            let fd = file.range.fd;
            match retry_interrupted(|| self.host.send_file(fd, offset, left)) {
                // The file is shorter than it was: the application's body broke, not the client.
                Ok(0) => {
                    return Err(Error::new(
                        Status::AppError,
                        format!(
                            "the body file ended after {} of {} bytes",
                            file.sent, file.range.length
                        ),
                    ))
                }
                Ok(n) if n > left => return Err(self.overreported("send_file", n, left)),
                Ok(n) => {
                    file.sent += n;
                    self.st.body_sent += n;
                    self.st.file = Some(file);
                }
                Err(e) if would_block(&e) && self.nonblocking() => {
                    self.st.blocked = true;
                    return Ok(BodyStep::Blocked);
                }
                Err(e) => return Err(self.output_failure("send_file", e)),
            }
        }
        self.st.file = None;
        if file.chunk {
            self.write_all(b"\r\n")?;
        }
        self.flush()?;
        self.finish_content().map(|()| BodyStep::Done)
    }
}
