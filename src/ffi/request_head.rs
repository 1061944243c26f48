//! `gw_environ_set_from_request_head`: a request head to CGI variables, and
//! `gw_error_response`, the canned answer to a refused one.

use std::cell::RefCell;
use std::ffi::c_char;

use super::environ::{env_mut, gw_environ};
use super::{boundary, buffer_arg, bytes_arg, null, out_arg, sized_arg};
use crate::request_head::{self, Connection, Failure, Options, Parsed, Scratch};
use crate::status::{Error, Status};

/// What the host knows of a connection, for gw_environ_set_from_request_head. Start from
/// GW_CONNECTION_FACTS_INIT (it sets `size`; fields are only ever appended). Strings are
/// (pointer, length) and copied.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gw_connection_facts {
    /// sizeof(gw_connection_facts) as the caller was built: set by GW_CONNECTION_FACTS_INIT.
    pub size: usize,
    /// REMOTE_ADDR: the client's address as text ("192.0.2.7", "2001:db8::1"); not set
    /// when empty (a Unix socket).
    pub remote_addr: *const c_char,
    pub remote_addr_len: usize,
    /// SERVER_NAME: the server's own name (its configured name, or the local address).
    /// Required. It never comes from the client's Host field, which PEP 3333's URL
    /// reconstruction reads from HTTP_HOST anyway.
    pub server_name: *const c_char,
    pub server_name_len: usize,
    /// SCRIPT_NAME: the mount prefix of the application, empty for the root, else starting
    /// with '/' and not ending with one ("/app"). Compared with the decoded path.
    pub script_name: *const c_char,
    pub script_name_len: usize,
    /// REMOTE_PORT: the client's port; not set when 0.
    pub remote_port: u16,
    /// SERVER_PORT: the port the request came in on. Required (not 0).
    pub server_port: u16,
    /// The connection is TLS: HTTPS=on (so wsgi.url_scheme is https).
    pub tls: bool,
}

/// Limits and policies for gw_environ_set_from_request_head; NULL means every default.
/// Start from GW_REQUEST_HEAD_OPTIONS_INIT: every field at 0 (or false) is its default.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct gw_request_head_options {
    /// sizeof(gw_request_head_options) as the caller was built: set by
    /// GW_REQUEST_HEAD_OPTIONS_INIT.
    pub size: usize,
    /// Longest request line in bytes, without its CRLF (0: GW_REQUEST_HEAD_DEFAULT_MAX_REQUEST_LINE,
    /// 8192, nginx's buffer). Longer: 414.
    pub max_request_line: usize,
    /// Most header fields (0: GW_REQUEST_HEAD_DEFAULT_MAX_FIELDS, 100, gunicorn's; at most
    /// GW_REQUEST_HEAD_MAX_FIELDS_LIMIT). More: 431.
    pub max_fields: usize,
    /// Longest field line in bytes, name to value, without its CRLF (0:
    /// GW_REQUEST_HEAD_DEFAULT_MAX_FIELD_SIZE, 8192). Longer: 431.
    pub max_field_size: usize,
    /// Longest head in bytes, every line with its CRLF (0: GW_REQUEST_HEAD_DEFAULT_MAX_HEAD,
    /// 65536). Longer: 431, even before the head is complete.
    pub max_head: usize,
    /// Keep fields whose names hold anything but letters, digits and '-' (dropped by
    /// default, as nginx and gunicorn do), under names no other field can take: each such
    /// byte is written %XX, so `X_Y` is HTTP_X%5FY and never poses as `X-Y` (HTTP_X_Y).
    pub keep_unusual_names: bool,
    /// Let a decoded %00 into PATH_INFO (refused with 400 by default: C applications read
    /// values as strings, and a NUL would cut the path short).
    pub allow_nul_in_path: bool,
    /// Accept an HTTP/0.9 request line, `GET /path` CRLF with no version and no fields
    /// (SERVER_PROTOCOL "HTTP/0.9"; the handler then sends a body without a head). Off by
    /// default: such a line is refused with 505.
    pub allow_http09: bool,
}

/// Default of gw_request_head_options.max_request_line.
pub const GW_REQUEST_HEAD_DEFAULT_MAX_REQUEST_LINE: usize = 8192;
/// Default of gw_request_head_options.max_fields.
pub const GW_REQUEST_HEAD_DEFAULT_MAX_FIELDS: usize = 100;
/// Default of gw_request_head_options.max_field_size.
pub const GW_REQUEST_HEAD_DEFAULT_MAX_FIELD_SIZE: usize = 8192;
/// Default of gw_request_head_options.max_head.
pub const GW_REQUEST_HEAD_DEFAULT_MAX_HEAD: usize = 65536;
/// The largest gw_request_head_options.max_fields accepted (the fields are parsed into a
/// table of this many on the stack, so parsing never allocates).
pub const GW_REQUEST_HEAD_MAX_FIELDS_LIMIT: usize = 256;
/// A buffer of this many bytes holds any gw_error_response.
pub const GW_ERROR_RESPONSE_MAX_LEN: usize = 256;
const _: () = {
    use crate::request_head as core;
    assert!(GW_REQUEST_HEAD_DEFAULT_MAX_REQUEST_LINE == core::DEFAULT_MAX_REQUEST_LINE);
    assert!(GW_REQUEST_HEAD_DEFAULT_MAX_FIELDS == core::DEFAULT_MAX_FIELDS);
    assert!(GW_REQUEST_HEAD_DEFAULT_MAX_FIELD_SIZE == core::DEFAULT_MAX_FIELD_SIZE);
    assert!(GW_REQUEST_HEAD_DEFAULT_MAX_HEAD == core::DEFAULT_MAX_HEAD);
    assert!(GW_REQUEST_HEAD_MAX_FIELDS_LIMIT == core::MAX_FIELDS_LIMIT);
    assert!(GW_ERROR_RESPONSE_MAX_LEN == crate::error_response::MAX_LEN);
};

thread_local! {
    /// The decoding and joining buffers, reused so a warmed-up thread parses without
    /// allocating.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Parses the request head at the start of `head` (`head_len` bytes, which may run on into
/// the body or the next request) and sets its CGI variables in `environ`, as
/// wsgiref.simple_server's get_environ does with its weaknesses fixed. Call it from
/// add_cgi_vars on the environ the handler lends, or on any environ. A host that runs the
/// handler once the head's blank line has arrived parses it only there: when this call
/// refuses the head, add_cgi_vars returns GW_STATUS_CLIENT_GONE (the handler then sends and
/// logs nothing) and the host answers with gw_error_response (c-examples/demo_server.c).
///
/// Returns:
/// - GW_STATUS_OK: `*out_consumed` is the head's length (the body or the next pipelined
///   request starts there), `*out_chunked` says the body is chunked (CONTENT_LENGTH is then
///   absent; a handler run with this environ decodes the chunks from read_stdin), `*out_http_status` is 0.
/// - GW_STATUS_INCOMPLETE: the head has not ended yet: read more and call again with every
///   byte so far. `*out_http_status` is 0; nothing was set.
/// - GW_STATUS_BAD_REQUEST: `*out_http_status` is the status to answer with (400, 404, 414,
///   431, 501 or 505; gw_error_response makes the bytes), gw_last_error_message() says why;
///   nothing was set. Close the connection after the answer.
/// - GW_STATUS_NULL_ARGUMENT, GW_STATUS_INVALID_ARGUMENT (bad facts or options),
///   GW_STATUS_UNSUPPORTED (a newer struct), GW_STATUS_TOO_LARGE (an environ limit; nothing
///   was set).
///
/// The variables, in this order: GATEWAY_INTERFACE (CGI/1.1), SERVER_NAME and SERVER_PORT
/// (from the facts), SERVER_PROTOCOL (HTTP/1.0, HTTP/1.1 or HTTP/0.9), REQUEST_METHOD,
/// REQUEST_URI (the request target exactly as sent), SCRIPT_NAME (the mount prefix),
/// PATH_INFO, QUERY_STRING (raw, after the first '?'; empty when none), REMOTE_ADDR,
/// REMOTE_PORT, HTTPS=on (TLS), CONTENT_TYPE and CONTENT_LENGTH (when sent; no HTTP_
/// prefix), HTTP_HOST, then one HTTP_* per field name in order of first appearance.
/// SERVER_SOFTWARE comes from gw_handler_set_server_software; REMOTE_HOST is not set (no
/// reverse lookups; wsgiref sets it empty). wsgiref's invented CONTENT_TYPE text/plain and
/// empty CONTENT_LENGTH are not set.
///
/// The rules (a bad request is refused, never guessed):
/// - Syntax by httparse (hyper's parser): request line, field names (tokens, no space
///   before the colon) and values (no control byte but HTAB, so no NUL). Lines end in CRLF:
///   a bare LF or CR is 400; obs-fold is 400; empty lines before the request line are
///   skipped. Versions HTTP/1.0 and HTTP/1.1; another HTTP/d.d is 505, anything else 400.
/// - Target: origin-form (`/path?query`), absolute-form (`http://host/path`, http or https,
///   no userinfo: HTTP_HOST is then its authority, the Host field being ignored as RFC 9112
///   §3.2.2 says) or `*` for OPTIONS (PATH_INFO "*"). Visible ASCII only, no '#'. CONNECT
///   is 501.
/// - Host: an HTTP/1.1 request needs exactly one valid Host (host [":" port], an IP literal
///   or a registered name, not empty); more than one, or an invalid one, is 400 in any
///   version.
/// - PATH_INFO: the path percent-decoded to bytes (latin-1 semantics: %E9 is the byte
///   0xE9), so %2F becomes '/' as in CGI and wsgiref (REQUEST_URI keeps it raw); a '%'
///   without two hex digits is 400; %00 is 400 unless allow_nul_in_path. Then `.` and `..`
///   segments are resolved on the decoded path (%2E%2E counts), and a path climbing above
///   the root is 400 (as nginx; wsgiref passes `/../../etc/passwd` on). Empty segments are
///   kept. The mount prefix is then removed: a path that is not the prefix or under it
///   (prefix + '/') is 404.
/// - Fields: names of letters, digits and '-' become HTTP_ + the name upper-cased with '-'
///   as '_'; others are dropped (see keep_unusual_names). Repeats are joined with ", "
///   (Cookie with "; "). Proxy is dropped (httpoxy: no HTTP_PROXY). Values are passed as
///   their bytes, without surrounding whitespace.
/// - Content-Length: 1*DIGIT only (no sign, space, comma list or hex), 400 otherwise;
///   leading zeros are accepted as RFC 9110 allows (`007` is 7, as nginx, gunicorn and h11
///   read it) and CONTENT_LENGTH carries the number (`7`), so nothing after the gateway can
///   read it another way; more than 64 bits is 400; repeats must agree in value, else 400.
/// - Transfer-Encoding: with Content-Length, 400 (refused rather than guessed); on HTTP/1.0,
///   400 (RFC 9112 §6.1 calls it faulty framing); a final coding other than chunked is 400
///   (RFC 9112 §6.3), chunked twice is 400, chunked after other codings (gzip, chunked) is
///   501; a lone chunked sets `*out_chunked` and passes HTTP_TRANSFER_ENCODING.
/// - Limits: see gw_request_head_options; the request line is 414, the fields 431.
///
/// `facts` and `options` (NULL for the defaults) are read as their `size` says. Uses no
/// heap once the calling thread and the environ have seen their largest request.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_set_from_request_head(
    environ: *mut gw_environ,
    head: *const c_char,
    head_len: usize,
    facts: *const gw_connection_facts,
    options: *const gw_request_head_options,
    out_consumed: *mut usize,
    out_chunked: *mut bool,
    out_http_status: *mut u16,
) -> Status {
    boundary(|| {
        let env = unsafe { env_mut(environ) }?;
        let head = unsafe { bytes_arg(head, head_len, "head") }?;
        let facts_min = std::mem::offset_of!(gw_connection_facts, tls) + 1;
        // SAFETY: a non-NULL facts pointer points at a table of its own size.
        let facts = unsafe { sized_arg(facts, facts_min, "facts") }?;
        let options = if options.is_null() {
            Options::default()
        } else {
            let min = std::mem::offset_of!(gw_request_head_options, allow_http09) + 1;
            // SAFETY: as facts.
            let o = unsafe { sized_arg(options, min, "options") }?;
            Options {
                max_request_line: o.max_request_line,
                max_fields: o.max_fields,
                max_field_size: o.max_field_size,
                max_head: o.max_head,
                keep_unusual_names: o.keep_unusual_names,
                allow_nul_in_path: o.allow_nul_in_path,
                allow_http09: o.allow_http09,
            }
        };
        let out_consumed = unsafe { out_arg(out_consumed, "out_consumed") }?;
        let out_chunked = unsafe { out_arg(out_chunked, "out_chunked") }?;
        let out_http_status = unsafe { out_arg(out_http_status, "out_http_status") }?;
        let conn = Connection {
            remote_addr: unsafe {
                bytes_arg(
                    facts.remote_addr,
                    facts.remote_addr_len,
                    "facts->remote_addr",
                )
            }?,
            remote_port: facts.remote_port,
            server_name: unsafe {
                bytes_arg(
                    facts.server_name,
                    facts.server_name_len,
                    "facts->server_name",
                )
            }?,
            server_port: facts.server_port,
            tls: facts.tls,
            script_name: unsafe {
                bytes_arg(
                    facts.script_name,
                    facts.script_name_len,
                    "facts->script_name",
                )
            }?,
        };
        let outcome = SCRATCH.with(|scratch| {
            request_head::set_from_request_head(
                env,
                head,
                &conn,
                &options,
                &mut scratch.borrow_mut(),
            )
        });
        match outcome {
            Ok(Parsed::Head { consumed, chunked }) => {
                *out_consumed = consumed;
                *out_chunked = chunked;
                *out_http_status = 0;
                Ok(())
            }
            Ok(Parsed::Incomplete) => {
                *out_http_status = 0;
                Err(Error::new(
                    Status::Incomplete,
                    "the request head is incomplete",
                ))
            }
            Err(Failure::Rejected(r)) => {
                *out_http_status = r.status;
                Err(Error::new(Status::BadRequest, r.message))
            }
            Err(Failure::Error(e)) => Err(e),
        }
    })
}

/// Writes the canned response for `status_code` into `out` (`out_cap` bytes) and its length
/// into `*out_len`: `HTTP/1.1 <code> <reason>`, Date, `Content-Type: text/plain;
/// charset=utf-8`, Content-Length, `Connection: close` and a one-line body
/// (`400 Bad Request\n`); send it as is and close the connection. No NUL is added.
/// Statuses: 400, 404, 408, 411, 413, 414, 417, 431, 500, 501, 503, 505 (others:
/// GW_STATUS_INVALID_ARGUMENT). A buffer of GW_ERROR_RESPONSE_MAX_LEN bytes always
/// suffices; a shorter one that does not fit fails with GW_STATUS_TOO_LARGE, and then
/// `*out_len` is the length needed (the one out-parameter written on failure).
#[no_mangle]
pub unsafe extern "C" fn gw_error_response(
    status_code: u16,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        let out = unsafe { buffer_arg(out, out_cap, "out") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let date = crate::date::http_date_now();
        match crate::error_response::write(status_code, &date, out) {
            Ok(n) => {
                *out_len = n;
                Ok(())
            }
            Err(0) => Err(Error::new(
                Status::InvalidArgument,
                "no canned response for this status",
            )),
            Err(needed) => {
                *out_len = needed;
                Err(Error::new(
                    Status::TooLarge,
                    "out_cap is too small for the response (see *out_len)",
                ))
            }
        }
    })
}
