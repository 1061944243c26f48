//! The safe core's request cycle driven from Rust with an in-memory host, and the promise
//! that a reused handler serves requests without heap allocation once warmed up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;

use gateway::{BodySource, Environ, Error, Handler, Host, Request, Status};

/// Counts allocations made on the current thread while `COUNTING` is set.
struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> usize {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get)
}

/// A host that keeps the response in memory.
#[derive(Default)]
struct MemoryHost {
    out: Vec<u8>,
    err: Vec<u8>,
    fail_with: Option<io::ErrorKind>,
}

impl Host for MemoryHost {
    type Body = Chunks;

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(kind) = self.fail_with {
            return Err(io::Error::from(kind));
        }
        self.out.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn read_stdin(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }

    fn write_stderr(&mut self, data: &[u8]) -> io::Result<usize> {
        self.err.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush_stderr(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn add_cgi_vars(&mut self, environ: &mut Environ) -> Result<(), Error> {
        environ.set(b"REQUEST_METHOD", b"GET")?;
        environ.set(b"SERVER_PROTOCOL", b"HTTP/1.1")?;
        environ.set(b"PATH_INFO", b"/")?;
        Ok(())
    }
}

/// A body of static chunks that counts its closes.
struct Chunks {
    chunks: &'static [&'static [u8]],
    next: usize,
    closes: &'static std::sync::atomic::AtomicUsize,
}

impl BodySource<MemoryHost> for Chunks {
    fn next_chunk<'s>(
        &'s mut self,
        _request: &mut Request<'_, MemoryHost>,
    ) -> Result<Option<&'s [u8]>, Error> {
        let chunk = self.chunks.get(self.next).copied();
        self.next += 1;
        Ok(chunk)
    }

    fn block_count(&mut self) -> Option<usize> {
        Some(self.chunks.len())
    }

    fn close(&mut self) -> Result<(), Error> {
        self.closes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

const HEADERS: [(&[u8], &[u8]); 1] = [(b"Content-Type", b"text/plain")];

fn hello(request: &mut Request<'_, MemoryHost>) -> Status {
    if let Err(e) = request.start_response(b"200 OK", HEADERS.iter().copied(), false) {
        return e.status;
    }
    match request.set_body_bytes(b"Hello, world!") {
        Ok(()) => Status::Ok,
        Err(e) => e.status,
    }
}

#[test]
fn hello_in_cgi_mode() {
    let mut handler = Handler::new(MemoryHost::default());
    handler.settings.origin_server = false;
    handler.run(hello).unwrap();
    assert_eq!(
        handler.host.out,
        b"Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!"
    );
    assert_eq!(handler.last_response(), (200, 13));
}

#[test]
fn iterator_body_is_closed_once_and_framed() {
    static CLOSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut handler = Handler::new(MemoryHost::default());
    handler.settings.origin_server = false;
    handler
        .run(|request| {
            request
                .start_response(b"200 OK", std::iter::empty(), false)
                .unwrap();
            let body = Chunks {
                chunks: &[b"a", b"bc"],
                next: 0,
                closes: &CLOSES,
            };
            assert!(request.set_body_source(body).is_ok());
            Status::Ok
        })
        .unwrap();
    assert_eq!(handler.host.out, b"Status: 200 OK\r\n\r\nabc");
    assert_eq!(CLOSES.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[test]
fn disconnect_is_quiet_and_the_handler_recovers() {
    let mut handler = Handler::new(MemoryHost::default());
    handler.host.fail_with = Some(io::ErrorKind::BrokenPipe);
    let err = handler.run(hello).unwrap_err();
    assert_eq!(err.status, Status::ClientGone);
    assert!(handler.host.err.is_empty());
    handler.host.fail_with = None;
    handler.run(hello).unwrap();
    assert!(handler.host.out.starts_with(b"HTTP/1.0 200 OK\r\nDate: "));
}

#[test]
fn the_request_environ_is_layered_over_the_base() {
    let mut base = Environ::new();
    base.set(b"FROM_BASE", b"1").unwrap();
    base.set(b"PATH_INFO", b"/base").unwrap();
    let mut handler = Handler::new(MemoryHost::default());
    handler.settings.os_environ = Some(base.share());
    handler.run(hello).unwrap();
    let env = handler.environ();
    assert_eq!(env.get(b"FROM_BASE"), Some(&b"1"[..]));
    assert_eq!(env.get(b"PATH_INFO"), Some(&b"/"[..]));
    assert_eq!(env.get(b"wsgi.url_scheme"), Some(&b"http"[..]));
}

#[test]
fn a_reused_handler_does_not_allocate_per_request() {
    let mut base = Environ::new();
    for i in 0..50 {
        base.set(format!("BASE_VAR_{i}").as_bytes(), b"some value")
            .unwrap();
    }
    let mut handler = Handler::new(MemoryHost::default());
    handler.settings.os_environ = Some(base.share());
    handler
        .settings
        .set_server_software(Some(b"bench/1"))
        .unwrap();
    handler.host.out.reserve(4096);
    for _ in 0..3 {
        handler.host.out.clear();
        handler.run(hello).unwrap();
    }
    let allocations = allocations_during(|| {
        for _ in 0..100 {
            handler.host.out.clear();
            handler.run(hello).unwrap();
        }
    });
    assert_eq!(allocations, 0, "steady-state requests allocated");
    assert!(handler.host.out.ends_with(b"\r\n\r\nHello, world!"));
}
