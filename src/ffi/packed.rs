//! Name/value pairs packed in one buffer, for callers that pay for every call across the
//! ABI (language bindings: Python's whole environ and header list each cross in one call).
//!
//! The packed form is `count` pairs, each `name NUL value NUL`, back to back, nothing
//! before or after: `"HOME\0/root\0PATH\0/bin\0"` is two pairs. Names never contain NUL (an
//! environ refuses them, a header name cannot be a token with one), so only a value can
//! break the form; a buffer whose NULs do not make exactly `count` pairs is refused whole.

use std::ffi::c_char;

use super::environ::{env_mut, env_ref, gw_environ};
use super::request::{gw_request, request, GW_START_RESPONSE_EXC_INFO};
use super::{boundary, buffer_arg, bytes_arg, out_arg};
use crate::environ::{Environ, MAX_VALUE_LEN};
use crate::status::{Error, Status};

/// The pairs of a packed buffer, checked whole before the first is handed out.
struct Pairs<'a> {
    rest: &'a [u8],
}

impl<'a> Pairs<'a> {
    /// Checks that `data` is exactly `count` NUL-terminated name/value pairs.
    fn new(data: &'a [u8], count: usize) -> Result<Pairs<'a>, Error> {
        let nuls = data.iter().filter(|&&b| b == 0).count();
        let whole = count.checked_mul(2) == Some(nuls) && data.last().is_none_or(|&b| b == 0);
        if !whole {
            return Err(malformed(count, nuls));
        }
        Ok(Pairs { rest: data })
    }

    fn field(&mut self) -> &'a [u8] {
        // Pairs::new proved that every field ends with a NUL.
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.rest.len());
        let field = &self.rest[..end];
        self.rest = self.rest.get(end + 1..).unwrap_or(&[]);
        field
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let name = self.field();
        let value = self.field();
        Some((name, value))
    }
}

#[cold]
fn malformed(count: usize, nuls: usize) -> Error {
    Error::new(
        Status::InvalidArgument,
        format!(
            "the packed buffer does not hold {count} name/value pairs each ending in NUL \
             ({nuls} NULs; a value holding a NUL cannot be packed)"
        ),
    )
}

/// The packed size of `env`, and whether a value holds a NUL (which the form cannot carry).
fn packed_size(env: &Environ) -> (usize, bool) {
    let mut cursor = 0;
    let mut size = 0;
    let mut nul_in_value = false;
    while let Some((name, value)) = env.next(&mut cursor) {
        size += name.len() + value.len() + 2;
        nul_in_value |= value.contains(&0);
    }
    (size, nul_in_value)
}

/// The size of the buffer gw_environ_pack needs for `environ`, in bytes.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_packed_size(
    environ: *const gw_environ,
    out_size: *mut usize,
) -> Status {
    boundary(|| {
        let env = unsafe { env_ref(environ) }?;
        let out_size = unsafe { out_arg(out_size, "out_size") }?;
        *out_size = packed_size(env).0;
        Ok(())
    })
}

/// The whole environ in one call: every entry in the environ's order, packed into `buf`
/// (`cap` bytes, the caller's) as `name NUL value NUL` pairs, so a binding can split it
/// into a dictionary at once instead of calling gw_environ_next per entry. On GW_STATUS_OK,
/// `*out_len` is the number of bytes written, `*out_count` the number of pairs, and
/// `*out_nul_in_value` true when some value itself holds a NUL: the pairs cannot then be
/// told apart by splitting at NULs (read that environ with gw_environ_next instead).
/// GW_STATUS_TOO_LARGE when `cap` is too small (gw_environ_packed_size tells the size to
/// give); the out-parameters are then untouched, and `buf` may have been written. The bytes
/// are a copy: they stay valid for as long as the caller keeps `buf`, whatever happens to
/// the environ. Allocates nothing.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_pack(
    environ: *const gw_environ,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    out_count: *mut usize,
    out_nul_in_value: *mut bool,
) -> Status {
    boundary(|| {
        let env = unsafe { env_ref(environ) }?;
        let buf = unsafe { buffer_arg(buf, cap, "buf") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let out_count = unsafe { out_arg(out_count, "out_count") }?;
        let out_nul_in_value = unsafe { out_arg(out_nul_in_value, "out_nul_in_value") }?;
        let mut cursor = 0;
        let mut at = 0;
        let mut count = 0;
        let mut nul_in_value = false;
        while let Some((name, value)) = env.next(&mut cursor) {
            let end = at + name.len() + value.len() + 2;
            if end > buf.len() {
                return Err(too_small(packed_size(env).0, cap));
            }
            buf[at..at + name.len()].copy_from_slice(name);
            at += name.len();
            buf[at] = 0;
            at += 1;
            buf[at..at + value.len()].copy_from_slice(value);
            at += value.len();
            buf[at] = 0;
            at += 1;
            count += 1;
            nul_in_value |= value.contains(&0);
        }
        *out_len = at;
        *out_count = count;
        *out_nul_in_value = nul_in_value;
        Ok(())
    })
}

/// The pairs of a checked packed buffer, indexed once so that each lookup compares lengths
/// before bytes: on the stack for up to 64 pairs (a request's CGI variables), on the heap
/// past that.
struct SentIndex<'a> {
    small: [(&'a [u8], &'a [u8]); 64],
    large: Vec<(&'a [u8], &'a [u8])>,
    len: usize,
}

impl<'a> SentIndex<'a> {
    fn new(pairs: Pairs<'a>, count: usize) -> SentIndex<'a> {
        let mut index = SentIndex {
            small: [(&[][..], &[][..]); 64],
            large: Vec::new(),
            len: count,
        };
        if count <= index.small.len() {
            for (slot, pair) in index.small.iter_mut().zip(pairs) {
                *slot = pair;
            }
        } else {
            index.large.extend(pairs);
        }
        index
    }

    fn pairs(&self) -> &[(&'a [u8], &'a [u8])] {
        if self.large.is_empty() {
            &self.small[..self.len]
        } else {
            &self.large[..]
        }
    }

    fn names(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.pairs().iter().map(|&(name, _)| name)
    }

    /// The value of the last pair named `name` (the one gw_environ_set_packed leaves).
    fn get(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.pairs()
            .iter()
            .rev()
            .find(|(n, _)| n.len() == name.len() && *n == name)
            .map(|&(_, v)| v)
    }
}

/// What a binding does not know yet of an environ it filled itself: like gw_environ_pack,
/// but only the entries that differ from what the caller knows, so it can copy its own
/// dictionaries and add the difference instead of rebuilding every entry. An entry is
/// known when the last pair in `sent` (`sent_count` packed pairs, as given to
/// gw_environ_set_packed) with its name has its value, or, when `sent` does not name it,
/// when `known` (an environ such as the handler's os_environ; NULL for none) holds the name
/// with the same value. The unknown entries are packed into `buf` in the environ's order.
/// `*out_missing` counts the pairs of `sent` and the entries of `known` whose name `environ`
/// no longer holds: 0 means nothing the caller knows was removed, so its own dictionaries
/// updated with the packed entries are the environ; otherwise fall back to gw_environ_pack.
/// The other out-parameters, the buffer and GW_STATUS_TOO_LARGE are gw_environ_pack's (a
/// buffer of gw_environ_packed_size bytes is always enough). Allocates nothing.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_pack_changes(
    environ: *const gw_environ,
    known: *const gw_environ,
    sent: *const c_char,
    sent_len: usize,
    sent_count: usize,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
    out_count: *mut usize,
    out_missing: *mut usize,
    out_nul_in_value: *mut bool,
) -> Status {
    boundary(|| {
        let env = unsafe { env_ref(environ) }?;
        let known = if known.is_null() {
            None
        } else {
            Some(unsafe { env_ref(known) }?)
        };
        let sent = unsafe { bytes_arg(sent, sent_len, "sent") }?;
        let sent = SentIndex::new(Pairs::new(sent, sent_count)?, sent_count);
        let buf = unsafe { buffer_arg(buf, cap, "buf") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let out_count = unsafe { out_arg(out_count, "out_count") }?;
        let out_missing = unsafe { out_arg(out_missing, "out_missing") }?;
        let out_nul_in_value = unsafe { out_arg(out_nul_in_value, "out_nul_in_value") }?;
        let mut cursor = 0;
        let mut at = 0;
        let mut count = 0;
        let mut nul_in_value = false;
        // `known` is usually the environ's own base, whose entries come first and in the
        // same order: walk it alongside, and look a name up only when they part.
        let mut known_cursor = 0;
        while let Some((name, value)) = env.next(&mut cursor) {
            let mut in_step = None;
            if let Some(k) = known {
                let mut peek = known_cursor;
                if let Some((known_name, known_value)) = k.next(&mut peek) {
                    if known_name == name {
                        known_cursor = peek;
                        in_step = Some(known_value);
                    }
                }
            }
            let expected = match sent.get(name) {
                Some(v) => Some(v),
                None => in_step.or_else(|| known.and_then(|k| k.get(name))),
            };
            if expected == Some(value) {
                continue;
            }
            let end = at + name.len() + value.len() + 2;
            if end > buf.len() {
                return Err(too_small(packed_size(env).0, cap));
            }
            buf[at..at + name.len()].copy_from_slice(name);
            at += name.len();
            buf[at] = 0;
            at += 1;
            buf[at..at + value.len()].copy_from_slice(value);
            at += value.len();
            buf[at] = 0;
            at += 1;
            count += 1;
            nul_in_value |= value.contains(&0);
        }
        *out_len = at;
        *out_count = count;
        let mut missing = sent.names().filter(|name| !env.contains(name)).count();
        if let Some(k) = known {
            let mut cursor = 0;
            while let Some((name, _)) = k.next(&mut cursor) {
                missing += usize::from(!env.contains(name));
            }
        }
        *out_missing = missing;
        *out_nul_in_value = nul_in_value;
        Ok(())
    })
}

#[cold]
fn too_small(needed: usize, cap: usize) -> Error {
    Error::new(
        Status::TooLarge,
        format!("the packed environ needs {needed} bytes; buf has {cap}"),
    )
}

/// Sets `count` entries at once from `data` (`len` bytes packed as `name NUL value NUL`
/// pairs, see gw_environ_pack), in order, as gw_environ_set would one by one: a later pair
/// with the same name replaces the earlier value. Everything is checked before anything is
/// set, so a malformed buffer (NULs that do not make exactly `count` pairs: a value holding
/// a NUL cannot be packed, use gw_environ_set for it), an empty name, a name holding '=', or
/// a name or value past its limit (GW_STATUS_TOO_LARGE) changes nothing; only the environ's
/// total size limit (64 MiB) can stop it part way.
#[no_mangle]
pub unsafe extern "C" fn gw_environ_set_packed(
    environ: *mut gw_environ,
    data: *const c_char,
    len: usize,
    count: usize,
) -> Status {
    boundary(|| {
        let env = unsafe { env_mut(environ) }?;
        let data = unsafe { bytes_arg(data, len, "data") }?;
        for (name, value) in Pairs::new(data, count)? {
            Environ::check_name(name)?;
            if value.len() > MAX_VALUE_LEN {
                return Err(Error::new(
                    Status::TooLarge,
                    "environ value longer than its limit (1 MiB)",
                ));
            }
        }
        for (name, value) in Pairs::new(data, count)? {
            env.set(name, value)?;
        }
        Ok(())
    })
}

/// gw_request_start_response with the headers packed in one buffer: `header_count` pairs,
/// `name NUL value NUL` each, in `headers_len` bytes at `headers` (see gw_environ_pack), for
/// bindings that would otherwise build an array of gw_header. Every rule of
/// gw_request_start_response applies. A buffer whose NULs do not make exactly
/// `header_count` pairs (a NUL inside a name or value, which no valid header holds) fails
/// with GW_STATUS_INVALID_ARGUMENT before start_response is attempted: it does not count as
/// a call (a caller that wants the refusal counted passes such a header to
/// gw_request_start_response, which refuses it as GW_STATUS_INVALID_HEADER).
#[no_mangle]
pub unsafe extern "C" fn gw_request_start_response_packed(
    req: *mut gw_request,
    status: *const c_char,
    status_len: usize,
    headers: *const c_char,
    headers_len: usize,
    header_count: usize,
    flags: u32,
) -> Status {
    boundary(|| {
        let req = unsafe { request(req) }?;
        if flags & !GW_START_RESPONSE_EXC_INFO != 0 {
            return Err(Error::new(
                Status::InvalidArgument,
                format!("unknown start_response flags {flags:#x}"),
            ));
        }
        let status = unsafe { bytes_arg(status, status_len, "status") }?;
        let headers = unsafe { bytes_arg(headers, headers_len, "headers") }?;
        let pairs = Pairs::new(headers, header_count)?;
        req.start_response(status, pairs, flags & GW_START_RESPONSE_EXC_INFO != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_split_exactly() {
        let pairs: Vec<_> = Pairs::new(b"A\0b\0C\0\0", 2).unwrap().collect();
        assert_eq!(pairs, vec![(&b"A"[..], &b"b"[..]), (&b"C"[..], &b""[..])]);
        assert_eq!(Pairs::new(b"", 0).unwrap().count(), 0);
    }

    #[test]
    fn pairs_refuse_wrong_shapes() {
        for (data, count) in [
            (&b"A\0b\0"[..], 2),
            (b"A\0b\0", 0),
            (b"A\0b", 1),
            (b"A\0b\0x", 1),
            (b"A\0b\0c\0", 1),
            (b"x", 0),
        ] {
            assert!(Pairs::new(data, count).is_err(), "{data:?} as {count}");
        }
    }
}
