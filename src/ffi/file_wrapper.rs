//! `gw_file_wrapper`: wsgiref.util.FileWrapper over a file descriptor, as an object an
//! application iterates and closes itself, or returns as the response body
//! (gw_request_set_body_file_wrapper).

use std::ffi::{c_int, c_void};
use std::io;

use super::body::{gw_body_iter, FfiBody};
use super::request::{gw_request, request};
use super::{boundary, fail, guard, null, out_arg};
use crate::file_wrapper::{BlockFile, FileWrapper};
use crate::status::{Error, Status};

/// wsgiref.util.FileWrapper over a file descriptor: gw_file_wrapper_next yields the file's
/// bytes from its current position in blocks of the block size (each full but the last:
/// short reads are repeated, as Python's buffered read(n)), until a read gives nothing.
/// Reading to the end does not close it; gw_file_wrapper_close does (FileWrapper.close is
/// the file's close), closing the descriptor exactly once when the wrapper owns it.
///
/// Thread safety: one thread at a time; it may move between threads.
pub struct gw_file_wrapper {
    _private: [u8; 0],
}

/// A descriptor read with read(2); closed by `close` when owned.
struct Fd {
    fd: c_int,
    owned: bool,
}

impl io::Read for Fd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is writable for its length; the descriptor is the caller's promise.
        let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

impl BlockFile for Fd {
    fn close(&mut self) -> io::Result<()> {
        if !std::mem::take(&mut self.owned) {
            return Ok(());
        }
        // SAFETY: the wrapper owns the descriptor (close_fd) and closes it only here, once.
        if unsafe { libc::close(self.fd) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

type Wrapper = FileWrapper<Fd>;

unsafe fn wrapper_ref<'a>(wrapper: *const gw_file_wrapper) -> Result<&'a Wrapper, Error> {
    // SAFETY: every gw_file_wrapper pointer comes from Box::into_raw in gw_file_wrapper_new.
    unsafe { wrapper.cast::<Wrapper>().as_ref() }.ok_or_else(|| null("wrapper"))
}

unsafe fn wrapper_mut<'a>(wrapper: *mut gw_file_wrapper) -> Result<&'a mut Wrapper, Error> {
    // SAFETY: every gw_file_wrapper pointer comes from Box::into_raw in gw_file_wrapper_new.
    unsafe { wrapper.cast::<Wrapper>().as_mut() }.ok_or_else(|| null("wrapper"))
}

/// Closes (when owned) and frees a wrapper made by gw_file_wrapper_new.
unsafe fn destroy(wrapper: *mut gw_file_wrapper) -> Result<(), Error> {
    // SAFETY: from Box::into_raw in gw_file_wrapper_new; the caller gives it up.
    let mut wrapper = unsafe { Box::from_raw(wrapper.cast::<Wrapper>()) };
    wrapper.close()
}

/// `FileWrapper(file, blksize)` over `fd`: `block_size` 0 means wsgiref's 8192, more than
/// 16 MiB is GW_STATUS_TOO_LARGE. When `close_fd` is true the wrapper owns the descriptor
/// on every path: gw_file_wrapper_close or _free closes it exactly once, and a failing call
/// here closes it before returning; otherwise it stays the caller's, open after the
/// wrapper is closed. Free the wrapper with gw_file_wrapper_free (or hand it to
/// gw_request_set_body_file_wrapper, which consumes it).
#[no_mangle]
pub unsafe extern "C" fn gw_file_wrapper_new(
    fd: c_int,
    block_size: usize,
    close_fd: bool,
    out: *mut *mut gw_file_wrapper,
) -> Status {
    // Owns the descriptor until the wrapper takes it, so a refusal (or a panic) closes it.
    let mut file = Some(Fd {
        fd,
        owned: close_fd && fd >= 0,
    });
    let status = boundary(|| {
        let out = unsafe { out_arg(out, "out") }?;
        if fd < 0 {
            return Err(Error::new(
                Status::InvalidArgument,
                "fd must not be negative",
            ));
        }
        let taken = file.take().ok_or_else(|| null("fd"))?;
        let wrapper = FileWrapper::new(taken, block_size).map_err(|(e, refused)| {
            file = Some(refused);
            e
        })?;
        *out = Box::into_raw(Box::new(wrapper)).cast();
        Ok(())
    });
    if let Some(mut refused) = file {
        // The refusal is what the caller hears about; a failing close changes nothing then.
        let _ = refused.close();
    }
    status
}

/// `next(wrapper)`: on GW_STATUS_OK, `*out_data` / `*out_len` are the next block (not
/// empty), borrowed until the next call on the wrapper; GW_STATUS_NOT_FOUND at the end of
/// the file (StopIteration; a later call reads again); GW_STATUS_INVALID_STATE once closed;
/// GW_STATUS_IO_ERROR when read(2) fails (EINTR is retried).
#[no_mangle]
pub unsafe extern "C" fn gw_file_wrapper_next(
    wrapper: *mut gw_file_wrapper,
    out_data: *mut *const c_void,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        let w = unsafe { wrapper_mut(wrapper) }?;
        let out_data = unsafe { out_arg(out_data, "out_data") }?;
        let out_len = unsafe { out_arg(out_len, "out_len") }?;
        let block = w
            .next_block()?
            .ok_or(Error::new(Status::NotFound, "end of file"))?;
        *out_data = block.data.as_ptr().cast();
        *out_len = block.data.len();
        Ok(())
    })
}

/// `wrapper.close()`: closes the descriptor if the wrapper owns it, the first time; later
/// calls do nothing. GW_STATUS_IO_ERROR when close(2) fails (the wrapper is closed all the
/// same). The wrapper stays allocated until gw_file_wrapper_free.
#[no_mangle]
pub unsafe extern "C" fn gw_file_wrapper_close(wrapper: *mut gw_file_wrapper) -> Status {
    boundary(|| unsafe { wrapper_mut(wrapper) }?.close())
}

/// `*out` is true once gw_file_wrapper_close ran (Python's `wrapper.filelike.closed`).
#[no_mangle]
pub unsafe extern "C" fn gw_file_wrapper_is_closed(
    wrapper: *const gw_file_wrapper,
    out: *mut bool,
) -> Status {
    boundary(|| {
        let w = unsafe { wrapper_ref(wrapper) }?;
        *unsafe { out_arg(out, "out") }? = w.is_closed();
        Ok(())
    })
}

/// Frees a wrapper, closing it first if it is still open (so an owned descriptor is closed
/// exactly once). NULL is a no-op. GW_STATUS_IO_ERROR when that close fails; the wrapper is
/// freed all the same.
#[no_mangle]
pub unsafe extern "C" fn gw_file_wrapper_free(wrapper: *mut gw_file_wrapper) -> Status {
    boundary(|| {
        if wrapper.is_null() {
            return Ok(());
        }
        unsafe { destroy(wrapper) }
    })
}

/// The body iterator's `next` over a wrapper: blocks in order; a short block (the file's end
/// met) is the last one, sent with the end of the body.
unsafe extern "C" fn body_next(
    userdata: *mut c_void,
    req: *mut gw_request,
    out_data: *mut *const c_void,
    out_len: *mut usize,
    out_end: *mut bool,
) -> i32 {
    guard(|| {
        // SAFETY: userdata is the wrapper gw_request_set_body_file_wrapper gave the iterator.
        let w = match unsafe { wrapper_mut(userdata.cast()) } {
            Ok(w) => w,
            Err(e) => return fail(e),
        };
        match w.next_block() {
            Ok(Some(block)) => {
                // SAFETY: the library passes valid out-pointers to its iterators.
                unsafe {
                    *out_data = block.data.as_ptr().cast();
                    *out_len = block.data.len();
                    *out_end = block.at_end;
                }
                Status::Ok
            }
            Ok(None) => {
                // SAFETY: as above.
                unsafe { *out_end = true };
                Status::Ok
            }
            Err(e) => {
                // The reason goes to the error log with the application's failure.
                if let Ok(req) = unsafe { request(req) } {
                    req.set_failure_message(e.message.as_bytes());
                }
                fail(e)
            }
        }
    }) as i32
}

/// The body iterator's `close`: closes (when owned) and frees the wrapper, exactly once
/// (the library calls close once on every path).
unsafe extern "C" fn body_close(userdata: *mut c_void) -> i32 {
    guard(|| match unsafe { destroy(userdata.cast()) } {
        Ok(()) => Status::Ok,
        Err(e) => fail(e),
    }) as i32
}

/// Returns a file wrapper as the response body: its blocks are sent in order, and when the
/// response is done (on every path) the library closes and frees it, so its descriptor, if
/// owned, is closed exactly once. This call **consumes** the wrapper on every path: when it
/// fails (NULL request, a body already set: GW_STATUS_INVALID_STATE) the wrapper is closed
/// and freed before it returns; never use the pointer again. As wsgiref with a FileWrapper
/// result, no Content-Length is computed (the body has no known block count). Unlike
/// gw_request_set_body_file it does not need wsgi.file_wrapper offered: like wsgiref's
/// FileWrapper, it is an ordinary iterable body.
#[no_mangle]
pub unsafe extern "C" fn gw_request_set_body_file_wrapper(
    req: *mut gw_request,
    wrapper: *mut gw_file_wrapper,
) -> Status {
    let mut owned = (!wrapper.is_null()).then_some(wrapper);
    let status = boundary(|| {
        let req = unsafe { request(req) }?;
        let wrapper = owned.ok_or_else(|| null("wrapper"))?;
        let iter = gw_body_iter {
            size: std::mem::size_of::<gw_body_iter>(),
            userdata: wrapper.cast(),
            next: Some(body_next),
            block_count: None,
            close: Some(body_close),
        };
        req.set_body_source(FfiBody::Iter(iter))
            .map_err(|(e, _refused)| e)?;
        owned = None;
        Ok(())
    });
    if let Some(refused) = owned {
        // The refusal is what the caller hears about; a failing close changes nothing then.
        let _ = guard(|| unsafe { destroy(refused) }.map_or_else(fail, |()| Status::Ok));
    }
    status
}
