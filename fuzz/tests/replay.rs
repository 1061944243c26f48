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

/// `regressions/nonblocking/known-bugs/`: inputs of reported library bugs not fixed yet.
/// Played with the known bugs' cases on, each must still fail with the message its line in
/// `.expected` names (a strict expected failure: once it passes, its bug is fixed and it
/// moves up to `regressions/nonblocking/`); played as the fuzzer plays them, each passes.
#[test]
fn nonblocking_known_bugs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions/nonblocking/known-bugs");
    let expected = std::fs::read_to_string(dir.join(".expected")).unwrap_or_default();
    let expected: Vec<(&str, &str)> = expected
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split_once(": ").expect("`name: message` lines"))
        .collect();
    let files = gateway_fuzz::corpus_files(std::slice::from_ref(&dir));
    assert_eq!(
        files.len(),
        expected.len(),
        "every known-bug input needs its line in .expected, and every line its input"
    );
    for (name, message) in expected {
        let file = dir.join(name);
        let failures = gateway_fuzz::replay(
            std::slice::from_ref(&file),
            gateway_fuzz::nonblocking::run_known_bugs,
        );
        assert!(
            failures.len() == 1 && failures[0].contains(message),
            "known bug {name} no longer fails with {message:?} (fixed? move it up to \
             regressions/nonblocking/): {failures:?}"
        );
    }
    let failures = gateway_fuzz::replay(&files, gateway_fuzz::nonblocking::run);
    assert!(failures.is_empty(), "{failures:?}");
}
