//! Replays every committed input of every target (`seeds/<target>/` and
//! `regressions/<target>/`) through the same checks the fuzzer runs, on stable, without
//! libFuzzer or a sanitizer.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = ["seeds", "regressions"].map(|dir| root.join(dir).join(target));
    let files = gateway_fuzz::corpus_files(&dirs);
    assert!(!files.is_empty(), "no seeds for {target}");
    let failures = gateway_fuzz::replay(&files, run);
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn start_response() {
    replay("start_response", gateway_fuzz::start_response::run);
}

#[test]
fn environ() {
    replay("environ", gateway_fuzz::environ::run);
}

#[test]
fn input() {
    replay("input", gateway_fuzz::input::run);
}

#[test]
fn request_head() {
    replay("request_head", gateway_fuzz::request_head::run);
}

#[test]
fn chunked_body() {
    replay("chunked_body", gateway_fuzz::chunked_body::run);
}

#[test]
fn cycle() {
    replay("cycle", gateway_fuzz::cycle::run);
}

#[test]
fn nonblocking() {
    replay("nonblocking", gateway_fuzz::nonblocking::run);
}
