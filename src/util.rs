//! wsgiref.util on byte-string environs: guess_scheme, application_uri, request_uri,
//! shift_path_info, setup_testing_defaults, and IISCGIHandler's PATH_INFO fix.
//!
//! Environ values are bytes standing for latin-1 text (PEP 3333's "bytes as str"), so
//! wsgiref's `quote(..., encoding='latin1')` is a quote of the bytes themselves, and every
//! result here is the latin-1 encoding of what wsgiref returns.

use crate::environ::Environ;
use crate::status::{Error, Status};

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

/// `urllib.parse.quote(bytes, safe)`: ASCII letters, digits, `_.-~` and the bytes of `safe`
/// are kept, every other byte becomes `%XX` in upper case.
pub fn quote_into(out: &mut Vec<u8>, bytes: &[u8], safe: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || safe.contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
}

/// A key wsgiref reads with `environ[key]`: its absence is wsgiref's KeyError.
fn required<'e>(env: &'e Environ, key: &'static str) -> Result<&'e [u8], Error> {
    env.get(key.as_bytes()).ok_or_else(|| missing(key))
}

#[cold]
fn missing(key: &'static str) -> Error {
    Error::new(
        Status::NotFound,
        format!("the environ has no {key} (KeyError in wsgiref)"),
    )
}

/// `environ.get(key)` read for its truth: absent and empty are both "no".
fn truthy<'e>(env: &'e Environ, key: &[u8]) -> Option<&'e [u8]> {
    env.get(key).filter(|v| !v.is_empty())
}

/// wsgiref.util.application_uri, appended to `out`: `wsgi.url_scheme` + `://`, then
/// HTTP_HOST when set and non-empty (verbatim), else SERVER_NAME with `:` SERVER_PORT unless
/// the port is the scheme's default (ports compared as strings), then SCRIPT_NAME (or `/`)
/// quoted with safe `/`. A missing wsgi.url_scheme, or SERVER_NAME / SERVER_PORT when they
/// are needed, is GW_STATUS_NOT_FOUND (wsgiref's KeyError); `out` is then unchanged.
pub fn application_uri(env: &Environ, out: &mut Vec<u8>) -> Result<(), Error> {
    let scheme = required(env, "wsgi.url_scheme")?;
    let host = match truthy(env, b"HTTP_HOST") {
        Some(host) => (host, None),
        None => {
            let name = required(env, "SERVER_NAME")?;
            let port = required(env, "SERVER_PORT")?;
            let default: &[u8] = if scheme == b"https" { b"443" } else { b"80" };
            (name, (port != default).then_some(port))
        }
    };
    out.extend_from_slice(scheme);
    out.extend_from_slice(b"://");
    out.extend_from_slice(host.0);
    if let Some(port) = host.1 {
        out.push(b':');
        out.extend_from_slice(port);
    }
    let script = truthy(env, b"SCRIPT_NAME").unwrap_or(b"/");
    quote_into(out, script, b"/");
    Ok(())
}

/// wsgiref.util.request_uri, appended to `out`: application_uri, then PATH_INFO quoted with
/// safe `/;=,` (its first byte dropped when SCRIPT_NAME is empty or absent, since
/// application_uri already ended with `/`: wsgiref drops it even when it is not a `/`),
/// then `?` and QUERY_STRING verbatim when `include_query` and it is non-empty.
pub fn request_uri(env: &Environ, include_query: bool, out: &mut Vec<u8>) -> Result<(), Error> {
    application_uri(env, out)?;
    let start = out.len();
    quote_into(out, env.get(b"PATH_INFO").unwrap_or(b""), b"/;=,");
    if truthy(env, b"SCRIPT_NAME").is_none() && out.len() > start {
        out.remove(start);
    }
    if include_query {
        if let Some(query) = truthy(env, b"QUERY_STRING") {
            out.push(b'?');
            out.extend_from_slice(query);
        }
    }
    Ok(())
}

/// POSIX `posixpath.normpath`: collapses `//` and `.`, resolves `..` against what precedes
/// it, keeps exactly two leading slashes (three or more become one), and gives `.` for an
/// empty result.
pub fn normpath(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return b".".to_vec();
    }
    let initial = if path.starts_with(b"//") && !path.starts_with(b"///") {
        2
    } else {
        usize::from(path.starts_with(b"/"))
    };
    let mut comps: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        if comp.is_empty() || comp == b"." {
            continue;
        }
        if comp != b".." || (initial == 0 && comps.is_empty()) || comps.last() == Some(&&b".."[..])
        {
            comps.push(comp);
        } else {
            comps.pop();
        }
    }
    let mut out = vec![b'/'; initial];
    out.extend_from_slice(&comps.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

/// What shift_path_info does to an environ: the new SCRIPT_NAME and PATH_INFO, and the name
/// it returns (None where wsgiref returns None after changing them: a last segment `.`).
#[derive(Debug, PartialEq, Eq)]
pub struct Shift {
    pub name: Option<Vec<u8>>,
    pub script_name: Vec<u8>,
    pub path_info: Vec<u8>,
}

/// wsgiref.util.shift_path_info as a pure function of SCRIPT_NAME (absent reads as empty)
/// and PATH_INFO. `Ok(None)` when PATH_INFO is empty: wsgiref returns None and changes
/// nothing. A non-empty PATH_INFO without any `/` is GW_STATUS_INVALID_ARGUMENT (wsgiref's
/// IndexError). Otherwise the middle segments lose their empty and `.` parts, segment 1 is
/// the name, SCRIPT_NAME becomes `normpath(SCRIPT_NAME + "/" + name)` without one trailing
/// `/` (with one added back when the name is empty), PATH_INFO the remaining segments.
pub fn shift_path_info(script_name: &[u8], path_info: &[u8]) -> Result<Option<Shift>, Error> {
    if path_info.is_empty() {
        return Ok(None);
    }
    let mut parts: Vec<&[u8]> = path_info.split(|&b| b == b'/').collect();
    if parts.len() < 2 {
        return Err(Error::new(
            Status::InvalidArgument,
            "PATH_INFO has no '/' to shift at (IndexError in wsgiref)",
        ));
    }
    let last = parts.len() - 1;
    let mut kept: Vec<&[u8]> = vec![parts[0]];
    kept.extend(
        parts[1..last]
            .iter()
            .copied()
            .filter(|p| !p.is_empty() && *p != b"."),
    );
    kept.push(parts[last]);
    parts = kept;
    let name = parts.remove(1);

    let mut joined = script_name.to_vec();
    joined.push(b'/');
    joined.extend_from_slice(name);
    let mut script = normpath(&joined);
    if script.ends_with(b"/") {
        script.pop();
    }
    if name.is_empty() && !script.ends_with(b"/") {
        script.push(b'/');
    }
    Ok(Some(Shift {
        name: (name != b".").then(|| name.to_vec()),
        script_name: script,
        path_info: parts.join(&b'/'),
    }))
}

/// shift_path_info applied to `env`: SCRIPT_NAME then PATH_INFO are set (nothing changes on
/// failure), and the shifted name is returned (None as wsgiref's None).
pub fn shift_path_info_environ(env: &mut Environ) -> Result<Option<Vec<u8>>, Error> {
    let path = env.get(b"PATH_INFO").unwrap_or(b"");
    let script = env.get(b"SCRIPT_NAME").unwrap_or(b"");
    let Some(shift) = shift_path_info(script, path)? else {
        return Ok(None);
    };
    apply_shift(env, &shift)?;
    Ok(shift.name)
}

/// Stores a shift's SCRIPT_NAME and PATH_INFO; when the second set fails the first is undone,
/// so the environ is changed wholly or not at all.
pub fn apply_shift(env: &mut Environ, shift: &Shift) -> Result<(), Error> {
    let old_script = env.get(b"SCRIPT_NAME").map(<[u8]>::to_vec);
    env.set(b"SCRIPT_NAME", &shift.script_name)?;
    if let Err(e) = env.set(b"PATH_INFO", &shift.path_info) {
        let _ = match old_script {
            Some(old) => env.set(b"SCRIPT_NAME", &old),
            None => env.remove(b"SCRIPT_NAME").map(drop),
        };
        return Err(e);
    }
    Ok(())
}

/// The values setup_testing_defaults gives the wsgi.* keys that are Python objects in
/// wsgiref; they are the byte strings a handler puts in a request's environ, so a test
/// environ and a request's compare equal.
pub(crate) const TESTING_WSGI_DEFAULTS: [(&[u8], &[u8]); 6] = [
    (b"wsgi.version", b"1.0"),
    (b"wsgi.run_once", b"0"),
    (b"wsgi.multithread", b"0"),
    (b"wsgi.multiprocess", b"0"),
    (b"wsgi.input", b"gw_request_input"),
    (b"wsgi.errors", b"gw_request_errors"),
];

/// wsgiref.util.setup_testing_defaults: setdefault of, in this order, SERVER_NAME
/// `127.0.0.1`, SERVER_PROTOCOL `HTTP/1.0`, HTTP_HOST (SERVER_NAME's value), REQUEST_METHOD
/// `GET`, SCRIPT_NAME `` and PATH_INFO `/` only when both are absent, the wsgi.* keys
/// (TESTING_WSGI_DEFAULTS), wsgi.url_scheme from guess_scheme, then SERVER_PORT `80` for
/// http or `443` for https (no SERVER_PORT for another scheme). Existing keys are never
/// replaced, even empty ones.
pub fn setup_testing_defaults(env: &mut Environ) -> Result<(), Error> {
    env.set_default(b"SERVER_NAME", b"127.0.0.1")?;
    env.set_default(b"SERVER_PROTOCOL", b"HTTP/1.0")?;
    let server_name = env.get(b"SERVER_NAME").unwrap_or(b"").to_vec();
    env.set_default(b"HTTP_HOST", &server_name)?;
    env.set_default(b"REQUEST_METHOD", b"GET")?;
    if !env.contains(b"SCRIPT_NAME") && !env.contains(b"PATH_INFO") {
        env.set_default(b"SCRIPT_NAME", b"")?;
        env.set_default(b"PATH_INFO", b"/")?;
    }
    for (name, value) in TESTING_WSGI_DEFAULTS {
        env.set_default(name, value)?;
    }
    let scheme = guess_scheme(env.get(b"HTTPS"));
    env.set_default(b"wsgi.url_scheme", scheme)?;
    match env.get(b"wsgi.url_scheme") {
        Some(b"http") => env.set_default(b"SERVER_PORT", b"80"),
        Some(b"https") => env.set_default(b"SERVER_PORT", b"443"),
        _ => Ok(()),
    }
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
    /// Environ keys and values for a test case.
    type Pairs<'a> = &'a [(&'a str, &'a [u8])];

    fn environ(pairs: &[(&str, &[u8])]) -> Environ {
        let mut env = Environ::new();
        for (k, v) in pairs {
            env.set(k.as_bytes(), v).unwrap();
        }
        env
    }

    /// test_wsgiref UtilityTests.checkShift: setup_testing_defaults, shift, compare.
    #[test]
    fn shift_path_info_matches_wsgiref_vectors() {
        type Case<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>, &'a [u8], &'a [u8]);
        let cases: &[Case] = &[
            // testSimpleShifts
            (b"", b"/", Some(b""), b"/", b""),
            (b"", b"/x", Some(b"x"), b"/x", b""),
            (b"/", b"", None, b"/", b""),
            (b"/a", b"/x/y", Some(b"x"), b"/a/x", b"/y"),
            (b"/a", b"/x/", Some(b"x"), b"/a/x", b"/"),
            // testNormalizedShifts
            (b"/a/b", b"/../y", Some(b".."), b"/a", b"/y"),
            (b"", b"/../y", Some(b".."), b"", b"/y"),
            (b"/a/b", b"//y", Some(b"y"), b"/a/b/y", b""),
            (b"/a/b", b"//y/", Some(b"y"), b"/a/b/y", b"/"),
            (b"/a/b", b"/./y", Some(b"y"), b"/a/b/y", b""),
            (b"/a/b", b"/./y/", Some(b"y"), b"/a/b/y", b"/"),
            (b"/a/b", b"///./..//y/.//", Some(b".."), b"/a", b"/y/"),
            (b"/a/b", b"///", Some(b""), b"/a/b/", b""),
            (b"/a/b", b"/.//", Some(b""), b"/a/b/", b""),
            (b"/a/b", b"/x//", Some(b"x"), b"/a/b/x", b"/"),
            (b"/a/b", b"/.", None, b"/a/b", b""),
            // posixpath.normpath keeps exactly two leading slashes (reference, section 3)
            (b"/", b"/x", Some(b"x"), b"//x", b""),
            (b"//", b"/x", Some(b"x"), b"/x", b""),
            // no leading '/' but a later one: wsgiref shifts the second segment
            (b"/s", b"x/y", Some(b"y"), b"/s/y", b"x"),
        ];
        for &(sn, pi, name, sn_out, pi_out) in cases {
            let mut env = environ(&[("SCRIPT_NAME", sn), ("PATH_INFO", pi)]);
            setup_testing_defaults(&mut env).unwrap();
            let got = shift_path_info_environ(&mut env).unwrap();
            let what = format!("{:?} {:?}", escape(sn), escape(pi));
            assert_eq!(got.as_deref(), name, "name for {what}");
            assert_eq!(
                env.get(b"PATH_INFO").unwrap(),
                pi_out,
                "PATH_INFO for {what}"
            );
            assert_eq!(
                env.get(b"SCRIPT_NAME").unwrap(),
                sn_out,
                "SCRIPT_NAME for {what}"
            );
        }
    }

    fn escape(b: &[u8]) -> String {
        crate::status::escape_bytes(b)
    }

    #[test]
    fn shift_path_info_without_path_changes_nothing() {
        let mut env = environ(&[("PATH_INFO", b"")]);
        assert_eq!(shift_path_info_environ(&mut env).unwrap(), None);
        assert!(!env.contains(b"SCRIPT_NAME"));
        let mut env = Environ::new();
        assert_eq!(shift_path_info_environ(&mut env).unwrap(), None);
        assert_eq!(env.len(), 0);
        let mut env = environ(&[("SCRIPT_NAME", b"/a"), ("PATH_INFO", b"x")]);
        let err = shift_path_info_environ(&mut env).unwrap_err();
        assert_eq!(err.status, Status::InvalidArgument);
        assert_eq!(env.get(b"SCRIPT_NAME").unwrap(), b"/a");
        assert_eq!(env.get(b"PATH_INFO").unwrap(), b"x");
    }

    #[test]
    fn normpath_matches_posixpath() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b"."),
            (b"/", b"/"),
            (b"//", b"//"),
            (b"///", b"/"),
            (b"/a/b/..", b"/a"),
            (b"/..", b"/"),
            (b"a/..", b"."),
            (b"../a", b"../a"),
            (b"a/../../b", b"../b"),
            (b"//a//./b/", b"//a/b"),
            (b"/\xe4/./x", b"/\xe4/x"),
        ];
        for &(path, want) in cases {
            assert_eq!(normpath(path), want, "{}", escape(path));
        }
    }

    /// testDefaults: every key and its default; the wsgi.* objects as their byte strings.
    #[test]
    fn setup_testing_defaults_sets_wsgiref_keys_in_order() {
        let mut env = Environ::new();
        setup_testing_defaults(&mut env).unwrap();
        let mut got = Vec::new();
        let mut cursor = 0;
        while let Some((k, v)) = env.next(&mut cursor) {
            got.push((k.to_vec(), v.to_vec()));
        }
        let want: Vec<(Vec<u8>, Vec<u8>)> = [
            ("SERVER_NAME", "127.0.0.1"),
            ("SERVER_PROTOCOL", "HTTP/1.0"),
            ("HTTP_HOST", "127.0.0.1"),
            ("REQUEST_METHOD", "GET"),
            ("SCRIPT_NAME", ""),
            ("PATH_INFO", "/"),
            ("wsgi.version", "1.0"),
            ("wsgi.run_once", "0"),
            ("wsgi.multithread", "0"),
            ("wsgi.multiprocess", "0"),
            ("wsgi.input", "gw_request_input"),
            ("wsgi.errors", "gw_request_errors"),
            ("wsgi.url_scheme", "http"),
            ("SERVER_PORT", "80"),
        ]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
        assert_eq!(got, want);
        // checkDefault's second half: an existing value, even empty, is kept.
        for (key, _) in &want {
            let mut env = Environ::new();
            env.set(key, b"alt").unwrap();
            setup_testing_defaults(&mut env).unwrap();
            assert_eq!(env.get(key).unwrap(), b"alt");
        }
    }

    /// testCrossDefaults, and the SCRIPT_NAME / PATH_INFO pair rule.
    #[test]
    fn setup_testing_defaults_cross_defaults() {
        let cases: &[(&str, &[u8], &str, &[u8])] = &[
            ("HTTP_HOST", b"foo.bar", "SERVER_NAME", b"foo.bar"),
            ("wsgi.url_scheme", b"https", "HTTPS", b"on"),
            ("wsgi.url_scheme", b"https", "HTTPS", b"1"),
            ("wsgi.url_scheme", b"https", "HTTPS", b"yes"),
            ("wsgi.url_scheme", b"http", "HTTPS", b"foo"),
            ("SERVER_PORT", b"80", "HTTPS", b"foo"),
            ("SERVER_PORT", b"443", "HTTPS", b"on"),
        ];
        for &(key, value, given, given_value) in cases {
            let mut env = environ(&[(given, given_value)]);
            setup_testing_defaults(&mut env).unwrap();
            assert_eq!(
                env.get(key.as_bytes()).unwrap(),
                value,
                "{key} from {given}"
            );
        }
        let mut env = environ(&[("PATH_INFO", b"/x")]);
        setup_testing_defaults(&mut env).unwrap();
        assert!(!env.contains(b"SCRIPT_NAME"));
        let mut env = environ(&[("wsgi.url_scheme", b"ftp")]);
        setup_testing_defaults(&mut env).unwrap();
        assert!(!env.contains(b"SERVER_PORT"));
    }

    /// testAppURIs (checkAppURI runs setup_testing_defaults first; HTTP_HOST=None there is
    /// an HTTP_HOST wsgiref treats as false, here an empty one).
    #[test]
    fn application_uri_matches_wsgiref_vectors() {
        let cases: &[(&[u8], Pairs)] = &[
            (b"http://127.0.0.1/", &[]),
            (b"http://127.0.0.1/spam", &[("SCRIPT_NAME", b"/spam")]),
            (b"http://127.0.0.1/sp%E4m", &[("SCRIPT_NAME", b"/sp\xe4m")]),
            (
                b"http://spam.example.com:2071/",
                &[
                    ("HTTP_HOST", b"spam.example.com:2071"),
                    ("SERVER_PORT", b"2071"),
                ],
            ),
            (
                b"http://spam.example.com/",
                &[("SERVER_NAME", b"spam.example.com")],
            ),
            (
                b"http://127.0.0.1/",
                &[
                    ("HTTP_HOST", b"127.0.0.1"),
                    ("SERVER_NAME", b"spam.example.com"),
                ],
            ),
            (b"https://127.0.0.1/", &[("HTTPS", b"on")]),
            (
                b"http://127.0.0.1:8000/",
                &[("SERVER_PORT", b"8000"), ("HTTP_HOST", b"")],
            ),
            // reference section 3, observed
            (
                b"https://127.0.0.1:8443/",
                &[
                    ("HTTPS", b"on"),
                    ("SERVER_PORT", b"8443"),
                    ("HTTP_HOST", b""),
                ],
            ),
            (
                b"http://127.0.0.1:443/",
                &[("SERVER_PORT", b"443"), ("HTTP_HOST", b"")],
            ),
            (
                b"http://127.0.0.1/a%20b%3Ac%40d%21%24%26%27%28%29%2A%2B%3B%3D%2C~",
                &[("SCRIPT_NAME", b"/a b:c@d!$&'()*+;=,~")],
            ),
        ];
        for &(want, pairs) in cases {
            let mut env = environ(pairs);
            setup_testing_defaults(&mut env).unwrap();
            let mut out = b"keep:".to_vec();
            application_uri(&env, &mut out).unwrap();
            assert_eq!(escape(&out[5..]), escape(want), "{pairs:?}");
        }
    }

    /// testReqURIs.
    #[test]
    fn request_uri_matches_wsgiref_vectors() {
        let cases: &[(&[u8], bool, Pairs)] = &[
            (b"http://127.0.0.1/", true, &[]),
            (b"http://127.0.0.1/spam", true, &[("SCRIPT_NAME", b"/spam")]),
            (
                b"http://127.0.0.1/sp%E4m",
                true,
                &[("SCRIPT_NAME", b"/sp\xe4m")],
            ),
            (
                b"http://127.0.0.1/spammity/spam",
                true,
                &[("SCRIPT_NAME", b"/spammity"), ("PATH_INFO", b"/spam")],
            ),
            (
                b"http://127.0.0.1/spammity/sp%E4m",
                true,
                &[("SCRIPT_NAME", b"/spammity"), ("PATH_INFO", b"/sp\xe4m")],
            ),
            (
                b"http://127.0.0.1/spammity/spam;ham",
                true,
                &[("SCRIPT_NAME", b"/spammity"), ("PATH_INFO", b"/spam;ham")],
            ),
            (
                b"http://127.0.0.1/spammity/spam;cookie=1234,5678",
                true,
                &[
                    ("SCRIPT_NAME", b"/spammity"),
                    ("PATH_INFO", b"/spam;cookie=1234,5678"),
                ],
            ),
            (
                b"http://127.0.0.1/spammity/spam?say=ni",
                true,
                &[
                    ("SCRIPT_NAME", b"/spammity"),
                    ("PATH_INFO", b"/spam"),
                    ("QUERY_STRING", b"say=ni"),
                ],
            ),
            (
                b"http://127.0.0.1/spammity/spam?s%E4y=ni",
                true,
                &[
                    ("SCRIPT_NAME", b"/spammity"),
                    ("PATH_INFO", b"/spam"),
                    ("QUERY_STRING", b"s%E4y=ni"),
                ],
            ),
            (
                b"http://127.0.0.1/spammity/spam",
                false,
                &[
                    ("SCRIPT_NAME", b"/spammity"),
                    ("PATH_INFO", b"/spam"),
                    ("QUERY_STRING", b"say=ni"),
                ],
            ),
            // reference section 3: an empty SCRIPT_NAME drops PATH_INFO's first byte, even
            // when it is not a '/'; the query goes out verbatim.
            (
                b"http://127.0.0.1/",
                true,
                &[("SCRIPT_NAME", b""), ("PATH_INFO", b"x")],
            ),
            (
                b"http://127.0.0.1/a?b c#d",
                true,
                &[("PATH_INFO", b"/a"), ("QUERY_STRING", b"b c#d")],
            ),
        ];
        for &(want, query, pairs) in cases {
            let mut env = environ(pairs);
            setup_testing_defaults(&mut env).unwrap();
            let mut out = Vec::new();
            request_uri(&env, query, &mut out).unwrap();
            assert_eq!(escape(&out), escape(want), "{pairs:?}");
        }
    }

    #[test]
    fn uris_need_wsgiref_keys() {
        let mut out = Vec::new();
        let err = application_uri(&Environ::new(), &mut out).unwrap_err();
        assert_eq!(err.status, Status::NotFound);
        assert!(err.message.contains("wsgi.url_scheme"));
        let env = environ(&[("wsgi.url_scheme", b"http"), ("SERVER_NAME", b"h")]);
        let err = request_uri(&env, true, &mut out).unwrap_err();
        assert!(err.message.contains("SERVER_PORT"));
        assert!(out.is_empty());
    }

    /// testGuessScheme.
    #[test]
    fn guess_scheme_matches_wsgiref_vectors() {
        assert_eq!(guess_scheme(None), b"http");
        assert_eq!(guess_scheme(Some(b"foo")), b"http");
        assert_eq!(guess_scheme(Some(b"on")), b"https");
        assert_eq!(guess_scheme(Some(b"yes")), b"https");
        assert_eq!(guess_scheme(Some(b"1")), b"https");
    }
}
