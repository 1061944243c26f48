//! Validation mode: wsgiref.validate's checks on a handler's requests.

use super::handler::{get, gw_handler, set_flag};
use crate::status::Status;

/// Validation mode (default false), wsgiref.validate's checks on both sides, for development
/// and tests. Before the application runs, the host's environ is checked (the required keys
/// REQUEST_METHOD, SERVER_NAME and SERVER_PORT; no HTTP_CONTENT_TYPE or HTTP_CONTENT_LENGTH;
/// SCRIPT_NAME and PATH_INFO empty or starting with '/', one of them present, SCRIPT_NAME
/// not '/'; CONTENT_LENGTH a non-negative integer): a broken rule is logged with the
/// validator's message and answered with the error page, without calling the application
/// (GW_STATUS_APP_ERROR). A missing QUERY_STRING or an unknown REQUEST_METHOD is logged as
/// a warning. Then gw_request_start_response also refuses (GW_STATUS_INVALID_HEADER, message
/// "validate: ...") a `Status` header, header names ending in '-' or '_', a response without
/// Content-Type other than 204 and 304, and a 204 or 304 with one; and a body iterator whose
/// first block comes before start_response fails the request. Every other rule of the
/// validator is enforced in every mode (status and header syntax, hop-by-hop headers) or
/// guaranteed by the library (the wsgi.* keys, no write or iteration after close, close
/// exactly once). Log lines read `gateway: validate warning: <message>`, or for errors
/// `gateway: application error: validate: <message>`.
#[no_mangle]
pub unsafe extern "C" fn gw_handler_set_validate(handler: *mut gw_handler, value: bool) -> Status {
    unsafe { set_flag(handler, value, |s| &mut s.validate) }
}

#[no_mangle]
pub unsafe extern "C" fn gw_handler_get_validate(
    handler: *const gw_handler,
    out: *mut bool,
) -> Status {
    unsafe { get(handler, out, |s, out| *out = s.validate) }
}
