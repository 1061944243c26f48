//! A request body read ahead of the application (non-blocking mode): held in memory up to a
//! limit, in an anonymous temporary file beyond it, and read back from any offset.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;

/// The read-ahead body of one request; its memory is kept between requests.
#[derive(Debug, Default)]
pub struct Spool {
    memory: Vec<u8>,
    /// Where the body went once it outgrew `memory_limit` (memory was moved into it).
    file: Option<File>,
    len: u64,
}

impl Spool {
    /// Forgets the body; keeps at most `memory_limit` bytes of memory for the next one.
    pub fn clear(&mut self, memory_limit: usize) {
        self.memory.clear();
        if self.memory.capacity() > memory_limit {
            self.memory.shrink_to(memory_limit);
        }
        self.file = None;
        self.len = 0;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the body outgrew memory (for tests and the host's curiosity).
    pub fn on_disk(&self) -> bool {
        self.file.is_some()
    }

    /// Appends `data`; past `memory_limit` bytes in all, the body moves to a temporary file.
    pub fn append(&mut self, data: &[u8], memory_limit: usize) -> io::Result<()> {
        if self.file.is_none() && self.memory.len() + data.len() > memory_limit {
            let mut file = anonymous_file()?;
            file.write_all(&self.memory)?;
            self.memory.clear();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(data)?,
            None => self.memory.extend_from_slice(data),
        }
        self.len += data.len() as u64;
        Ok(())
    }

    /// Copies bytes from offset `pos` into `dst`; 0 at the end.
    pub fn read_at(&self, pos: u64, dst: &mut [u8]) -> io::Result<usize> {
        if pos >= self.len || dst.is_empty() {
            return Ok(0);
        }
        let want = dst
            .len()
            .min(usize::try_from(self.len - pos).unwrap_or(usize::MAX));
        match &self.file {
            Some(file) => {
                let mut done = 0;
                while done < want {
                    match file.read_at(&mut dst[done..want], pos + done as u64) {
                        Ok(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the spooled request body file shrank",
                            ))
                        }
                        Ok(n) => done += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(done)
            }
            None => {
                let start = pos as usize;
                dst[..want].copy_from_slice(&self.memory[start..start + want]);
                Ok(want)
            }
        }
    }
}

/// A file with no name in the temporary directory ($TMPDIR or /tmp): O_TMPFILE where the
/// file system has it, else a fresh name removed at once. It vanishes when closed.
fn anonymous_file() -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    let unnamed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(&dir);
    if let Ok(file) = unnamed {
        return Ok(file);
    }
    let mut attempt = 0u32;
    loop {
        let path = dir.join(format!(
            "gateway-body-{}-{}-{attempt}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_back(spool: &Spool, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0; step];
        loop {
            let n = spool.read_at(out.len() as u64, &mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn small_bodies_stay_in_memory_and_large_ones_move_to_a_file() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        for (limit, on_disk) in [(8192, false), (5000, false), (4999, true), (0, true)] {
            let mut spool = Spool::default();
            for part in data.chunks(333) {
                spool.append(part, limit).unwrap();
            }
            assert_eq!(spool.on_disk(), on_disk, "limit {limit}");
            assert_eq!(spool.len(), 5000);
            for step in [1, 7, 4096, 10000] {
                assert_eq!(read_back(&spool, step), data, "limit {limit} step {step}");
            }
            spool.clear(limit);
            assert!(spool.is_empty() && !spool.on_disk());
            assert_eq!(spool.read_at(0, &mut [0; 4]).unwrap(), 0);
        }
    }

    #[test]
    fn clear_gives_back_memory_beyond_the_limit() {
        let mut spool = Spool::default();
        spool.append(&[1; 100_000], 1 << 20).unwrap();
        spool.clear(1024);
        assert!(spool.memory.capacity() <= 1024);
    }
}
