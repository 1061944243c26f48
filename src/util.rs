//! Pieces of wsgiref.util that the handler and the presets need.

/// wsgiref.util.guess_scheme: "https" when HTTPS is exactly yes, on or 1 (case-sensitive,
/// as wsgiref), else "http".
pub fn guess_scheme(https: Option<&[u8]>) -> &'static [u8] {
    match https {
        Some(b"yes" | b"on" | b"1") => b"https",
        _ => b"http",
    }
}

/// IISCGIHandler's PATH_INFO fix: IIS puts SCRIPT_NAME in front of PATH_INFO; when
/// `path + "/"` starts with `script + "/"`, the script part is cut off.
pub fn iis_path_info(script_name: &[u8], path_info: &[u8]) -> Option<Vec<u8>> {
    let starts = path_info.starts_with(script_name)
        && (path_info.len() == script_name.len() || path_info[script_name.len()] == b'/');
    starts.then(|| path_info[script_name.len()..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guess_scheme_is_case_sensitive() {
        assert_eq!(guess_scheme(Some(b"on")), b"https");
        assert_eq!(guess_scheme(Some(b"1")), b"https");
        assert_eq!(guess_scheme(Some(b"ON")), b"http");
        assert_eq!(guess_scheme(None), b"http");
    }

    #[test]
    fn iis_fix_matches_wsgiref_cases() {
        let fix = |s: &[u8], p: &[u8]| iis_path_info(s, p).unwrap_or_else(|| p.to_vec());
        assert_eq!(fix(b"/app", b"/app/x"), b"/x");
        assert_eq!(fix(b"/app", b"/app"), b"");
        assert_eq!(fix(b"/app", b"/apple"), b"/apple");
        assert_eq!(fix(b"", b"/x"), b"/x");
        assert_eq!(fix(b"/app", b"/x"), b"/x");
    }
}
