//! gateway: an embeddable WSGI-style gateway runtime with a C ABI.
//!
//! The safe core (`environ`, `headers`, `date`, `input`, `settings`, `cycle`) knows nothing of
//! C; `ffi` is the thin layer that holds every `unsafe` block and exports the `gw_*` functions
//! declared in `include/gateway.h`.

#![deny(unsafe_code)]

pub mod chunked;
pub mod cycle;
pub mod date;
pub mod environ;
pub mod error_response;
pub mod file_wrapper;
pub mod framing;
pub mod header_map;
pub mod headers;
pub mod host;
pub mod input;
pub mod request_framing;
pub mod request_head;
pub mod settings;
pub mod spool;
pub mod status;
pub mod util;
pub mod validate;

#[allow(unsafe_code)]
pub mod ffi;

pub use cycle::{Handler, Request};
pub use environ::Environ;
pub use host::{BodySource, Host};
pub use settings::Settings;
pub use status::{Error, Status};
