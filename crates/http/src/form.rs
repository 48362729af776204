//! `application/x-www-form-urlencoded` and query-string decoding (`+`, `%XX`, UTF-8 checked).
//!
//! Decoding is strict: a stray `%` or bytes that are not UTF-8 are an error the application maps
//! to 400, rather than being passed through and surprising a handler later.

/// Why a form or query string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormError::BadPercentEncoding => f.write_str("bad percent-encoding"),
            FormError::NotUtf8 => f.write_str("form data is not valid UTF-8"),
        }
    }
}

impl std::error::Error for FormError {}

/// Decodes `a=1&b=x+y` into pairs, in order. Empty segments are skipped; a segment without `=`
/// is a name with an empty value.
pub fn parse_urlencoded(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    let mut pairs = Vec::new();
    for segment in input.split(|&b| b == b'&') {
        if segment.is_empty() {
            continue;
        }
        let (name, value) = match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (&segment[..eq], &segment[eq + 1..]),
            None => (segment, &[][..]),
        };
        pairs.push((decode_component(name)?, decode_component(value)?));
    }
    Ok(pairs)
}

/// Decodes one form component: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn decode_component(input: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(percent_byte(input, i).ok_or(FormError::BadPercentEncoding)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

/// The byte encoded by the `%XX` starting at `input[at]`, if both digits are hex.
pub(crate) fn percent_byte(input: &[u8], at: usize) -> Option<u8> {
    let hi = hex_value(*input.get(at + 1)?)?;
    let lo = hex_value(*input.get(at + 2)?)?;
    Some(hi << 4 | lo)
}

/// The value of one ASCII hex digit.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(input: &str) -> Result<Vec<(String, String)>, FormError> {
        parse_urlencoded(input.as_bytes())
    }

    #[test]
    fn decodes_plus_percent_and_order() {
        let got = pairs("b=x+y&a=%41%c3%a9&c").unwrap();
        assert_eq!(
            got,
            vec![
                ("b".into(), "x y".into()),
                ("a".into(), "Aé".into()),
                ("c".into(), String::new())
            ]
        );
    }

    #[test]
    fn skips_empty_segments_and_keeps_equals_in_values() {
        assert_eq!(
            pairs("&&a=1=2&&").unwrap(),
            vec![("a".into(), "1=2".into())]
        );
        assert_eq!(pairs("").unwrap(), vec![]);
    }

    #[test]
    fn encoded_separators_stay_data() {
        assert_eq!(
            pairs("k%26=v%3D%2B").unwrap(),
            vec![("k&".into(), "v=+".into())]
        );
    }

    #[test]
    fn rejects_bad_percent_encoding() {
        for bad in ["a=%", "a=%4", "a=%zz", "%g1=x", "a=100%"] {
            assert_eq!(pairs(bad), Err(FormError::BadPercentEncoding), "{bad}");
        }
    }

    #[test]
    fn rejects_non_utf8() {
        assert_eq!(pairs("a=%ff"), Err(FormError::NotUtf8));
        assert_eq!(parse_urlencoded(b"a=\xc3"), Err(FormError::NotUtf8));
    }
}
