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

/// The zero bytes of `word`, as its bytes' high bits (exact: no carry crosses a byte).
fn zero_bytes(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((word & LOW7).wrapping_add(LOW7)) | word | LOW7)
}

fn word_at(chunk: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(chunk);
    u64::from_le_bytes(bytes)
}

/// How many NULs `data` holds, eight bytes at a time.
fn count_nuls(data: &[u8]) -> usize {
    let mut chunks = data.chunks_exact(8);
    let mut count = 0;
    for chunk in &mut chunks {
        count += zero_bytes(word_at(chunk)).count_ones() as usize;
    }
    count + chunks.remainder().iter().filter(|&&b| b == 0).count()
}

/// The index of the first NUL in `data`, eight bytes at a time.
fn find_nul(data: &[u8]) -> Option<usize> {
    let mut chunks = data.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let zeros = zero_bytes(word_at(chunk));
        if zeros != 0 {
            return Some(at + zeros.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == 0)
        .map(|i| at + i)
}

/// The pairs of a packed buffer, checked whole before the first is handed out.
#[derive(Clone)]
struct Pairs<'a> {
    rest: &'a [u8],
}

impl<'a> Pairs<'a> {
    /// Checks that `data` is exactly `count` NUL-terminated name/value pairs.
    fn new(data: &'a [u8], count: usize) -> Result<Pairs<'a>, Error> {
        let nuls = count_nuls(data);
        let whole = count.checked_mul(2) == Some(nuls) && data.last().is_none_or(|&b| b == 0);
        if !whole {
            return Err(malformed(count, nuls));
        }
        Ok(Pairs { rest: data })
    }

    fn field(&mut self) -> &'a [u8] {
        // Pairs::new proved that every field ends with a NUL.
        let end = find_nul(self.rest).unwrap_or(self.rest.len());
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

/// The pairs of a checked packed buffer, indexed once by name in an open-addressing table
/// (FNV-1a, linear probing), which keeps the last pair of each name: a lookup hashes the
/// name and compares one or two candidates. On the stack for up to 64 pairs (a request's
/// CGI variables), on the heap past that.
struct SentIndex<'a> {
    /// The pairs, in order.
    small: [(&'a [u8], &'a [u8]); SMALL_PAIRS],
    large: Vec<(&'a [u8], &'a [u8])>,
    /// Per name: index + 1 of its last pair (0 for an empty slot), and its number of pairs.
    small_table: [(u32, u32); 2 * SMALL_PAIRS],
    large_table: Vec<(u32, u32)>,
    len: usize,
}

const SMALL_PAIRS: usize = 64;

/// A hash of a name from its length and its first and last eight bytes (names share
/// prefixes, HTTP_..., but rarely all three).
fn name_hash(name: &[u8]) -> u32 {
    let mut head = [0u8; 8];
    let mut tail = [0u8; 8];
    let n = name.len().min(8);
    head[..n].copy_from_slice(&name[..n]);
    tail[..n].copy_from_slice(&name[name.len() - n..]);
    let mixed = (u64::from_le_bytes(head) ^ u64::from_le_bytes(tail).rotate_left(29))
        .wrapping_add(name.len() as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 32) as u32
}

impl<'a> SentIndex<'a> {
    fn new(pairs: Pairs<'a>, count: usize) -> SentIndex<'a> {
        let mut index = SentIndex {
            small: [(&[][..], &[][..]); SMALL_PAIRS],
            large: Vec::new(),
            small_table: [(0, 0); 2 * SMALL_PAIRS],
            large_table: Vec::new(),
            len: count,
        };
        if count <= SMALL_PAIRS {
            for (slot, pair) in index.small.iter_mut().zip(pairs) {
                *slot = pair;
            }
        } else {
            index.large.extend(pairs);
            index.large_table = vec![(0, 0); (2 * count).next_power_of_two()];
        }
        for i in 0..count {
            let name = index.pairs()[i].0;
            let (slot, _) = index.slot(name);
            let entry = &mut index.table_mut()[slot];
            *entry = (i as u32 + 1, entry.1 + 1);
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

    fn table(&self) -> &[(u32, u32)] {
        if self.large.is_empty() {
            &self.small_table
        } else {
            &self.large_table
        }
    }

    fn table_mut(&mut self) -> &mut [(u32, u32)] {
        if self.large.is_empty() {
            &mut self.small_table
        } else {
            &mut self.large_table
        }
    }

    /// The slot of `name` in the table, and whether it holds it (else the empty slot where
    /// it would go). The table is at least twice the pairs: an empty slot always exists.
    fn slot(&self, name: &[u8]) -> (usize, bool) {
        let table = self.table();
        let mask = table.len() - 1;
        let mut slot = name_hash(name) as usize & mask;
        loop {
            match table[slot].0 {
                0 => return (slot, false),
                i => {
                    let n = self.pairs()[i as usize - 1].0;
                    if n.len() == name.len() && n == name {
                        return (slot, true);
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The value of the last pair named `name` (the one gw_environ_set_packed leaves), and
    /// how many pairs have that name.
    fn get(&self, name: &[u8]) -> Option<(&'a [u8], usize)> {
        if self.len == 0 {
            return None;
        }
        match self.slot(name) {
            (slot, true) => {
                let (i, pairs) = self.table()[slot];
                Some((self.pairs()[i as usize - 1].1, pairs as usize))
            }
            _ => None,
        }
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
        let pairs = Pairs::new(sent, sent_count)?;
        let buf = unsafe { buffer_arg(buf, cap, "buf") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let out_count = unsafe { out_arg(out_count, "out_count") }?;
        let out_missing = unsafe { out_arg(out_missing, "out_missing") }?;
        let out_nul_in_value = unsafe { out_arg(out_nul_in_value, "out_nul_in_value") }?;
        // The environ is usually what gw_environ_set_packed made of `sent`: its entries in
        // sent's order, the library's own among them. First walk sent alongside, comparing
        // only the next pair's name. When every pair is met that way the result is exact:
        // each pair met its own entry (an environ names an entry once), so no name repeats
        // in sent and none of the entries taken as not sent is. Otherwise (an entry
        // removed, moved, or a name sent twice) look every name up in an index of sent.
        let mut step = pairs.clone();
        let mut next = step.next();
        let mut met = 0;
        let in_step = pack_changes_into(env, known, buf, |name| match next {
            Some((n, v)) if n == name => {
                next = step.next();
                met += 1;
                Some((v, 1))
            }
            _ => None,
        });
        let packed = match in_step {
            Some(packed) if met == sent_count => packed,
            _ => {
                let sent = SentIndex::new(pairs, sent_count);
                pack_changes_into(env, known, buf, |name| sent.get(name))
                    .ok_or_else(|| too_small(packed_size(env).0, cap))?
            }
        };
        *out_len = packed.len;
        *out_count = packed.count;
        let mut missing = sent_count - packed.sent_held;
        if let Some(k) = known {
            let mut cursor = 0;
            while let Some((name, _)) = k.next(&mut cursor) {
                missing += usize::from(!env.contains(name));
            }
        }
        *out_nul_in_value = packed.nul_in_value;
        *out_missing = missing;
        Ok(())
    })
}

/// What pack_changes_into packed.
struct Packed {
    len: usize,
    count: usize,
    /// The pairs of sent whose name the environ holds.
    sent_held: usize,
    nul_in_value: bool,
}

/// Packs into `buf` the entries of `env` that neither `sent` (through `sent_get`: the value
/// of the last pair of a name and how many pairs have it) nor `known` has with their value.
/// None when `buf` is too small.
fn pack_changes_into<'a>(
    env: &Environ,
    known: Option<&Environ>,
    buf: &mut [u8],
    mut sent_get: impl FnMut(&[u8]) -> Option<(&'a [u8], usize)>,
) -> Option<Packed> {
    let mut cursor = 0;
    let mut at = 0;
    let mut count = 0;
    let mut nul_in_value = false;
    // `known` is usually the environ's own base, whose entries come first and in the
    // same order: walk it alongside, and look a name up only when they part.
    let mut known_cursor = 0;
    let mut sent_held = 0;
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
        let expected = match sent_get(name) {
            Some((v, pairs)) => {
                // An environ names each entry once: this counts the pairs of sent whose
                // name it holds.
                sent_held += pairs;
                Some(v)
            }
            None => in_step.or_else(|| known.and_then(|k| k.get(name))),
        };
        if expected == Some(value) {
            continue;
        }
        let end = at + name.len() + value.len() + 2;
        if end > buf.len() {
            return None;
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
    Some(Packed {
        len: at,
        count,
        sent_held,
        nul_in_value,
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
/// a name or value past its limit (GW_STATUS_TOO_LARGE) changes nothing, and so does the
/// environ's total size limit (64 MiB): the pairs are set as one batch.
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
        let pairs = Pairs::new(data, count)?;
        for (name, value) in pairs.clone() {
            Environ::check_name(name)?;
            if value.len() > MAX_VALUE_LEN {
                return Err(Error::new(
                    Status::TooLarge,
                    "environ value longer than its limit (1 MiB)",
                ));
            }
        }
        // One batch: all or nothing, the total size limit included.
        env.set_many(pairs)
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
    fn nuls_are_counted_and_found_in_every_position() {
        for len in 0..40 {
            for at in 0..len {
                let mut data = vec![b'x'; len];
                data[at] = 0;
                assert_eq!(find_nul(&data), Some(at), "{len} {at}");
                assert_eq!(count_nuls(&data), 1);
                data[len - 1] = 0;
                assert_eq!(count_nuls(&data), 1 + usize::from(at != len - 1));
            }
            assert_eq!(find_nul(&vec![0x80u8; len]), None);
            assert_eq!(count_nuls(&vec![0x01u8; len]), 0);
            assert_eq!(count_nuls(&vec![0u8; len]), len);
        }
        // A 0x01 after a NUL is no NUL (no borrow crosses bytes), nor is 0x80.
        let tricky = [0u8, 1, 1, 0x80, 1, 0x81, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0x80];
        assert_eq!(count_nuls(&tricky), 2);
        assert_eq!(find_nul(&tricky[1..]), Some(7));
    }

    #[test]
    fn the_index_keeps_the_last_pair_of_each_name() {
        let data = b"A\0\x31\0B\0\x32\0A\0\x33\0\0\0";
        let index = SentIndex::new(Pairs::new(data, 4).unwrap(), 4);
        assert_eq!(index.get(b"A"), Some((&b"3"[..], 2)));
        assert_eq!(index.get(b"B"), Some((&b"2"[..], 1)));
        assert_eq!(index.get(b""), Some((&b""[..], 1)));
        assert_eq!(index.get(b"C"), None);
        // Past the stack's 64 pairs.
        let mut big = Vec::new();
        for i in 0..200 {
            big.extend_from_slice(format!("N{i}\0v{i}\0").as_bytes());
        }
        let index = SentIndex::new(Pairs::new(&big, 200).unwrap(), 200);
        for i in 0..200 {
            let v = format!("v{i}");
            assert_eq!(
                index.get(format!("N{i}").as_bytes()),
                Some((v.as_bytes(), 1))
            );
        }
        assert_eq!(index.get(b"N200"), None);
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
