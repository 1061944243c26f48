//! A handler's settings: wsgiref's BaseHandler class attributes, with its defaults, except
//! that the base environ is empty unless the host opts in (wsgiref copies the process
//! environment into every request: weakness 8.3.7).

use std::sync::Arc;

use crate::environ::{Environ, RequestKeys};
use crate::headers::{check_classified, check_header, check_status, HeaderList};
use crate::status::{Error, Status};

/// wsgiref's error_body: 59 bytes, two spaces after the first period.
pub const DEFAULT_ERROR_BODY: &[u8] =
    b"A server error occurred.  Please contact the administrator.";
pub const DEFAULT_ERROR_STATUS: &[u8] = b"500 Internal Server Error";
/// The page sent instead of the error page when the app fails after its request body broke
/// the size limit: the client's fault, so not a 500 (RFC 9110 §15.5.14's name).
pub const TOO_LARGE_STATUS: &[u8] = b"413 Content Too Large";
pub const TOO_LARGE_BODY: &[u8] = b"The request body is larger than the server accepts.";
/// How much of an unread request body is read and discarded after the application returns,
/// so the connection can carry the next request (gunicorn and waitress do the same).
pub const DEFAULT_DRAIN_LIMIT: u64 = 64 * 1024;
/// Non-blocking mode: how many bytes may wait for a slow client before gw_request_write
/// refuses more.
pub const DEFAULT_WRITE_HIGH_WATER: usize = 64 * 1024;
/// Non-blocking mode: how much of a request body read ahead stays in memory; the rest goes
/// to an anonymous temporary file.
pub const DEFAULT_BODY_MEMORY: usize = 64 * 1024;

#[derive(Clone, Debug)]
pub struct Settings {
    pub multithread: bool,
    pub multiprocess: bool,
    pub run_once: bool,
    pub origin_server: bool,
    pub file_wrapper: bool,
    http_version: Vec<u8>,
    /// `HTTP/<http_version> `: an origin server's status line up to the status.
    status_prefix: Vec<u8>,
    server_software: Option<Vec<u8>>,
    /// `Server: <server_software>\r\n`, as an origin server's head carries it.
    server_line: Option<Vec<u8>>,
    pub os_environ: Option<Arc<Environ>>,
    /// Unread request bodies up to this size are drained to keep the connection.
    pub drain_limit: u64,
    /// Request bodies past this many bytes fail to read (0: no limit, wsgiref's way).
    pub max_request_body: u64,
    /// Hooks may answer "would block": the cycle can pause (see `cycle::Progress`).
    pub nonblocking: bool,
    pub write_high_water: usize,
    pub body_memory: usize,
    /// wsgiref.validate's checks on the host's environ and the application's response.
    pub validate: bool,
    error_status: Vec<u8>,
    error_headers: HeaderList,
    error_body: Vec<u8>,
}

impl Default for Settings {
    fn default() -> Settings {
        let mut error_headers = HeaderList::default();
        error_headers.push(b"Content-Type", b"text/plain");
        Settings {
            multithread: true,
            multiprocess: true,
            run_once: false,
            origin_server: true,
            file_wrapper: true,
            http_version: b"1.0".to_vec(),
            status_prefix: b"HTTP/1.0 ".to_vec(),
            server_software: None,
            server_line: None,
            os_environ: None,
            drain_limit: DEFAULT_DRAIN_LIMIT,
            max_request_body: 0,
            nonblocking: false,
            write_high_water: DEFAULT_WRITE_HIGH_WATER,
            body_memory: DEFAULT_BODY_MEMORY,
            validate: false,
            error_status: DEFAULT_ERROR_STATUS.to_vec(),
            error_headers,
            error_body: DEFAULT_ERROR_BODY.to_vec(),
        }
    }
}

impl Settings {
    pub fn http_version(&self) -> &[u8] {
        &self.http_version
    }

    /// `1*DIGIT "." 1*DIGIT`, as it goes into `HTTP/<version>`.
    pub fn set_http_version(&mut self, version: &[u8]) -> Result<(), Error> {
        let ok = match version.iter().position(|&b| b == b'.') {
            Some(dot) => {
                let (major, minor) = (&version[..dot], &version[dot + 1..]);
                !major.is_empty()
                    && !minor.is_empty()
                    && major.iter().chain(minor).all(u8::is_ascii_digit)
            }
            None => false,
        };
        if !ok {
            return Err(Error::new(
                Status::InvalidArgument,
                "http_version must look like 1.0 or 1.1",
            ));
        }
        self.http_version = version.to_vec();
        self.status_prefix = [&b"HTTP/"[..], version, b" "].concat();
        Ok(())
    }

    /// `HTTP/<http_version> `, prebuilt for the head.
    pub fn status_prefix(&self) -> &[u8] {
        &self.status_prefix
    }

    /// Whether http_version is "1.1": the handler may keep connections and chunk bodies.
    pub fn http11(&self) -> bool {
        self.http_version == b"1.1"
    }

    pub fn server_software(&self) -> Option<&[u8]> {
        self.server_software.as_deref()
    }

    /// None or empty turns it off (wsgiref tests truthiness). It must be a valid header value.
    pub fn set_server_software(&mut self, software: Option<&[u8]>) -> Result<(), Error> {
        match software {
            None | Some(b"") => {
                self.server_software = None;
                self.server_line = None;
            }
            Some(s) => {
                check_header(b"Server", s)
                    .map_err(|e| Error::new(Status::InvalidArgument, e.message))?;
                self.server_software = Some(s.to_vec());
                self.server_line = Some([&b"Server: "[..], s, b"\r\n"].concat());
            }
        }
        Ok(())
    }

    /// `Server: <server_software>\r\n`, prebuilt for the head; None when not set.
    pub fn server_line(&self) -> Option<&[u8]> {
        self.server_line.as_deref()
    }

    /// What the keys every request gets after the host's variables depend on: the wsgi.*
    /// flags, and SERVER_SOFTWARE's default for an origin server.
    pub fn request_keys(&self) -> RequestKeys<'_> {
        RequestKeys {
            multithread: self.multithread,
            multiprocess: self.multiprocess,
            run_once: self.run_once,
            file_wrapper: self.file_wrapper,
            server_software: if self.origin_server {
                self.server_software()
            } else {
                None
            },
        }
    }

    pub fn error_status(&self) -> &[u8] {
        &self.error_status
    }

    pub fn error_headers(&self) -> &HeaderList {
        &self.error_headers
    }

    pub fn error_body(&self) -> &[u8] {
        &self.error_body
    }

    /// Replaces the error page; checked by the same rules as an application's response.
    pub fn set_error_page<'a>(
        &mut self,
        status: &[u8],
        headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        body: &[u8],
    ) -> Result<(), Error> {
        check_status(status)?;
        let mut list = HeaderList::default();
        for (name, value) in headers {
            let class = check_classified(name, value)?;
            list.push_classified(name, value, class);
        }
        list.content_length()?;
        self.error_status = status.to_vec();
        self.error_headers = list;
        self.error_body = body.to_vec();
        Ok(())
    }
}
