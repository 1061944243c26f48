//! The environ: byte-string names and values in insertion order, optionally layered over a
//! shared, frozen base so a request environ never copies the handler's os_environ.
//!
//! Values are kept in one byte arena with a NUL after each name and value (so C callers may
//! treat them as strings; the length is still what counts). Clearing keeps the capacity, so a
//! reused environ does not allocate once it has seen its largest request. A value overwritten
//! by a longer one, or a removed key, leaves dead bytes behind; once they outweigh the live
//! ones the arena and the entry list are compacted in place, so the space an environ holds
//! follows what is live, and the cost of a set or remove does not grow with its history.
//!
//! Names are found through an open-addressing hash index (a seeded hash of every byte of the
//! name, linear probing, at most half full), so a set, get or remove costs the same with 15
//! variables as with 200. Emptying the index for the next request is one counter increment:
//! each slot carries the stamp of the request that filled it.
//!
//! A host's variables arrive in one call (`set_records`, behind gw_environ_set_many): each
//! name is checked and hashed in the same reads and copied once, by fixed-size moves, into
//! an arena that stays at its largest size; then the new entries are indexed. A refused
//! record cuts the arena and the entries back: all or nothing.
//!
//! The keys every request gets after the host's variables (wsgi.* and SERVER_SOFTWARE) are
//! prebuilt once per handler setting (`RequestKeys`, rebuilt when a setting differs). When
//! neither the layer nor its base holds such a name, they follow the layer uncopied: lookups
//! and iteration read them from the prebuilt block, and the first change to the environ
//! copies them in, so that a key set later comes after them, as in wsgiref.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::status::{Error, Status};

/// Longest name accepted (bytes).
pub const MAX_NAME_LEN: usize = 64 * 1024;
/// Longest value accepted (bytes).
pub const MAX_VALUE_LEN: usize = 1024 * 1024;
/// Largest arena (names, values and their NULs) of one environ layer.
pub const MAX_ARENA_LEN: usize = 64 * 1024 * 1024;
/// Below this many dead arena bytes (or dead entries) compaction is not worth its pass.
const COMPACT_MIN: usize = 4096;
/// The smallest index (slots); it doubles as entries are added.
const MIN_SLOTS: usize = 64;

#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    fn shifted(self, by: u32) -> Span {
        Span {
            start: self.start + by,
            len: self.len,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// A key this layer added itself.
    Own,
    /// Stands in for the base entry with this index: a new value, or (when not live) a removal.
    Shadow(u32),
}

#[derive(Clone, Debug)]
struct Entry {
    name: Span,
    value: Span,
    /// `hash_name(name)`: the index and lookups compare this before any bytes.
    hash: u32,
    origin: Origin,
    live: bool,
}

/// Names the request keys use: a layer that never held one can take the prebuilt block.
const RESERVED_WSGI: u8 = 1;
const RESERVED_SOFTWARE: u8 = 2;

/// The names of the request keys, whatever the handler's settings: `RequestKeys::pairs`
/// gives no other (a test says so).
const REQUEST_KEY_NAMES: [&[u8]; 10] = [
    b"wsgi.input",
    b"wsgi.errors",
    b"wsgi.version",
    b"wsgi.run_once",
    b"wsgi.url_scheme",
    b"wsgi.multithread",
    b"wsgi.multiprocess",
    b"wsgi.file_wrapper",
    b"wsgi.input_terminated",
    b"SERVER_SOFTWARE",
];

/// For each request key's name, the bit `hash_name(name) % 64`; 0 until first asked for.
static REQUEST_KEY_HASHES: AtomicU64 = AtomicU64::new(0);

/// A bit for each request key's hash (modulo 64): a name whose bit is clear is none of
/// theirs, and needs no `reserved_bits` (what `try_set_many` tests first).
#[inline(always)]
fn request_key_hashes() -> u64 {
    match REQUEST_KEY_HASHES.load(Ordering::Relaxed) {
        0 => draw_request_key_hashes(),
        bits => bits,
    }
}

/// Computes the bits once (threads that race compute the same bits from the same seed).
#[cold]
#[inline(never)]
fn draw_request_key_hashes() -> u64 {
    let bits = REQUEST_KEY_NAMES
        .iter()
        .fold(0, |bits, name| bits | 1 << (hash_name(name) % 64));
    REQUEST_KEY_HASHES.store(bits, Ordering::Relaxed);
    bits
}

/// Whether a name of hash `hash` may be a request key's (`request_key_hashes`).
#[inline(always)]
fn may_be_request_key(bits: u64, hash: u32) -> bool {
    bits >> (hash % 64) & 1 != 0
}

#[inline(always)]
fn reserved_bits(name: &[u8]) -> u8 {
    // The first byte first: most names start with neither 'w' nor 'S'.
    match name.first() {
        Some(b'w') if name.starts_with(b"wsgi.") => RESERVED_WSGI,
        Some(b'S') if name == b"SERVER_SOFTWARE" => RESERVED_SOFTWARE,
        _ => 0,
    }
}

/// The process's hash seed, random, so which names share a slot cannot be planned by a
/// client choosing header names. Every environ hashes with it (a layer and its base must
/// agree); 0 means not drawn yet.
static SEED: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
fn seed() -> u64 {
    match SEED.load(Ordering::Relaxed) {
        0 => draw_seed(),
        seed => seed,
    }
}

/// Draws the seed once: the first thread to store one wins, the others use it.
#[cold]
#[inline(never)]
fn draw_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x0067_6174_6577_6179);
    let drawn = hasher.finish() | 1;
    match SEED.compare_exchange(0, drawn, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => drawn,
        Err(current) => current,
    }
}

const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// Eight bytes of `bytes` at `at`, little-endian. Byte by byte in the source (the compiler
/// makes one load of it), so a read past a caller's buffer is reported here, in the
/// library's own code, by AddressSanitizer (tests/sanitizers.sh checks that it is).
#[inline(always)]
fn word(b: &[u8], at: usize) -> u64 {
    let b = &b[at..at + 8];
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Four bytes of `bytes` at `at`, as `word` reads them.
#[inline(always)]
fn half_word(b: &[u8], at: usize) -> u64 {
    let b = &b[at..at + 4];
    u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The steps of a name's scan: its seeded hash, and whether it holds a NUL or an '=' (which
/// no environment variable's name can). `scan_name` and `scan_and_copy` share them, so both
/// give the same hash.
struct NameScan {
    hash: u64,
    /// Per byte, the high bit set where a byte may be NUL or '=': zero means neither is
    /// there (`BAD_BYTES` masks it; left unmasked, so a batch can OR many and mask once).
    found: u64,
}

const ONES: u64 = 0x0101_0101_0101_0101;
/// The high bit of every byte: what `NameScan::found` is masked with.
const BAD_BYTES: u64 = 0x8080_8080_8080_8080;

impl NameScan {
    #[inline(always)]
    fn new(seed: u64, len: usize) -> NameScan {
        NameScan {
            hash: seed ^ (len as u64).wrapping_mul(MULTIPLIER),
            found: 0,
        }
    }

    /// Eight bytes of the name (four and four, for a name of 4 to 7 bytes).
    #[inline(always)]
    fn word(&mut self, w: u64) {
        const EQUALS: u64 = ONES * b'=' as u64;
        // A NUL in `w`, or a zero byte of `t` (an '=' in `w`), sets its high bit here: for a
        // byte below 0x80 (`!w`), `- 1` sets the high bit only when it is 0 (and the same
        // byte of `t` is below 0x80 too). A borrow out of a byte comes only from a zero
        // one: without one no bit is set, and the lowest one is always found. (Both tests
        // in one: fewer constants, which then stay in registers.)
        let t = w ^ EQUALS;
        self.found |= (w.wrapping_sub(ONES) | t.wrapping_sub(ONES)) & !w;
        self.mix(w);
    }

    /// `word`, for a name expected to be ASCII: `found` also has a bit set where a byte is
    /// 0x80 or above (not only NUL or '='), for two operations less. The caller's checked
    /// path then decides, exactly.
    #[inline(always)]
    fn ascii_word(&mut self, w: u64) {
        const EQUALS: u64 = ONES * b'=' as u64;
        // Below 0x80, a byte less one has its high bit set only when it is 0 (or a lower
        // one was, and borrowed): a NUL in `w` or an '=' (a zero of `t`) sets it, and a
        // byte of 0x80 or above may, whatever it is.
        let t = w ^ EQUALS;
        self.found |= w.wrapping_sub(ONES) | t.wrapping_sub(ONES);
        self.mix(w);
    }

    /// A name of 1 to 3 bytes: its first, middle and last byte as one word.
    #[inline(always)]
    fn short(&mut self, name: &[u8]) {
        let len = name.len();
        if name.iter().any(|&b| b == 0 || b == b'=') {
            self.found |= BAD_BYTES;
        }
        self.mix(
            u64::from(name[0]) | u64::from(name[len / 2]) << 8 | u64::from(name[len - 1]) << 16,
        );
    }

    #[inline(always)]
    fn mix(&mut self, w: u64) {
        self.hash = (self.hash ^ w).wrapping_mul(MULTIPLIER).rotate_left(29);
    }

    /// The hash, and the unmasked `found`.
    #[inline(always)]
    fn finish(self) -> (u32, u64) {
        let h = self.hash ^ self.hash >> 32;
        ((h.wrapping_mul(MULTIPLIER) >> 32) as u32, self.found)
    }
}

/// One pass over a name, eight bytes at a time (the last word, or two halves of a short
/// name, overlapping): its seeded hash, and the unmasked `found` (see `NameScan`).
#[inline(always)]
fn scan_words(name: &[u8], seed: u64) -> (u32, u64) {
    let len = name.len();
    let mut scan = NameScan::new(seed, len);
    if len >= 8 {
        // The words before the last eight bytes, then the last eight bytes. Most names are
        // 9 to 16 bytes: one word before the last, without a loop.
        let last = len - 8;
        if last > 8 {
            let mut at = 0;
            while at < last {
                scan.word(word(name, at));
                at += 8;
            }
        } else if last > 0 {
            scan.word(word(name, 0));
        }
        scan.word(word(name, last));
    } else if len >= 4 {
        scan.word(half_word(name, 0) | half_word(name, len - 4) << 32);
    } else if len > 0 {
        scan.short(name);
    }
    scan.finish()
}

/// A name's seeded hash, and whether it holds a NUL or an '='.
#[inline(always)]
fn scan_name(name: &[u8]) -> (u32, bool) {
    let (hash, found) = scan_words(name, seed());
    (hash, found & BAD_BYTES != 0)
}

/// `scan_words`, copying the name into `dst` (of its length) from the words it reads, so
/// each byte is read once. The hash is `scan_words`'s; `found` is `NameScan::ascii_word`'s
/// for a name of 4 bytes or more (a byte of 0x80 or above counts as well).
#[inline(always)]
fn scan_and_copy(name: &[u8], seed: u64, dst: &mut [u8]) -> (u32, u64) {
    let len = name.len();
    let mut scan = NameScan::new(seed, len);
    if len >= 8 {
        let last = len - 8;
        let dst = &mut dst[..len];
        if last > 8 {
            let mut at = 0;
            while at < last {
                let w = word(name, at);
                store(dst, at, w.to_le_bytes());
                scan.ascii_word(w);
                at += 8;
            }
        } else if last > 0 {
            let w = word(name, 0);
            store(dst, 0, w.to_le_bytes());
            scan.ascii_word(w);
        }
        let w = word(name, last);
        store(dst, last, w.to_le_bytes());
        scan.ascii_word(w);
    } else if len >= 4 {
        let (head, tail) = (half_word(name, 0), half_word(name, len - 4));
        store(dst, 0, (head as u32).to_le_bytes());
        store(dst, len - 4, (tail as u32).to_le_bytes());
        scan.ascii_word(head | tail << 32);
    } else if len > 0 {
        dst.copy_from_slice(name);
        scan.short(name);
    }
    scan.finish()
}

/// A seeded hash of every byte of `name`.
fn hash_name(name: &[u8]) -> u32 {
    scan_name(name).0
}

/// Copies `src` into `dst` (of the same length): short strings, which environ names and
/// most values are, by a few overlapping fixed-size moves instead of a call to memcpy.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    // Two tests for most lengths: short ones first.
    let n = src.len();
    if n < 8 {
        if n >= 4 {
            let (head, tail) = (load::<4>(src, 0), load::<4>(src, n - 4));
            store(dst, 0, head);
            store(dst, n - 4, tail);
        } else {
            for (d, &b) in dst.iter_mut().zip(src) {
                *d = b;
            }
        }
    } else if n < 16 {
        let (head, tail) = (load::<8>(src, 0), load::<8>(src, n - 8));
        store(dst, 0, head);
        store(dst, n - 8, tail);
    } else if n <= 32 {
        let (head, tail) = (load::<16>(src, 0), load::<16>(src, n - 16));
        store(dst, 0, head);
        store(dst, n - 16, tail);
    } else {
        copy_long(dst, src);
    }
}

/// `N` bytes of `src` at `at`, as a value (a register move, not a call).
#[inline(always)]
fn load<const N: usize>(src: &[u8], at: usize) -> [u8; N] {
    src[at..at + N].try_into().expect("N bytes")
}

#[inline(always)]
fn store<const N: usize>(dst: &mut [u8], at: usize, bytes: [u8; N]) {
    let place: &mut [u8; N] = (&mut dst[at..at + N]).try_into().expect("N bytes");
    *place = bytes;
}

/// Whether two names are equal: short ones compared a word at a time, as `copy_short`
/// copies them (names found by their hash are almost always equal, and short).
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Two tests for most lengths, as in `copy_short`.
    if n < 8 {
        if n >= 4 {
            load::<4>(a, 0) == load::<4>(b, 0) && load::<4>(a, n - 4) == load::<4>(b, n - 4)
        } else {
            a == b
        }
    } else if n < 16 {
        load::<8>(a, 0) == load::<8>(b, 0) && load::<8>(a, n - 8) == load::<8>(b, n - 8)
    } else if n <= 32 {
        load::<16>(a, 0) == load::<16>(b, 0) && load::<16>(a, n - 16) == load::<16>(b, n - 16)
    } else {
        a == b
    }
}

/// A long copy, out of line so the compiler does not route the short moves above through
/// the same call to memcpy.
#[inline(never)]
fn copy_long(dst: &mut [u8], src: &[u8]) {
    dst.copy_from_slice(src);
}

/// The bytes of one layer: names and values, each followed by a NUL. Its buffer stays at
/// its largest length (zero-filled once, when it grows), and `used` says how much of it is
/// live, so appending is a copy into memory that is already there.
#[derive(Clone, Debug, Default)]
pub(crate) struct Arena {
    buf: Vec<u8>,
    used: usize,
}

impl Arena {
    pub(crate) fn len(&self) -> usize {
        self.used
    }

    pub(crate) fn clear(&mut self) {
        self.used = 0;
    }

    fn truncate(&mut self, len: usize) {
        self.used = self.used.min(len);
    }

    /// Makes room for `more` bytes past `used` (this allocates only when the arena grows
    /// past its largest size so far).
    #[inline]
    fn reserve(&mut self, more: usize) {
        let needed = self.used + more;
        if needed > self.buf.len() {
            self.grow(needed);
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, needed: usize) {
        Arena::grown(&mut self.buf, self.used, needed);
    }

    /// Grows `buf`, of which `used` bytes are live, to at least `needed` bytes (doubling,
    /// but not past the environ's limit unless `needed` is).
    #[cold]
    #[inline(never)]
    fn grown(buf: &mut Vec<u8>, used: usize, needed: usize) {
        let size = needed.max((buf.len() * 2).min(MAX_ARENA_LEN)).max(256);
        // A zeroed allocation (calloc), then the live bytes: cheaper than resize's fill.
        let mut bigger = vec![0; size];
        bigger[..used].copy_from_slice(&buf[..used]);
        *buf = bigger;
    }

    /// The bytes of `buf` past `used`, up to the environ's limit.
    #[inline(always)]
    fn free_part(buf: &mut [u8], used: usize) -> &mut [u8] {
        let end = buf.len().min(MAX_ARENA_LEN);
        &mut buf[used..end]
    }

    /// Appends `bytes` and a NUL after them; `reserve` made room.
    #[inline(always)]
    fn push_reserved(&mut self, bytes: &[u8]) -> Span {
        let start = self.used;
        let end = start + bytes.len();
        copy_short(&mut self.buf[start..end], bytes);
        self.buf[end] = 0;
        self.used = end + 1;
        Span {
            start: start as u32,
            len: bytes.len() as u32,
        }
    }

    /// Appends bytes as they are (a prebuilt block with its NULs).
    fn extend(&mut self, bytes: &[u8]) {
        self.reserve(bytes.len());
        self.buf[self.used..self.used + bytes.len()].copy_from_slice(bytes);
        self.used += bytes.len();
    }

    #[inline(always)]
    fn get(&self, span: Span) -> &[u8] {
        // The end in usize: it cannot wrap, so its order with the start needs no test.
        let start = span.start as usize;
        &self.buf[start..start + span.len as usize]
    }

    fn get_mut(&mut self, start: usize, len: usize) -> &mut [u8] {
        &mut self.buf[start..start + len]
    }

    fn copy_within(&mut self, from: std::ops::Range<usize>, to: usize) {
        self.buf.copy_within(from, to);
    }
}

/// Builds the error for a refused name or value; kept out of line, off the hot path.
#[cold]
#[inline(never)]
fn refused(status: Status, message: &'static str) -> Error {
    Error::new(status, message)
}

/// A refused entry of `set_many`, with its index.
#[cold]
#[inline(never)]
fn refused_at(index: usize, err: Error) -> Error {
    Error::new(
        err.status,
        format!("environ variable {index}: {}", err.message),
    )
}

/// A record `append_records` refused: its index, and the pair (None: the caller's
/// iterator refused it).
type Refusal<'p> = (usize, Option<(&'p [u8], &'p [u8])>);

/// The first pass of `set_records`: checks every record, and appends its name and value
/// (each with a NUL) to `arena` and an entry for them to `entries`; the entries are not
/// indexed yet. Gives the `reserved_bits` of the names, or the first refused record (what it
/// appended before then is still there: the caller cuts it back).
fn append_records<'p, I>(
    records: I,
    arena: &mut Arena,
    entries: &mut Vec<Entry>,
) -> Result<u8, Refusal<'p>>
where
    I: Iterator<Item = Option<(&'p [u8], &'p [u8])>>,
{
    let mut reserved = 0;
    for (index, record) in records.enumerate() {
        let Some((name, value)) = record else {
            return Err((index, None));
        };
        let (hash, bad) = scan_name(name);
        let size = name.len() + value.len() + 2;
        let ok = !bad
            & !name.is_empty()
            & (name.len() <= MAX_NAME_LEN)
            & (value.len() <= MAX_VALUE_LEN)
            & (arena.len() + size <= MAX_ARENA_LEN);
        if !ok {
            return Err((index, Some((name, value))));
        }
        arena.reserve(size);
        let name_span = arena.push_reserved(name);
        let value_span = arena.push_reserved(value);
        reserved |= reserved_bits(name);
        entries.push(Entry {
            name: name_span,
            value: value_span,
            hash,
            origin: Origin::Own,
            live: true,
        });
    }
    Ok(reserved)
}

/// Whether a name of `n` bytes and a value of `v` bytes are within the limits: the name
/// not empty and at most `MAX_NAME_LEN`, the value at most `MAX_VALUE_LEN`. (Two plain
/// comparisons: from them the compiler knows that `n + v + 2` cannot wrap, and drops the
/// bounds checks that follow.) The C ABI tests its records with the same expression, so
/// the compiler keeps one copy of it.
#[inline(always)]
pub(crate) fn plain_lengths(n: usize, v: usize) -> bool {
    (n.wrapping_sub(1) < MAX_NAME_LEN) & (v <= MAX_VALUE_LEN)
}

/// How `fill` stopped.
enum Stop {
    /// Every pair is appended.
    Done,
    /// A pair is refused (or does not fit within the arena's limit).
    Refused,
    /// The last entry appended is not plainly new to the index (see `PlainIndex`): the
    /// rest of the batch is appended without indexing.
    Unplain,
}

/// The index while `try_set_many` appends: each new entry goes in the first empty slot of
/// its probe, as long as no slot on the way holds an entry with the same hash (a name set
/// again, or one that shares its hash) and the index stays at most half full.
struct PlainIndex<'a> {
    slots: &'a mut [u64],
    stamp: u32,
    /// Entries the index has room for.
    room: usize,
}

impl PlainIndex<'_> {
    /// Indexes entry `i` (the last of `entries`), hashed `hash`, when it is plainly new.
    #[inline(always)]
    fn fill(&mut self, entries: &[Entry], hash: u32, i: usize) -> bool {
        if i >= self.room {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let s = self.slots[slot];
            if (s >> 32) as u32 != self.stamp {
                break;
            }
            if entries
                .get(s as u32 as usize)
                .is_none_or(|e| e.hash == hash)
            {
                return false;
            }
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = u64::from(self.stamp) << 32 | i as u64;
        true
    }
}

/// The first pass of `try_set_records`: `append_records` for records that are expected to
/// be good, with fewer tests per record, indexing plainly new names as it goes (`index`;
/// the entries before the third value given are indexed). The limits and the bytes of the
/// names (`NameScan::ascii_word`) are tested by branches that are never taken; any refusal
/// gives false (what was appended is still there: the caller cuts it back, and takes the
/// entries it indexed out again). Each name is read once: its hash, its check and its copy
/// come from the same words.
#[inline(always)]
fn append_plain<'p, I>(
    mut records: I,
    arena: &mut Arena,
    entries: &mut Vec<Entry>,
    index: Option<PlainIndex<'_>>,
) -> (bool, u8, usize)
where
    I: Iterator<Item = Option<(&'p [u8], &'p [u8])>>,
{
    // The buffers are moved out and back: as locals, their lengths stay in registers.
    let mut batch = Batch {
        buf: std::mem::take(&mut arena.buf),
        used: arena.used,
        entries: std::mem::take(entries),
        seed: seed(),
        reserved: 0,
    };
    let mut stop = Stop::Unplain;
    let mut indexed = batch.entries.len();
    if let Some(mut index) = index {
        stop = batch.fill::<true, I>(&mut records, &mut index);
        indexed = match stop {
            Stop::Unplain => batch.entries.len() - 1,
            _ => batch.entries.len(),
        };
    }
    if let Stop::Unplain = stop {
        let mut none = PlainIndex {
            slots: &mut [],
            stamp: 0,
            room: 0,
        };
        stop = batch.fill::<false, I>(&mut records, &mut none);
    }
    arena.buf = batch.buf;
    arena.used = batch.used;
    *entries = batch.entries;
    let done = matches!(stop, Stop::Done);
    (done, batch.reserved, indexed)
}

/// What `append_plain` carries from record to record.
struct Batch {
    /// The arena's buffer, and its length so far.
    buf: Vec<u8>,
    used: usize,
    entries: Vec<Entry>,
    seed: u64,
    /// `reserved_bits` of the names so far that may be request keys' (the others have
    /// none).
    reserved: u8,
}

impl Batch {
    /// Appends records until the end, a refusal, or (when `INDEXING`) an entry `index` does
    /// not take.
    #[inline(always)]
    fn fill<'p, const INDEXING: bool, I>(
        &mut self,
        records: &mut I,
        index: &mut PlainIndex<'_>,
    ) -> Stop
    where
        I: Iterator<Item = Option<(&'p [u8], &'p [u8])>>,
    {
        let seed = self.seed;
        let key_hashes = request_key_hashes();
        let mut used = self.used;
        let mut reserved = self.reserved;
        let mut buf = std::mem::take(&mut self.buf);
        let mut entries = std::mem::take(&mut self.entries);
        let stop = 'records: {
            // The free part of the buffer, up to the arena's limit: a pair that does not
            // fit is past the limit, or needs the buffer to grow.
            let mut free: &mut [u8] = Arena::free_part(&mut buf, used);
            loop {
                let Some(record) = records.next() else {
                    break 'records Stop::Done;
                };
                let Some((name, value)) = record else {
                    break 'records Stop::Refused;
                };
                let (n, v) = (name.len(), value.len());
                if !plain_lengths(n, v) {
                    break 'records Stop::Refused;
                }
                let size = n + v + 2;
                let out = loop {
                    if entries.len() < entries.capacity() {
                        if let Some((out, rest)) =
                            std::mem::take(&mut free).split_at_mut_checked(size)
                        {
                            free = rest;
                            break out;
                        }
                    }
                    let fits;
                    (buf, entries, fits) = make_room(buf, used, size, entries);
                    if !fits {
                        break 'records Stop::Refused;
                    }
                    free = Arena::free_part(&mut buf, used);
                };
                let (name_out, rest) = out.split_at_mut(n);
                let [name_nul, value_out @ .., value_nul] = rest else {
                    unreachable!("room for a name, a value and two NULs");
                };
                let (hash, bad_bytes) = scan_and_copy(name, seed, name_out);
                if bad_bytes & BAD_BYTES != 0 {
                    break 'records Stop::Refused;
                }
                *name_nul = 0;
                copy_short(value_out, value);
                *value_nul = 0;
                if may_be_request_key(key_hashes, hash) {
                    reserved |= reserved_bits(name);
                }
                let i = entries.len();
                entries.push(Entry {
                    name: Span {
                        start: used as u32,
                        len: n as u32,
                    },
                    value: Span {
                        start: (used + n + 1) as u32,
                        len: v as u32,
                    },
                    hash,
                    origin: Origin::Own,
                    live: true,
                });
                used += size;
                if INDEXING && !index.fill(&entries, hash, i) {
                    break 'records Stop::Unplain;
                }
            }
        };
        self.buf = buf;
        self.entries = entries;
        self.used = used;
        self.reserved = reserved;
        stop
    }
}

/// Makes room for a pair of `size` arena bytes past `used`, and for one more entry; false
/// (nothing changed) when the pair would take the arena past its limit. The buffers move
/// in and out by value, so the caller's stay in registers.
#[cold]
#[inline(never)]
fn make_room(
    mut buf: Vec<u8>,
    used: usize,
    size: usize,
    mut entries: Vec<Entry>,
) -> (Vec<u8>, Vec<Entry>, bool) {
    if used + size > MAX_ARENA_LEN {
        return (buf, entries, false);
    }
    if used + size > buf.len() {
        Arena::grown(&mut buf, used, used + size);
    }
    entries.reserve(1);
    (buf, entries, true)
}

/// What this layer says of a name: its newest entry decides.
enum Own {
    /// A live entry (a key of this layer, or a new value for a base key).
    Live(usize),
    /// Removed here (a removal marker for a base key, or a removed key of this layer): absent,
    /// whatever the base holds.
    Removed,
    /// Never mentioned here: the base decides.
    Absent,
}

/// The settings the keys every request gets depend on (wsgiref's setup_environ: wsgi.input,
/// wsgi.errors, wsgi.version, wsgi.run_once, wsgi.url_scheme, wsgi.multithread,
/// wsgi.multiprocess, wsgi.file_wrapper when offered, wsgi.input_terminated, and
/// SERVER_SOFTWARE unless already present).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestKeys<'a> {
    pub multithread: bool,
    pub multiprocess: bool,
    pub run_once: bool,
    pub file_wrapper: bool,
    /// SERVER_SOFTWARE's default (an origin server's server_software).
    pub server_software: Option<&'a [u8]>,
}

impl RequestKeys<'_> {
    /// The keys in wsgiref's order; SERVER_SOFTWARE last, when set.
    fn pairs(&self, https: bool) -> impl Iterator<Item = (&[u8], &[u8])> {
        let flag = |b: bool| if b { &b"1"[..] } else { &b"0"[..] };
        let scheme: &[u8] = if https { b"https" } else { b"http" };
        [
            Some((&b"wsgi.input"[..], &b"gw_request_input"[..])),
            Some((b"wsgi.errors", b"gw_request_errors")),
            Some((b"wsgi.version", b"1.0")),
            Some((b"wsgi.run_once", flag(self.run_once))),
            Some((b"wsgi.url_scheme", scheme)),
            Some((b"wsgi.multithread", flag(self.multithread))),
            Some((b"wsgi.multiprocess", flag(self.multiprocess))),
            self.file_wrapper
                .then_some((&b"wsgi.file_wrapper"[..], &b"gw_request_set_body_file"[..])),
            Some((b"wsgi.input_terminated", b"1")),
        ]
        .into_iter()
        .flatten()
        .chain(self.server_software.map(|s| (&b"SERVER_SOFTWARE"[..], s)))
    }
}

/// The request keys of one setting and scheme, laid out as a layer would hold them.
#[derive(Clone, Debug, Default)]
struct Block {
    arena: Vec<u8>,
    /// (name, value, hash) of each key, in order.
    entries: Vec<(Span, Span, u32)>,
    /// The wsgi.* keys come first: this many entries and arena bytes.
    wsgi_count: usize,
    wsgi_bytes: usize,
    /// A small hash index: entry number + 1 by `hash % 32`, linear probing (0: empty).
    index: [u8; 32],
}

impl Block {
    fn build<'p>(pairs: impl Iterator<Item = (&'p [u8], &'p [u8])>) -> Block {
        let mut block = Block::default();
        for (name, value) in pairs {
            let mut span = |bytes: &[u8]| {
                let start = block.arena.len() as u32;
                block.arena.extend_from_slice(bytes);
                block.arena.push(0);
                Span {
                    start,
                    len: bytes.len() as u32,
                }
            };
            let (n, v) = (span(name), span(value));
            block.entries.push((n, v, hash_name(name)));
            if reserved_bits(name) == RESERVED_WSGI {
                block.wsgi_count = block.entries.len();
                block.wsgi_bytes = block.arena.len();
            }
            let mut slot = hash_name(name) as usize % 32;
            while block.index[slot] != 0 {
                slot = (slot + 1) % 32;
            }
            block.index[slot] = block.entries.len() as u8;
        }
        block
    }

    /// The entry named `name`.
    #[inline(always)]
    fn find(&self, name: &[u8], hash: u32) -> Option<usize> {
        let mut slot = hash as usize % 32;
        loop {
            let i = usize::from(self.index[slot]).checked_sub(1)?;
            let (n, _, h) = self.entries[i];
            if h == hash && same_bytes(self.bytes(n), name) {
                return Some(i);
            }
            slot = (slot + 1) % 32;
        }
    }

    fn bytes(&self, span: Span) -> &[u8] {
        &self.arena[span.start as usize..(span.start + span.len) as usize]
    }

    /// Entry `i`'s name and value.
    fn pair(&self, i: usize) -> (&[u8], &[u8]) {
        self.pair_of(&self.entries[i])
    }

    /// The name and value of an entry of this block.
    fn pair_of(&self, &(n, v, _): &(Span, Span, u32)) -> (&[u8], &[u8]) {
        (self.bytes(n), self.bytes(v))
    }
}

/// The prebuilt request keys of one handler setting, for http and https.
#[derive(Clone, Debug)]
struct Prebuilt {
    multithread: bool,
    multiprocess: bool,
    run_once: bool,
    file_wrapper: bool,
    server_software: Option<Vec<u8>>,
    blocks: [Block; 2],
}

impl Prebuilt {
    fn new(keys: &RequestKeys<'_>) -> Prebuilt {
        Prebuilt {
            multithread: keys.multithread,
            multiprocess: keys.multiprocess,
            run_once: keys.run_once,
            file_wrapper: keys.file_wrapper,
            server_software: keys.server_software.map(<[u8]>::to_vec),
            blocks: [
                Block::build(keys.pairs(false)),
                Block::build(keys.pairs(true)),
            ],
        }
    }

    fn matches(&self, keys: &RequestKeys<'_>) -> bool {
        self.multithread == keys.multithread
            && self.multiprocess == keys.multiprocess
            && self.run_once == keys.run_once
            && self.file_wrapper == keys.file_wrapper
            && self.server_software.as_deref() == keys.server_software
    }
}

/// An ordered byte-string mapping. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Environ {
    base: Option<Arc<Environ>>,
    arena: Arena,
    entries: Vec<Entry>,
    len: usize,
    /// The hash index: `stamp << 32 | entry index` for each name's newest entry; a slot
    /// whose stamp is not `stamp` is empty. Its length is 0 or a power of two.
    slots: Vec<u64>,
    stamp: u32,
    /// Entries standing in for base keys (values or removal markers).
    shadows: usize,
    /// `reserved_bits` of every name this layer ever held since it was emptied.
    reserved: u8,
    /// Arena bytes no entry uses any more (overwritten values, removed keys).
    dead_bytes: usize,
    /// Entries of removed own keys, still in `entries`.
    dead_entries: usize,
    /// Reused by `compact`: (arena offset, entry index, is the value) of every span in use.
    spans: Vec<(u32, u32, bool)>,
    /// A request's environ, owned by its handler: whoever is lent it must not free it.
    of_request: bool,
    /// The request keys of the handler's current settings (request environs only).
    prebuilt: Option<Box<Prebuilt>>,
    /// Some(https) while the request keys follow this layer's entries without having been
    /// copied into it: lookups and iteration read them from `prebuilt.blocks[https]`, and
    /// the first change to the environ copies them in (`materialize_keys`), so that a key
    /// set later comes after them.
    keys: Option<bool>,
}

impl Environ {
    pub fn new() -> Environ {
        Environ::default()
    }

    /// The environ a handler builds for each request and lends to the host and the app.
    pub fn for_request() -> Environ {
        Environ {
            of_request: true,
            ..Environ::default()
        }
    }

    /// Whether this is a request's environ, which only its handler may free.
    pub fn is_request_environ(&self) -> bool {
        self.of_request
    }

    /// The process environment, byte for byte (what wsgiref's read_environ yields on POSIX).
    pub fn from_process() -> Result<Environ, Error> {
        use std::os::unix::ffi::OsStrExt;
        let mut env = Environ::new();
        for (name, value) in std::env::vars_os() {
            env.set(name.as_bytes(), value.as_bytes())?;
        }
        Ok(env)
    }

    /// Empties the environ and puts `base` under it; keeps every buffer's capacity.
    pub fn reset(&mut self, base: Option<Arc<Environ>>) {
        self.arena.clear();
        self.entries.clear();
        self.clear_index();
        self.shadows = 0;
        self.reserved = 0;
        self.keys = None;
        self.dead_bytes = 0;
        self.dead_entries = 0;
        self.len = base.as_ref().map_or(0, |b| b.len);
        self.base = base;
    }

    /// Number of visible entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn bytes(&self, span: Span) -> &[u8] {
        self.arena.get(span)
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Result<Span, Error> {
        self.check_room(bytes.len() + 1)?;
        Ok(self.push_unchecked(bytes))
    }

    /// Appends `bytes` and a NUL; the caller checked the arena's limit.
    fn push_unchecked(&mut self, bytes: &[u8]) -> Span {
        self.arena.reserve(bytes.len() + 1);
        self.arena.push_reserved(bytes)
    }

    // ---- the hash index --------------------------------------------------------------------

    fn clear_index(&mut self) {
        if self.slots.is_empty() {
            return;
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.slots.fill(0);
            self.stamp = 1;
        }
    }

    /// Where the probe for `hash` stops: the slot of the newest entry named `name`, or the
    /// empty slot where it would go. The index must not be empty.
    #[inline(always)]
    fn probe(&self, name: &[u8], hash: u32) -> (usize, Option<usize>) {
        self.probe_from(name, hash, hash as usize)
    }

    /// `probe`, from `slot` (modulo the index's size) on.
    #[inline(always)]
    fn probe_from(&self, name: &[u8], hash: u32, slot: usize) -> (usize, Option<usize>) {
        let mask = self.slots.len() - 1;
        let mut slot = slot & mask;
        loop {
            let s = self.slots[slot];
            if (s >> 32) as u32 != self.stamp {
                return (slot, None);
            }
            let i = s as u32 as usize;
            let e = &self.entries[i];
            // The length before the bytes: no slice of the arena for a name that differs.
            if e.hash == hash
                && e.name.len as usize == name.len()
                && same_bytes(self.bytes(e.name), name)
            {
                return (slot, Some(i));
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Indexes `entry`, whose name the index does not hold, in the first empty slot.
    #[inline(always)]
    fn fill_empty_slot(&mut self, hash: u32, entry: usize) {
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        while (self.slots[slot] >> 32) as u32 == self.stamp {
            slot = (slot + 1) & mask;
        }
        self.fill_slot(slot, entry);
    }

    fn fill_slot(&mut self, slot: usize, entry: usize) {
        self.slots[slot] = u64::from(self.stamp) << 32 | entry as u64;
    }

    /// Makes room in the index for `more` new entries (keeping it at most half full).
    fn reserve_index(&mut self, more: usize) {
        let needed = (self.entries.len() + more) * 2;
        if needed > self.slots.len() {
            self.rebuild_index(
                needed.next_power_of_two().max(MIN_SLOTS),
                self.entries.len(),
            );
        }
    }

    /// Indexes the first `count` entries again (the newest of each name wins) in `size`
    /// slots.
    fn rebuild_index(&mut self, size: usize, count: usize) {
        if size != self.slots.len() {
            self.slots = vec![0; size];
            self.stamp = 1;
        } else {
            self.clear_index();
        }
        for i in 0..count {
            let e = &self.entries[i];
            if !e.live && e.origin == Origin::Own {
                // A removed key of this layer (or a name set twice in one set_records):
                // unindexed, its name reads as absent here, which it is (a base key removed
                // keeps its marker, indexed).
                continue;
            }
            let (slot, _) = self.probe(self.bytes(e.name), e.hash);
            self.fill_slot(slot, i);
        }
    }

    /// The newest entry of this layer for `name`.
    #[inline(always)]
    fn own(&self, name: &[u8], hash: u32) -> Own {
        if self.slots.is_empty() {
            return Own::Absent;
        }
        match self.probe(name, hash).1 {
            Some(i) if self.entries[i].live => Own::Live(i),
            Some(_) => Own::Removed,
            None => Own::Absent,
        }
    }

    /// The visible value of `name` in this layer or below.
    #[inline(always)]
    fn get_hashed(&self, name: &[u8], hash: u32) -> Option<&[u8]> {
        let mut layer = self;
        loop {
            match layer.own(name, hash) {
                Own::Live(i) => return Some(layer.bytes(layer.entries[i].value)),
                Own::Removed => return None,
                Own::Absent => {
                    if let Some(block) = layer.keys_block() {
                        if let Some(k) = block.find(name, hash) {
                            return Some(block.pair(k).1);
                        }
                    }
                    layer = layer.base.as_deref()?;
                }
            }
        }
    }

    /// The index of the base's live entry for `name` (a flat base: its own entries).
    #[inline(always)]
    fn base_index(&self, name: &[u8], hash: u32) -> Option<usize> {
        match self.base.as_ref()?.own(name, hash) {
            Own::Live(i) => Some(i),
            _ => None,
        }
    }

    /// The value for `name`; borrowed until the environ is next changed. In line at every
    /// call: most name a constant, whose words and length then fold away.
    #[inline(always)]
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        // All in line but the request keys and the base: a lookup is mostly its hash, and
        // mostly ends at the first slot of its probe (the name, or an empty slot).
        let hash = scan_words(name, seed()).0;
        let first = hash as usize & self.slots.len().wrapping_sub(1);
        let found = match self.slots.get(first) {
            Some(&s) if (s >> 32) as u32 == self.stamp => {
                match self.entries.get(s as u32 as usize) {
                    Some(e)
                        if e.hash == hash
                            && e.name.len as usize == name.len()
                            && same_bytes(self.bytes(e.name), name) =>
                    {
                        Some(e)
                    }
                    // Another name: the rest of the probe.
                    _ => self
                        .probe_from(name, hash, first + 1)
                        .1
                        .map(|i| &self.entries[i]),
                }
            }
            _ => None,
        };
        match found {
            Some(e) => e.live.then(|| self.bytes(e.value)),
            None if self.keys.is_none() && self.base.is_none() => None,
            None => self.get_below(name, hash),
        }
    }

    /// `get_hashed` for a name this layer never held: the request keys that follow it, or
    /// its base.
    #[inline(never)]
    fn get_below(&self, name: &[u8], hash: u32) -> Option<&[u8]> {
        if let Some(block) = self.keys_block() {
            if let Some(k) = block.find(name, hash) {
                return Some(block.pair(k).1);
            }
        }
        self.base.as_deref()?.get_hashed(name, hash)
    }

    pub fn contains(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    /// Checks a name: not empty, no NUL or '=' (it could never be an environment variable).
    pub fn check_name(name: &[u8]) -> Result<(), Error> {
        if name.is_empty() {
            return Err(refused(
                Status::InvalidArgument,
                "environ names must not be empty",
            ));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(refused(
                Status::TooLarge,
                "environ name longer than its limit (64 KiB)",
            ));
        }
        if scan_name(name).1 {
            return Err(refused(
                Status::InvalidArgument,
                "environ names must not contain NUL or '='",
            ));
        }
        Ok(())
    }

    fn check_value(value: &[u8]) -> Result<(), Error> {
        if value.len() > MAX_VALUE_LEN {
            return Err(refused(
                Status::TooLarge,
                "environ value longer than its limit (1 MiB)",
            ));
        }
        Ok(())
    }

    /// Sets `name` to `value`. An existing key keeps its place in the order (as a dict does).
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        Environ::check_name(name)?;
        Environ::check_value(value)?;
        self.materialize_keys()?;
        self.compact_if_worth_it();
        self.check_room(name.len() + value.len() + 2)?;
        self.reserve_index(1);
        self.put(name, hash_name(name), value);
        Ok(())
    }

    /// Fails unless `bytes` more arena bytes stay within the limit.
    fn check_room(&self, bytes: usize) -> Result<(), Error> {
        if self.arena.len() + bytes > MAX_ARENA_LEN {
            return Err(refused(
                Status::TooLarge,
                "environ is larger than its limit (64 MiB)",
            ));
        }
        Ok(())
    }

    /// Sets every (name, value) pair in order, as that many `set` calls would, or none of
    /// them: a pair `set` would refuse undoes the pairs before it, and is the error (with
    /// its index). A name given twice takes the later value at the earlier place.
    ///
    /// The fast way first (`try_set_many`); when it refuses, the checked way
    /// (`set_records`), which finds the pair and says why.
    pub fn set_many<'p>(
        &mut self,
        pairs: impl Iterator<Item = (&'p [u8], &'p [u8])> + Clone,
    ) -> Result<(), Error> {
        if self.try_set_many(pairs.clone()) {
            return Ok(());
        }
        self.set_records(pairs.map(Some), |_| unreachable!("every record is a pair"))
    }

    /// `set_many` over records the caller checks as it goes: a record that is None (a NULL
    /// pointer in a C array, say) undoes the pairs before it like a refused one, and
    /// `why(index)` is the error.
    ///
    /// Two passes. The first checks each record, and appends the name, the value and an
    /// entry, without touching the index: a refused record only has to cut the arena and
    /// the entries back. The second (`index_appended`) indexes the new entries in order,
    /// which cannot fail.
    pub fn set_records<'p, I, F>(&mut self, records: I, why: F) -> Result<(), Error>
    where
        I: Iterator<Item = Option<(&'p [u8], &'p [u8])>>,
        F: FnOnce(usize) -> Error,
    {
        self.materialize_keys()?;
        self.compact_if_worth_it();
        let first = self.entries.len();
        let arena_mark = self.arena.len();
        // What the caller says is coming, within reason: a count past what the arena can
        // hold is refused record by record, never reserved (and aborted on) up front.
        self.entries.reserve(records.size_hint().0.min(4096));
        match append_records(records, &mut self.arena, &mut self.entries) {
            Ok(reserved) => self.reserved |= reserved,
            Err((index, record)) => {
                let err = match record {
                    None => why(index),
                    Some((name, value)) => Environ::refused_pair(index, name, value),
                };
                return Err(self.cut_back(first, arena_mark, err));
            }
        }
        self.index_appended(first, first);
        Ok(())
    }

    /// `set_many` when no pair is refused: true. When one is, false, and nothing changed
    /// (`set_many` or `set_records` then says which pair, and why). The fast way to set a
    /// host's variables: each name is checked, hashed and copied in the same reads; the
    /// limits and the names' bytes are tested by branches never taken.
    pub fn try_set_many<'p, I>(&mut self, pairs: I) -> bool
    where
        I: Iterator<Item = (&'p [u8], &'p [u8])>,
    {
        self.try_set_records(pairs.map(Some))
    }

    /// `try_set_many` over records the caller checks as it goes, as `set_records` takes
    /// them: a record that is None is refused (false, nothing changed).
    #[inline]
    pub fn try_set_records<'p, I>(&mut self, records: I) -> bool
    where
        I: Iterator<Item = Option<(&'p [u8], &'p [u8])>>,
    {
        if self.materialize_keys().is_err() {
            return false;
        }
        self.compact_if_worth_it();
        let first = self.entries.len();
        let arena_mark = self.arena.len();
        let count = records.size_hint().0.min(4096);
        self.entries.reserve(count);
        // Without a base to shadow, the new names are indexed as they are appended (until
        // one is not plainly new): the index must have room for them first.
        let index = if self.base.is_none() {
            self.reserve_index(count);
            (!self.slots.is_empty()).then(|| PlainIndex {
                room: self.slots.len() / 2,
                slots: &mut self.slots[..],
                stamp: self.stamp,
            })
        } else {
            None
        };
        let (done, reserved, indexed) =
            append_plain(records, &mut self.arena, &mut self.entries, index);
        if !done {
            self.unindex(first);
            self.entries.truncate(first);
            self.arena.truncate(arena_mark);
            return false;
        }
        self.reserved |= reserved;
        self.index_appended(first, indexed);
        true
    }

    /// Takes the entries from `first` on out of the index, newest first (each went in the
    /// first empty slot of its probe: taking them out in the opposite order leaves the
    /// index as it was before them).
    #[cold]
    #[inline(never)]
    fn unindex(&mut self, first: usize) {
        if self.slots.is_empty() {
            return;
        }
        let mask = self.slots.len() - 1;
        for i in (first..self.entries.len()).rev() {
            let filled = u64::from(self.stamp) << 32 | i as u64;
            let mut slot = self.entries[i].hash as usize & mask;
            while (self.slots[slot] >> 32) as u32 == self.stamp {
                if self.slots[slot] == filled {
                    self.slots[slot] = 0;
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
    }

    /// Indexes the entries from `first` on, which `set_records` or `try_set_many` appended,
    /// as `put` would have set them: a name already here takes the new value in its place
    /// (its new entry stays behind, dead). Those before `indexed` are in the index already
    /// (`try_set_many` put them there as plainly new, uncounted in `len`).
    fn index_appended(&mut self, first: usize, indexed: usize) {
        // Room for the new entries; a bigger index holds the old ones only, so far.
        let needed = self.entries.len() * 2;
        let mut i = indexed;
        if needed > self.slots.len() {
            self.rebuild_index(needed.next_power_of_two().max(MIN_SLOTS), first);
            i = first;
        } else {
            self.len += indexed - first;
        }
        while i < self.entries.len() {
            i = self.index_plain(i);
            if i < self.entries.len() {
                self.index_new(i);
                i += 1;
            }
        }
    }

    /// Indexes the entries from `from` on while each is plainly new: no base to shadow, and
    /// no slot on its probe taken by an entry with the same hash. Gives the first entry that
    /// is not (`index_new` takes it), or the end.
    #[inline(always)]
    fn index_plain(&mut self, from: usize) -> usize {
        if self.base.is_some() {
            return from;
        }
        // Locals and slices: nothing the loop reads is reloaded after its stores.
        let stamp = self.stamp;
        let stamped = u64::from(stamp) << 32;
        let slots = &mut self.slots[..];
        let mask = slots.len() - 1;
        let entries = &self.entries[..];
        let mut i = from;
        'entries: while i < entries.len() {
            let hash = entries[i].hash;
            let mut slot = hash as usize & mask;
            loop {
                let s = slots[slot];
                if (s >> 32) as u32 != stamp {
                    break;
                }
                if entries
                    .get(s as u32 as usize)
                    .is_none_or(|e| e.hash == hash)
                {
                    break 'entries;
                }
                slot = (slot + 1) & mask;
            }
            slots[slot] = stamped | i as u64;
            i += 1;
        }
        self.len += i - from;
        i
    }

    /// Drops what a refused `set_records` appended and gives its error back.
    #[cold]
    #[inline(never)]
    fn cut_back(&mut self, entries: usize, arena: usize, err: Error) -> Error {
        self.entries.truncate(entries);
        self.arena.truncate(arena);
        err
    }

    /// Indexes entry `i`, appended by `set_records`, as `put` would have set it. A slot
    /// taken by another name costs a comparison of hashes, and of bytes only when the hashes
    /// agree. Out of line: `index_plain` takes the common case.
    #[inline(never)]
    fn index_new(&mut self, i: usize) {
        let hash = self.entries[i].hash;
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        let found = loop {
            let s = self.slots[slot];
            if (s >> 32) as u32 != self.stamp {
                break None;
            }
            let j = s as u32 as usize;
            let other = &self.entries[j];
            if other.hash == hash
                && same_bytes(
                    self.arena.get(other.name),
                    self.arena.get(self.entries[i].name),
                )
            {
                break Some(j);
            }
            slot = (slot + 1) & mask;
        };
        match found {
            Some(j) if self.entries[j].live => {
                // The name is here: the new value goes in its place; the new entry is dead.
                let old = self.entries[j].value;
                self.entries[j].value = self.entries[i].value;
                let e = &mut self.entries[i];
                e.live = false;
                self.dead_entries += 1;
                self.dead_bytes += old.len as usize + 1 + e.name.len as usize + 1;
                e.value = Span { start: 0, len: 0 };
            }
            Some(_) => {
                // Removed here and set again: it moves to the end, as a key of this layer.
                self.fill_slot(slot, i);
                self.len += 1;
            }
            None => {
                let shadowed = match &self.base {
                    None => None,
                    Some(_) => self.base_index(self.arena.get(self.entries[i].name), hash),
                };
                match shadowed {
                    Some(b) => {
                        self.entries[i].origin = Origin::Shadow(b as u32);
                        self.shadows += 1;
                    }
                    None => self.len += 1,
                }
                self.fill_slot(slot, i);
            }
        }
    }

    /// Adds a name this layer never held, in the empty `slot`: a new value for a base key,
    /// or a key of its own.
    #[inline(always)]
    fn push_new(&mut self, slot: usize, name: &[u8], hash: u32, value: &[u8]) {
        match self.base_index(name, hash) {
            Some(b) => {
                self.push_entry(slot, name, hash, value, Origin::Shadow(b as u32));
                self.shadows += 1;
            }
            None => {
                self.push_entry(slot, name, hash, value, Origin::Own);
                self.len += 1;
            }
        }
    }

    /// Why entry `index` of `set_many` was refused.
    #[cold]
    #[inline(never)]
    fn refused_pair(index: usize, name: &[u8], value: &[u8]) -> Error {
        let err = match Environ::check_name(name).and_then(|()| Environ::check_value(value)) {
            Err(e) => e,
            Ok(()) => refused(
                Status::TooLarge,
                "environ would be larger than its limit (64 MiB)",
            ),
        };
        refused_at(index, err)
    }

    /// `set` once the name and value are known good, the arena has room for both (and
    /// their NULs) and the index for one more entry.
    #[inline(always)]
    fn put(&mut self, name: &[u8], hash: u32, value: &[u8]) {
        let (slot, found) = self.probe(name, hash);
        match found {
            Some(i) if self.entries[i].live => self.replace_value(i, value),
            Some(_) => {
                // Removed here (a base key or our own) and set again: like a dict, it moves
                // to the end.
                self.push_entry(slot, name, hash, value, Origin::Own);
                self.len += 1;
            }
            None => self.push_new(slot, name, hash, value),
        }
    }

    /// Gives entry `i` a new value: in its old place when it fits, else at the arena's end.
    fn replace_value(&mut self, i: usize, value: &[u8]) {
        let old = self.entries[i].value;
        let old_len = old.len as usize;
        if value.len() <= old_len {
            let place = self.arena.get_mut(old.start as usize, value.len() + 1);
            copy_short(&mut place[..value.len()], value);
            place[value.len()] = 0;
            self.dead_bytes += old_len - value.len();
            self.entries[i].value.len = value.len() as u32;
        } else {
            self.entries[i].value = self.push_unchecked(value);
            self.dead_bytes += old_len + 1;
        }
    }

    /// Compacts when dead entries or dead bytes outweigh live ones: each pass costs about
    /// what the dead ones cost to make, so set and remove stay O(1) amortized.
    fn compact_if_worth_it(&mut self) {
        let dead_bytes = self.dead_bytes >= COMPACT_MIN && self.dead_bytes * 2 > self.arena.len();
        let dead_entries =
            self.dead_entries >= COMPACT_MIN / 64 && self.dead_entries * 2 > self.entries.len();
        if dead_bytes || dead_entries {
            self.compact();
        }
    }

    /// Drops the entries of removed own keys and moves every span in use down over the
    /// gaps, in place (no allocation once `spans` has grown). Entry order is kept.
    fn compact(&mut self) {
        self.entries.retain(|e| e.live || e.origin != Origin::Own);
        let mut spans = std::mem::take(&mut self.spans);
        spans.clear();
        for (i, e) in self.entries.iter().enumerate() {
            spans.push((e.name.start, i as u32, false));
            if e.live {
                spans.push((e.value.start, i as u32, true));
            }
        }
        spans.sort_unstable();
        let mut end = 0;
        for &(start, i, is_value) in &spans {
            let entry = &mut self.entries[i as usize];
            let span = if is_value {
                &mut entry.value
            } else {
                &mut entry.name
            };
            let len = span.len as usize + 1; // with its NUL
            self.arena
                .copy_within(start as usize..start as usize + len, end);
            span.start = end as u32;
            end += len;
        }
        self.arena.truncate(end);
        self.spans = spans;
        self.dead_bytes = 0;
        self.dead_entries = 0;
        if !self.slots.is_empty() {
            self.rebuild_index(self.slots.len(), self.entries.len());
        }
    }

    /// Sets `name` only when it is absent (dict.setdefault).
    pub fn set_default(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        if self.contains(name) {
            return Ok(());
        }
        self.set(name, value)
    }

    /// Adds an entry in `slot`, the empty slot (or this name's slot) `probe` found; the arena
    /// has room for the name and value.
    #[inline(always)]
    fn push_entry(&mut self, slot: usize, name: &[u8], hash: u32, value: &[u8], origin: Origin) {
        self.arena.reserve(name.len() + value.len() + 2);
        let name_span = self.arena.push_reserved(name);
        let value = self.arena.push_reserved(value);
        self.reserved |= reserved_bits(name);
        self.fill_slot(slot, self.entries.len());
        self.entries.push(Entry {
            name: name_span,
            value,
            hash,
            origin,
            live: true,
        });
    }

    /// Removes `name`; Ok(false) when it was not there.
    pub fn remove(&mut self, name: &[u8]) -> Result<bool, Error> {
        self.materialize_keys()?;
        self.compact_if_worth_it();
        self.reserve_index(1);
        let hash = hash_name(name);
        let (slot, found) = self.probe(name, hash);
        match found {
            Some(i) if self.entries[i].live => {
                let e = &mut self.entries[i];
                e.live = false;
                if e.origin == Origin::Own {
                    // Nothing refers to it any more; a base key's entry stays as its marker.
                    self.dead_entries += 1;
                    self.dead_bytes += e.name.len as usize + 1;
                }
                self.dead_bytes += e.value.len as usize + 1;
                e.value = Span { start: 0, len: 0 };
                self.len -= 1;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => match self.base_index(name, hash) {
                Some(b) => {
                    // A removal marker: keeps the name so lookups stop before the base.
                    let name = self.push_bytes(name)?;
                    self.reserved |= reserved_bits(self.bytes(name));
                    self.fill_slot(slot, self.entries.len());
                    self.entries.push(Entry {
                        name,
                        value: Span { start: 0, len: 0 },
                        hash,
                        origin: Origin::Shadow(b as u32),
                        live: false,
                    });
                    self.shadows += 1;
                    self.len -= 1;
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    /// Copies every entry of `other` into this environ, in `other`'s order (dict.update).
    pub fn update(&mut self, other: &Environ) -> Result<(), Error> {
        let mut cursor = 0;
        while let Some((name, value)) = other.next(&mut cursor) {
            self.set(name, value)?;
        }
        Ok(())
    }

    /// Adds the keys every request gets after the host's variables, as wsgiref's
    /// setup_environ does: each wsgi.* key set (a host's own value is replaced in its
    /// place), SERVER_SOFTWARE only when absent. When neither this layer nor its base ever
    /// held such a name (the usual case), the keys are appended as one prebuilt block,
    /// rebuilt only when the settings change.
    pub fn add_request_keys(&mut self, keys: &RequestKeys<'_>, https: bool) -> Result<(), Error> {
        self.materialize_keys()?;
        let prebuilt = match self.prebuilt.take() {
            Some(p) if p.matches(keys) => p,
            _ => Box::new(Prebuilt::new(keys)),
        };
        let block = &prebuilt.blocks[usize::from(https)];
        let reserved = self.reserved | self.base.as_ref().map_or(0, |b| b.reserved);
        let software = block.entries.len() > block.wsgi_count;
        let result =
            if reserved & RESERVED_WSGI == 0 && !(software && reserved & RESERVED_SOFTWARE != 0) {
                // No name to replace or keep: the keys follow as they are, uncopied.
                self.keys = Some(https);
                self.len += block.entries.len();
                Ok(())
            } else {
                self.append_keys(block, keys, https)
            };
        // Keep the block (its buffers) for the next request.
        self.prebuilt = Some(prebuilt);
        result
    }

    /// The request keys that follow this layer uncopied, if any.
    #[inline(always)]
    fn keys_block(&self) -> Option<&Block> {
        let https = self.keys?;
        self.prebuilt
            .as_ref()
            .map(|p| &p.blocks[usize::from(https)])
    }

    /// Copies the request keys that follow this layer into it, before a change: a key set
    /// after them must come after them.
    #[inline]
    fn materialize_keys(&mut self) -> Result<(), Error> {
        if self.keys.is_none() {
            return Ok(());
        }
        self.copy_keys_in()
    }

    #[cold]
    #[inline(never)]
    fn copy_keys_in(&mut self) -> Result<(), Error> {
        let Some(https) = self.keys.take() else {
            return Ok(());
        };
        let prebuilt = self
            .prebuilt
            .take()
            .expect("uncopied keys come from prebuilt ones");
        let block = &prebuilt.blocks[usize::from(https)];
        self.len -= block.entries.len();
        let result = self.append_block(block, 0..block.entries.len(), 0..block.arena.len());
        if result.is_err() {
            // Nothing was copied: the keys stay where they were.
            self.keys = Some(https);
            self.len += block.entries.len();
        }
        self.prebuilt = Some(prebuilt);
        result
    }

    fn append_keys(
        &mut self,
        block: &Block,
        keys: &RequestKeys<'_>,
        https: bool,
    ) -> Result<(), Error> {
        let reserved = self.reserved | self.base.as_ref().map_or(0, |b| b.reserved);
        if reserved & RESERVED_WSGI == 0 {
            self.append_block(block, 0..block.wsgi_count, 0..block.wsgi_bytes)?;
        } else {
            for (name, value) in keys.pairs(https).take(block.wsgi_count) {
                self.set(name, value)?;
            }
        }
        if block.entries.len() > block.wsgi_count {
            if reserved & RESERVED_SOFTWARE == 0 {
                let all = block.entries.len();
                self.append_block(
                    block,
                    block.wsgi_count..all,
                    block.wsgi_bytes..block.arena.len(),
                )?;
            } else if let Some(software) = keys.server_software {
                self.set_default(b"SERVER_SOFTWARE", software)?;
            }
        }
        Ok(())
    }

    /// Appends entries `range` of `block` (whose bytes are `bytes`), none of whose names
    /// this environ holds.
    fn append_block(
        &mut self,
        block: &Block,
        range: std::ops::Range<usize>,
        bytes: std::ops::Range<usize>,
    ) -> Result<(), Error> {
        let offset = self.arena.len();
        if offset + bytes.len() > MAX_ARENA_LEN {
            return Err(refused(
                Status::TooLarge,
                "environ is larger than its limit (64 MiB)",
            ));
        }
        self.reserve_index(range.len());
        self.arena.extend(&block.arena[bytes.clone()]);
        let shift = offset as u32 - bytes.start as u32;
        self.entries.reserve(range.len());
        for &(name, value, hash) in &block.entries[range.clone()] {
            self.fill_empty_slot(hash, self.entries.len());
            self.entries.push(Entry {
                name: name.shifted(shift),
                value: value.shifted(shift),
                hash,
                origin: Origin::Own,
                live: true,
            });
        }
        self.len += range.len();
        if range.start < block.wsgi_count {
            self.reserved |= RESERVED_WSGI;
        }
        if range.end > block.wsgi_count {
            self.reserved |= RESERVED_SOFTWARE;
        }
        Ok(())
    }

    /// Iteration in insertion order: base keys first (with this layer's values), then the
    /// keys this layer added. Start with `*cursor == 0`; None at the end.
    #[inline(always)]
    pub fn next(&self, cursor: &mut usize) -> Option<(&[u8], &[u8])> {
        // Most environs have no base: a flat walk of the entries, then of the request keys'
        // block. Any other step (a base, a dead or shadowing entry) takes the layered walk.
        if self.base.is_none() {
            let i = *cursor;
            match self.entries.get(i) {
                Some(e) if e.live & (e.origin == Origin::Own) => {
                    *cursor = i + 1;
                    return Some((self.bytes(e.name), self.bytes(e.value)));
                }
                Some(_) => {}
                None => {
                    let block = self.keys_block()?;
                    let pair = block.entries.get(i - self.entries.len())?;
                    *cursor = i + 1;
                    return Some(block.pair_of(pair));
                }
            }
        }
        self.next_layered(cursor)
    }

    /// `next` over a base, or past dead or shadowing entries.
    #[inline(never)]
    fn next_layered(&self, cursor: &mut usize) -> Option<(&[u8], &[u8])> {
        let base_count = self.base.as_ref().map_or(0, |b| b.entries.len());
        while *cursor < base_count {
            let i = *cursor;
            *cursor += 1;
            let base = self.base.as_ref().expect("base_count > 0");
            let be = &base.entries[i];
            if !be.live {
                continue;
            }
            let name = base.bytes(be.name);
            if self.shadows == 0 {
                return Some((name, base.bytes(be.value)));
            }
            // The newest entry of this layer for the name: a new value, or a removal (a
            // marker, or a key re-added after one, which shows in this layer's part).
            match self.own(name, be.hash) {
                Own::Absent => return Some((name, base.bytes(be.value))),
                Own::Live(j) if self.entries[j].origin == Origin::Shadow(i as u32) => {
                    let e = &self.entries[j];
                    return Some((self.bytes(e.name), self.bytes(e.value)));
                }
                _ => continue,
            }
        }
        while *cursor - base_count < self.entries.len() {
            let e = &self.entries[*cursor - base_count];
            *cursor += 1;
            if e.live && e.origin == Origin::Own {
                return Some((self.bytes(e.name), self.bytes(e.value)));
            }
        }
        let block = self.keys_block()?;
        let k = *cursor - base_count - self.entries.len();
        if k < block.entries.len() {
            *cursor += 1;
            return Some(block.pair(k));
        }
        None
    }

    /// A frozen copy to share between handlers and threads. This environ becomes an empty
    /// layer over the shared copy, so taking a snapshot copies nothing when the environ has
    /// no base yet, and later changes to it never reach the snapshot.
    pub fn share(&mut self) -> Arc<Environ> {
        // When copying them in fails (a full arena), the keys stay and the copy below
        // includes them.
        let _ = self.materialize_keys();
        if self.entries.is_empty() && self.keys.is_none() {
            if let Some(base) = &self.base {
                return Arc::clone(base);
            }
        }
        let flat = if self.base.is_none() && self.keys.is_none() {
            self.compact();
            Environ {
                base: None,
                arena: std::mem::take(&mut self.arena),
                entries: std::mem::take(&mut self.entries),
                len: self.len,
                slots: std::mem::take(&mut self.slots),
                stamp: self.stamp,
                reserved: self.reserved,
                ..Environ::default()
            }
        } else {
            let mut flat = Environ::new();
            // Sizes here were accepted once already, so copying them cannot fail.
            flat.update(self).expect("copy of a valid environ");
            flat
        };
        let shared = Arc::new(flat);
        self.reset(Some(Arc::clone(&shared)));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(env: &Environ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut cursor = 0;
        while let Some((n, v)) = env.next(&mut cursor) {
            out.push((
                String::from_utf8_lossy(n).into(),
                String::from_utf8_lossy(v).into(),
            ));
        }
        out
    }

    #[test]
    fn set_get_remove_keep_insertion_order() {
        let mut env = Environ::new();
        env.set(b"B", b"1").unwrap();
        env.set(b"A", b"2").unwrap();
        env.set(b"B", b"3").unwrap();
        assert_eq!(env.get(b"B"), Some(&b"3"[..]));
        assert_eq!(env.len(), 2);
        assert_eq!(
            pairs(&env),
            [("B".into(), "3".into()), ("A".into(), "2".into())]
        );
        assert!(env.remove(b"B").unwrap());
        assert!(!env.remove(b"B").unwrap());
        assert_eq!(env.get(b"B"), None);
        env.set(b"B", b"4").unwrap();
        assert_eq!(
            pairs(&env),
            [("A".into(), "2".into()), ("B".into(), "4".into())]
        );
    }

    #[test]
    fn layers_shadow_the_base_without_changing_it() {
        let mut base = Environ::new();
        base.set(b"X", b"base").unwrap();
        base.set(b"Y", b"base").unwrap();
        let shared = base.share();
        let mut req = Environ::new();
        req.reset(Some(Arc::clone(&shared)));
        req.set(b"Y", b"req").unwrap();
        req.set(b"Z", b"req").unwrap();
        assert!(req.remove(b"X").unwrap());
        assert_eq!(req.len(), 2);
        assert_eq!(
            pairs(&req),
            [("Y".into(), "req".into()), ("Z".into(), "req".into())]
        );
        assert_eq!(shared.get(b"X"), Some(&b"base"[..]));
        req.set(b"X", b"again").unwrap();
        assert_eq!(req.get(b"X"), Some(&b"again"[..]));
        assert_eq!(pairs(&req).last().unwrap().0, "X");
        // The original object still reads the same after sharing.
        assert_eq!(
            pairs(&base),
            [("X".into(), "base".into()), ("Y".into(), "base".into())]
        );
    }

    #[test]
    fn nul_and_equals_are_found_anywhere() {
        for len in 0..20 {
            let clean = vec![b'A'; len];
            assert!(!scan_name(&clean).1);
            for pos in 0..len {
                for bad in [0u8, b'='] {
                    let mut dirty = clean.clone();
                    dirty[pos] = bad;
                    assert!(scan_name(&dirty).1, "{dirty:?}");
                }
            }
        }
        // Bytes that differ from NUL or '=' only in the high bit are fine.
        assert!(!scan_name(b"\x80\xbd\x80\xbd\x80\xbd\x80\xbd\xbd").1);
    }

    /// Every byte value, at every place of a name, over backgrounds of plain, high and
    /// borrowing bytes (0x01 after a NUL, 0x3E after an '='): the check says NUL or '='
    /// exactly when one is there.
    #[test]
    fn the_name_check_is_exact_for_every_byte() {
        let backgrounds: [&[u8]; 4] = [b"A", b"\x80\xbd\xff", b"\x01", b"\x3e\x3c"];
        let values: Vec<u8> = if cfg!(miri) {
            vec![0, 1, b'=', 0x3c, 0x3e, 0x7f, 0x80, 0xbd, 0xff]
        } else {
            (0..=255).collect()
        };
        for background in backgrounds {
            for len in [3, 5, 8, 13, 16, 17] {
                let name: Vec<u8> = (0..len).map(|i| background[i % background.len()]).collect();
                let expected = |n: &[u8]| n.iter().any(|&b| b == 0 || b == b'=');
                assert_eq!(scan_name(&name).1, expected(&name));
                for pos in 0..len {
                    for &value in &values {
                        let mut n = name.clone();
                        n[pos] = value;
                        assert_eq!(scan_name(&n).1, expected(&n), "{n:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn names_are_checked() {
        let mut env = Environ::new();
        assert_eq!(
            env.set(b"", b"v").unwrap_err().status,
            Status::InvalidArgument
        );
        assert_eq!(
            env.set(b"A=B", b"v").unwrap_err().status,
            Status::InvalidArgument
        );
        assert_eq!(
            env.set(b"A\0", b"v").unwrap_err().status,
            Status::InvalidArgument
        );
        let big = vec![b'v'; MAX_VALUE_LEN + 1];
        assert_eq!(env.set(b"A", &big).unwrap_err().status, Status::TooLarge);
        assert!(env.is_empty());
    }

    /// A small deterministic generator (xorshift), so the model test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn overwriting_a_large_value_reuses_its_space() {
        let mut env = Environ::new();
        let big = vec![b'x'; MAX_VALUE_LEN];
        let bigger_each_time = |i: usize| vec![b'y'; MAX_VALUE_LEN / 2 + i * 1024];
        // 64 MiB of overwrites once filled the arena; now the space is reused.
        for i in 0..256 {
            env.set(b"BIG", if i % 2 == 0 { &big } else { &big[..i] })
                .unwrap();
            env.set(b"GROWS", &bigger_each_time(i % 200)).unwrap();
        }
        assert!(
            env.arena.len() <= 4 * MAX_VALUE_LEN,
            "arena {} bytes",
            env.arena.len()
        );
        assert_eq!(env.get(b"BIG").unwrap().len(), 255);
        assert_eq!(env.len(), 2);
    }

    #[test]
    fn set_and_remove_in_a_loop_do_not_pile_up() {
        let mut base = Environ::new();
        base.set(b"FROM_BASE", b"1").unwrap();
        let mut env = Environ::new();
        env.reset(Some(base.share()));
        env.set(b"KEEP", b"k").unwrap();
        // Miri interprets every step: fewer rounds still compact many times there.
        let rounds = if cfg!(miri) { 400 } else { 80_000 };
        for _ in 0..rounds {
            env.set(b"KEY", b"some value").unwrap();
            assert!(env.remove(b"KEY").unwrap());
            env.set(b"FROM_BASE", b"2").unwrap();
            assert!(env.remove(b"FROM_BASE").unwrap());
        }
        // What a lookup scans, and what the arena holds, stays bounded by the live keys.
        assert!(
            env.entries.len() <= 2 * COMPACT_MIN / 64 + 4,
            "{}",
            env.entries.len()
        );
        assert!(
            env.arena.len() <= 2 * COMPACT_MIN + 64,
            "{}",
            env.arena.len()
        );
        assert_eq!(pairs(&env), [("KEEP".into(), "k".into())]);
    }

    /// Random sets and removes against a model with dict semantics, over a base, with values
    /// large enough that compaction runs many times.
    #[test]
    fn random_operations_match_a_dict() {
        let names: [&[u8]; 6] = [b"A", b"B", b"BASE1", b"BASE2", b"LONG_NAME_X", b"Z"];
        let mut base = Environ::new();
        base.set(b"BASE1", b"b1").unwrap();
        base.set(b"BASE2", b"b2").unwrap();
        let shared = base.share();
        let mut env = Environ::new();
        env.reset(Some(Arc::clone(&shared)));
        let mut model: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b"BASE1".to_vec(), b"b1".to_vec()),
            (b"BASE2".to_vec(), b"b2".to_vec()),
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut compactions_seen = 0;
        let steps = if cfg!(miri) { 400 } else { 20_000 };
        for step in 0..steps {
            let name = names[rng.below(names.len())];
            let before = env.arena.len();
            if rng.below(3) == 0 {
                let removed = env.remove(name).unwrap();
                let at = model.iter().position(|(n, _)| n == name);
                assert_eq!(removed, at.is_some(), "step {step}");
                if let Some(at) = at {
                    model.remove(at);
                }
            } else {
                let value = vec![b'a' + (step % 26) as u8; rng.below(700)];
                env.set(name, &value).unwrap();
                match model.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 = value,
                    None => model.push((name.to_vec(), value)),
                }
            }
            if env.arena.len() < before {
                compactions_seen += 1;
            }
            let got: Vec<(Vec<u8>, Vec<u8>)> = {
                let mut out = Vec::new();
                let mut cursor = 0;
                while let Some((n, v)) = env.next(&mut cursor) {
                    out.push((n.to_vec(), v.to_vec()));
                }
                out
            };
            assert_eq!(got, model, "step {step}");
            assert_eq!(env.len(), model.len());
            for name in names {
                let want = model.iter().find(|(n, _)| n == name).map(|(_, v)| &v[..]);
                assert_eq!(env.get(name), want, "step {step}");
            }
        }
        assert!(compactions_seen > 10, "{compactions_seen}");
        assert_eq!(shared.get(b"BASE1"), Some(&b"b1"[..]));
    }

    /// `set_many`'s checked way alone (`set_many` tries the fast way first), to compare the
    /// fast way against.
    fn checked_set_many<'p>(
        env: &mut Environ,
        pairs: impl Iterator<Item = (&'p [u8], &'p [u8])>,
    ) -> Result<(), Error> {
        env.set_records(pairs.map(Some), |_| unreachable!("every record is a pair"))
    }

    fn dump(env: &Environ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut cursor = 0;
        while let Some((n, v)) = env.next(&mut cursor) {
            out.push((n.to_vec(), v.to_vec()));
        }
        assert_eq!(out.len(), env.len());
        for (n, v) in &out {
            assert_eq!(env.get(n), Some(&v[..]));
        }
        out
    }

    /// The copying scan gives the hash of the plain one, and the bytes; it finds a NUL or
    /// an '=' wherever the plain one does, and else flags only a name of 4 bytes or more
    /// with a byte of 0x80 or above.
    #[test]
    fn scan_and_copy_agrees_with_scan_name() {
        for len in 0..if cfg!(miri) { 12 } else { 40 } {
            let clean: Vec<u8> = (0..len).map(|i| b'A' + (i % 26) as u8).collect();
            let mut names = vec![clean.clone()];
            for pos in 0..len {
                for odd in [0u8, b'=', 0x01, 0x3e, 0x7f, 0x80, 0xbd, 0xff] {
                    let mut dirty = clean.clone();
                    dirty[pos] = odd;
                    names.push(dirty);
                }
            }
            for name in names {
                let mut copy = vec![0xAA; len];
                let (hash, found) = scan_and_copy(&name, seed(), &mut copy);
                let (plain_hash, bad) = scan_name(&name);
                let high = len >= 4 && name.iter().any(|&b| b >= 0x80);
                assert_eq!(hash, plain_hash, "{name:?}");
                assert_eq!(found & BAD_BYTES != 0, bad || high, "{name:?}");
                assert_eq!(copy, name);
            }
        }
    }

    /// The request keys' names are the ones `request_key_hashes` covers, and each has its
    /// reserved bit.
    #[test]
    fn request_key_names_are_all_covered() {
        let keys = RequestKeys {
            multithread: true,
            multiprocess: true,
            run_once: true,
            file_wrapper: true,
            server_software: Some(b"s"),
        };
        let bits = request_key_hashes();
        for https in [false, true] {
            let names: Vec<&[u8]> = keys.pairs(https).map(|(n, _)| n).collect();
            assert_eq!(names, REQUEST_KEY_NAMES);
        }
        for name in REQUEST_KEY_NAMES {
            assert!(may_be_request_key(bits, hash_name(name)));
            assert_ne!(reserved_bits(name), 0);
        }
        assert!(bits.count_ones() <= 10);
    }

    /// try_set_many does what set_many does when that succeeds, and refuses (changing
    /// nothing) exactly when set_many refuses.
    #[test]
    fn try_set_many_is_set_many_or_nothing() {
        let long_name = vec![b'N'; MAX_NAME_LEN + 1];
        let long_value = vec![b'v'; MAX_VALUE_LEN + 1];
        let longest_name = vec![b'N'; MAX_NAME_LEN];
        let batches: [&[(&[u8], &[u8])]; 12] = [
            &[],
            &[(b"A", b"1"), (b"B", b"")],
            &[(b"A", b"1"), (b"A", b"2"), (b"C", b"3"), (b"A", b"4")],
            &[
                (b"BASE1", b"new"),
                (b"wsgi.x", b"w"),
                (b"SERVER_SOFTWARE", b"s"),
            ],
            &[(b"A", b"1"), (b"", b"empty name")],
            &[(b"A", b"1"), (b"B=C", b"equals")],
            &[(b"LONG_NAME_WITH_\0_INSIDE", b"x"), (b"A", b"1")],
            &[(b"A\0", b"nul")],
            &[(&long_name, b"x")],
            &[(b"A", &long_value)],
            &[(&longest_name, b"fits")],
            &[(b"REMOVED", b"again"), (b"BASE2", b"b")],
        ];
        let mut base = Environ::new();
        base.set(b"BASE1", b"b1").unwrap();
        base.set(b"BASE2", b"b2").unwrap();
        let shared = base.share();
        for batch in batches {
            for with_base in [false, true] {
                let mut env = Environ::new();
                env.reset(with_base.then(|| Arc::clone(&shared)));
                env.set(b"A", b"before").unwrap();
                env.set(b"REMOVED", b"r").unwrap();
                env.remove(b"REMOVED").unwrap();
                if with_base {
                    env.remove(b"BASE2").unwrap();
                }
                let before = dump(&env);
                let mut fast = env.clone();
                let mut slow = env.clone();
                let done = fast.try_set_many(batch.iter().copied());
                let result = checked_set_many(&mut slow, batch.iter().copied());
                assert_eq!(done, result.is_ok(), "{batch:?}");
                if done {
                    assert_eq!(dump(&fast), dump(&slow), "{batch:?}");
                } else {
                    assert_eq!(dump(&fast), before, "{batch:?}");
                    for (n, _) in batch {
                        assert_eq!(fast.get(n), env.get(n), "{batch:?}");
                    }
                }
                // Whatever happened, the environ still takes new keys.
                fast.set(b"AFTER", b"1").unwrap();
                assert_eq!(fast.get(b"AFTER"), Some(&b"1"[..]));
            }
        }
    }

    /// Batches whose size the iterator does not tell (the entries, the arena and the
    /// index grow while they are appended), with names set twice and a refusal at the end.
    #[test]
    fn try_set_many_of_unknown_size() {
        let names: Vec<Vec<u8>> = (0..300)
            .map(|i| format!("NAME_{}", i % 250).into_bytes())
            .collect();
        let values: Vec<Vec<u8>> = (0..300).map(|i| vec![b'v'; i % 40]).collect();
        for refuse_at in [None, Some(0), Some(150), Some(299)] {
            let pairs: Vec<(&[u8], &[u8])> = names
                .iter()
                .zip(&values)
                .enumerate()
                .map(|(i, (n, v))| {
                    if Some(i) == refuse_at {
                        (&b"A=B"[..], &v[..])
                    } else {
                        (&n[..], &v[..])
                    }
                })
                .collect();
            let mut fast = Environ::new();
            fast.set(b"NAME_7", b"before").unwrap();
            let mut slow = fast.clone();
            let before = dump(&fast);
            let done = fast.try_set_many(pairs.iter().copied().filter(|_| true));
            let result = checked_set_many(&mut slow, pairs.iter().copied());
            assert_eq!(done, result.is_ok());
            assert_eq!(done, refuse_at.is_none());
            if done {
                assert_eq!(dump(&fast), dump(&slow));
                assert_eq!(fast.len(), 250);
            } else {
                assert_eq!(dump(&fast), before);
                // The refused names are out of the index again.
                for (n, _) in &pairs {
                    let want = (*n == b"NAME_7").then_some(&b"before"[..]);
                    assert_eq!(fast.get(n), want);
                }
                let good = || {
                    names
                        .iter()
                        .zip(&values)
                        .map(|(n, v)| (&n[..], &v[..]))
                        .skip(200)
                };
                assert!(fast.try_set_many(good()));
                checked_set_many(&mut slow, good()).unwrap();
                assert_eq!(dump(&fast), dump(&slow));
            }
            fast.set(b"AFTER", b"1").unwrap();
            assert_eq!(fast.get(b"AFTER"), Some(&b"1"[..]));
        }
    }

    /// Random batches over a base with removed and re-added keys: set_many does what the
    /// same single sets do, and a batch with a refused pair anywhere changes nothing.
    #[test]
    fn set_many_is_single_sets_or_nothing() {
        let names: [&[u8]; 7] = [
            b"A",
            b"B",
            b"BASE1",
            b"BASE2",
            b"LONG_NAME_OVER_16",
            b"Z",
            b"wsgi.x",
        ];
        let mut base = Environ::new();
        base.set(b"BASE1", b"b1").unwrap();
        base.set(b"BASE2", b"b2").unwrap();
        let shared = base.share();
        let mut many = Environ::new();
        many.reset(Some(Arc::clone(&shared)));
        let mut single = many.clone();
        let mut fast = many.clone();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let steps = if cfg!(miri) { 30 } else { 5_000 };
        for step in 0..steps {
            if rng.below(4) == 0 {
                let name = names[rng.below(names.len())];
                assert_eq!(many.remove(name).unwrap(), single.remove(name).unwrap());
                fast.remove(name).unwrap();
                continue;
            }
            let count = rng.below(6);
            let values: Vec<Vec<u8>> = (0..count)
                .map(|i| vec![b'a' + (step + i) as u8 % 26; rng.below(40)])
                .collect();
            let mut pairs: Vec<(&[u8], &[u8])> = (0..count)
                .map(|i| (names[rng.below(names.len())], &values[i][..]))
                .collect();
            let refused = count > 0 && rng.below(3) == 0;
            if refused {
                let at = rng.below(count);
                pairs[at].0 = [&b""[..], b"A=B", b"N\0"][rng.below(3)];
            }
            let before = dump(&many);
            let result = checked_set_many(&mut many, pairs.iter().copied());
            assert_eq!(fast.try_set_many(pairs.iter().copied()), result.is_ok());
            if refused {
                assert!(result.is_err(), "step {step}");
                assert_eq!(dump(&many), before, "step {step}");
            } else {
                result.unwrap();
                for (n, v) in &pairs {
                    single.set(n, v).unwrap();
                }
            }
            assert_eq!(dump(&many), dump(&single), "step {step}");
            assert_eq!(dump(&fast), dump(&single), "step {step}");
        }
    }

    /// The uncopied request keys read, iterate and change exactly like the sets
    /// setup_environ made before them, whatever the host or the base already held.
    #[test]
    fn request_keys_are_the_sets_they_stand_for() {
        let keys = RequestKeys {
            multithread: true,
            multiprocess: false,
            run_once: true,
            file_wrapper: true,
            server_software: Some(b"gw/1"),
        };
        let hosts: [&[(&[u8], &[u8])]; 4] = [
            &[(b"PATH_INFO", b"/")],
            &[(b"wsgi.url_scheme", b"ftp"), (b"X", b"1")],
            &[(b"SERVER_SOFTWARE", b"host/2")],
            &[],
        ];
        let bases: [&[(&[u8], &[u8])]; 3] = [
            &[],
            &[(b"wsgi.multithread", b"base")],
            &[(b"SERVER_SOFTWARE", b"base/3"), (b"B", b"b")],
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for host in hosts {
            for base_vars in bases {
                for https in [false, true] {
                    let mut base = Environ::new();
                    for (n, v) in base_vars {
                        base.set(n, v).unwrap();
                    }
                    let shared = base.share();
                    let mut fast = Environ::for_request();
                    let mut plain = Environ::new();
                    for env in [&mut fast, &mut plain] {
                        env.reset(Some(Arc::clone(&shared)));
                        env.set_many(host.iter().copied()).unwrap();
                    }
                    // Twice: the second request reuses the prebuilt block.
                    for _ in 0..2 {
                        let mut again = fast.clone();
                        again.reset(Some(Arc::clone(&shared)));
                        again.set_many(host.iter().copied()).unwrap();
                        again.add_request_keys(&keys, https).unwrap();
                        fast = again;
                    }
                    let pairs: Vec<_> = keys.pairs(https).collect();
                    let (software, wsgi) = pairs.split_last().unwrap();
                    for (n, v) in wsgi {
                        plain.set(n, v).unwrap();
                    }
                    plain.set_default(software.0, software.1).unwrap();
                    assert_eq!(dump(&fast), dump(&plain), "{host:?} {base_vars:?}");
                    let names: [&[u8]; 5] = [
                        b"wsgi.version",
                        b"NEW",
                        b"SERVER_SOFTWARE",
                        b"wsgi.url_scheme",
                        b"X",
                    ];
                    for step in 0..if cfg!(miri) { 3 } else { 40 } {
                        let name = names[rng.below(names.len())];
                        if rng.below(3) == 0 {
                            assert_eq!(fast.remove(name).unwrap(), plain.remove(name).unwrap());
                        } else {
                            let value = vec![b'v'; rng.below(9)];
                            fast.set(name, &value).unwrap();
                            plain.set(name, &value).unwrap();
                        }
                        assert_eq!(dump(&fast), dump(&plain), "step {step}");
                    }
                    let shared_fast = fast.share();
                    assert_eq!(dump(&shared_fast), dump(&plain));
                }
            }
        }
    }

    /// The index's stamps wrap around without a stale slot showing through.
    #[test]
    fn index_stamps_wrap() {
        let mut env = Environ::new();
        env.set(b"A", b"1").unwrap();
        // As if 2^32 - 2 requests went by: A's slot still carries the first stamp.
        env.stamp = u32::MAX - 1;
        for round in 0..4u8 {
            env.reset(None);
            assert_eq!(env.get(b"A"), None, "round {round}");
            assert_eq!(env.get(b"B"), None, "round {round}");
            env.set(b"B", &[round]).unwrap();
            assert_eq!(env.get(b"B"), Some(&[round][..]));
        }
        assert!(env.stamp <= 4, "the stamp wrapped: {}", env.stamp);
    }

    /// Names that differ in any one byte, at any length, hash apart and are told apart.
    #[test]
    fn every_byte_of_a_name_counts() {
        let mut env = Environ::new();
        for len in 1..if cfg!(miri) { 20 } else { 40 } {
            let name: Vec<u8> = (0..len).map(|i| b'A' + (i % 26) as u8).collect();
            // The value is the name: every length of copy is read back.
            env.set(&name, &name).unwrap();
            assert_eq!(env.get(&name), Some(&name[..]));
            assert!(same_bytes(&name, &name.clone()));
            for pos in 0..len {
                let mut other = name.clone();
                other[pos] = b'0';
                assert_ne!(hash_name(&name), hash_name(&other), "{len} {pos}");
                assert!(!same_bytes(&name, &other), "{len} {pos}");
                assert_eq!(env.get(&other), None);
            }
        }
        assert_eq!(env.len(), if cfg!(miri) { 19 } else { 39 });
    }

    #[test]
    fn share_of_a_layered_environ_flattens() {
        let mut a = Environ::new();
        a.set(b"A", b"1").unwrap();
        let _ = a.share();
        a.set(b"B", b"2").unwrap();
        let shared = a.share();
        assert!(shared.base.is_none());
        assert_eq!(pairs(&shared).len(), 2);
        assert_eq!(pairs(&a).len(), 2);
    }
}
