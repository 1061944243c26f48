//! How the request body's end is told, decided once per request from the environ the host
//! built (after add_cgi_vars): a pure function, so every rule is in one table-tested place.

/// The request body's framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFraming {
    /// CONTENT_LENGTH is present: exactly that many bytes (empty means none; a value that is
    /// not a length makes every read fail).
    Length,
    /// `Transfer-Encoding` ends in `chunked`: the library decodes the chunks.
    Chunked,
    /// The host set `wsgi.input_terminated` to `1` (mod_wsgi's meaning): the body is what the
    /// read hook gives until it reports the end of input. The connection ends with it.
    Terminated,
    /// No body.
    NoBody,
}

/// Decides the framing, first rule that applies:
/// 1. CONTENT_LENGTH present (today's behaviour, and what a CGI server passes);
/// 2. HTTP_TRANSFER_ENCODING whose final coding is `chunked` (case-insensitive), as
///    gw_environ_set_from_request_head passes it through with CONTENT_LENGTH absent;
/// 3. `wsgi.input_terminated` set to `1` by the host: a stream of unknown length that the
///    host already framed (CGI, a server that dechunked), without an invented length;
/// 4. otherwise no body.
pub fn decide(
    content_length: Option<&[u8]>,
    transfer_encoding: Option<&[u8]>,
    input_terminated: Option<&[u8]>,
) -> RequestFraming {
    if content_length.is_some() {
        return RequestFraming::Length;
    }
    let chunked = transfer_encoding.is_some_and(|te| {
        te.rsplit(|&b| b == b',')
            .next()
            .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
    });
    if chunked {
        RequestFraming::Chunked
    } else if input_terminated == Some(b"1") {
        RequestFraming::Terminated
    } else {
        RequestFraming::NoBody
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestFraming::*;

    #[test]
    fn table() {
        type Row = (
            Option<&'static [u8]>,
            Option<&'static [u8]>,
            Option<&'static [u8]>,
            RequestFraming,
        );
        let rows: &[Row] = &[
            (None, None, None, NoBody),
            (Some(b"5"), None, None, Length),
            (Some(b""), None, None, Length),
            (Some(b"x"), None, None, Length),
            // CONTENT_LENGTH wins over everything (a host that sets both made its choice).
            (Some(b"5"), Some(b"chunked"), Some(b"1"), Length),
            (None, Some(b"chunked"), None, Chunked),
            (None, Some(b"CHUNKED"), None, Chunked),
            (None, Some(b"gzip, chunked"), None, Chunked),
            (None, Some(b"gzip,chunked "), None, Chunked),
            (None, Some(b"chunked"), Some(b"1"), Chunked),
            // chunked not last, or not a whole token: not a chunked body.
            (None, Some(b"chunked, gzip"), None, NoBody),
            (None, Some(b"xchunked"), None, NoBody),
            (None, Some(b""), None, NoBody),
            (None, Some(b"gzip"), Some(b"1"), Terminated),
            (None, None, Some(b"1"), Terminated),
            // Only the host's own "1" counts ("0", "true" or empty are not it).
            (None, None, Some(b"0"), NoBody),
            (None, None, Some(b"true"), NoBody),
            (None, None, Some(b""), NoBody),
        ];
        for &(cl, te, term, want) in rows {
            assert_eq!(decide(cl, te, term), want, "{cl:?} {te:?} {term:?}");
        }
    }
}
