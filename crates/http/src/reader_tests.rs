//! Unit and property tests for request assembly across arbitrary byte splits.

use super::*;
use crate::Version;
use proptest::prelude::*;

/// Feeds `bytes` as reads of at most `step` bytes, collecting every outcome but `NeedMore`.
fn feed(
    reader: &mut RequestReader,
    bytes: &[u8],
    step: usize,
    limits: &Limits,
) -> Vec<Result<Request, ProtocolError>> {
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        loop {
            match reader.advance(limits) {
                Progress::Complete(head, body) => {
                    out.push(Ok(Request::from_head(head, body, None)))
                }
                Progress::Failed(e) => {
                    out.push(Err(e));
                    return out;
                }
                Progress::NeedMore => break,
            }
        }
        if fed == bytes.len() {
            return out;
        }
        let Some(space) = reader.space(limits) else {
            out.push(Err(ProtocolError::HeadTooLarge));
            return out;
        };
        let n = space.len().min(step).min(bytes.len() - fed);
        space[..n].copy_from_slice(&bytes[fed..fed + n]);
        reader.filled(n);
        fed += n;
    }
}

fn requests(bytes: &[u8], step: usize) -> Vec<Result<Request, ProtocolError>> {
    feed(&mut RequestReader::new(), bytes, step, &Limits::default())
}

#[test]
fn pipelined_requests_come_out_in_order() {
    let raw = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
    for step in [1, 7, raw.len()] {
        let got: Vec<(String, Vec<u8>)> = requests(raw, step)
            .into_iter()
            .map(|r| r.map(|r| (r.path, r.body)).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                ("/a".into(), vec![]),
                ("/b".into(), b"abc".to_vec()),
                ("/c".into(), vec![])
            ],
            "step {step}"
        );
    }
}

#[test]
fn chunked_body_is_decoded_and_the_next_request_kept() {
    let raw = b"POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\nGET /n HTTP/1.1\r\nHost: x\r\n\r\n";
    for step in [1, 5, raw.len()] {
        let got = requests(raw, step);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().unwrap().body, b"abcde");
        assert_eq!(got[1].as_ref().unwrap().path, "/n");
    }
}

#[test]
fn phases_follow_the_request() {
    let limits = Limits::default();
    let mut reader = RequestReader::new();
    assert_eq!(reader.phase(), Phase::Idle);
    feed(&mut reader, b"POST / HTTP/1.1\r\nHost: x\r\n", 64, &limits);
    assert_eq!(reader.phase(), Phase::Head);
    feed(&mut reader, b"Content-Length: 4\r\n\r\nab", 64, &limits);
    assert_eq!(reader.phase(), Phase::Body);
    let done = feed(&mut reader, b"cd", 64, &limits);
    assert_eq!(done.len(), 1);
    assert_eq!(reader.phase(), Phase::Idle);
    assert!(reader.is_empty());
}

#[test]
fn oversized_length_is_refused_before_any_body_byte() {
    let limits = Limits {
        request_body: 10,
        ..Limits::default()
    };
    let at = feed(
        &mut RequestReader::new(),
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
        64,
        &limits,
    );
    assert_eq!(at[0].as_ref().unwrap().body, b"0123456789");
    let past = feed(
        &mut RequestReader::new(),
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n",
        64,
        &limits,
    );
    assert!(matches!(
        past.as_slice(),
        [Err(ProtocolError::BodyTooLarge)]
    ));
    let chunked =
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n5\r\n";
    let past = feed(&mut RequestReader::new(), chunked, 64, &limits);
    assert!(matches!(
        past.as_slice(),
        [Err(ProtocolError::BodyTooLarge)]
    ));
}

#[test]
fn continue_is_due_only_while_the_body_is_missing() {
    let limits = Limits::default();
    let mut waiting = RequestReader::new();
    feed(
        &mut waiting,
        b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        64,
        &limits,
    );
    assert!(waiting.take_continue_due());
    assert!(!waiting.take_continue_due(), "reported once");
    let mut eager = RequestReader::new();
    feed(
        &mut eager,
        b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\na",
        64,
        &limits,
    );
    assert!(!eager.take_continue_due());
    let mut bodiless = RequestReader::new();
    feed(
        &mut bodiless,
        b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
        64,
        &limits,
    );
    assert!(!bodiless.take_continue_due());
}

#[test]
fn a_head_that_never_ends_fills_up_and_fails() {
    let limits = Limits {
        request_fields: 4,
        request_field_size: 64,
        ..Limits::default()
    };
    let endless: Vec<u8> = b"GET / HTTP/1.1\r\n"
        .iter()
        .copied()
        .chain(std::iter::repeat(b'a'))
        .take(200_000)
        .collect();
    let got = feed(&mut RequestReader::new(), &endless, 1000, &limits);
    assert_eq!(
        got.last()
            .map(|r| r.as_ref().map(|_| ()).unwrap_err().status()),
        Some(431)
    );
}

#[test]
fn parse_request_reports_the_bytes_used() {
    let raw = b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nokGET";
    let (req, used) = parse_request(raw, &Limits::default()).unwrap().unwrap();
    assert_eq!((req.body.as_slice(), used), (&b"ok"[..], raw.len() - 3));
    assert!(parse_request(b"GET / HTTP/1.1\r\n", &Limits::default())
        .unwrap()
        .is_none());
}

/// A valid request, generated.
#[derive(Debug, Clone)]
struct Sample {
    method: String,
    segments: Vec<String>,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
    http10: bool,
}

fn sample() -> impl Strategy<Value = Sample> {
    (
        "[A-Z]{1,7}",
        proptest::collection::vec("[a-zA-Z0-9 ._~é?#%-]{1,8}", 0..4),
        "[a-zA-Z0-9=&%+]{0,16}",
        proptest::collection::vec(("X-[A-Za-z0-9-]{1,10}", "[!-~]([ -~]{0,20}[!-~])?"), 0..6),
        proptest::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(method, segments, query, headers, body, chunked, http10)| Sample {
                method,
                segments: segments
                    .into_iter()
                    .filter(|s| s != "." && s != "..")
                    .collect(),
                query,
                headers,
                body,
                chunked: chunked && !http10,
                http10,
            },
        )
}

fn percent_encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn serialize(s: &Sample) -> Vec<u8> {
    let path: String = s
        .segments
        .iter()
        .map(|seg| format!("/{}", percent_encode(seg)))
        .collect();
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    let target = if s.query.is_empty() {
        path
    } else {
        format!("{path}?{}", s.query)
    };
    let version = if s.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    let mut out = format!("{} {target} {version}\r\nHost: example.com\r\n", s.method).into_bytes();
    for (name, value) in &s.headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if s.chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        out.extend_from_slice(&crate::chunked::encode(&s.body, &[7, 100, 1]));
    } else {
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", s.body.len()).as_bytes());
        out.extend_from_slice(&s.body);
    }
    out
}

proptest! {
    #[test]
    fn parse_of_serialize_round_trips(s in sample(), step in 1usize..200) {
        let bytes = serialize(&s);
        let mut got = requests(&bytes, step);
        prop_assert_eq!(got.len(), 1);
        let req = got.remove(0).unwrap();
        prop_assert_eq!(&req.method, &s.method);
        let expected_path: String = s.segments.iter().map(|seg| format!("/{seg}")).collect();
        let expected_path = if expected_path.is_empty() { "/".to_string() } else { expected_path };
        prop_assert_eq!(&req.path, &expected_path);
        prop_assert_eq!(&req.query, &s.query);
        prop_assert_eq!(req.version, if s.http10 { Version::Http10 } else { Version::Http11 });
        prop_assert_eq!(&req.body, &s.body);
        for (name, value) in &s.headers {
            prop_assert!(req.headers.iter().any(|(n, v)| n == name && v == value.as_bytes()));
        }
        let (one_shot, used) = parse_request(&bytes, &Limits::default()).unwrap().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(one_shot.body, s.body);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..1200), step in 1usize..64) {
        let limits = Limits { request_line: 100, request_fields: 4, request_field_size: 50, request_body: 100 };
        let _ = feed(&mut RequestReader::new(), &bytes, step, &limits);
    }

    #[test]
    fn request_shaped_bytes_never_panic_the_reader(
        tail in proptest::collection::vec(any::<u8>(), 0..300),
        chunked in any::<bool>(),
        step in 1usize..16,
    ) {
        let mut bytes = if chunked {
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()
        } else {
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n".to_vec()
        };
        bytes.extend_from_slice(&tail);
        let _ = feed(&mut RequestReader::new(), &bytes, step, &Limits::default());
    }
}

#[test]
fn a_grown_buffer_is_released_when_idle() {
    let limits = Limits::default();
    let mut reader = RequestReader::new();
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(8000)
    );
    assert_eq!(feed(&mut reader, big.as_bytes(), 100_000, &limits).len(), 1);
    assert!(reader.buf.len() > INITIAL_BUFFER);
    reader.release_spare();
    assert!(reader.buf.is_empty());
    // Still usable afterwards.
    assert_eq!(
        feed(
            &mut reader,
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            100,
            &limits
        )
        .len(),
        1
    );
}
