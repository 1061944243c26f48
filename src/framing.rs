//! The framing decision: whether a response carries a body, how its length is told, and
//! whether the connection can carry another request. One pure function of the facts known
//! when the head goes out; the writer in `cycle::response` only carries it out.

/// The protocol the client spoke (SERVER_PROTOCOL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http09,
    Http10,
    Http11,
    /// Absent or something else: treated as a modern client without persistent connections.
    Other,
}

impl Protocol {
    /// Any case of the letters, as `eq_ignore_ascii_case`: the eight bytes are read as one
    /// word with `HTTP`'s letters folded to lower case (OR 0x20 maps exactly 'H' and 'h' to
    /// 'h', and so on for T and P).
    pub fn parse(server_protocol: Option<&[u8]>) -> Protocol {
        const FOLD: u64 = u64::from_le_bytes([0x20, 0x20, 0x20, 0x20, 0, 0, 0, 0]);
        const HTTP09: u64 = u64::from_le_bytes(*b"http/0.9");
        const HTTP10: u64 = u64::from_le_bytes(*b"http/1.0");
        const HTTP11: u64 = u64::from_le_bytes(*b"http/1.1");
        let Some(Ok(word)) = server_protocol.map(<[u8; 8]>::try_from) else {
            return Protocol::Other;
        };
        match u64::from_le_bytes(word) | FOLD {
            HTTP11 => Protocol::Http11,
            HTTP10 => Protocol::Http10,
            HTTP09 => Protocol::Http09,
            _ => Protocol::Other,
        }
    }
}

/// What the client's `Connection` header asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAsks {
    Nothing,
    Close,
    KeepAlive,
}

impl ClientAsks {
    /// Reads the tokens of a `Connection` header; `close` wins over `keep-alive`.
    pub fn parse(connection: Option<&[u8]>) -> ClientAsks {
        let Some(value) = connection else {
            return ClientAsks::Nothing;
        };
        let mut asks = ClientAsks::Nothing;
        for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if token.eq_ignore_ascii_case(b"close") {
                return ClientAsks::Close;
            }
            if token.eq_ignore_ascii_case(b"keep-alive") {
                asks = ClientAsks::KeepAlive;
            }
        }
        asks
    }
}

/// What is known of the response body when the head goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyShape {
    /// All of it, in one block of this many bytes (a bytes body, a one-block iterator, the
    /// error page, an empty body).
    Whole(u64),
    /// A first block; more may follow.
    Streamed,
    /// A file of this many bytes the host sends itself: its length is the representation's,
    /// whatever the method (a HEAD request's too, even when it is 0).
    File(u64),
}

/// What became of the request body by the time the head goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// Read to its end (or there was none).
    Done,
    /// Unread, but small enough to drain after the application returns.
    Drainable,
    /// Unread and too large to drain, unreadable, or not sent yet by a client waiting for
    /// `100 Continue`: the connection cannot be reused.
    Lost,
}

/// The facts the decision depends on.
#[derive(Clone, Copy, Debug)]
pub struct Facts {
    pub code: u16,
    pub head_request: bool,
    pub origin_server: bool,
    /// The handler's http_version is "1.1": it may keep connections and chunk bodies.
    pub server_http11: bool,
    pub client: Protocol,
    pub client_asks: ClientAsks,
    /// The application's own Content-Length, validated.
    pub app_length: Option<u64>,
    pub body: BodyShape,
    pub request_body: RequestBody,
    /// The library's error page, after an application failure.
    pub error_page: bool,
    /// The host takes the head as data and frames the body itself (a server library, an
    /// HTTP/2 server): no Connection header, no chunking, the connection is the host's.
    pub structured: bool,
}

/// How the body's end is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body goes out (HEAD, 1xx, 204, 304): the application's bytes are consumed unsent.
    Omitted,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// The end of the connection (or of the CGI program's output) ends the body.
    UntilClose,
    /// A structured host frames a body of unknown length its own way (HTTP/2 frames,
    /// chunks of its own).
    HostFramed,
}

/// The Content-Length header of the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthHeader {
    /// None at all (the application's own, if any, is left out: 1xx and 204).
    Absent,
    /// The application's own header, as it gave it.
    AppOwn,
    /// One the library adds.
    Computed(u64),
}

/// The Connection header the library writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionHeader {
    None,
    Close,
    KeepAlive,
}

/// The decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    /// An HTTP/0.9 client gets the body alone, without status line or headers.
    pub head: bool,
    pub body: BodyFraming,
    pub length_header: LengthHeader,
    pub connection: ConnectionHeader,
    /// The connection may carry another request if the response then goes out in full
    /// (and a drainable request body drains).
    pub keep_alive: bool,
}

/// Decides the framing. The rules, in wsgiref's terms with its weaknesses fixed:
/// - HEAD, 1xx, 204 and 304 carry no body; 1xx and 204 carry no Content-Length at all
///   (RFC 9110 §8.6), 304 and HEAD keep the application's;
/// - a one-block body gets a computed Content-Length (wsgiref), except an empty HEAD body,
///   whose true length the application did not say;
/// - a body of unknown length is chunked when both sides speak HTTP/1.1, else it runs until
///   the connection closes;
/// - a connection is kept only by a handler speaking HTTP/1.1, for an HTTP/1.1 client that
///   did not ask to close or an HTTP/1.0 client that asked for keep-alive, when the body's
///   end can be told, the request body is read or drainable and this is not the error page.
///   The head of a handler speaking HTTP/1.1 says so: `Connection: close` whenever the
///   connection will not be kept, `Connection: keep-alive` to an HTTP/1.0 client whose wish
///   is granted.
#[inline]
pub fn decide(f: &Facts) -> Framing {
    let head = f.structured || !(f.origin_server && f.client == Protocol::Http09);
    let bodiless_status = f.code < 200 || f.code == 204 || f.code == 304;
    let length_forbidden = f.code < 200 || f.code == 204;
    // An empty HEAD body says nothing of the length a GET would have.
    let empty_head = f.head_request && f.body == BodyShape::Whole(0);
    let length_header = match f.body {
        _ if length_forbidden => LengthHeader::Absent,
        _ if f.app_length.is_some() => LengthHeader::AppOwn,
        BodyShape::Whole(len) if !bodiless_status && !empty_head => LengthHeader::Computed(len),
        BodyShape::File(len) if !bodiless_status => LengthHeader::Computed(len),
        _ => LengthHeader::Absent,
    };
    let chunkable = f.origin_server && f.server_http11 && f.client == Protocol::Http11;
    let body = if f.head_request || bodiless_status {
        BodyFraming::Omitted
    } else {
        match (length_header, f.app_length) {
            (LengthHeader::Computed(len), _) => BodyFraming::Length(len),
            (_, Some(len)) => BodyFraming::Length(len),
            _ if f.structured => BodyFraming::HostFramed,
            _ if chunkable => BodyFraming::Chunked,
            _ => BodyFraming::UntilClose,
        }
    };
    if f.structured {
        return Framing {
            head,
            body,
            length_header,
            connection: ConnectionHeader::None,
            // The host keeps or closes its connections; the library only says whether the
            // request body was consumed.
            keep_alive: f.request_body != RequestBody::Lost,
        };
    }
    let persistent_client = match f.client {
        Protocol::Http11 => f.client_asks != ClientAsks::Close,
        Protocol::Http10 => f.client_asks == ClientAsks::KeepAlive,
        Protocol::Http09 | Protocol::Other => false,
    };
    let can_keep = f.origin_server && f.server_http11 && persistent_client;
    let keep_alive = can_keep
        && !f.error_page
        && body != BodyFraming::UntilClose
        && f.request_body != RequestBody::Lost;
    let connection = if !f.origin_server || !f.server_http11 || !head {
        // wsgiref's bytes: a handler speaking HTTP/1.0 writes no Connection header.
        ConnectionHeader::None
    } else if !keep_alive {
        // Said even where closing is the default, so no client has to guess.
        ConnectionHeader::Close
    } else if f.client == Protocol::Http10 {
        ConnectionHeader::KeepAlive
    } else {
        ConnectionHeader::None
    };
    Framing {
        head,
        body,
        length_header,
        connection,
        keep_alive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use BodyShape::Whole;

    fn facts() -> Facts {
        Facts {
            code: 200,
            head_request: false,
            origin_server: true,
            server_http11: true,
            client: Protocol::Http11,
            client_asks: ClientAsks::Nothing,
            app_length: None,
            body: Whole(5),
            request_body: RequestBody::Done,
            error_page: false,
            structured: false,
        }
    }

    use BodyFraming::{Chunked, Length, Omitted, UntilClose};
    use ConnectionHeader as C;
    use LengthHeader::{Absent, AppOwn, Computed};

    /// (what changes from `facts()`, body framing, length header, connection header, keep)
    type Row = (
        &'static str,
        fn(&mut Facts),
        BodyFraming,
        LengthHeader,
        ConnectionHeader,
        bool,
    );

    #[test]
    fn the_table() {
        let rows: &[Row] = &[
            ("one block", |_| {}, Length(5), Computed(5), C::None, true),
            (
                "streamed on 1.1: chunked",
                |f| f.body = BodyShape::Streamed,
                Chunked,
                Absent,
                C::None,
                true,
            ),
            (
                "app's length",
                |f| {
                    f.body = BodyShape::Streamed;
                    f.app_length = Some(9)
                },
                Length(9),
                AppOwn,
                C::None,
                true,
            ),
            (
                "HEAD keeps the computed length",
                |f| f.head_request = true,
                Omitted,
                Computed(5),
                C::None,
                true,
            ),
            (
                "HEAD with an empty body: no length",
                |f| {
                    f.head_request = true;
                    f.body = Whole(0)
                },
                Omitted,
                Absent,
                C::None,
                true,
            ),
            (
                "HEAD of an empty file: its length, 0",
                |f| {
                    f.head_request = true;
                    f.body = BodyShape::File(0)
                },
                Omitted,
                Computed(0),
                C::None,
                true,
            ),
            (
                "a file: its length",
                |f| f.body = BodyShape::File(7),
                Length(7),
                Computed(7),
                C::None,
                true,
            ),
            (
                "a 304 file: no length of its own",
                |f| {
                    f.code = 304;
                    f.body = BodyShape::File(7)
                },
                Omitted,
                Absent,
                C::None,
                true,
            ),
            (
                "204 drops the app's length",
                |f| {
                    f.code = 204;
                    f.app_length = Some(0)
                },
                Omitted,
                Absent,
                C::None,
                true,
            ),
            (
                "103 drops it too",
                |f| {
                    f.code = 103;
                    f.app_length = Some(3)
                },
                Omitted,
                Absent,
                C::None,
                true,
            ),
            (
                "304 keeps the app's length",
                |f| {
                    f.code = 304;
                    f.app_length = Some(7)
                },
                Omitted,
                AppOwn,
                C::None,
                true,
            ),
            (
                "304 gets none computed",
                |f| f.code = 304,
                Omitted,
                Absent,
                C::None,
                true,
            ),
            (
                "client asks to close",
                |f| f.client_asks = ClientAsks::Close,
                Length(5),
                Computed(5),
                C::Close,
                false,
            ),
            (
                "error page closes",
                |f| f.error_page = true,
                Length(5),
                Computed(5),
                C::Close,
                false,
            ),
            (
                "request body lost closes",
                |f| f.request_body = RequestBody::Lost,
                Length(5),
                Computed(5),
                C::Close,
                false,
            ),
            (
                "request body drainable keeps",
                |f| f.request_body = RequestBody::Drainable,
                Length(5),
                Computed(5),
                C::None,
                true,
            ),
            (
                "HTTP/1.0 client: no chunking, closes",
                |f| {
                    f.client = Protocol::Http10;
                    f.body = BodyShape::Streamed
                },
                UntilClose,
                Absent,
                C::Close,
                false,
            ),
            (
                "HTTP/1.0 keep-alive granted",
                |f| {
                    f.client = Protocol::Http10;
                    f.client_asks = ClientAsks::KeepAlive
                },
                Length(5),
                Computed(5),
                C::KeepAlive,
                true,
            ),
            (
                "HTTP/1.0 keep-alive refused for an unknown length",
                |f| {
                    f.client = Protocol::Http10;
                    f.client_asks = ClientAsks::KeepAlive;
                    f.body = BodyShape::Streamed
                },
                UntilClose,
                Absent,
                C::Close,
                false,
            ),
            (
                "handler speaking 1.0: wsgiref's bytes, no keep-alive",
                |f| {
                    f.server_http11 = false;
                    f.body = BodyShape::Streamed
                },
                UntilClose,
                Absent,
                C::None,
                false,
            ),
            (
                "handler speaking 1.0 to a keep-alive 1.0 client",
                |f| {
                    f.server_http11 = false;
                    f.client = Protocol::Http10;
                    f.client_asks = ClientAsks::KeepAlive
                },
                Length(5),
                Computed(5),
                C::None,
                false,
            ),
            (
                "CGI: no Connection, no chunking",
                |f| {
                    f.origin_server = false;
                    f.body = BodyShape::Streamed
                },
                UntilClose,
                Absent,
                C::None,
                false,
            ),
            (
                "missing SERVER_PROTOCOL",
                |f| {
                    f.client = Protocol::Other;
                    f.body = BodyShape::Streamed
                },
                UntilClose,
                Absent,
                C::Close,
                false,
            ),
        ];
        for (name, change, body, length, connection, keep) in rows {
            let mut f = facts();
            change(&mut f);
            let got = decide(&f);
            assert_eq!(got.body, *body, "{name}");
            assert_eq!(got.length_header, *length, "{name}");
            assert_eq!(got.connection, *connection, "{name}");
            assert_eq!(got.keep_alive, *keep, "{name}");
            assert!(got.head, "{name}");
        }
    }

    #[test]
    fn http09_gets_no_head_and_no_keep_alive() {
        let mut f = facts();
        f.client = Protocol::Http09;
        let got = decide(&f);
        assert!(!got.head);
        assert_eq!(got.connection, C::None);
        assert!(!got.keep_alive);
        f.origin_server = false;
        assert!(decide(&f).head, "CGI output always has its header block");
    }

    #[test]
    fn a_structured_host_frames_unknown_lengths_and_owns_the_connection() {
        let mut f = facts();
        f.structured = true;
        f.body = BodyShape::Streamed;
        f.error_page = true;
        f.client = Protocol::Http10;
        let got = decide(&f);
        assert_eq!(got.body, BodyFraming::HostFramed);
        assert_eq!(got.connection, C::None);
        assert!(got.keep_alive);
        f.body = Whole(3);
        f.head_request = true;
        let got = decide(&f);
        assert_eq!((got.body, got.length_header), (Omitted, Computed(3)));
        f.client = Protocol::Http09;
        assert!(decide(&f).head);
        f.request_body = RequestBody::Lost;
        assert!(!decide(&f).keep_alive);
    }

    /// `start_head` skips the lookups of SERVER_PROTOCOL (a CGI or structured host) and of
    /// the Connection header (a handler speaking HTTP/1.0 too): they must not matter there.
    #[test]
    fn the_client_matters_only_where_it_is_looked_up() {
        let protocols = [
            Protocol::Http09,
            Protocol::Http10,
            Protocol::Http11,
            Protocol::Other,
        ];
        let asks = [
            ClientAsks::Nothing,
            ClientAsks::Close,
            ClientAsks::KeepAlive,
        ];
        let shapes = [Whole(0), Whole(5), BodyShape::Streamed, BodyShape::File(3)];
        for (origin_server, server_http11, structured) in [
            (false, false, false),
            (false, true, false),
            (true, false, false),
            (true, true, true),
            (false, true, true),
        ] {
            for body in shapes {
                for code in [103, 200, 204, 304, 500] {
                    for head_request in [false, true] {
                        let base = Facts {
                            code,
                            head_request,
                            origin_server,
                            server_http11,
                            body,
                            structured,
                            ..facts()
                        };
                        let client_matters = origin_server && !structured;
                        let asks_matter = client_matters && server_http11;
                        for client in protocols {
                            let expected = decide(&Facts {
                                client: if client_matters {
                                    client
                                } else {
                                    Protocol::Other
                                },
                                client_asks: ClientAsks::Nothing,
                                ..base
                            });
                            for client_asks in asks {
                                if asks_matter && client_asks != ClientAsks::Nothing {
                                    continue;
                                }
                                let f = Facts {
                                    client,
                                    client_asks,
                                    ..base
                                };
                                assert_eq!(decide(&f), expected, "{f:?}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn protocols_in_any_case() {
        let parse = |p: &[u8]| Protocol::parse(Some(p));
        assert_eq!(parse(b"HTTP/1.1"), Protocol::Http11);
        assert_eq!(parse(b"http/1.0"), Protocol::Http10);
        assert_eq!(parse(b"hTtP/0.9"), Protocol::Http09);
        assert_eq!(Protocol::parse(None), Protocol::Other);
        for other in [&b"HTTP/2.0"[..], b"HTTP/1.1 ", b"HTTP/1.", b"", b"HTTP_1.1"] {
            assert_eq!(parse(other), Protocol::Other, "{other:?}");
        }
        // The fold against the plain rule, every byte at every place.
        for known in [&b"HTTP/0.9"[..], b"HTTP/1.0", b"HTTP/1.1"] {
            for at in 0..8 {
                for b in 0..=255u8 {
                    let mut p = known.to_vec();
                    p[at] = b;
                    let expected = if p.eq_ignore_ascii_case(b"HTTP/0.9") {
                        Protocol::Http09
                    } else if p.eq_ignore_ascii_case(b"HTTP/1.0") {
                        Protocol::Http10
                    } else if p.eq_ignore_ascii_case(b"HTTP/1.1") {
                        Protocol::Http11
                    } else {
                        Protocol::Other
                    };
                    assert_eq!(parse(&p), expected, "{p:?}");
                }
            }
        }
    }

    #[test]
    fn connection_tokens() {
        assert_eq!(ClientAsks::parse(None), ClientAsks::Nothing);
        assert_eq!(ClientAsks::parse(Some(b"Close")), ClientAsks::Close);
        assert_eq!(
            ClientAsks::parse(Some(b"keep-alive, Upgrade")),
            ClientAsks::KeepAlive
        );
        assert_eq!(
            ClientAsks::parse(Some(b" keep-alive , close")),
            ClientAsks::Close
        );
        assert_eq!(ClientAsks::parse(Some(b"closed")), ClientAsks::Nothing);
    }
}
