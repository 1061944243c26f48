//! Validation mode: wsgiref.validate's checks, as far as byte strings can express them, on
//! both sides of the gateway: the host's environ before the application runs, and the
//! application's start_response and body. Each rule's message is the one wsgiref's
//! validator gives, so a violation reads the same in both worlds. Rules the library
//! enforces in every mode (status syntax, header name and value bytes, hop-by-hop headers)
//! and guarantees by construction (wsgi.* keys and their types, write or iteration after
//! close, close exactly once) are not repeated here.

use crate::environ::Environ;
use crate::headers::HeaderList;
use crate::status::escape_bytes;

/// How bad a violation is: an error fails the request (wsgiref's AssertionError); a warning
/// is only reported (wsgiref's WSGIWarning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub severity: Severity,
    pub message: String,
}

fn error(message: String) -> Violation {
    Violation {
        severity: Severity::Error,
        message,
    }
}

fn warning(message: String) -> Violation {
    Violation {
        severity: Severity::Warning,
        message,
    }
}

/// Python's repr of a latin-1 str, near enough: quoted, control bytes escaped.
fn repr(value: &[u8]) -> String {
    format!("'{}'", escape_bytes(value))
}

const REQUIRED: [&str; 3] = ["REQUEST_METHOD", "SERVER_NAME", "SERVER_PORT"];
const KNOWN_METHODS: [&[u8]; 8] = [
    b"GET", b"HEAD", b"POST", b"OPTIONS", b"PATCH", b"PUT", b"DELETE", b"TRACE",
];

/// wsgiref.validate's check_environ, in its order: the warnings met on the way, and the
/// first error (where an assertion would stop).
pub fn check_environ(env: &Environ) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut check = |violation: Option<Violation>| {
        if let Some(v) = violation {
            let stop = v.severity == Severity::Error;
            found.push(v);
            return stop;
        }
        false
    };
    for key in REQUIRED {
        let missing = (!env.contains(key.as_bytes()))
            .then(|| error(format!("Environment missing required key: '{key}'")));
        if check(missing) {
            return found;
        }
    }
    for key in ["HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"] {
        let present = env.contains(key.as_bytes()).then(|| {
            error(format!(
                "Environment should not have the key: {key} (use {} instead)",
                &key[5..]
            ))
        });
        if check(present) {
            return found;
        }
    }
    check((!env.contains(b"QUERY_STRING")).then(|| {
        warning(
            "QUERY_STRING is not in the WSGI environment; the cgi module will use sys.argv \
             when this variable is missing, so application errors are more likely"
                .into(),
        )
    }));
    let method = env.get(b"REQUEST_METHOD").unwrap_or_default();
    check(
        (!KNOWN_METHODS.contains(&method))
            .then(|| warning(format!("Unknown REQUEST_METHOD: {}", repr(method)))),
    );
    let script_name = env.get(b"SCRIPT_NAME").unwrap_or_default();
    let path_info = env.get(b"PATH_INFO").unwrap_or_default();
    let rules = [
        (!script_name.is_empty() && !script_name.starts_with(b"/")).then(|| {
            error(format!(
                "SCRIPT_NAME doesn't start with /: {}",
                repr(script_name)
            ))
        }),
        (!path_info.is_empty() && !path_info.starts_with(b"/")).then(|| {
            error(format!(
                "PATH_INFO doesn't start with /: {}",
                repr(path_info)
            ))
        }),
        env.get(b"CONTENT_LENGTH")
            .filter(|v| !v.is_empty() && !is_python_nonnegative_int(v))
            .map(|v| error(format!("Invalid CONTENT_LENGTH: {}", repr(v)))),
        (script_name.is_empty() && !env.contains(b"PATH_INFO")).then(|| {
            error(
                "One of SCRIPT_NAME or PATH_INFO are required (PATH_INFO should at least be \
                 '/' if SCRIPT_NAME is empty)"
                    .into(),
            )
        }),
        (script_name == b"/").then(|| {
            error(
                "SCRIPT_NAME cannot be '/'; it should instead be '', and PATH_INFO should be '/'"
                    .into(),
            )
        }),
    ];
    for rule in rules {
        if check(rule) {
            break;
        }
    }
    found
}

/// `int(value) >= 0` as Python reads it: surrounding whitespace, an optional sign, ASCII
/// digits with single underscores between them. (A value int() refuses is an error too:
/// the validator's int() raises.)
fn is_python_nonnegative_int(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    let (negative, digits) = match v.first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    };
    let well_formed = !digits.is_empty()
        && digits.first().is_some_and(u8::is_ascii_digit)
        && digits.last().is_some_and(u8::is_ascii_digit)
        && digits.iter().all(|&b| b.is_ascii_digit() || b == b'_')
        && !digits.windows(2).any(|w| w == b"__");
    well_formed && (!negative || digits.iter().all(|&b| b == b'0' || b == b'_'))
}

/// wsgiref.validate's check_headers and check_content_type for a start_response call whose
/// status and headers passed the library's own checks: the first rule broken.
pub fn check_response(status: &[u8], headers: &HeaderList) -> Option<String> {
    for (name, value) in headers.iter() {
        if name.eq_ignore_ascii_case(b"status") {
            return Some(format!(
                "The Status header cannot be used; it conflicts with CGI script, and HTTP \
                 status is not given through headers (value: {}).",
                repr(value)
            ));
        }
        if name.ends_with(b"-") || name.ends_with(b"_") {
            return Some(format!("Names may not end in '-' or '_': {}", repr(name)));
        }
    }
    let code = &status[..3];
    let no_body = code == b"204" || code == b"304";
    let has_type = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(b"content-type"));
    match (has_type, no_body) {
        (true, true) => Some(format!(
            "Content-Type header found in a {} response, which must not return content.",
            String::from_utf8_lossy(code)
        )),
        (false, false) => Some(format!(
            "No Content-Type header found in headers ({})",
            python_header_list(headers)
        )),
        _ => None,
    }
}

/// The header list as Python prints a list of tuples.
fn python_header_list(headers: &HeaderList) -> String {
    let items: Vec<String> = headers
        .iter()
        .map(|(n, v)| format!("({}, {})", repr(n), repr(v)))
        .collect();
    format!("[{}]", items.join(", "))
}

/// The body's first block came before start_response.
pub const ITERATED_BEFORE_START: &str = "The application returns and we started iterating over \
     its body, but start_response has not yet been called";

#[cfg(test)]
mod tests {
    use super::*;

    fn environ(pairs: &[(&str, &str)]) -> Environ {
        let mut env = Environ::new();
        for (k, v) in pairs {
            env.set(k.as_bytes(), v.as_bytes()).unwrap();
        }
        env
    }

    const GOOD: [(&str, &str); 6] = [
        ("REQUEST_METHOD", "GET"),
        ("SERVER_NAME", "127.0.0.1"),
        ("SERVER_PORT", "80"),
        ("QUERY_STRING", ""),
        ("SCRIPT_NAME", ""),
        ("PATH_INFO", "/"),
    ];

    fn with(change: &[(&str, Option<&str>)]) -> Vec<Violation> {
        let mut env = environ(&GOOD);
        for (k, v) in change {
            match v {
                Some(v) => env.set(k.as_bytes(), v.as_bytes()).unwrap(),
                None => {
                    env.remove(k.as_bytes()).unwrap();
                }
            }
        }
        check_environ(&env)
    }

    fn messages(found: &[Violation]) -> Vec<(Severity, &str)> {
        found
            .iter()
            .map(|v| (v.severity, v.message.as_str()))
            .collect()
    }

    #[test]
    fn environ_rules_with_the_validators_messages() {
        use Severity::{Error as E, Warning as W};
        assert_eq!(with(&[]), vec![]);
        // (changes to a good environ, what the validator reports)
        type Case<'a> = (&'a [(&'a str, Option<&'a str>)], &'a [(Severity, &'a str)]);
        let table: &[Case] = &[
            (&[("SERVER_PORT", None)], &[(E, "Environment missing required key: 'SERVER_PORT'")]),
            (
                &[("HTTP_CONTENT_TYPE", Some("x"))],
                &[(E, "Environment should not have the key: HTTP_CONTENT_TYPE (use CONTENT_TYPE instead)")],
            ),
            (
                &[("QUERY_STRING", None), ("REQUEST_METHOD", Some("BREW"))],
                &[
                    (W, "QUERY_STRING is not in the WSGI environment; the cgi module will use sys.argv when this variable is missing, so application errors are more likely"),
                    (W, "Unknown REQUEST_METHOD: 'BREW'"),
                ],
            ),
            (&[("SCRIPT_NAME", Some("app"))], &[(E, "SCRIPT_NAME doesn't start with /: 'app'")]),
            (&[("PATH_INFO", Some("x"))], &[(E, "PATH_INFO doesn't start with /: 'x'")]),
            (&[("CONTENT_LENGTH", Some("-1"))], &[(E, "Invalid CONTENT_LENGTH: '-1'")]),
            (&[("CONTENT_LENGTH", Some("ten"))], &[(E, "Invalid CONTENT_LENGTH: 'ten'")]),
            (&[("CONTENT_LENGTH", Some(" 1_0 "))], &[]),
            (&[("CONTENT_LENGTH", Some("-0"))], &[]),
            (&[("CONTENT_LENGTH", Some(""))], &[]),
            (
                &[("PATH_INFO", None)],
                &[(E, "One of SCRIPT_NAME or PATH_INFO are required (PATH_INFO should at least be '/' if SCRIPT_NAME is empty)")],
            ),
            (&[("SCRIPT_NAME", Some("/app")), ("PATH_INFO", None)], &[]),
            (
                &[("SCRIPT_NAME", Some("/")), ("PATH_INFO", Some(""))],
                &[(E, "SCRIPT_NAME cannot be '/'; it should instead be '', and PATH_INFO should be '/'")],
            ),
            // The first error stops the checks, as an assertion does.
            (
                &[("REQUEST_METHOD", None), ("SERVER_NAME", None)],
                &[(E, "Environment missing required key: 'REQUEST_METHOD'")],
            ),
        ];
        for (change, expected) in table {
            assert_eq!(messages(&with(change)), *expected, "{change:?}");
        }
    }

    #[test]
    fn response_rules_with_the_validators_messages() {
        let list = |pairs: &[(&str, &str)]| {
            let mut l = HeaderList::default();
            for (n, v) in pairs {
                l.push(n.as_bytes(), v.as_bytes());
            }
            l
        };
        let ct = [("Content-Type", "text/plain")];
        assert_eq!(check_response(b"200 OK", &list(&ct)), None);
        assert_eq!(check_response(b"204 No Content", &list(&[])), None);
        assert_eq!(
            check_response(b"304 Not Modified", &list(&[("ETag", "x")])),
            None
        );
        assert_eq!(
            check_response(b"200 OK", &list(&[("X-Foo", "1")])).unwrap(),
            "No Content-Type header found in headers ([('X-Foo', '1')])"
        );
        assert_eq!(
            check_response(b"204 No Content", &list(&ct)).unwrap(),
            "Content-Type header found in a 204 response, which must not return content."
        );
        assert_eq!(
            check_response(b"200 OK", &list(&[("Status", "200 OK")])).unwrap(),
            "The Status header cannot be used; it conflicts with CGI script, and HTTP status is not given through headers (value: '200 OK')."
        );
        for name in ["X-Foo-", "X_Foo_"] {
            assert_eq!(
                check_response(b"200 OK", &list(&[("Content-Type", "a"), (name, "1")])).unwrap(),
                format!("Names may not end in '-' or '_': '{name}'")
            );
        }
    }
}
