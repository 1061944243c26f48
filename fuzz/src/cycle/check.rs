//! The cycle target's checks of one faulty run.

use super::host::{Chunks, Faulty, File};
use super::{Mode, Outcome, Plan};
use crate::ffi::{close_fd, fd_is_open, Status};
use crate::wire::{check_body, check_error_page, parse_chunked, parse_head, show, ERROR_BODY};

/// Every iterator set_body_iter accepted was closed once, the others never; a descriptor
/// handed with close_fd=true is closed, even when set_body_file refused it, and no other is.
pub fn check_bodies(iters: &[Chunks], files: &[File]) {
    for (i, it) in iters.iter().enumerate() {
        let (accepted, closes) = (it.accepted.get(), it.closes.get());
        assert_eq!(
            closes,
            u32::from(accepted),
            "iterator {i} (accepted: {accepted}) closed {closes} times"
        );
    }
    for file in files {
        let (open, result) = (fd_is_open(file.fd), file.result.get());
        match (result, file.plan.close_fd) {
            (None, _) => {}
            (Some(_), true) => assert!(!open, "fd {} handed with close_fd=true still open after the run (set_body_file: {result:?})", file.fd),
            (Some(_), false) => assert!(open, "fd {} handed with close_fd=false was closed (set_body_file: {result:?})", file.fd),
        }
        if open {
            close_fd(file.fd);
        }
    }
}

/// The run's status, the hooks' discipline and the wire.
pub fn check_outcome(plan: &Plan, host: &Faulty, run: &Outcome, started: bool, produced: &[u8]) {
    let origin = plan.mode != Mode::Cgi;
    let status = run.status;
    assert!(
        matches!(
            status,
            Status::Ok
                | Status::AppError
                | Status::ResponseIncomplete
                | Status::ClientGone
                | Status::IoError
        ),
        "gw_handler_run returned {status:?}"
    );
    let parsed = parse_head(&run.wire).unwrap_or_else(|e| panic!("{e}"));
    if let Some((head, rest)) = &parsed {
        if head.chunked() {
            // The last chunk goes out only after a body that ended well and while no write or
            // flush has failed. (It may ride in the very call that fails, or precede a final
            // flush that fails: the run is not OK then, but the client has the whole body.)
            let chunks = parse_chunked(rest).unwrap_or_else(|e| panic!("{e}"));
            let last_at = chunks.last_chunk.map(|at| run.wire.len() - rest.len() + at);
            match (last_at, host.failed.get()) {
                (Some(at), Some(_)) => assert!(
                    at < host.failed_at.get(),
                    "the last chunk went out after a write or flush failed (run: {status:?}): {:?}",
                    show(&run.wire)
                ),
                (Some(_), None) => assert_eq!(
                    status,
                    Status::Ok,
                    "the last chunk went out though the body did not end well: {:?}",
                    show(&run.wire)
                ),
                (None, _) => {}
            }
        }
    }
    let late = host.late.borrow();
    assert!(
        late.is_empty(),
        "the write/flush hooks were called after a write or flush failed (run: {status:?}): {:?}",
        late.iter().map(|d| show(d)).collect::<Vec<_>>()
    );
    match host.failed.get() {
        Some(true) => assert_eq!(status, Status::ClientGone, "after a disconnect"),
        Some(false) => assert_eq!(status, Status::IoError, "after a failed write or flush"),
        None => assert!(
            matches!(
                status,
                Status::Ok | Status::AppError | Status::ResponseIncomplete
            ),
            "{status:?} though no write or flush failed"
        ),
    }
    assert_eq!(
        run.keep_alive,
        status == Status::Ok && plan.mode == Mode::Origin11,
        "keep-alive after {status:?}"
    );
    if let Some((head, _)) = &parsed {
        assert!(
            !(head.closes() && run.keep_alive),
            "Connection: close with a keep-alive verdict"
        );
    }

    let version = plan.version();
    if status == Status::AppError {
        check_error_page(&run.wire, origin, version, plan.head_request);
        let body = if plan.head_request {
            0
        } else {
            ERROR_BODY.len() as u64
        };
        assert_eq!(
            run.last_response,
            (500, body),
            "last_response after the error page"
        );
        return;
    }
    let Some((head, rest)) = parsed else {
        assert!(
            status != Status::Ok,
            "an OK run with no complete head: {:?}",
            show(&run.wire)
        );
        return;
    };
    let code = head.code();
    if code == 500 {
        // The error page, cut short by a failing hook.
        assert_ne!(status, Status::Ok);
        head.check(
            origin,
            version,
            b"500 Internal Server Error",
            &[(b"Content-Type".to_vec(), b"text/plain".to_vec())],
        );
        return;
    }
    assert!(
        started,
        "a head went out though no start_response succeeded: {head:?}"
    );
    head.check(origin, version, plan.status, &plan.headers);
    if let Some(length) = head.content_length() {
        assert!(
            rest.len() as u64 <= length,
            "{} body bytes under Content-Length {length}",
            rest.len()
        );
    }
    if status == Status::Ok {
        let no_body = plan.head_request || code < 200 || code == 204 || code == 304;
        let sent = check_body(&head, rest, produced, no_body);
        assert_eq!(
            run.last_response,
            (code, sent as u64),
            "gw_handler_last_response"
        );
    }
}

/// A failing add_cgi_vars: the app is never called; CLIENT_GONE ends the run quietly (nothing
/// sent or logged), any other failure is logged and answered with the error page.
pub fn check_cgi_failure(
    plan: &Plan,
    host: &Faulty,
    run: &Outcome,
    failure: Status,
    app_called: bool,
) {
    assert!(!app_called, "the app was called though add_cgi_vars failed");
    match (failure, run.status) {
        (Status::ClientGone, Status::ClientGone) => {
            assert!(
                run.wire.is_empty() && run.log.is_empty(),
                "a disconnect in add_cgi_vars: {run:?}"
            );
        }
        (_, Status::AppError) => {
            check_error_page(
                &run.wire,
                plan.mode != Mode::Cgi,
                plan.version(),
                plan.head_request,
            );
            assert!(
                host.stderr_writes.get() > 0,
                "the add_cgi_vars failure was not logged"
            );
        }
        // A failing hook while the error page goes out.
        (_, Status::IoError | Status::ClientGone) if failure != Status::ClientGone => {}
        (_, status) => panic!("add_cgi_vars returned {failure:?}, the run {status:?}"),
    }
}

/// Every line the library logged is `gateway: ` and printable ASCII up to its newline; only
/// where a stderr write failed (`cuts`) may a line stop short.
pub fn check_log(log: &[u8], cuts: &[usize]) {
    let mut start = 0;
    for (i, end) in cuts.iter().copied().chain([log.len()]).enumerate() {
        let cut = i < cuts.len();
        for line in log[start..end].split_inclusive(|&b| b == b'\n') {
            let whole = line.ends_with(b"\n");
            let text = line.strip_suffix(b"\n").unwrap_or(line);
            let prefixed =
                text.starts_with(b"gateway: ") || !whole && b"gateway: ".starts_with(text);
            assert!(
                prefixed && text.iter().all(|&b| (0x20..0x7f).contains(&b)) && (whole || cut),
                "bad log line {:?} in {:?}",
                show(line),
                show(log)
            );
        }
        start = end;
    }
}
