//! The C ABI driven from Rust, the way a C host and application use it: raw pointers held
//! across calls. Small enough to run under Miri (`tests/sanitizers.sh miri`), which checks
//! that no pointer the library lends is invalidated by a later call (Stacked Borrows).

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use gateway::ffi::{
    gw_environ, gw_environ_get, gw_environ_len, gw_environ_set, gw_handler_free, gw_handler_hooks,
    gw_handler_new, gw_handler_run, gw_header, gw_request, gw_request_environ,
    gw_request_set_body_bytes, gw_request_start_response, gw_request_write,
};
use gateway::Status;

/// The client side of the connection: what the library wrote.
#[derive(Default)]
struct Client {
    out: Vec<u8>,
}

unsafe extern "C" fn client_write(
    userdata: *mut c_void,
    data: *const c_void,
    len: usize,
    out_written: *mut usize,
) -> c_int {
    let client = unsafe { &mut *userdata.cast::<Client>() };
    let data = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    client.out.extend_from_slice(data);
    unsafe { *out_written = len };
    0
}

unsafe extern "C" fn add_vars(_userdata: *mut c_void, environ: *mut gw_environ) -> i32 {
    let set = |name: &str, value: &str| unsafe {
        gw_environ_set(
            environ,
            name.as_ptr().cast(),
            name.len(),
            value.as_ptr().cast(),
            value.len(),
        )
    };
    match set("REQUEST_METHOD", "GET") {
        Status::Ok => set("PATH_INFO", "/held") as i32,
        failed => failed as i32,
    }
}

/// What the application saw through the environ pointer it held.
#[derive(Default)]
struct Seen {
    path_after_start: Vec<u8>,
    tag_after_write: Vec<u8>,
    len_at_end: usize,
}

fn get(environ: *const gw_environ, name: &str) -> Vec<u8> {
    let mut value: *const c_char = ptr::null();
    let mut len = 0usize;
    let status = unsafe {
        gw_environ_get(
            environ,
            name.as_ptr().cast(),
            name.len(),
            &mut value,
            &mut len,
        )
    };
    assert_eq!(status, Status::Ok, "{name}");
    unsafe { std::slice::from_raw_parts(value.cast::<u8>(), len) }.to_vec()
}

/// Takes the environ pointer first and keeps using it after start_response and write, which
/// borrow the request exclusively inside the library.
unsafe extern "C" fn holds_the_environ(userdata: *mut c_void, req: *mut gw_request) -> i32 {
    let seen = unsafe { &mut *userdata.cast::<Seen>() };
    let mut environ: *mut gw_environ = ptr::null_mut();
    assert_eq!(unsafe { gw_request_environ(req, &mut environ) }, Status::Ok);
    // The app sends its own Date, so the library needs no clock (Miri runs isolated).
    let headers = [gw_header {
        name: c"Date".as_ptr(),
        name_len: 4,
        value: c"Thu, 01 Jan 1970 00:00:00 GMT".as_ptr(),
        value_len: 29,
    }];
    let status =
        unsafe { gw_request_start_response(req, c"200 OK".as_ptr(), 6, headers.as_ptr(), 1, 0) };
    assert_eq!(status, Status::Ok);
    seen.path_after_start = get(environ, "PATH_INFO");
    let tag = "X_APP_TAG";
    let set = unsafe { gw_environ_set(environ, tag.as_ptr().cast(), tag.len(), c"1".as_ptr(), 1) };
    assert_eq!(set, Status::Ok);
    assert_eq!(
        unsafe { gw_request_write(req, c"held ".as_ptr().cast(), 5) },
        Status::Ok
    );
    seen.tag_after_write = get(environ, tag);
    // A second pointer from the same request, then the first one again.
    let mut again: *mut gw_environ = ptr::null_mut();
    assert_eq!(unsafe { gw_request_environ(req, &mut again) }, Status::Ok);
    assert_eq!(get(again, "REQUEST_METHOD"), b"GET");
    assert_eq!(
        unsafe { gw_environ_len(environ, &mut seen.len_at_end) },
        Status::Ok
    );
    unsafe { gw_request_set_body_bytes(req, c"environ".as_ptr().cast(), 7) as i32 }
}

#[test]
fn an_environ_pointer_stays_valid_for_the_whole_request() {
    // Like a C host, the test reaches the client only through the pointer the hooks get.
    let client: *mut Client = Box::into_raw(Box::default());
    let hooks = gw_handler_hooks {
        size: std::mem::size_of::<gw_handler_hooks>(),
        userdata: client.cast(),
        write: Some(client_write),
        flush: None,
        read_stdin: None,
        write_stderr: None,
        flush_stderr: None,
        add_cgi_vars: Some(add_vars),
        send_head: None,
        send_interim: None,
        end_body: None,
        send_file: None,
    };
    let mut handler = ptr::null_mut();
    assert_eq!(unsafe { gw_handler_new(&hooks, &mut handler) }, Status::Ok);
    for _ in 0..2 {
        unsafe { (*client).out.clear() };
        let mut seen = Seen::default();
        let app_data = (&mut seen as *mut Seen).cast();
        let status = unsafe { gw_handler_run(handler, Some(holds_the_environ), app_data) };
        assert_eq!(status, Status::Ok);
        assert_eq!(seen.path_after_start, b"/held");
        assert_eq!(seen.tag_after_write, b"1");
        // REQUEST_METHOD, PATH_INFO, 9 wsgi.* keys and the app's tag.
        assert_eq!(seen.len_at_end, 12);
        assert_eq!(
            unsafe { &(*client).out },
            b"HTTP/1.0 200 OK\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\nheld environ"
        );
    }
    unsafe { gw_handler_free(handler) };
    drop(unsafe { Box::from_raw(client) });
}
