//! What the core needs from the world around it: the host's I/O and the application's body.
//! The C hook table and the file-descriptor presets are two implementations (in `ffi`).

use std::io;
use std::os::fd::RawFd;

use crate::environ::Environ;
use crate::framing::BodyFraming;
use crate::headers::HeaderList;
use crate::status::Error;

/// A response head as data, for a host that frames responses itself.
pub struct ResponseHead<'a> {
    pub code: u16,
    /// The reason phrase the application chose.
    pub reason: &'a [u8],
    /// The validated headers: Date and Server where the library adds them, then the
    /// application's, without Content-Length (see `content_length`).
    pub headers: &'a HeaderList,
    /// No body, exactly `content_length` bytes, or a length only the end will tell.
    pub body: BodyFraming,
    /// The length the response declares: the body's, or for HEAD and 304 the one the
    /// application gave (or computed from HEAD's one block).
    pub content_length: Option<u64>,
}

/// The host side of one handler: wsgiref's `_write`, `_flush`, `get_stdin`, `get_stderr`
/// and `add_cgi_vars`.
pub trait Host: Sized {
    /// The application's chunk iterators (a C vtable, a file, ...): a `BodySource` of the
    /// cycle's request.
    type Body;

    /// Writes some of `data` to the client; returns how many bytes were taken (may be fewer).
    fn write(&mut self, data: &[u8]) -> io::Result<usize>;
    /// Pushes buffered output to the client.
    fn flush(&mut self) -> io::Result<()>;
    /// Reads some of the request body into `buf`; 0 means end of input.
    fn read_stdin(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes some of `data` to the error stream; returns how many bytes were taken.
    fn write_stderr(&mut self, data: &[u8]) -> io::Result<usize>;
    /// Pushes buffered error output.
    fn flush_stderr(&mut self) -> io::Result<()>;
    /// Adds the request's CGI variables to the environ being built.
    fn add_cgi_vars(&mut self, environ: &mut Environ) -> Result<(), Error>;

    /// Whether this host takes the head as data (`send_head`) and frames the body itself;
    /// body bytes then reach `write` unframed.
    fn takes_head(&self) -> bool {
        false
    }
    /// The final response's head (structured hosts only).
    fn send_head(&mut self, _head: &ResponseHead<'_>) -> io::Result<()> {
        Ok(())
    }
    /// An interim (1xx) response's head; Ok(false) when the host cannot send one.
    fn send_interim(&mut self, _head: &ResponseHead<'_>) -> io::Result<bool> {
        Ok(false)
    }
    /// The end of the body (structured hosts only): `complete` is false when the response
    /// was cut short, so the host can reset the stream instead of ending it.
    fn end_body(&mut self, _complete: bool) -> io::Result<()> {
        Ok(())
    }

    /// The wall clock in whole seconds since the Unix epoch, for the Date header. The
    /// standard library's clock by default; a host may give a cheaper one that counts the
    /// same seconds (the C ABI's reads the kernel's coarse clock, as time(2) does).
    fn unix_seconds(&self) -> i64 {
        crate::date::system_seconds()
    }

    /// Whether the host sends file bodies itself (`send_file`, sendfile(2) or splice).
    fn sends_files(&self) -> bool {
        false
    }
    /// Sends up to `length` bytes of `fd` from `offset` to the client, after the head and
    /// any framing the library wrote; returns how many went (at least 1), or "would block"
    /// in non-blocking mode.
    fn send_file(&mut self, _fd: RawFd, _offset: u64, _length: u64) -> io::Result<u64> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// A body that is a range of an open file: a host that sends files gets this instead of
/// the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRange {
    pub fd: RawFd,
    pub offset: u64,
    pub length: u64,
}

/// One block of a response body.
pub struct Chunk<'a> {
    pub data: &'a [u8],
    /// The source says no block follows, so the end of the body can go out with this one.
    pub last: bool,
}

/// A response body the application hands over: an iterator of byte chunks with an optional
/// block count and a close that the cycle calls exactly once. `R` is the request the cycle
/// hands to each `next_chunk` (a C iterator passes it on to the application), so this module
/// need not know the cycle.
pub trait BodySource<R> {
    /// The next chunk, borrowed until the next call; Ok(None) at the end.
    fn next_chunk<'s>(&'s mut self, request: &mut R) -> Result<Option<Chunk<'s>>, Error>;
    /// How many chunks there are, when known (Python's `len(result)`).
    fn block_count(&mut self) -> Option<usize>;
    /// Releases the body; called exactly once on every path.
    fn close(&mut self) -> Result<(), Error>;
    /// The body as a range of a file whose length is known, when it is one.
    fn file_range(&mut self) -> Option<FileRange> {
        None
    }
}

/// Whether an I/O error means the client went away (wsgiref's BrokenPipeError,
/// ConnectionResetError, ConnectionAbortedError).
pub fn is_disconnect(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

/// How many EINTRs in a row a hook may report before the library treats it as failing.
pub const MAX_EINTR_RETRIES: u32 = 64;

/// Calls `op` again while it fails with EINTR, at most MAX_EINTR_RETRIES times in a row.
#[inline]
pub fn retry_interrupted<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut interrupted = 0;
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted && interrupted < MAX_EINTR_RETRIES => {
                interrupted += 1
            }
            other => return other,
        }
    }
}

/// Why handing bytes to a write hook failed.
pub enum WriteFailure {
    /// The hook took nothing: retrying could loop forever.
    NoProgress,
    /// The hook claimed more bytes than it was given (claimed, given).
    Overreported(usize, usize),
    /// The hook reported an error.
    Hook(io::Error),
}

/// Hands all of `data` to `write`: short writes are completed, EINTR is retried, a write
/// that takes nothing or fails stops it.
#[inline]
pub fn write_fully(
    mut write: impl FnMut(&[u8]) -> io::Result<usize>,
    mut data: &[u8],
) -> Result<(), WriteFailure> {
    while !data.is_empty() {
        match retry_interrupted(|| write(data)) {
            Ok(0) => return Err(WriteFailure::NoProgress),
            Ok(n) if n > data.len() => return Err(WriteFailure::Overreported(n, data.len())),
            Ok(n) => data = &data[n..],
            Err(e) => return Err(WriteFailure::Hook(e)),
        }
    }
    Ok(())
}
