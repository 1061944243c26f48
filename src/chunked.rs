//! The chunked transfer coding of a request body (RFC 9112 §7.1), decoded incrementally: the
//! wire bytes arrive in pieces of any size (one byte at a time included) and the decoder
//! keeps only a few counters between them, so it allocates nothing. Sizes are hex (any case,
//! leading zeros allowed), extensions are skipped, trailers are read and dropped, every line
//! ends in CRLF (a bare LF is an error), and the lines it skips are bounded.
//!
//! `min_remaining` tells the reader how many more bytes certainly belong to the body, so it
//! never asks the host for bytes past the body's end (a pipelined request stays unread).

use std::fmt;

/// The longest chunk-size line (digits, extensions, CRLF): nginx and hyper accept far less
/// than a buffer's worth too; a longer one is an attack, not a client.
const MAX_SIZE_LINE: usize = 4096;
/// The most trailer bytes (all trailer lines and their CRLFs) read and dropped.
const MAX_TRAILERS: usize = 8192;

/// Why the chunked framing is malformed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// A chunk-size line without hex digits, or with a byte that is not hex after them.
    BadSize,
    /// The chunk size does not fit in 64 bits.
    SizeOverflow,
    /// The chunk-size line (with its extensions) is longer than MAX_SIZE_LINE.
    SizeLineTooLong,
    /// A control byte in an extension or trailer line.
    BadByte,
    /// A line ended with LF alone, or CR was not followed by LF.
    BadLineEnd,
    /// A chunk's data was not followed by CRLF.
    MissingDataCrlf,
    /// The trailer section is longer than MAX_TRAILERS.
    TrailersTooLong,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkError::BadSize => "malformed chunk size",
            ChunkError::SizeOverflow => "chunk size too large",
            ChunkError::SizeLineTooLong => "chunk-size line too long",
            ChunkError::BadByte => "control byte in a chunk extension or trailer",
            ChunkError::BadLineEnd => "chunk line not ended by CRLF",
            ChunkError::MissingDataCrlf => "chunk data not followed by CRLF",
            ChunkError::TrailersTooLong => "trailer section too long",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum State {
    /// Before the first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// In the hex digits.
    Size,
    /// In the extensions (after `;` or whitespace), up to CR.
    Ext,
    /// After the size line's CR.
    SizeLf,
    /// In a chunk's data; `left` bytes to go.
    Data,
    /// After the data: CR, then LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    /// Inside a trailer line.
    Trailer,
    /// After a trailer line's CR.
    TrailerLf,
    /// After the final empty line's CR.
    EndLf,
    /// The last chunk and the trailers are consumed.
    Done,
}

/// The decoder's state between pieces of wire bytes.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    state: State,
    /// The current chunk's size while its line is read, then the data bytes left.
    left: u64,
    /// Bytes of the current size line, or of the trailer section.
    line: usize,
}

/// `+` that saturates: the bounds below are only lower bounds.
fn sum(parts: &[u64]) -> u64 {
    parts.iter().fold(0u64, |a, &b| a.saturating_add(b))
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Whether the last chunk and the trailers were consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The fewest wire bytes the body still has: the shortest way to finish it from here is
    /// the current line, the current chunk's data and CRLF, then `0\r\n\r\n`.
    pub fn min_remaining(&self) -> u64 {
        const LAST: u64 = 5; // "0\r\n\r\n"
        let after_line = |size: u64| {
            if size == 0 {
                2 // the final empty line
            } else {
                sum(&[size, 2, LAST])
            }
        };
        match self.state {
            State::SizeStart => LAST,
            State::Size | State::Ext => sum(&[2, after_line(self.left)]),
            State::SizeLf => sum(&[1, after_line(self.left)]),
            State::Data => sum(&[self.left, 2, LAST]),
            State::DataCr => 2 + LAST,
            State::DataLf => 1 + LAST,
            State::TrailerStart => 2,
            State::Trailer => 4,
            State::TrailerLf => 3,
            State::EndLf => 1,
            State::Done => 0,
        }
    }

    /// Decodes from `wire` into `out`. Returns the wire bytes consumed and the data bytes
    /// written; it stops when `wire` is used up, `out` is full or the body is done. On an
    /// error the decoder is left failed: the caller stops using it.
    pub fn decode(&mut self, wire: &[u8], out: &mut [u8]) -> Result<(usize, usize), ChunkError> {
        let (mut used, mut produced) = (0, 0);
        while used < wire.len() && self.state != State::Done {
            if self.state == State::Data {
                let room = out.len() - produced;
                if room == 0 {
                    break;
                }
                let n = (wire.len() - used)
                    .min(room)
                    .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                out[produced..produced + n].copy_from_slice(&wire[used..used + n]);
                used += n;
                produced += n;
                self.left -= n as u64;
                if self.left == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.byte(wire[used])?;
            used += 1;
        }
        Ok((used, produced))
    }

    /// One framing byte.
    fn byte(&mut self, b: u8) -> Result<(), ChunkError> {
        match self.state {
            State::SizeStart | State::Size | State::Ext | State::SizeLf => {
                self.line += 1;
                if self.line > MAX_SIZE_LINE {
                    return Err(ChunkError::SizeLineTooLong);
                }
            }
            State::TrailerStart | State::Trailer | State::TrailerLf | State::EndLf => {
                self.line += 1;
                if self.line > MAX_TRAILERS {
                    return Err(ChunkError::TrailersTooLong);
                }
            }
            _ => {}
        }
        self.state = match (self.state, b) {
            (State::SizeStart | State::Size, _) if b.is_ascii_hexdigit() => {
                let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                self.left = self
                    .left
                    .checked_mul(16)
                    .and_then(|v| v.checked_add(digit))
                    .ok_or(ChunkError::SizeOverflow)?;
                State::Size
            }
            // BWS before `;`, and the extensions themselves, are skipped to the CR.
            (State::Size, b';' | b' ' | b'\t') => State::Ext,
            (State::Size | State::Ext, b'\r') => State::SizeLf,
            (State::Size | State::Ext, b'\n') => return Err(ChunkError::BadLineEnd),
            (State::Size | State::SizeStart, _) => return Err(ChunkError::BadSize),
            (State::Ext, _) if is_control(b) => return Err(ChunkError::BadByte),
            (State::Ext, _) => State::Ext,
            (State::SizeLf, b'\n') => {
                self.line = 0;
                if self.left == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                }
            }
            (State::SizeLf, _) => return Err(ChunkError::BadLineEnd),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::SizeStart,
            (State::DataCr | State::DataLf, _) => return Err(ChunkError::MissingDataCrlf),
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::Trailer, b'\r') => State::TrailerLf,
            (State::TrailerStart | State::Trailer, b'\n') => return Err(ChunkError::BadLineEnd),
            (State::TrailerStart | State::Trailer, _) if is_control(b) => {
                return Err(ChunkError::BadByte)
            }
            (State::TrailerStart | State::Trailer, _) => State::Trailer,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            (State::TrailerLf | State::EndLf, _) => return Err(ChunkError::BadLineEnd),
            (State::Data | State::Done, _) => unreachable!("data and the end take no framing byte"),
        };
        Ok(())
    }
}

/// A control byte other than HTAB (which field values and extensions may hold).
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed `step` bytes at a time into an `out_cap`-byte buffer; returns the
    /// body, whether it ended, and the wire bytes consumed.
    fn run(wire: &[u8], step: usize, out_cap: usize) -> Result<(Vec<u8>, bool, usize), ChunkError> {
        let mut d = Decoder::new();
        let mut body = Vec::new();
        let mut out = vec![0u8; out_cap];
        let mut pos = 0;
        while pos < wire.len() && !d.is_done() {
            let end = (pos + step).min(wire.len());
            let mut piece = &wire[pos..end];
            while !piece.is_empty() && !d.is_done() {
                let (used, produced) = d.decode(piece, &mut out)?;
                body.extend_from_slice(&out[..produced]);
                assert!(used > 0 || produced > 0, "no progress");
                piece = &piece[used..];
                pos += used;
            }
        }
        Ok((body, d.is_done(), pos))
    }

    /// Every way of feeding the same bytes gives the same answer.
    fn decode_all(wire: &[u8]) -> Result<(Vec<u8>, bool, usize), ChunkError> {
        let whole = run(wire, wire.len().max(1), 1 << 16);
        for step in [1, 2, 3, 7] {
            for cap in [1, 2, 5, 4096] {
                assert_eq!(run(wire, step, cap), whole, "step {step}, out {cap}");
            }
        }
        whole
    }

    #[test]
    fn vectors() {
        let ok: &[(&[u8], &[u8])] = &[
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"0\r\n\r\n", b""),
            (b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (
                b"1F\r\n0123456789abcdef0123456789abcde\r\n0\r\n\r\n",
                b"0123456789abcdef0123456789abcde",
            ),
            (b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
            (b"5;name=value\r\nhello\r\n0;last\r\n\r\n", b"hello"),
            (b"5 ; a=\"b c\"\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\t;x\r\nhello\r\n0\r\n\r\n", b"hello"),
            (
                b"5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-Other: two\r\n\r\n",
                b"hello",
            ),
            (b"2\r\n\r\n\r\n0\r\n\r\n", b"\r\n"),
            (b"ffffffffffffffff\r\n", b""), // the largest size is accepted (more data to come)
        ];
        for (wire, body) in ok {
            let (got, done, used) = decode_all(wire).unwrap();
            assert_eq!(got, *body, "{}", String::from_utf8_lossy(wire));
            assert_eq!(done, !wire.starts_with(b"ffff"));
            assert_eq!(used, wire.len());
        }
    }

    #[test]
    fn stops_at_the_end_of_the_body() {
        let (body, done, used) = decode_all(b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n").unwrap();
        assert_eq!((body.as_slice(), done, used), (&b"abc"[..], true, 13));
    }

    #[test]
    fn malformed() {
        use ChunkError::*;
        let bad: &[(&[u8], ChunkError)] = &[
            (b"\r\n", BadSize),
            (b"x\r\n", BadSize),
            (b"5x\r\n", BadSize),
            (b"-5\r\n", BadSize),
            (b"+5\r\n", BadSize),
            (b";ext\r\n", BadSize),
            (b"0x5\r\n", BadSize),
            (b"5\nhello\r\n0\r\n\r\n", BadLineEnd),
            (b"5\r\rhello", BadLineEnd),
            (b"5;ext\nhello", BadLineEnd),
            (b"5\r\nhelloX\r\n", MissingDataCrlf),
            (b"5\r\nhello\n0\r\n\r\n", MissingDataCrlf),
            (b"5\r\nhello\rX", MissingDataCrlf),
            (b"5\r\nhello\r\n0\r\n\n", BadLineEnd),
            (b"5\r\nhello\r\n0\r\nX: y\n\r\n", BadLineEnd),
            (b"5\r\nhello\r\n0\r\n\rX", BadLineEnd),
            (b"5\r\nhello\r\n0\r\nX: \x01\r\n\r\n", BadByte),
            (b"5;a\x00b\r\n", BadByte),
            (b"10000000000000000\r\n", SizeOverflow),
            (b"fffffffffffffffff\r\n", SizeOverflow),
        ];
        for (wire, want) in bad {
            assert_eq!(
                decode_all(wire),
                Err(*want),
                "{}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn line_limits() {
        // Leading zeros count against the size line: they are not free.
        let mut wire = vec![b'0'; MAX_SIZE_LINE - 3];
        wire.extend_from_slice(b"5\r\nhello\r\n0\r\n\r\n");
        assert_eq!(decode_all(&wire).unwrap().0, b"hello");
        let mut wire = vec![b'0'; MAX_SIZE_LINE - 2];
        wire.extend_from_slice(b"5\r\n");
        assert_eq!(decode_all(&wire), Err(ChunkError::SizeLineTooLong));
        let mut wire = b"5;".to_vec();
        wire.resize(MAX_SIZE_LINE + 10, b'x');
        assert_eq!(decode_all(&wire), Err(ChunkError::SizeLineTooLong));

        let trailer = |len: usize| {
            let mut wire = b"0\r\nX: ".to_vec();
            wire.resize(3 + len - 4, b'y'); // the line and its CRLF, then the final CRLF
            wire.extend_from_slice(b"\r\n\r\n");
            wire
        };
        assert!(decode_all(&trailer(MAX_TRAILERS)).unwrap().1);
        assert_eq!(
            decode_all(&trailer(MAX_TRAILERS + 1)),
            Err(ChunkError::TrailersTooLong)
        );
    }

    #[test]
    fn early_end_at_every_byte_is_unfinished() {
        let wire = b"5;e=1\r\nhello\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n";
        for cut in 0..wire.len() {
            let (_, done, used) = decode_all(&wire[..cut]).unwrap();
            assert!(!done, "cut at {cut}");
            assert_eq!(used, cut);
        }
        assert!(decode_all(wire).unwrap().1);
    }

    /// `min_remaining` never exceeds what is really left, so a reader that asks for no more
    /// never reads past the body; and it is positive until the end.
    #[test]
    fn min_remaining_is_a_lower_bound() {
        let wires: &[&[u8]] = &[
            b"5;e=1\r\nhello\r\n3\r\nabc\r\n0\r\nT: v\r\n\r\n",
            b"0\r\n\r\n",
            b"10\r\n0123456789abcdef\r\n0;x\r\n\r\n",
            b"00\r\n\r\n",
        ];
        for wire in wires {
            let mut d = Decoder::new();
            let mut out = [0u8; 64];
            for (i, &b) in wire.iter().enumerate() {
                let left = (wire.len() - i) as u64;
                assert!(
                    d.min_remaining() <= left,
                    "{} at {i}",
                    String::from_utf8_lossy(wire)
                );
                assert!(d.min_remaining() > 0);
                d.decode(&[b], &mut out).unwrap();
            }
            assert!(d.is_done());
            assert_eq!(d.min_remaining(), 0);
        }
    }
}
