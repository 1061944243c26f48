//! wsgiref.util and wsgiref.headers through the C ABI, driven from Rust with the pointers the
//! library lends held across calls, as C holds them. Small enough for Miri
//! (`tests/sanitizers.sh miri` runs every tests/ffi_*.rs), which checks that the lent
//! values, header records and blocks stay valid for as long as their functions promise.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use gateway::ffi::{
    gw_environ, gw_environ_free, gw_environ_get, gw_environ_new, gw_environ_request_uri,
    gw_environ_setup_testing_defaults, gw_environ_shift_path_info, gw_file_wrapper,
    gw_file_wrapper_close, gw_file_wrapper_free, gw_file_wrapper_new, gw_file_wrapper_next,
    gw_handler_free, gw_handler_hooks, gw_handler_new, gw_handler_run,
    gw_handler_set_origin_server, gw_header, gw_headers, gw_headers_add_header, gw_headers_free,
    gw_headers_get, gw_headers_get_all, gw_headers_items, gw_headers_new, gw_headers_set,
    gw_request, gw_request_set_body_file_wrapper, gw_request_start_response,
};
use gateway::Status;

fn bytes<'a>(data: *const c_char, len: usize) -> &'a [u8] {
    unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
}

fn header(name: &'static str, value: &'static str) -> gw_header {
    gw_header {
        name: name.as_ptr().cast(),
        name_len: name.len(),
        value: value.as_ptr().cast(),
        value_len: value.len(),
    }
}

/// A value lent by gw_headers_get stays readable across other reading calls; the records
/// gw_headers_items lends describe the list as it is.
#[test]
fn headers_lend_values_and_records() {
    let mut h: *mut gw_headers = ptr::null_mut();
    assert_eq!(unsafe { gw_headers_new(&mut h) }, Status::Ok);
    let set = |name: &str, value: &str| unsafe {
        gw_headers_set(
            h,
            name.as_ptr().cast(),
            name.len(),
            value.as_ptr().cast(),
            value.len(),
        )
    };
    assert_eq!(set("Content-Type", "text/plain"), Status::Ok);
    let params = [header("filename", "bud.gif"), header("size", "")];
    let status = unsafe {
        gw_headers_add_header(
            h,
            c"X-File".as_ptr(),
            6,
            c"attachment".as_ptr(),
            10,
            params.as_ptr(),
            params.len(),
        )
    };
    assert_eq!(status, Status::Ok);

    let (mut first, mut first_len) = (ptr::null(), 0usize);
    let status = unsafe { gw_headers_get(h, c"x-file".as_ptr(), 6, &mut first, &mut first_len) };
    assert_eq!(status, Status::Ok);
    let mut cursor = 0usize;
    let (mut each, mut each_len) = (ptr::null(), 0usize);
    let status = unsafe {
        gw_headers_get_all(
            h,
            c"CONTENT-TYPE".as_ptr(),
            12,
            &mut cursor,
            &mut each,
            &mut each_len,
        )
    };
    assert_eq!(status, Status::Ok);
    let (mut items, mut count): (*const gw_header, usize) = (ptr::null(), 0);
    assert_eq!(
        unsafe { gw_headers_items(h, &mut items, &mut count) },
        Status::Ok
    );
    // Every lent pointer is still valid after the other calls.
    assert_eq!(
        bytes(first, first_len),
        b"attachment; filename=\"bud.gif\"; size"
    );
    assert_eq!(bytes(each, each_len), b"text/plain");
    let records = unsafe { std::slice::from_raw_parts(items, count) };
    let pairs: Vec<(&[u8], &[u8])> = records
        .iter()
        .map(|r| (bytes(r.name, r.name_len), bytes(r.value, r.value_len)))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (&b"Content-Type"[..], &b"text/plain"[..]),
            (b"X-File", b"attachment; filename=\"bud.gif\"; size"),
        ]
    );
    // After a change, items lends the new list.
    assert_eq!(set("content-type", "text/html"), Status::Ok);
    assert_eq!(
        unsafe { gw_headers_items(h, &mut items, &mut count) },
        Status::Ok
    );
    let last = unsafe { &*items.add(count - 1) };
    assert_eq!(bytes(last.name, last.name_len), b"content-type");
    assert_eq!(bytes(last.value, last.value_len), b"text/html");
    assert_eq!(unsafe { gw_headers_free(h) }, Status::Ok);
}

#[test]
fn shift_and_request_uri_on_an_environ() {
    let mut env: *mut gw_environ = ptr::null_mut();
    assert_eq!(unsafe { gw_environ_new(&mut env) }, Status::Ok);
    assert_eq!(
        unsafe { gw_environ_setup_testing_defaults(env) },
        Status::Ok
    );
    let (mut pi, mut pi_len) = (ptr::null(), 0usize);
    assert_eq!(
        unsafe { gw_environ_get(env, c"PATH_INFO".as_ptr(), 9, &mut pi, &mut pi_len) },
        Status::Ok
    );
    assert_eq!(bytes(pi, pi_len), b"/");
    let mut name = [0u8; 8];
    let (mut name_len, mut has_name) = (0usize, false);
    let status = unsafe {
        gw_environ_shift_path_info(
            env,
            name.as_mut_ptr().cast(),
            name.len(),
            &mut name_len,
            &mut has_name,
        )
    };
    assert_eq!(status, Status::Ok);
    assert!(has_name);
    assert_eq!(name_len, 0);
    let mut uri = [0u8; 64];
    let mut len = 0usize;
    let status =
        unsafe { gw_environ_request_uri(env, true, uri.as_mut_ptr().cast(), uri.len(), &mut len) };
    assert_eq!(status, Status::Ok);
    assert_eq!(&uri[..len], b"http://127.0.0.1/");
    assert_eq!(unsafe { gw_environ_free(env) }, Status::Ok);
}

/// A file descriptor holding `data` at position 0 (the file is already unlinked).
fn temp_fd(data: &[u8], tag: &str) -> c_int {
    use std::io::{Seek, Write};
    use std::os::fd::IntoRawFd;
    let path = std::env::temp_dir().join(format!("gw_ffi_util_{}_{tag}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    file.write_all(data).unwrap();
    file.rewind().unwrap();
    file.into_raw_fd()
}

/// testFileWrapper's vector: each block is borrowed until the next call.
#[test]
fn file_wrapper_blocks() {
    let text = b"xyz".repeat(50);
    let fd = temp_fd(&text, "blocks");
    let mut w: *mut gw_file_wrapper = ptr::null_mut();
    assert_eq!(
        unsafe { gw_file_wrapper_new(fd, 120, true, &mut w) },
        Status::Ok
    );
    let mut blocks = Vec::new();
    loop {
        let (mut data, mut len): (*const c_void, usize) = (ptr::null(), 0);
        match unsafe { gw_file_wrapper_next(w, &mut data, &mut len) } {
            Status::Ok => blocks.push(bytes(data.cast(), len).to_vec()),
            Status::NotFound => break,
            other => panic!("next: {other:?}"),
        }
        assert!(blocks.len() < 4);
    }
    assert_eq!(blocks, vec![b"xyz".repeat(40), b"xyz".repeat(10)]);
    assert_eq!(unsafe { gw_file_wrapper_close(w) }, Status::Ok);
    assert_eq!(unsafe { gw_file_wrapper_free(w) }, Status::Ok);
}

unsafe extern "C" fn client_write(
    userdata: *mut c_void,
    data: *const c_void,
    len: usize,
    out_written: *mut usize,
) -> c_int {
    let out = unsafe { &mut *userdata.cast::<Vec<u8>>() };
    out.extend_from_slice(bytes(data.cast(), len));
    unsafe { *out_written = len };
    0
}

unsafe extern "C" fn testing_vars(_userdata: *mut c_void, environ: *mut gw_environ) -> i32 {
    unsafe { gw_environ_setup_testing_defaults(environ) as i32 }
}

/// Headers built with gw_headers go to start_response (which copies them: the object is
/// freed before the body runs), and a file wrapper is the body.
unsafe extern "C" fn wrapper_app(userdata: *mut c_void, req: *mut gw_request) -> i32 {
    let fd = unsafe { *userdata.cast::<c_int>() };
    let mut h: *mut gw_headers = ptr::null_mut();
    assert_eq!(unsafe { gw_headers_new(&mut h) }, Status::Ok);
    let status = unsafe { gw_headers_set(h, c"X-A".as_ptr(), 3, c"1".as_ptr(), 1) };
    assert_eq!(status, Status::Ok);
    let (mut items, mut count): (*const gw_header, usize) = (ptr::null(), 0);
    assert_eq!(
        unsafe { gw_headers_items(h, &mut items, &mut count) },
        Status::Ok
    );
    let status = unsafe { gw_request_start_response(req, c"200 OK".as_ptr(), 6, items, count, 0) };
    assert_eq!(status, Status::Ok);
    assert_eq!(unsafe { gw_headers_free(h) }, Status::Ok);
    let mut w: *mut gw_file_wrapper = ptr::null_mut();
    assert_eq!(
        unsafe { gw_file_wrapper_new(fd, 4, true, &mut w) },
        Status::Ok
    );
    unsafe { gw_request_set_body_file_wrapper(req, w) as i32 }
}

#[test]
fn file_wrapper_as_the_body() {
    let mut out: Vec<u8> = Vec::new();
    let mut hooks: gw_handler_hooks = unsafe { std::mem::zeroed() };
    hooks.size = std::mem::size_of::<gw_handler_hooks>();
    hooks.userdata = (&mut out as *mut Vec<u8>).cast();
    hooks.write = Some(client_write);
    hooks.add_cgi_vars = Some(testing_vars);
    let mut handler = ptr::null_mut();
    assert_eq!(unsafe { gw_handler_new(&hooks, &mut handler) }, Status::Ok);
    assert_eq!(
        unsafe { gw_handler_set_origin_server(handler, false) },
        Status::Ok
    );
    let mut fd = temp_fd(b"0123456789", "body");
    let status =
        unsafe { gw_handler_run(handler, Some(wrapper_app), (&mut fd as *mut c_int).cast()) };
    assert_eq!(status, Status::Ok);
    unsafe { gw_handler_free(handler) };
    assert_eq!(out, b"Status: 200 OK\r\nX-A: 1\r\n\r\n0123456789");
}
