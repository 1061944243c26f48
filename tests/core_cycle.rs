//! The safe core's request cycle driven from Rust with an in-memory host, and the promise
//! that a reused handler serves requests without heap allocation once warmed up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io;

use gateway::host::Chunk;
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

impl<'r> BodySource<Request<'r, MemoryHost>> for Chunks {
    fn next_chunk<'s>(
        &'s mut self,
        _request: &mut Request<'r, MemoryHost>,
    ) -> Result<Option<Chunk<'s>>, Error> {
        let chunk = self.chunks.get(self.next).copied();
        self.next += 1;
        Ok(chunk.map(|data| Chunk { data, last: false }))
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
    assert_eq!(err, Status::ClientGone);
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

/// A small deterministic generator (xorshift64*), so the random test repeats exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Bytes biased towards the ones that break HTTP framing.
    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        const ALPHABET: &[u8] = b"aZ09-_ :;\t\r\n\0\x7f\x80\xff\"(),/=?@[]{}";
        let len = self.below(max_len + 1);
        (0..len)
            .map(|_| match self.below(4) {
                0 => ALPHABET[self.below(ALPHABET.len())],
                _ => b"abcXYZ-0123"[self.below(11)],
            })
            .collect()
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whatever an application passes to start_response, the wire carries either a well-formed
/// header block with exactly its headers, or the error page.
#[test]
fn random_statuses_and_headers_never_break_the_header_block() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut handler = Handler::new(MemoryHost::default());
    handler.settings.origin_server = false;
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let status = if rng.below(3) == 0 {
            rng.bytes(12)
        } else {
            let mut s = b"200 ".to_vec();
            s.extend(rng.bytes(8));
            s
        };
        let headers: Vec<(Vec<u8>, Vec<u8>)> = (0..rng.below(4))
            .map(|_| (rng.bytes(6), rng.bytes(8)))
            .collect();
        handler.host.out.clear();
        let mut outcome = Status::Ok;
        let result = handler.run(|request| {
            let list = headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice()));
            if let Err(e) = request.start_response(&status, list, false) {
                outcome = e.status;
                return e.status;
            }
            match request.set_body_bytes(b"body") {
                Ok(()) => Status::Ok,
                Err(e) => e.status,
            }
        });
        let out = handler.host.out.as_slice();
        if outcome != Status::Ok {
            refused += 1;
            assert_eq!(result.unwrap_err(), Status::AppError);
            assert!(out.starts_with(b"Status: 500 Internal Server Error\r\n"));
            continue;
        }
        if result.is_err() {
            // A Content-Length that disagrees with the body: still a valid header block.
            assert!(headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(b"content-length")));
        }
        accepted += 1;
        let end = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("header block ends");
        // Every line of the block, each with its CRLF, without the blank line.
        let block = &out[..end + 2];
        let mut lines = block[..block.len() - 1].split(|&b| b == b'\n');
        let status_line = lines.next().unwrap();
        assert_eq!(
            status_line,
            [b"Status: ", &status[..], b"\r"].concat().as_slice()
        );
        let mut count = 0;
        for line in lines {
            let line = line.strip_suffix(b"\r").expect("CRLF line ends");
            let colon = line.iter().position(|&b| b == b':').expect("name: value");
            assert!(colon > 0 && line[..colon].iter().all(|&b| is_tchar(b)));
            assert_eq!(line[colon + 1], b' ');
            assert!(line[colon + 2..]
                .iter()
                .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)));
            count += 1;
        }
        let has_length = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(b"content-length"));
        assert_eq!(count, headers.len() + usize::from(!has_length));
    }
    assert!(
        accepted > 1000 && refused > 1000,
        "{accepted} accepted, {refused} refused"
    );
}
