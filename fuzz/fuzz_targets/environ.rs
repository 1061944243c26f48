//! The `environ` target: see `gateway_fuzz::environ`. Without `--cfg fuzzing` (a plain cargo build)
//! it replays the files or folders named on its command line instead.
#![cfg_attr(fuzzing, no_main)]

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway_fuzz::environ::run(data));

#[cfg(not(fuzzing))]
fn main() {
    gateway_fuzz::replay_main(gateway_fuzz::environ::run);
}
