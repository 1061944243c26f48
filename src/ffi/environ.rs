//! `gw_environ`: the environ object (byte-string names and values in insertion order).

use std::ffi::c_char;

use super::bytes::{gw_header, null_item};
use super::{boundary, bytes_arg, fail, guard, null, out_arg, slice_arg};
use crate::environ::{plain_lengths, Environ};
use crate::status::{Error, Status};

/// An environ: byte-string names and values (latin-1 "bytes as str"), kept in insertion
/// order. Values returned by it are followed by a NUL byte for convenience, but may contain
/// NUL themselves: the length is what counts.
///
/// Thread safety: a `const gw_environ *` may be read from several threads at once; changing
/// one needs exclusive access. It may move between threads.
pub struct gw_environ {
    _private: [u8; 0],
}

/// Longest environ name accepted, in bytes (longer ones fail with GW_STATUS_TOO_LARGE).
pub const GW_ENVIRON_MAX_NAME_LEN: usize = 65536;
/// Longest environ value accepted, in bytes (longer ones fail with GW_STATUS_TOO_LARGE).
pub const GW_ENVIRON_MAX_VALUE_LEN: usize = 1048576;
const _: () = assert!(GW_ENVIRON_MAX_NAME_LEN == crate::environ::MAX_NAME_LEN);
const _: () = assert!(GW_ENVIRON_MAX_VALUE_LEN == crate::environ::MAX_VALUE_LEN);

pub(crate) fn as_ptr(env: &mut Environ) -> *mut gw_environ {
    (env as *mut Environ).cast()
}

pub(crate) unsafe fn env_ref<'a>(env: *const gw_environ) -> Result<&'a Environ, Error> {
    // SAFETY: every gw_environ pointer the library hands out points at an Environ.
    unsafe { env.cast::<Environ>().as_ref() }.ok_or_else(|| null("environ"))
}

pub(crate) unsafe fn env_mut<'a>(env: *mut gw_environ) -> Result<&'a mut Environ, Error> {
    // SAFETY: as env_ref; the caller has exclusive access (documented).
    unsafe { env.cast::<Environ>().as_mut() }.ok_or_else(|| null("environ"))
}

fn publish(env: Environ, out: *mut *mut gw_environ) -> Result<(), Error> {
    let out = unsafe { out_arg(out, "out") }?;
    *out = Box::into_raw(Box::new(env)).cast();
    Ok(())
}

/// Creates an empty environ. Free it with gw_environ_free.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_new(out: *mut *mut gw_environ) -> Status {
    boundary(|| publish(Environ::new(), out))
}

/// Creates an environ holding the process environment, byte for byte (wsgiref's
/// read_environ on POSIX). Free it with gw_environ_free.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_new_from_process(out: *mut *mut gw_environ) -> Status {
    boundary(|| {
        if out.is_null() {
            return Err(null("out"));
        }
        publish(Environ::from_process()?, out)
    })
}

/// Frees an environ made by gw_environ_new, gw_environ_new_from_process or
/// gw_handler_copy_os_environ. NULL is a no-op (GW_STATUS_OK). The environ a request lends
/// (gw_request_environ, add_cgi_vars) belongs to its handler: freeing it is refused with
/// GW_STATUS_INVALID_STATE and changes nothing.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_free(environ: *mut gw_environ) -> Status {
    boundary(|| {
        if environ.is_null() {
            return Ok(());
        }
        if unsafe { env_ref(environ) }?.is_request_environ() {
            return Err(Error::new(
                Status::InvalidState,
                "this environ belongs to a request: its handler frees it",
            ));
        }
        // SAFETY: every other environ pointer comes from Box::into_raw in publish().
        drop(unsafe { Box::from_raw(environ.cast::<Environ>()) });
        Ok(())
    })
}

/// Sets `name` to `value` (copied). An existing name keeps its place in the order.
/// Names must be non-empty and contain no NUL or '='.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_set(
    environ: *mut gw_environ,
    name: *const c_char,
    name_len: usize,
    value: *const c_char,
    value_len: usize,
) -> Status {
    boundary(|| {
        let env = unsafe { env_mut(environ) }?;
        let name = unsafe { bytes_arg(name, name_len, "name") }?;
        let value = unsafe { bytes_arg(value, value_len, "value") }?;
        env.set(name, value)
    })
}

/// Sets `count` variables in one call: `vars[i].name` (`name_len` bytes) to `vars[i].value`
/// (`value_len` bytes), copied, exactly as that many gw_environ_set calls in this order
/// would (a name already present keeps its place; a name given twice takes the later value
/// at the earlier place), or none of them: every pointer, name and value is checked, and the
/// room they need, before anything changes, so on a failure the environ is as it was and
/// the message names the first bad entry (`vars[3].name is NULL`, `environ variable 3:
/// ...`). `vars` may be NULL when `count` is 0. What a host's add_cgi_vars should use: one
/// call for the whole request.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_set_many(
    environ: *mut gw_environ,
    vars: *const gw_header,
    count: usize,
) -> Status {
    boundary(|| {
        let env = unsafe { env_mut(environ) }?;
        // SAFETY: the caller promises `count` records at `vars`.
        let vars = unsafe { slice_arg(vars, count, "vars") }?;
        // SAFETY: `plain` reads each record's bytes only once its pointers and lengths are
        // checked.
        if env.try_set_records(vars.iter().map(|v| unsafe { plain(v) })) {
            return Ok(());
        }
        // Some record is refused: the checks again, in order, so the error is the first bad
        // record's, whatever refused it.
        // SAFETY: each record's pointers are checked before its bytes are read.
        let records = vars.iter().map(|v| unsafe { record(v) });
        env.set_records(records, |i| record_error(i, &vars[i]))
    })
}

/// A record's name and value when they are plainly good: pointers that are not NULL, and
/// lengths the environ's `plain_lengths` takes. Anything else is None, which the environ
/// refuses (`set_records` then says why, or takes it: a NULL value of length 0 is rare
/// enough to go that way). The length test is the environ's
/// own, so the compiler drops its copy of it.
#[inline(always)]
unsafe fn plain<'a>(v: &gw_header) -> Option<(&'a [u8], &'a [u8])> {
    if v.name.is_null() || v.value.is_null() || !plain_lengths(v.name_len, v.value_len) {
        return None;
    }
    // SAFETY: checked above: neither pointer is NULL, both lengths are within the environ's
    // limits; the record promises the bytes.
    unsafe {
        Some((
            std::slice::from_raw_parts(v.name.cast::<u8>(), v.name_len),
            std::slice::from_raw_parts(v.value.cast::<u8>(), v.value_len),
        ))
    }
}

/// One record's name and value, once its pointers are checked: non-NULL, or a length of 0;
/// a length past the environ's limits is refused before any slice is made of it. None when
/// it is refused (`record_error` says why).
#[inline(always)]
unsafe fn record<'a>(v: &gw_header) -> Option<(&'a [u8], &'a [u8])> {
    // One test of all four conditions (`&` and `|`: no branch each).
    let refused = (v.name.is_null() & (v.name_len > 0))
        | (v.value.is_null() & (v.value_len > 0))
        | (v.name_len > GW_ENVIRON_MAX_NAME_LEN)
        | (v.value_len > GW_ENVIRON_MAX_VALUE_LEN);
    if refused {
        return None;
    }
    // SAFETY: checked above; the record promises its bytes.
    unsafe { Some((checked(v.name, v.name_len), checked(v.value, v.value_len))) }
}

/// Why `record` refused record `i`.
#[cold]
fn record_error(i: usize, v: &gw_header) -> Error {
    if v.name.is_null() && v.name_len > 0 {
        null_item("vars", i, "name")
    } else if v.value.is_null() && v.value_len > 0 {
        null_item("vars", i, "value")
    } else {
        Error::new(
            Status::TooLarge,
            format!("environ variable {i}: name or value longer than its limit"),
        )
    }
}

/// The bytes of a record whose pointer and length were checked: non-NULL, or a length of
/// 0; the length within the environ's limits.
#[inline(always)]
unsafe fn checked<'a>(ptr: *const c_char, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller checked `ptr` (non-NULL) and `len`; the record promises the bytes.
    unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }
}

/// Looks `name` up. On GW_STATUS_OK, `*out_value` and `*out_value_len` give the value,
/// borrowed until the environ is next changed or freed. GW_STATUS_NOT_FOUND when absent.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_get(
    environ: *const gw_environ,
    name: *const c_char,
    name_len: usize,
    out_value: *mut *const c_char,
    out_value_len: *mut usize,
) -> Status {
    boundary(|| {
        let env = unsafe { env_ref(environ) }?;
        let name = unsafe { bytes_arg(name, name_len, "name") }?;
        let out_value = unsafe { out_arg(out_value, "out_value") }?;
        let out_value_len = unsafe { out_arg(out_value_len, "out_value_len") }?;
        // Not-found is an answer, not a failure: no message is formatted for it.
        let value = env
            .get(name)
            .ok_or(Error::new(Status::NotFound, "no such environ key"))?;
        *out_value = value.as_ptr().cast();
        *out_value_len = value.len();
        Ok(())
    })
}

/// Removes `name`. GW_STATUS_NOT_FOUND when it was not there.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_remove(
    environ: *mut gw_environ,
    name: *const c_char,
    name_len: usize,
) -> Status {
    boundary(|| {
        let env = unsafe { env_mut(environ) }?;
        let name = unsafe { bytes_arg(name, name_len, "name") }?;
        if env.remove(name)? {
            Ok(())
        } else {
            Err(Error::new(Status::NotFound, "no such environ key"))
        }
    })
}

/// The number of entries.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_len(environ: *const gw_environ, out_len: *mut usize) -> Status {
    boundary(|| {
        let env = unsafe { env_ref(environ) }?;
        *unsafe { out_arg(out_len, "out_len") }? = env.len();
        Ok(())
    })
}

/// Iterates in insertion order. Set `*cursor = 0` first; each GW_STATUS_OK gives one entry
/// (borrowed until the environ is next changed or freed) and advances the cursor;
/// GW_STATUS_NOT_FOUND means the end. Do not change the environ while iterating.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_next(
    environ: *const gw_environ,
    cursor: *mut usize,
    out_name: *mut *const c_char,
    out_name_len: *mut usize,
    out_value: *mut *const c_char,
    out_value_len: *mut usize,
) -> Status {
    // Called once per entry: the pointers are tested together (which one is NULL is worked
    // out only then), and success builds no Result.
    guard(move || {
        if environ.is_null()
            | cursor.is_null()
            | out_name.is_null()
            | out_name_len.is_null()
            | out_value.is_null()
            | out_value_len.is_null()
        {
            return fail(first_null(&[
                (environ.is_null(), "environ"),
                (cursor.is_null(), "cursor"),
                (out_name.is_null(), "out_name"),
                (out_name_len.is_null(), "out_name_len"),
                (out_value.is_null(), "out_value"),
                (out_value_len.is_null(), "out_value_len"),
            ]));
        }
        // SAFETY: none is NULL (tested above); every gw_environ pointer the library hands out
        // points at an Environ; the out-parameters point at writable storage of their type.
        unsafe {
            let Some((name, value)) = (*environ.cast::<Environ>()).next(&mut *cursor) else {
                return fail(Error::new(Status::NotFound, "end of environ"));
            };
            *out_name = name.as_ptr().cast();
            *out_name_len = name.len();
            *out_value = value.as_ptr().cast();
            *out_value_len = value.len();
        }
        Status::Ok
    })
}

/// The error for the first argument found NULL, in order.
#[cold]
fn first_null(args: &[(bool, &'static str)]) -> Error {
    let what = args
        .iter()
        .find(|(is_null, _)| *is_null)
        .map_or("?", |a| a.1);
    null(what)
}
