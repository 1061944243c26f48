//! wsgiref.util through the C ABI: `gw_environ_guess_scheme`, `_application_uri`,
//! `_request_uri`, `_shift_path_info`, `_setup_testing_defaults` (on any environ: a request's
//! from gw_request_environ or one made with gw_environ_new) and `gw_is_hop_by_hop`.

use std::ffi::c_char;

use super::environ::{env_mut, env_ref, gw_environ};
use super::{boundary, buffer_arg, bytes_arg, out_arg};
use crate::status::{Error, Status};

/// Copies `bytes` into the caller's `(out, out_cap)` buffer and its length into `*out_len`;
/// when it does not fit, GW_STATUS_TOO_LARGE with the length needed in `*out_len` (the one
/// out-parameter written on failure), and nothing in `out`.
pub(crate) fn copy_out(
    bytes: &[u8],
    out: &mut [u8],
    out_len: &mut usize,
    what: &'static str,
) -> Result<(), Error> {
    *out_len = bytes.len();
    match out.get_mut(..bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(Error::new(Status::TooLarge, what)),
    }
}

/// wsgiref.util.guess_scheme: `https` when the environ's HTTPS is exactly `yes`, `on` or
/// `1` (case-sensitive), else `http`. `*out_scheme` is a static string (NUL-terminated too)
/// of `*out_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_guess_scheme(
    environ: *const gw_environ,
    out_scheme: *mut *const c_char,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        let env = unsafe { env_ref(environ) }?;
        let out_scheme = unsafe { out_arg(out_scheme, "out_scheme") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let scheme = crate::util::guess_scheme(env.get(b"HTTPS"));
        *out_scheme = if scheme == b"https" {
            c"https".as_ptr()
        } else {
            c"http".as_ptr()
        };
        *out_len = scheme.len();
        Ok(())
    })
}

/// wsgiref.util.application_uri: the application's base URI, written into `out` (`out_cap`
/// bytes, no NUL added) with its length in `*out_len`: wsgi.url_scheme, `://`, HTTP_HOST
/// when non-empty, else SERVER_NAME and `:`SERVER_PORT unless it is the scheme's default
/// (`443` for https, `80` otherwise, compared as strings), then SCRIPT_NAME (or `/`)
/// percent-encoded as `quote(..., encoding='latin1')` (letters, digits, `_.-~/` kept, other
/// bytes `%XX` in upper case). GW_STATUS_NOT_FOUND when wsgi.url_scheme, or SERVER_NAME or
/// SERVER_PORT when needed, is missing (wsgiref's KeyError; the message names it). When the
/// URI does not fit, GW_STATUS_TOO_LARGE and `*out_len` is the length needed; `out` may be
/// NULL with `out_cap` 0 to ask for the length that way.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_application_uri(
    environ: *const gw_environ,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        let env = unsafe { env_ref(environ) }?;
        let out = unsafe { buffer_arg(out, out_cap, "out") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let mut uri = Vec::new();
        crate::util::application_uri(env, &mut uri)?;
        copy_out(
            &uri,
            out,
            out_len,
            "out_cap is too small for the URI (see *out_len)",
        )
    })
}

/// wsgiref.util.request_uri: gw_environ_application_uri, then PATH_INFO percent-encoded with
/// `/;=,` also kept (its first byte dropped when SCRIPT_NAME is empty or absent, as wsgiref
/// does), then, when `include_query` is true and QUERY_STRING is non-empty, `?` and
/// QUERY_STRING as it is. Output, length and statuses as gw_environ_application_uri.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_request_uri(
    environ: *const gw_environ,
    include_query: bool,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        let env = unsafe { env_ref(environ) }?;
        let out = unsafe { buffer_arg(out, out_cap, "out") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let mut uri = Vec::new();
        crate::util::request_uri(env, include_query, &mut uri)?;
        copy_out(
            &uri,
            out,
            out_len,
            "out_cap is too small for the URI (see *out_len)",
        )
    })
}

/// wsgiref.util.shift_path_info: moves the first segment of PATH_INFO to SCRIPT_NAME and
/// returns it. Empty and `.` segments in the middle of PATH_INFO are dropped first; the new
/// SCRIPT_NAME is `posixpath.normpath(SCRIPT_NAME + "/" + name)` without a trailing `/`
/// (with one when the name is empty, so `/x` and `/x/` stay apart); PATH_INFO keeps the
/// rest. On GW_STATUS_OK, `*out_has_name` says whether a name came back: false where
/// wsgiref returns None, which is when PATH_INFO is empty or absent (nothing changes) or the
/// shifted segment was a final `.` (SCRIPT_NAME and PATH_INFO are still updated); with a
/// name, it is copied into `out` (`out_cap` bytes, no NUL) and its length is in
/// `*out_name_len` (0 without one). A buffer as long as PATH_INFO always suffices; a shorter
/// one that does not fit gives GW_STATUS_TOO_LARGE with the length needed in
/// `*out_name_len`, and the environ unchanged. A non-empty PATH_INFO with no `/` is
/// GW_STATUS_INVALID_ARGUMENT (wsgiref's IndexError), nothing changed.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_shift_path_info(
    environ: *mut gw_environ,
    out: *mut c_char,
    out_cap: usize,
    out_name_len: *mut usize,
    out_has_name: *mut bool,
) -> Status {
    boundary(|| {
        let env = unsafe { env_mut(environ) }?;
        let out = unsafe { buffer_arg(out, out_cap, "out") }?;
        let out_name_len = unsafe { out_arg(out_name_len, "out_name_len") }?;
        let out_has_name = unsafe { out_arg(out_has_name, "out_has_name") }?;
        let shift = crate::util::shift_path_info(
            env.get(b"SCRIPT_NAME").unwrap_or(b""),
            env.get(b"PATH_INFO").unwrap_or(b""),
        )?;
        let Some(shift) = shift else {
            *out_name_len = 0;
            *out_has_name = false;
            return Ok(());
        };
        let name = shift.name.as_deref().unwrap_or(b"");
        if name.len() > out.len() {
            *out_name_len = name.len();
            return Err(Error::new(
                Status::TooLarge,
                "out_cap is too small for the name (see *out_name_len); nothing was shifted",
            ));
        }
        crate::util::apply_shift(env, &shift)?;
        out[..name.len()].copy_from_slice(name);
        *out_name_len = name.len();
        *out_has_name = shift.name.is_some();
        Ok(())
    })
}

/// wsgiref.util.setup_testing_defaults: sets, only where absent, SERVER_NAME `127.0.0.1`,
/// SERVER_PROTOCOL `HTTP/1.0`, HTTP_HOST (SERVER_NAME's value), REQUEST_METHOD `GET`,
/// SCRIPT_NAME `` and PATH_INFO `/` (only when both are absent), then the wsgi.* keys with
/// the byte-string values a handler gives a request's environ: wsgi.version `1.0`,
/// wsgi.run_once, wsgi.multithread and wsgi.multiprocess `0`, wsgi.input `gw_request_input`
/// and wsgi.errors `gw_request_errors` (wsgiref puts an empty BytesIO and a StringIO there),
/// wsgi.url_scheme from gw_environ_guess_scheme, and SERVER_PORT `80` for http or `443` for
/// https. Existing keys are never replaced, even empty ones. For tests, as wsgiref says: the
/// data is fake.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_setup_testing_defaults(environ: *mut gw_environ) -> Status {
    boundary(|| crate::util::setup_testing_defaults(unsafe { env_mut(environ) }?))
}

/// wsgiref.util.is_hop_by_hop: `*out` is true when `name` is, ignoring ASCII case, one of
/// Connection, Keep-Alive, Proxy-Authenticate, Proxy-Authorization, TE, Trailers,
/// Transfer-Encoding, Upgrade (wsgiref's set: `Trailers`, not `Trailer`). These are the
/// names gw_request_start_response refuses with GW_STATUS_HOP_BY_HOP_HEADER.
#[no_mangle]
pub unsafe extern "C" fn gw_is_hop_by_hop(
    name: *const c_char,
    name_len: usize,
    out: *mut bool,
) -> Status {
    boundary(|| {
        let name = unsafe { bytes_arg(name, name_len, "name") }?;
        *unsafe { out_arg(out, "out") }? = crate::headers::is_hop_by_hop(name);
        Ok(())
    })
}
