//! Structured responses: the response head as data (`gw_response_head`), for hosts that
//! frame responses themselves (server libraries, HTTP/2 servers).

use std::ffi::{c_char, c_int, c_void};

use super::bytes::gw_header;
use crate::framing::BodyFraming;
use crate::host::ResponseHead;

/// Receives a response head as data (see gw_response_head; borrowed for the call). Returns
/// 0, or an errno value (or -1 with errno set) as the write hook does.
pub type gw_hook_send_head_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, head: *const gw_response_head) -> c_int>;

/// The end of a response's body; `complete` is false when it was cut short. Returns 0, or an
/// errno value (or -1 with errno set).
pub type gw_hook_end_body_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, complete: bool) -> c_int>;

/// How a structured host must end the body it is about to receive.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum gw_body_framing {
    /// No body bytes follow (HEAD, 1xx, 204, 304); `content_length` may still describe the
    /// representation (HEAD, 304).
    None,
    /// Exactly `content_length` bytes follow (the library enforces it).
    Length,
    /// Bytes of a length unknown until end_body: frame them your way (chunks, HTTP/2 DATA
    /// frames, or the end of the connection).
    Stream,
}

/// A response head as data, for structured hosts. Borrowed for the hook call.
#[repr(C)]
pub struct gw_response_head {
    /// sizeof(gw_response_head) in the library that filled it: a host built against a newer
    /// header reads only the fields that fit in it.
    pub size: usize,
    pub status_code: u16,
    /// The reason phrase the application chose (after the code and its space).
    pub reason: *const c_char,
    pub reason_len: usize,
    /// The validated headers: Date and Server where the library adds them (origin servers),
    /// then the application's, never Content-Length (see `content_length`) or hop-by-hop
    /// headers.
    pub headers: *const gw_header,
    pub header_count: usize,
    pub framing: gw_body_framing,
    /// Whether `content_length` holds the length the response declares.
    pub has_content_length: bool,
    pub content_length: u64,
}

/// A core head as the C struct, its headers as `views` (which must outlive the struct's use).
pub(crate) fn raw_head(head: &ResponseHead<'_>, views: &mut Vec<gw_header>) -> gw_response_head {
    views.clear();
    views.extend(head.headers.iter().map(|(name, value)| gw_header {
        name: name.as_ptr().cast(),
        name_len: name.len(),
        value: value.as_ptr().cast(),
        value_len: value.len(),
    }));
    gw_response_head {
        size: std::mem::size_of::<gw_response_head>(),
        status_code: head.code,
        reason: head.reason.as_ptr().cast(),
        reason_len: head.reason.len(),
        headers: views.as_ptr(),
        header_count: views.len(),
        framing: match head.body {
            BodyFraming::Omitted => gw_body_framing::None,
            BodyFraming::Length(_) => gw_body_framing::Length,
            BodyFraming::Chunked | BodyFraming::UntilClose | BodyFraming::HostFramed => {
                gw_body_framing::Stream
            }
        },
        has_content_length: head.content_length.is_some(),
        content_length: head.content_length.unwrap_or(0),
    }
}
