//! RFC 1123 dates in GMT (wsgiref.handlers.format_date_time), and a per-thread cache so the
//! Date header is formatted at most once a second per thread however many handlers run.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of `Thu, 01 Jan 1970 00:00:00 GMT`.
pub const HTTP_DATE_LEN: usize = 29;

const WEEKDAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Formats seconds since the Unix epoch (negative allowed) as an HTTP date.
/// Years outside 0..=9999 are clamped to that range's ends, since the format has 4 digits.
pub fn format_http_date(secs: i64) -> [u8; HTTP_DATE_LEN] {
    const MIN: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let secs = secs.clamp(MIN, MAX);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = days.rem_euclid(7) as usize;

    let mut out = [0u8; HTTP_DATE_LEN];
    out[..3].copy_from_slice(WEEKDAYS[weekday]);
    out[3..5].copy_from_slice(b", ");
    two_digits(&mut out[5..7], day as i64);
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    two_digits(&mut out[12..14], year / 100);
    two_digits(&mut out[14..16], year % 100);
    out[16] = b' ';
    two_digits(&mut out[17..19], rem / 3600);
    out[19] = b':';
    two_digits(&mut out[20..22], rem / 60 % 60);
    out[22] = b':';
    two_digits(&mut out[23..25], rem % 60);
    out[25..].copy_from_slice(b" GMT");
    out
}

fn two_digits(out: &mut [u8], n: i64) {
    out[0] = b'0' + (n / 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Length of the head's `Date: <date>\r\n` line.
pub(crate) const DATE_LINE_LEN: usize = HTTP_DATE_LEN + 8;

/// The line formatted last on this thread and the second it is for.
#[derive(Clone, Copy)]
struct DateLine {
    secs: i64,
    line: [u8; DATE_LINE_LEN],
}

thread_local! {
    /// Per thread, so the common case (the same second) takes no lock and no atomic; each
    /// thread formats a date at most once a second. `i64::MIN` is no second at all.
    static CACHE: Cell<DateLine> = const {
        Cell::new(DateLine { secs: i64::MIN, line: [0; DATE_LINE_LEN] })
    };
}

/// The wall clock in whole seconds since the Unix epoch (negative before it), by the
/// standard library. A host may have a cheaper clock of the same seconds (`Host::unix_seconds`).
pub fn system_seconds() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => {
            let d = e.duration();
            -(d.as_secs() as i64) - i64::from(d.subsec_nanos() > 0)
        }
    }
}

/// The head's `Date: <secs>\r\n` line, formatted at most once per second per thread.
#[inline]
pub fn date_line(secs: i64) -> [u8; DATE_LINE_LEN] {
    let cached = CACHE.get();
    if cached.secs == secs {
        return cached.line;
    }
    let fresh = format_date_line(secs);
    CACHE.set(fresh);
    fresh.line
}

#[cold]
#[inline(never)]
fn format_date_line(secs: i64) -> DateLine {
    let mut line = [0u8; DATE_LINE_LEN];
    line[..6].copy_from_slice(b"Date: ");
    line[6..6 + HTTP_DATE_LEN].copy_from_slice(&format_http_date(secs));
    line[6 + HTTP_DATE_LEN..].copy_from_slice(b"\r\n");
    DateLine { secs, line }
}

/// The HTTP date of `secs` (cached as `date_line` caches it).
pub fn http_date(secs: i64) -> [u8; HTTP_DATE_LEN] {
    let line = date_line(secs);
    let mut date = [0u8; HTTP_DATE_LEN];
    date.copy_from_slice(&line[6..6 + HTTP_DATE_LEN]);
    date
}

/// The current time as an HTTP date, by the standard library's clock.
pub fn http_date_now() -> [u8; HTTP_DATE_LEN] {
    http_date(system_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: i64) -> String {
        String::from_utf8(format_http_date(secs).to_vec()).unwrap()
    }

    #[test]
    fn matches_wsgiref_examples() {
        assert_eq!(s(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(s(1_000_000_000), "Sun, 09 Sep 2001 01:46:40 GMT");
        assert_eq!(s(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(s(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(s(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
    }

    #[test]
    fn now_is_well_formed() {
        let d = http_date_now();
        assert_eq!(&d[25..], b" GMT");
        assert_eq!(d, http_date_now().max(d).min(d));
        let line = date_line(system_seconds());
        assert!(line.starts_with(b"Date: ") && line.ends_with(b" GMT\r\n"));
    }

    #[test]
    fn the_cache_follows_the_second_asked_for() {
        // Each second gets its own line, also going back (a clock set back), and before 1970.
        for secs in [1_000_000_000, 1_000_000_001, 1_000_000_000, -1, 0, -1] {
            let line = date_line(secs);
            assert_eq!(&line[6..6 + HTTP_DATE_LEN], &format_http_date(secs));
            assert_eq!(http_date(secs), format_http_date(secs));
        }
    }

    #[test]
    fn system_seconds_floor_before_the_epoch_and_match_the_clock() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let secs = system_seconds();
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(before <= secs && secs <= after);
    }
}
