//! wsgiref.headers.Headers on byte strings: an ordered list of (name, value) pairs with
//! case-insensitive lookups, the mutators of wsgiref's Headers, add_header's parameter
//! quoting and the formatted block.
//!
//! Names and values are bytes standing for latin-1 text; names compare as Python's
//! `str.lower()` compares latin-1 text (ASCII letters and the latin-1 capitals À-Þ but ×).
//! Every mutator and lookup checks its names and values as wsgiref's patched
//! `_convert_string_type` does: no control byte in a name, none but HTAB in a value. These
//! are the rules of the container; `gw_request_start_response` checks names as tokens and
//! refuses hop-by-hop headers when the list is handed to it.

use crate::status::{escape_bytes, Error, Status};

/// Longest header name accepted (bytes), as the environ's names.
const NAME_LIMIT: usize = 64 * 1024;
/// Longest header value accepted (bytes), as the environ's values.
const VALUE_LIMIT: usize = 1024 * 1024;

/// Python's `str.lower()` on one latin-1 character.
fn latin1_lower(b: u8) -> u8 {
    match b {
        b'A'..=b'Z' | 0xC0..=0xD6 | 0xD8..=0xDE => b + 0x20,
        _ => b,
    }
}

/// `a.lower() == b.lower()` for latin-1 text.
fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(&x, &y)| latin1_lower(x) == latin1_lower(y))
}

fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// A name as wsgiref's patched Headers accepts it: no control byte (0x00-0x1F, 0x7F).
pub fn check_name(name: &[u8]) -> Result<(), Error> {
    if name.len() > NAME_LIMIT {
        return Err(Error::new(
            Status::TooLarge,
            "header name longer than its limit (64 KiB)",
        ));
    }
    if name.iter().any(|&b| is_control(b)) {
        return Err(Error::new(
            Status::InvalidHeader,
            format!(
                "Control characters not allowed in headers: name '{}'",
                escape_bytes(name)
            ),
        ));
    }
    Ok(())
}

/// A value as wsgiref's patched Headers accepts it: no control byte but HTAB.
pub fn check_value(value: &[u8]) -> Result<(), Error> {
    if value.len() > VALUE_LIMIT {
        return Err(Error::new(
            Status::TooLarge,
            "header value longer than its limit (1 MiB)",
        ));
    }
    if value.iter().any(|&b| is_control(b) && b != b'\t') {
        return Err(Error::new(
            Status::InvalidHeader,
            format!(
                "Control characters not allowed in headers: value '{}'",
                escape_bytes(value)
            ),
        ));
    }
    Ok(())
}

/// wsgiref.headers.Headers. The list is the object's own (C has no shared list to wrap).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl HeaderMap {
    pub fn new() -> HeaderMap {
        HeaderMap::default()
    }

    /// `Headers(list)`: a copy of `pairs`, each checked; nothing is kept when one is refused.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<HeaderMap, Error> {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            check_name(name)?;
            check_value(value)?;
            map.entries.push((name.to_vec(), value.to_vec()));
        }
        Ok(map)
    }

    /// `len(h)`: entries, duplicates included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `items()[index]`.
    pub fn entry(&self, index: usize) -> Option<(&[u8], &[u8])> {
        self.entries
            .get(index)
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries
            .iter()
            .map(|(n, v)| (n.as_slice(), v.as_slice()))
    }

    /// `h.get(name)`: the first matching value.
    pub fn get(&self, name: &[u8]) -> Result<Option<&[u8]>, Error> {
        check_name(name)?;
        Ok(self.find(name, 0).map(|i| self.entries[i].1.as_slice()))
    }

    /// `get_all(name)` one at a time: the first match at or after `*cursor`, with `*cursor`
    /// moved past it. Start from 0; None at the end.
    pub fn get_next(&self, name: &[u8], cursor: &mut usize) -> Result<Option<&[u8]>, Error> {
        check_name(name)?;
        Ok(self.find(name, *cursor).map(|i| {
            *cursor = i + 1;
            self.entries[i].1.as_slice()
        }))
    }

    /// `h.get_all(name)`.
    pub fn get_all(&self, name: &[u8]) -> Result<Vec<&[u8]>, Error> {
        check_name(name)?;
        Ok(self
            .entries
            .iter()
            .filter(|(n, _)| same_name(n, name))
            .map(|(_, v)| v.as_slice())
            .collect())
    }

    fn find(&self, name: &[u8], from: usize) -> Option<usize> {
        let start = from.min(self.entries.len());
        self.entries[start..]
            .iter()
            .position(|(n, _)| same_name(n, name))
            .map(|i| start + i)
    }

    /// `del h[name]`: every match removed; an absent name is not an error. Returns how many.
    pub fn delete(&mut self, name: &[u8]) -> Result<usize, Error> {
        check_name(name)?;
        let before = self.entries.len();
        self.entries.retain(|(n, _)| !same_name(n, name));
        Ok(before - self.entries.len())
    }

    /// `h[name] = value`: every match removed, then `(name, value)` appended at the end
    /// with the caller's spelling. Nothing changes when the value is refused.
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        check_value(value)?;
        self.delete(name)?;
        self.entries.push((name.to_vec(), value.to_vec()));
        Ok(())
    }

    /// `h.setdefault(name, value)`: the first matching value, or `value` appended and
    /// returned.
    pub fn setdefault(&mut self, name: &[u8], value: &[u8]) -> Result<&[u8], Error> {
        check_name(name)?;
        let index = match self.find(name, 0) {
            Some(i) => i,
            None => {
                check_value(value)?;
                self.entries.push((name.to_vec(), value.to_vec()));
                self.entries.len() - 1
            }
        };
        Ok(&self.entries[index].1)
    }

    /// `h.add_header(name, value, **params)`: the parts are `value` (unless None) and each
    /// parameter in order, joined with `"; "`. A parameter's name has `_` turned into `-`;
    /// an empty value gives the bare name (wsgiref gives it for None and for ''), any other
    /// is always quoted: `name="value"` with `\` and `"` escaped by a backslash. Appended;
    /// existing headers of that name stay.
    pub fn add_header(
        &mut self,
        name: &[u8],
        value: Option<&[u8]>,
        params: &[(&[u8], &[u8])],
    ) -> Result<(), Error> {
        check_name(name)?;
        let mut joined = Vec::new();
        let mut first = true;
        let mut part = |joined: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                joined.extend_from_slice(b"; ");
            }
        };
        if let Some(value) = value {
            check_value(value)?;
            part(&mut joined);
            joined.extend_from_slice(value);
        }
        for &(key, val) in params {
            check_name(key)?;
            check_value(val)?;
            part(&mut joined);
            joined.extend(key.iter().map(|&b| if b == b'_' { b'-' } else { b }));
            if !val.is_empty() {
                joined.extend_from_slice(b"=\"");
                for &b in val {
                    if b == b'\\' || b == b'"' {
                        joined.push(b'\\');
                    }
                    joined.push(b);
                }
                joined.push(b'"');
            }
        }
        check_value(&joined)?;
        self.entries.push((name.to_vec(), joined));
        Ok(())
    }

    /// `bytes(h)`: each `name: value\r\n` in order, then `\r\n`.
    pub fn format_into(&self, out: &mut Vec<u8>) {
        for (name, value) in &self.entries {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The length of `bytes(h)`.
    pub fn formatted_len(&self) -> usize {
        self.entries
            .iter()
            .map(|(n, v)| n.len() + v.len() + 4)
            .sum::<usize>()
            + 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(h: &HeaderMap) -> Vec<u8> {
        let mut out = Vec::new();
        h.format_into(&mut out);
        assert_eq!(out.len(), h.formatted_len());
        out
    }

    /// test_wsgiref HeaderTests.testMappingInterface.
    #[test]
    fn mapping_interface_matches_wsgiref() {
        assert_eq!(HeaderMap::new().len(), 0);
        let test: [(&[u8], &[u8]); 1] = [(b"x", b"y")];
        let h = HeaderMap::from_pairs(test).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(h.entry(0), Some((&b"x"[..], &b"y"[..])));
        assert_eq!(h.entry(1), None);

        let mut h = HeaderMap::new();
        assert_eq!(h.delete(b"foo").unwrap(), 0); // del h['foo'] does not raise
        h.set(b"Foo", b"bar").unwrap();
        for name in [&b"foo"[..], b"Foo", b"FOO"] {
            assert_eq!(h.get(name).unwrap(), Some(&b"bar"[..]));
            assert_eq!(h.get_all(name).unwrap(), vec![&b"bar"[..]]);
        }
        assert_eq!(h.get(b"bar").unwrap(), None);
        assert!(h.get_all(b"bar").unwrap().is_empty());

        h.set(b"foo", b"baz").unwrap();
        assert_eq!(h.get(b"FOO").unwrap(), Some(&b"baz"[..]));
        assert_eq!(h.get_all(b"foo").unwrap(), vec![&b"baz"[..]]);
        assert_eq!(h.entry(0), Some((&b"foo"[..], &b"baz"[..])));
        assert_eq!(h.setdefault(b"foo", b"whee").unwrap(), b"baz");
        assert_eq!(h.setdefault(b"zoo", b"whee").unwrap(), b"whee");
        assert_eq!(h.get(b"foo").unwrap(), Some(&b"baz"[..]));
        assert_eq!(h.get(b"zoo").unwrap(), Some(&b"whee"[..]));
        assert_eq!(h.len(), 2);
    }

    /// HeaderTests.testExtras.
    #[test]
    fn extras_match_wsgiref() {
        let mut h = HeaderMap::new();
        assert_eq!(formatted(&h), b"\r\n");
        h.add_header(b"foo", Some(b"bar"), &[(b"baz", b"spam")])
            .unwrap();
        assert_eq!(h.get(b"foo").unwrap(), Some(&b"bar; baz=\"spam\""[..]));
        assert_eq!(formatted(&h), b"foo: bar; baz=\"spam\"\r\n\r\n");
        h.add_header(b"Foo", Some(b"bar"), &[(b"cheese", b"")])
            .unwrap();
        assert_eq!(
            h.get_all(b"foo").unwrap(),
            vec![&b"bar; baz=\"spam\""[..], b"bar; cheese"]
        );
        assert_eq!(
            formatted(&h),
            b"foo: bar; baz=\"spam\"\r\nFoo: bar; cheese\r\n\r\n"
        );
        let mut cursor = 0;
        assert_eq!(
            h.get_next(b"FOO", &mut cursor).unwrap(),
            Some(&b"bar; baz=\"spam\""[..])
        );
        assert_eq!(
            h.get_next(b"FOO", &mut cursor).unwrap(),
            Some(&b"bar; cheese"[..])
        );
        assert_eq!(h.get_next(b"FOO", &mut cursor).unwrap(), None);
    }

    /// The reference's observed add_header results (section 2).
    #[test]
    fn add_header_quotes_as_wsgiref() {
        let mut h = HeaderMap::new();
        let params: [(&[u8], &[u8]); 6] = [
            (b"a_b", b"1"),
            (b"c", b""),
            (b"d", b""),
            (b"e", b"sp ace"),
            (b"f", b"q\"uote\\b"),
            (b"g", b"tok"),
        ];
        h.add_header(b"X", None, &params).unwrap();
        h.add_header(b"Y", Some(b""), &[]).unwrap();
        h.add_header(
            b"Content-Disposition",
            Some(b"attachment"),
            &[(b"filename", b"bud.gif")],
        )
        .unwrap();
        h.add_header(b"Z", Some(b""), &[(b"a", b"1")]).unwrap();
        assert_eq!(
            h.get(b"x").unwrap().unwrap(),
            b"a-b=\"1\"; c; d; e=\"sp ace\"; f=\"q\\\"uote\\\\b\"; g=\"tok\""
        );
        assert_eq!(h.get(b"y").unwrap(), Some(&b""[..]));
        assert_eq!(
            h.get(b"content-disposition").unwrap().unwrap(),
            b"attachment; filename=\"bud.gif\""
        );
        assert_eq!(h.get(b"z").unwrap().unwrap(), b"; a=\"1\"");
    }

    #[test]
    fn names_fold_as_latin1_lower() {
        let mut h = HeaderMap::new();
        h.set(b"X-\xc9t\xe9", b"1").unwrap();
        assert_eq!(h.get(b"x-\xe9T\xc9").unwrap(), Some(&b"1"[..]));
        // × (0xD7) and ÷ (0xF7) are not a case pair; ß (0xDF) has no capital in latin-1.
        h.set(b"\xd7", b"2").unwrap();
        assert_eq!(h.get(b"\xf7").unwrap(), None);
        assert_eq!(h.get(b"\xdf").unwrap(), None);
    }

    #[test]
    fn control_bytes_are_refused_and_change_nothing() {
        let mut h = HeaderMap::from_pairs([(&b"A"[..], &b"1"[..])]).unwrap();
        let before = h.clone();
        assert_eq!(
            h.set(b"B", b"x\r\ny").unwrap_err().status,
            Status::InvalidHeader
        );
        assert_eq!(
            h.set(b"A\n", b"x").unwrap_err().status,
            Status::InvalidHeader
        );
        assert_eq!(
            h.set(b"A", b"x\0").unwrap_err().status,
            Status::InvalidHeader
        );
        assert_eq!(
            h.add_header(b"C", Some(b"v"), &[(b"p", b"\x7f")])
                .unwrap_err()
                .status,
            Status::InvalidHeader
        );
        assert_eq!(
            h.add_header(b"C", None, &[(b"p\r", b"")])
                .unwrap_err()
                .status,
            Status::InvalidHeader
        );
        assert_eq!(
            h.setdefault(b"C", b"\n").unwrap_err().status,
            Status::InvalidHeader
        );
        assert_eq!(h.get(b"A\0").unwrap_err().status, Status::InvalidHeader);
        assert_eq!(
            h.delete(b"A\x1f").unwrap_err().status,
            Status::InvalidHeader
        );
        assert_eq!(h, before);
        // HTAB is allowed in values, not in names.
        h.set(b"T", b"a\tb").unwrap();
        assert!(h.set(b"T\t", b"a").is_err());
        let long = vec![b'a'; VALUE_LIMIT + 1];
        assert_eq!(h.set(b"L", &long).unwrap_err().status, Status::TooLarge);
        assert_eq!(
            HeaderMap::from_pairs([(&b"ok"[..], &b"1"[..]), (b"bad", b"\r")])
                .unwrap_err()
                .status,
            Status::InvalidHeader
        );
    }
}
