//! The `nonblocking` target: see `gateway_fuzz::nonblocking`. Without `--cfg fuzzing` (a plain cargo build)
//! it replays the files or folders named on its command line instead.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::nonblocking::run(data));

#[cfg(not(fuzzing))]
fn main() {
    gateway_fuzz::replay_main(gateway_fuzz::nonblocking::run);
}
