//! The presets' own hooks: plain file descriptors (SimpleHandler's stdin/stdout/stderr),
//! retrying EINTR, and the file body behind wsgi.file_wrapper.

use std::ffi::c_int;
use std::io;
use std::sync::Arc;

use crate::environ::Environ;
use crate::host::FileRange;
use crate::status::{Error, Status};

/// Calls `op` until it stops failing with EINTR.
fn retry_eintr(mut op: impl FnMut() -> isize) -> io::Result<usize> {
    loop {
        let n = op();
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

fn fd_write(fd: c_int, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is readable for its length; the fd belongs to the host (documented).
    retry_eintr(|| unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) })
}

fn fd_read(fd: c_int, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is writable for its length.
    retry_eintr(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// SimpleHandler's streams and base_env. The descriptors stay the host's: never closed here.
pub struct FdHost {
    pub stdin_fd: c_int,
    pub stdout_fd: c_int,
    pub stderr_fd: c_int,
    /// Merged into every request environ (SimpleHandler.add_cgi_vars: environ.update(base_env)).
    pub base_env: Arc<Environ>,
}

impl FdHost {
    pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        fd_write(self.stdout_fd, data)
    }

    pub fn read_stdin(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        fd_read(self.stdin_fd, buf)
    }

    pub fn write_stderr(&mut self, data: &[u8]) -> io::Result<usize> {
        fd_write(self.stderr_fd, data)
    }

    pub fn add_cgi_vars(&mut self, environ: &mut Environ) -> Result<(), Error> {
        environ.update(&self.base_env)
    }
}

/// wsgiref's FileWrapper over a file descriptor: blocks of `block_size` from the current
/// position to end of file; close() closes the descriptor when the app asked for it.
pub struct FdFile {
    fd: c_int,
    close_fd: bool,
    block: Vec<u8>,
}

impl FdFile {
    pub fn new(fd: c_int, block_size: usize, close_fd: bool) -> FdFile {
        FdFile {
            fd,
            close_fd,
            block: vec![0; block_size],
        }
    }

    /// The same file, read in blocks of `block_size` bytes.
    pub fn with_block_size(mut self, block_size: usize) -> FdFile {
        self.block.resize(block_size, 0);
        self
    }

    pub fn next_chunk(&mut self) -> Result<Option<&[u8]>, Error> {
        match fd_read(self.fd, &mut self.block) {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(&self.block[..n])),
            Err(e) => Err(Error::new(
                Status::AppError,
                format!("reading the body file failed: {e}"),
            )),
        }
    }

    /// The file from its current position to its end, when it is a regular file.
    pub fn range(&self) -> Option<FileRange> {
        // SAFETY: lseek and fstat on the descriptor the application handed over.
        let offset = unsafe { libc::lseek(self.fd, 0, libc::SEEK_CUR) };
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if offset < 0 || unsafe { libc::fstat(self.fd, &mut st) } != 0 {
            return None;
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return None;
        }
        let offset = offset as u64;
        Some(FileRange {
            fd: self.fd,
            offset,
            length: (st.st_size.max(0) as u64).saturating_sub(offset),
        })
    }

    pub fn close(&mut self) -> Result<(), Error> {
        if !std::mem::take(&mut self.close_fd) {
            return Ok(());
        }
        // SAFETY: the application handed the descriptor over with close_fd = true.
        if unsafe { libc::close(self.fd) } != 0 {
            let e = io::Error::last_os_error();
            return Err(Error::new(
                Status::AppError,
                format!("closing the body file failed: {e}"),
            ));
        }
        Ok(())
    }
}
