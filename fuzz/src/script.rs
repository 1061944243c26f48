//! Decoding fuzz bytes into choices. Every read succeeds: past the end the bytes read as 0,
//! so a short input is a complete scenario whose missing choices take the first option.

pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// How many bytes are left.
    pub fn left(&self) -> usize {
        self.data.len()
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    /// `Some` in about one case of `one_in`, with a number in `0..n`.
    pub fn sometimes(&mut self, one_in: u8, n: usize) -> Option<usize> {
        (self.byte() % one_in == 1).then(|| self.below(n))
    }

    /// Up to `max` raw bytes (fewer at the end of the input).
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max + 1).min(self.data.len());
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        taken
    }

    pub fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        table[self.below(table.len())]
    }

    /// An entry of `table`, or (for the byte values past it) up to `max_raw` raw bytes, so the
    /// fuzzer both reaches the interesting spellings at once and can invent its own.
    pub fn pick_or_raw(&mut self, table: &[&[u8]], max_raw: usize) -> Vec<u8> {
        let b = usize::from(self.byte());
        match table.get(b) {
            Some(entry) => entry.to_vec(),
            None => self.bytes(max_raw).to_vec(),
        }
    }
}

/// `len` bytes of text with a newline every `period` bytes (no newline when `period` is 0),
/// for bodies whose exact content does not matter but whose lines do.
pub fn text(len: usize, period: usize) -> Vec<u8> {
    (0..len)
        .map(|i| match period {
            0 => b'a' + (i % 26) as u8,
            p if i % p == p - 1 => b'\n',
            _ => b'a' + (i % 26) as u8,
        })
        .collect()
}
