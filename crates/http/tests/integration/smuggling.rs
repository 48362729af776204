//! Property tests through the public parser (`parse_request`): smuggling shapes are never
//! accepted, and mutated requests never panic it nor come out ambiguous.
//!
//! The unit tests beside the parser check that random bytes do not panic it; these check what
//! an accepted request may look like. Case counts are explicit (`CASES`) so the cost is known:
//! about 6,000 parses in all, well under a second in a release build.

use http::form::parse_urlencoded;
use http::{parse_request, Limits, ProtocolError, Request};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Cases per property.
const CASES: u32 = 512;

fn config() -> Config {
    Config::with_cases(CASES)
}

/// `name` with each ASCII letter's case chosen by a bit of `mask`.
fn mixed_case(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Optional whitespace as a sender may write it around a field value.
fn ows() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(""), Just(" "), Just("\t"), Just("  "), Just(" \t")]
}

/// Transfer-Encoding values that name chunked (alone or last), however dressed.
fn chunked_value() -> impl Strategy<Value = String> {
    (
        any::<u64>(),
        prop_oneof![
            Just(""),
            Just("gzip, "),
            Just("identity, "),
            Just("chunked, ")
        ],
    )
        .prop_map(|(mask, before)| format!("{before}{}", mixed_case("chunked", mask)))
}

/// Harmless extra fields to interleave with the framing ones.
fn filler() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("X-[A-Za-z]{1,8}: [ -~]{0,12}", 0..4)
        .prop_map(|v| v.into_iter().map(|f| f.trim_end().to_string()).collect())
}

/// Builds a request head from `fields` (each without CRLF) and appends `body`.
fn request(method: &str, version: &str, fields: &[String], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} /posts {version}\r\n").into_bytes();
    for field in fields {
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A chunked-looking body that a CL-reading peer would frame differently.
fn smuggling_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        Just(b"5\r\nhello\r\n0\r\n\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Content-Length together with Transfer-Encoding is refused with 400, in any order,
    /// casing, spacing and company.
    #[test]
    fn length_with_transfer_encoding_is_never_accepted(
        cl_mask in any::<u64>(), te_mask in any::<u64>(),
        length in 0usize..100, te in chunked_value(),
        (ows1, ows2) in (ows(), ows()),
        te_first in any::<bool>(), mut fields in filler(), at in 0usize..5,
        body in smuggling_body(),
    ) {
        let cl = format!("{}:{ows1}{length}{ows2}", mixed_case("content-length", cl_mask));
        let te = format!("{}:{ows2}{te}{ows1}", mixed_case("transfer-encoding", te_mask));
        let (first, second) = if te_first { (te, cl) } else { (cl, te) };
        fields.insert(0, "Host: x".to_string());
        let at = at.min(fields.len());
        fields.insert(at, first);
        fields.push(second);
        let bytes = request("POST", "HTTP/1.1", &fields, &body);
        let result = parse_request(&bytes, &Limits::default());
        prop_assert!(
            matches!(&result, Err(e) if e.status() == 400 || e.status() == 501),
            "accepted {:?}: {:?}", String::from_utf8_lossy(&bytes), result.map(|r| r.map(|(q, _)| q.body))
        );
    }

    /// Two Content-Length fields, or one with a list, are refused whatever the values.
    #[test]
    fn conflicting_lengths_are_never_accepted(
        a in 0usize..20, b in 0usize..20, joined in any::<bool>(), mask in any::<u64>(),
        body in prop::collection::vec(any::<u8>(), 0..40),
    ) {
        let name = mixed_case("content-length", mask);
        let fields = if joined {
            vec!["Host: x".to_string(), format!("{name}: {a}, {b}")]
        } else {
            vec!["Host: x".to_string(), format!("{name}: {a}"), format!("Content-Length: {b}")]
        };
        let bytes = request("POST", "HTTP/1.1", &fields, &body);
        let expected = if joined {
            ProtocolError::BadContentLength
        } else {
            ProtocolError::DuplicateHeader("content-length")
        };
        let result = parse_request(&bytes, &Limits::default());
        prop_assert_eq!(result.map(|_| ()), Err(expected));
    }

    /// Transfer-Encoding on HTTP/1.0 is refused: a 1.0 peer would read to EOF instead.
    #[test]
    fn transfer_encoding_on_http10_is_never_accepted(te in chunked_value(), body in smuggling_body()) {
        let fields = vec![format!("Transfer-Encoding: {te}")];
        let bytes = request("POST", "HTTP/1.0", &fields, &body);
        prop_assert!(parse_request(&bytes, &Limits::default()).is_err());
    }

    /// Random edits of valid requests never panic the parser, and whatever it still accepts
    /// is unambiguous: one framing, one Host, a body of the announced length, no control bytes
    /// smuggled into a field, and the same answer from the bytes it consumed alone.
    #[test]
    fn mutated_requests_are_refused_or_unambiguous(
        base in valid_request(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), edit()), 1..5),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 4),
    ) {
        let mut bytes = base;
        for (at, edit) in edits {
            let at = at.index(bytes.len() + 1);
            apply(&mut bytes, at, edit);
        }
        let limits = Limits::default();
        let Ok(Some((req, used))) = parse_request(&bytes, &limits) else {
            return Ok(());
        };
        prop_assert!(used <= bytes.len());
        check_unambiguous(&req)?;
        let again = parse_request(&bytes[..used], &limits);
        prop_assert!(
            matches!(&again, Ok(Some((r, u))) if *u == used && r.body == req.body && r.headers == req.headers),
            "the consumed bytes alone parse differently: {:?}", again.map(|o| o.map(|(_, u)| u))
        );
        for cut in cuts {
            let k = cut.index(used.max(1));
            prop_assert!(
                !matches!(parse_request(&bytes[..k], &limits), Ok(Some(_))),
                "a {k}-byte prefix of a {used}-byte request is itself a complete request"
            );
        }
    }

    /// Form bodies: random bytes never panic the decoder; encoded pairs round-trip exactly.
    #[test]
    fn form_decoding_never_panics_and_round_trips(
        noise in prop::collection::vec(any::<u8>(), 0..300),
        pairs in prop::collection::vec((".{0,12}", ".{0,24}"), 0..6),
    ) {
        let _ = parse_urlencoded(&noise);
        let encoded = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        prop_assert_eq!(parse_urlencoded(encoded.as_bytes()).unwrap(), pairs);
    }
}

/// A valid request: GET, or POST framed by Content-Length or chunked.
fn valid_request() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..3,
        "[a-z0-9]{0,8}",
        filler(),
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(kind, path, mut fields, body)| {
            fields.insert(0, "Host: example.com".to_string());
            match kind {
                0 => {
                    let mut out = request("GET", "HTTP/1.1", &fields, b"");
                    out.splice(5..5, path.bytes());
                    out
                }
                1 => {
                    fields.push(format!("Content-Length: {}", body.len()));
                    request("POST", "HTTP/1.1", &fields, &body)
                }
                _ => {
                    fields.push("Transfer-Encoding: chunked".to_string());
                    let mut chunked = Vec::new();
                    for piece in body.chunks(7) {
                        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                        chunked.extend_from_slice(piece);
                        chunked.extend_from_slice(b"\r\n");
                    }
                    chunked.extend_from_slice(b"0\r\n\r\n");
                    request("POST", "HTTP/1.1", &fields, &chunked)
                }
            }
        })
}

/// One edit at a position: the bytes that matter to framing are favoured.
#[derive(Debug, Clone)]
enum Edit {
    Insert(Vec<u8>),
    Replace(u8),
    Delete(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let interesting = prop_oneof![
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\0".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b":".to_vec()),
        Just(b",".to_vec()),
        Just(b"0".to_vec()),
        Just(b"\xff".to_vec()),
        Just(b"Content-Length: 3\r\n".to_vec()),
        Just(b"Transfer-Encoding: chunked\r\n".to_vec()),
        Just(b"Host: y\r\n".to_vec()),
        Just(b"\r\n\r\n".to_vec()),
        prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop_oneof![
        interesting.prop_map(Edit::Insert),
        any::<u8>().prop_map(Edit::Replace),
        (1usize..4).prop_map(Edit::Delete),
    ]
}

fn apply(bytes: &mut Vec<u8>, at: usize, edit: Edit) {
    match edit {
        Edit::Insert(what) => {
            bytes.splice(at..at, what);
        }
        Edit::Replace(b) if at < bytes.len() => bytes[at] = b,
        Edit::Replace(_) => bytes.push(b'x'),
        Edit::Delete(n) => {
            let end = (at + n).min(bytes.len());
            bytes.drain(at.min(end)..end);
        }
    }
}

fn count(req: &Request, name: &str) -> usize {
    req.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .count()
}

fn check_unambiguous(req: &Request) -> Result<(), TestCaseError> {
    let lengths = count(req, "content-length");
    let encodings = count(req, "transfer-encoding");
    prop_assert!(lengths <= 1, "{lengths} Content-Length fields accepted");
    prop_assert!(
        lengths == 0 || encodings == 0,
        "Content-Length and Transfer-Encoding accepted together"
    );
    prop_assert!(count(req, "host") <= 1, "several Host fields accepted");
    prop_assert!(req.method.bytes().all(|b| b.is_ascii_graphic()));
    for (name, value) in &req.headers {
        prop_assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
            "field name {name:?} accepted"
        );
        prop_assert!(
            !value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "control byte in the value of {name:?} accepted"
        );
    }
    if let Some(length) = req.header("content-length") {
        prop_assert_eq!(length.parse::<usize>().ok(), Some(req.body.len()));
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` as a browser writes it.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
