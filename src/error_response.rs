//! A canned response for a request the host refuses before any application runs (the
//! statuses gw_environ_set_from_request_head gives, and a few more a server needs): framed,
//! dated, and closing the connection, since after a bad head the next request's start is
//! unknown.

use crate::date::HTTP_DATE_LEN;

/// The reason phrase of each status a canned response may carry.
pub fn reason(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "Bad Request",
        404 => "Not Found",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => return None,
    })
}

/// The longest canned response (431's), so a buffer of this size always suffices.
pub const MAX_LEN: usize = 256;

/// Writes the response for `status` dated `date` into `out`; returns its length, or
/// Err(needed length) when `out` is too short (Err(0) for a status without a canned
/// response).
pub fn write(status: u16, date: &[u8; HTTP_DATE_LEN], out: &mut [u8]) -> Result<usize, usize> {
    let reason = reason(status).ok_or(0usize)?;
    let code = [
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ];
    // Body: "400 Bad Request\n"; its length has at most 2 digits.
    let body_len = 3 + 1 + reason.len() + 1;
    let len_digits = [b'0' + (body_len / 10) as u8, b'0' + (body_len % 10) as u8];
    let len_text: &[u8] = if body_len < 10 {
        &len_digits[1..]
    } else {
        &len_digits
    };
    let parts: [&[u8]; 13] = [
        b"HTTP/1.1 ",
        &code,
        b" ",
        reason.as_bytes(),
        b"\r\nDate: ",
        date,
        b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ",
        len_text,
        b"\r\nConnection: close\r\n\r\n",
        &code,
        b" ",
        reason.as_bytes(),
        b"\n",
    ];
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if out.len() < total {
        return Err(total);
    }
    let mut at = 0;
    for part in parts {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::date::format_http_date;

    fn text(status: u16) -> String {
        let mut out = [0u8; MAX_LEN];
        let n = write(status, &format_http_date(0), &mut out).unwrap();
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn a_400_is_framed_dated_and_closes() {
        assert_eq!(
            text(400),
            "HTTP/1.1 400 Bad Request\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 16\r\n\
             Connection: close\r\n\r\n400 Bad Request\n"
        );
    }

    #[test]
    fn every_status_fits_and_its_length_is_its_body() {
        for status in [400, 404, 408, 411, 413, 414, 417, 431, 500, 501, 503, 505] {
            let t = text(status);
            let (head, body) = t.split_once("\r\n\r\n").unwrap();
            let declared: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(declared, body.len(), "{status}");
            assert!(body.starts_with(&status.to_string()));
        }
    }

    #[test]
    fn short_buffers_and_unknown_statuses_are_refused() {
        let date = format_http_date(0);
        let mut small = [0u8; 10];
        let needed = write(400, &date, &mut small).unwrap_err();
        assert_eq!(needed, text(400).len());
        assert_eq!(write(200, &date, &mut small), Err(0));
        assert_eq!(write(0, &date, &mut [0u8; MAX_LEN]), Err(0));
    }
}
