//! The `nonblocking` target: see `gateway_fuzz::nonblocking`. Without `--cfg fuzzing` (a plain cargo build)
//! it replays the files or folders named on its command line instead.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::nonblocking::run(data));

#[cfg(not(fuzzing))]
fn main() {
    match std::env::var_os("FUZZ_KNOWN_BUGS") {
        // Replays with the known bugs' cases played (regressions/nonblocking/known-bugs/).
        Some(_) => gateway_fuzz::replay_main(gateway_fuzz::nonblocking::run_known_bugs),
        None => gateway_fuzz::replay_main(gateway_fuzz::nonblocking::run),
    }
}
