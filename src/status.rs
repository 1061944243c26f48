//! Outcome codes shared by the core and the C ABI, and the error type that carries them.

use std::borrow::Cow;
use std::fmt;
use std::fmt::Write;

/// The result of every gateway call. `GW_STATUS_OK` is 0; the numbers are stable and
/// never reused. `gw_status_str()` gives a static description and
/// `gw_last_error_message()` the detail of the most recent failure on this thread.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL (or a NULL pointer came with a non-zero length).
    NullArgument = 1,
    /// An argument was out of range or malformed (a length, a setting's value, a name).
    InvalidArgument = 2,
    /// A Rust panic was caught at the ABI boundary; the object it happened in should be freed.
    Panic = 3,
    /// The environ has no such key.
    NotFound = 4,
    /// The call is not allowed now: write before start_response, a body returned twice,
    /// a handler setter or run called while the handler is running, ...
    InvalidState = 5,
    /// start_response was given a status that breaks a rule (3 ASCII digits 100-599,
    /// a space, a reason without control bytes).
    InvalidStatusLine = 6,
    /// start_response was given a header whose name is not a token, whose value holds a
    /// control byte, or a Content-Length that is not a plain decimal number.
    InvalidHeader = 7,
    /// start_response was given a hop-by-hop header (Connection, Transfer-Encoding, ...):
    /// the gateway owns the connection and the framing.
    HopByHopHeader = 8,
    /// start_response was called a second time without the exc_info flag ("Headers already set!").
    HeadersAlreadySet = 9,
    /// start_response was called with the exc_info flag after the headers were sent: the
    /// error the app is reporting is "re-raised"; return it from the application.
    HeadersAlreadySent = 10,
    /// The application failed. From gw_handler_run: the failure was logged and the error
    /// page was sent in full. From an application: "I failed".
    AppError = 11,
    /// The application failed after the headers were sent, or the body was shorter than
    /// its Content-Length: the response is cut short and the host must close the connection.
    ResponseIncomplete = 12,
    /// The client went away (the write hook reported EPIPE, ECONNRESET or ECONNABORTED).
    /// Nothing was logged; the handler is ready for the next request.
    ClientGone = 13,
    /// A hook failed (an errno other than a disconnect, or a write that made no progress).
    /// The failure was logged; close the connection.
    IoError = 14,
    /// The request body could not be read as asked (the read hook failed, the body ended
    /// early, its chunked framing is malformed, or CONTENT_LENGTH is not a decimal number).
    InputError = 15,
    /// The feature is turned off on this handler (wsgi.file_wrapper).
    Unsupported = 16,
    /// A name, value or buffer is larger than the library accepts; from gw_request_input_*,
    /// the request body is larger than gw_handler_set_max_request_body allows.
    TooLarge = 17,
    /// gw_environ_set_from_request_head: the head is not complete yet; read more bytes and
    /// call again with all of them. Nothing was set.
    Incomplete = 18,
    /// gw_environ_set_from_request_head: the request is bad; answer it with the HTTP status
    /// given (gw_error_response makes the bytes) and close the connection. Nothing was set.
    BadRequest = 19,
    /// Non-blocking mode: the cycle waits for the client (gw_handler_pending says for what);
    /// call gw_handler_resume when it is ready, or gw_handler_cancel. Not a failure.
    Pending = 20,
    /// Non-blocking mode: gw_request_write refused the block, because the bytes queued for
    /// a slow client already reach the handler's high-water mark. Nothing of it was sent or
    /// queued; hand the rest of the body over as an iterator (it is pulled as the client
    /// takes bytes), or fail.
    WouldBlock = 21,
}

impl Status {
    /// Static English text for each status.
    pub fn describe(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NullArgument => "a required pointer argument was NULL",
            Status::InvalidArgument => "invalid argument",
            Status::Panic => "a panic was caught at the library boundary",
            Status::NotFound => "not found",
            Status::InvalidState => "call not allowed in the current state",
            Status::InvalidStatusLine => "invalid response status",
            Status::InvalidHeader => "invalid response header",
            Status::HopByHopHeader => "hop-by-hop header not allowed",
            Status::HeadersAlreadySet => "Headers already set!",
            Status::HeadersAlreadySent => "headers already sent: the reported error is re-raised",
            Status::AppError => "application error",
            Status::ResponseIncomplete => "response cut short after headers were sent",
            Status::ClientGone => "client went away",
            Status::IoError => "I/O hook failed",
            Status::InputError => "request body could not be read",
            Status::Unsupported => "feature disabled on this handler",
            Status::TooLarge => "too large",
            Status::Incomplete => "incomplete: more bytes are needed",
            Status::BadRequest => "bad request",
            Status::Pending => "pending: the cycle waits for the client",
            Status::WouldBlock => "would block: the output queue is full",
        }
    }

    /// Converts a raw integer (from C) into a status; unknown values become AppError,
    /// since only an application hands the library arbitrary codes.
    pub fn from_raw(raw: i32) -> Status {
        const ALL: [Status; 22] = [
            Status::Ok,
            Status::NullArgument,
            Status::InvalidArgument,
            Status::Panic,
            Status::NotFound,
            Status::InvalidState,
            Status::InvalidStatusLine,
            Status::InvalidHeader,
            Status::HopByHopHeader,
            Status::HeadersAlreadySet,
            Status::HeadersAlreadySent,
            Status::AppError,
            Status::ResponseIncomplete,
            Status::ClientGone,
            Status::IoError,
            Status::InputError,
            Status::Unsupported,
            Status::TooLarge,
            Status::Incomplete,
            Status::BadRequest,
            Status::Pending,
            Status::WouldBlock,
        ];
        ALL.iter()
            .copied()
            .find(|s| *s as i32 == raw)
            .unwrap_or(Status::AppError)
    }
}

/// A failure with its status and a message for people (the last-error text, the error log).
/// Fixed messages are borrowed, so the common failures cost no allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub status: Status,
    pub message: Cow<'static, str>,
}

impl Error {
    pub fn new(status: Status, message: impl Into<Cow<'static, str>>) -> Error {
        Error {
            status,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Shows bytes from the wire in a message: printable ASCII as is, anything else as `\xNN`,
/// so a log line can never carry a control byte the app supplied.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    escape_bytes_into(&mut out, bytes);
    out
}

/// escape_bytes, appended to `out` (no allocation when it has room).
pub fn escape_bytes_into(out: &mut String, bytes: &[u8]) {
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_raw_round_trips_every_status() {
        for raw in 0..22 {
            assert_eq!(Status::from_raw(raw) as i32, raw);
        }
        assert_eq!(Status::from_raw(999), Status::AppError);
        assert_eq!(Status::from_raw(-1), Status::AppError);
    }

    #[test]
    fn escape_bytes_hides_control_bytes() {
        assert_eq!(escape_bytes(b"a\r\nb\\\xe9"), "a\\x0d\\x0ab\\x5c\\xe9");
    }
}
