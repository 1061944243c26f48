//! wsgiref.util.FileWrapper: a file read in blocks of a fixed size, in order, until a read
//! gives nothing; closing it closes the file, once.
//!
//! Python's `read(blksize)` on a buffered file returns `blksize` bytes unless the end of the
//! file comes first, so each block here is filled the same way (reads are repeated until the
//! block is full or a read returns 0), whatever short reads the file gives (a pipe, a
//! socket). Reading to the end does not close the file (testFileWrapper checks it).

use std::io::{self, Read};

use crate::status::{Error, Status};

/// The file under a FileWrapper: something to read and, perhaps, to close.
pub trait BlockFile: Read {
    /// Releases the file. Called at most once.
    fn close(&mut self) -> io::Result<()>;
}

/// wsgiref's default block size.
pub(crate) const DEFAULT_BLOCK_SIZE: usize = 8192;
/// The largest block size accepted (as gw_request_set_body_file).
pub(crate) const MAX_BLOCK_SIZE: usize = 16 * 1024 * 1024;

/// Fills `block` from `file`: repeated reads until it is full or a read returns 0 (the end),
/// retrying EINTR. Returns how many bytes it holds.
pub fn fill_block(file: &mut impl Read, block: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < block.len() {
        match file.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A block the wrapper produced: its bytes, and whether the read that ended it met the end
/// of the file (a short block), so no block follows unless the file grows.
pub struct Block<'a> {
    pub data: &'a [u8],
    pub at_end: bool,
}

pub struct FileWrapper<F: BlockFile> {
    file: F,
    block: Vec<u8>,
    closed: bool,
}

impl<F: BlockFile> FileWrapper<F> {
    /// `FileWrapper(file, block_size)`; 0 means wsgiref's 8192. GW_STATUS_TOO_LARGE above
    /// 16 MiB (the block is allocated once, up front).
    pub fn new(file: F, block_size: usize) -> Result<FileWrapper<F>, (Error, F)> {
        let block_size = if block_size == 0 {
            DEFAULT_BLOCK_SIZE
        } else {
            block_size
        };
        if block_size > MAX_BLOCK_SIZE {
            return Err((
                Error::new(Status::TooLarge, "block_size is larger than 16 MiB"),
                file,
            ));
        }
        Ok(FileWrapper {
            file,
            block: vec![0; block_size],
            closed: false,
        })
    }

    pub fn block_size(&self) -> usize {
        self.block.len()
    }

    /// `next(wrapper)`: the next block, or None at the end of the file (StopIteration; a
    /// later call reads again, as wsgiref's). GW_STATUS_INVALID_STATE once closed (reading
    /// a closed file raises ValueError in Python); a failed read is GW_STATUS_IO_ERROR.
    pub fn next_block(&mut self) -> Result<Option<Block<'_>>, Error> {
        if self.closed {
            return Err(Error::new(
                Status::InvalidState,
                "the file wrapper is closed",
            ));
        }
        let n = fill_block(&mut self.file, &mut self.block).map_err(|e| {
            Error::new(
                Status::IoError,
                format!("reading the wrapped file failed: {e}"),
            )
        })?;
        Ok((n > 0).then(|| Block {
            data: &self.block[..n],
            at_end: n < self.block.len(),
        }))
    }

    /// `wrapper.close()`: closes the file the first time; later calls do nothing (as a
    /// Python file's close). A failing close is GW_STATUS_IO_ERROR, and the wrapper is
    /// closed all the same (the descriptor is gone either way).
    pub fn close(&mut self) -> Result<(), Error> {
        if std::mem::replace(&mut self.closed, true) {
            return Ok(());
        }
        self.file.close().map_err(|e| {
            Error::new(
                Status::IoError,
                format!("closing the wrapped file failed: {e}"),
            )
        })
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file giving its bytes in reads of at most `step`, with an EINTR before each, that
    /// counts its closes.
    struct Mock {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        interrupt: bool,
        closes: usize,
        fail_at: Option<usize>,
    }

    impl Mock {
        fn new(data: &[u8], step: usize) -> Mock {
            Mock {
                data: data.to_vec(),
                pos: 0,
                step,
                interrupt: false,
                closes: 0,
                fail_at: None,
            }
        }
    }

    impl Read for Mock {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at == Some(self.pos) {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.step).min(self.data.len() - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl BlockFile for Mock {
        fn close(&mut self) -> io::Result<()> {
            self.closes += 1;
            Ok(())
        }
    }

    fn blocks(w: &mut FileWrapper<Mock>) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        while let Some(b) = w.next_block().unwrap() {
            out.push((b.data.to_vec(), b.at_end));
            assert!(out.len() < 100);
        }
        out
    }

    /// test_wsgiref UtilityTests.testFileWrapper: "xyz"*50 in blocks of 120 gives "xyz"*40
    /// and "xyz"*10; iterating to the end leaves the file open; close closes it.
    #[test]
    fn file_wrapper_matches_wsgiref_vector() {
        for step in [1, 7, 120, 1000] {
            let mut w = FileWrapper::new(Mock::new(&b"xyz".repeat(50), step), 120)
                .map_err(|(e, _)| e)
                .unwrap();
            assert_eq!(
                blocks(&mut w),
                vec![(b"xyz".repeat(40), false), (b"xyz".repeat(10), true)]
            );
            assert!(w.next_block().unwrap().is_none());
            assert!(!w.is_closed());
            assert_eq!(w.file.closes, 0);
            w.close().unwrap();
            w.close().unwrap();
            assert_eq!(w.file.closes, 1);
            assert_eq!(
                w.next_block().err().map(|e| e.status),
                Some(Status::InvalidState)
            );
        }
    }

    #[test]
    fn block_sizes_and_errors() {
        let w = FileWrapper::new(Mock::new(b"", 1), 0)
            .map_err(|(e, _)| e)
            .unwrap();
        assert_eq!(w.block_size(), 8192);
        let Err((e, _)) = FileWrapper::new(Mock::new(b"", 1), MAX_BLOCK_SIZE + 1) else {
            panic!("a block over 16 MiB was accepted");
        };
        assert_eq!(e.status, Status::TooLarge);
        // An exact multiple: the last full block is not known to be the end.
        let mut w = FileWrapper::new(Mock::new(b"abcdef", 2), 3)
            .map_err(|(e, _)| e)
            .unwrap();
        assert_eq!(
            blocks(&mut w),
            vec![(b"abc".to_vec(), false), (b"def".to_vec(), false)]
        );
        let mut failing = Mock::new(b"abcdef", 6);
        failing.fail_at = Some(0);
        let mut w = FileWrapper::new(failing, 3).map_err(|(e, _)| e).unwrap();
        assert_eq!(
            w.next_block().err().map(|e| e.status),
            Some(Status::IoError)
        );
    }
}
