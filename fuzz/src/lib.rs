//! Fuzz targets for gateway, driven through its C ABI: the `gw_*` functions are called as a C
//! host and application would call them, with `extern "C"` hooks, apps and iterators, and every
//! target checks the documented contract, not only the absence of crashes.
//!
//! Each module is one target: `run(data)` decodes the fuzz bytes into a scenario, plays it
//! and panics on the first broken rule. `fuzz_targets/*.rs` wrap them for libFuzzer, and
//! `tests/replay.rs` replays `seeds/` and `regressions/` through the same checks on stable.

pub mod chunked_body;
pub mod cycle;
pub mod environ;
pub mod input;
pub mod nonblocking;
pub mod request_head;
pub mod start_response;

mod ffi;
mod script;
mod wire;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Prints a decoded scenario when `FUZZ_DEBUG` is set, to read what a failing input does
/// (`FUZZ_DEBUG=1 cargo run --bin <target> -- <file>`).
fn debug(scenario: &impl std::fmt::Debug) {
    if std::env::var_os("FUZZ_DEBUG").is_some() {
        eprintln!("{scenario:?}");
    }
}

/// The files of `dirs` (missing folders are skipped; dot files such as `.gitkeep` too), sorted.
pub fn corpus_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.is_file() && !is_hidden(path))
        .collect();
    files.sort();
    files
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with('.'))
}

/// Runs `target` on every file; returns the failures as `path: panic message`.
pub fn replay(files: &[PathBuf], target: fn(&[u8])) -> Vec<String> {
    let mut failures = Vec::new();
    for path in files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| target(&data))) {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", path.display()));
        }
    }
    failures
}

/// The fuzz binaries' `main` outside `cargo fuzz`: replays the files and folders named on the
/// command line, so a crash input can be debugged on stable with
/// `cargo run --bin <target> -- <file>`.
pub fn replay_main(target: fn(&[u8])) {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let (dirs, mut files): (Vec<PathBuf>, Vec<PathBuf>) =
        args.into_iter().partition(|p| p.is_dir());
    files.extend(corpus_files(&dirs));
    let failures = replay(&files, target);
    for failure in &failures {
        eprintln!("FAILED {failure}");
    }
    println!(
        "{} passed, {} failed",
        files.len() - failures.len(),
        failures.len()
    );
    std::process::exit(i32::from(!failures.is_empty()));
}
