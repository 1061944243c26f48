//! Generates include/gateway.h's content with cbindgen into OUT_DIR, and into the path in
//! GATEWAY_HEADER_OUT when set (the Makefile's `header` and `check-header` targets use it).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=GATEWAY_HEADER_OUT");

    // The shared library's soname carries the version that promises ABI compatibility:
    // MAJOR.MINOR while MAJOR is 0 (every 0.x minor may break the ABI), then MAJOR.
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets it");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets it");
    let soname = if major == "0" {
        format!("libgateway.so.0.{minor}")
    } else {
        format!("libgateway.so.{major}")
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable");
    let version = env::var("CARGO_PKG_VERSION").expect("cargo sets it");
    let patch = env::var("CARGO_PKG_VERSION_PATCH").expect("cargo sets it");
    config.after_includes = Some(format!(
        "\n#define GW_VERSION \"{version}\"\n#define GW_VERSION_MAJOR {major}\n#define GW_VERSION_MINOR {minor}\n#define GW_VERSION_PATCH {patch}\n#define GW_VERSION_NUMBER ((GW_VERSION_MAJOR << 16) | (GW_VERSION_MINOR << 8) | GW_VERSION_PATCH)\n{}",
        config.after_includes.take().unwrap_or_default()
    ));
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it"));
    bindings.write_to_file(out_dir.join("gateway.h"));
    if let Ok(path) = env::var("GATEWAY_HEADER_OUT") {
        bindings.write_to_file(path);
    }
}
