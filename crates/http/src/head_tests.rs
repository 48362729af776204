//! Unit tests for the head parser: one or more per HTTP/1.1 rule it enforces.

use super::*;
use proptest::prelude::*;

fn parse_with(raw: &str, limits: &Limits) -> Result<Option<(Head, usize)>, ProtocolError> {
    parse_head(raw.as_bytes(), limits)
}

fn head(raw: &str) -> Head {
    match parse_with(raw, &Limits::default()) {
        Ok(Some((h, _))) => h,
        other => panic!("{raw:?} did not parse: {other:?}"),
    }
}

fn err(raw: &str) -> ProtocolError {
    err_with(raw, &Limits::default())
}

fn err_with(raw: &str, limits: &Limits) -> ProtocolError {
    match parse_with(raw, limits) {
        Err(e) => e,
        Ok(h) => panic!("{raw:?} was accepted: {h:?}"),
    }
}

fn status(raw: &str) -> u16 {
    err(raw).status()
}

#[test]
fn parses_a_request_and_keeps_headers_in_order() {
    let raw = "GET /a%20b?x=1 HTTP/1.1\r\nHost: example.com\r\nX-Two: 2\r\nx-one:1\r\n\r\nrest";
    let (h, len) = parse_with(raw, &Limits::default()).unwrap().unwrap();
    assert_eq!(len, raw.len() - 4);
    assert_eq!(
        (h.method.as_str(), h.target.as_str()),
        ("GET", "/a%20b?x=1")
    );
    assert_eq!((h.path.as_str(), h.query.as_str()), ("/a b", "x=1"));
    assert_eq!(h.version, Version::Http11);
    let names: Vec<&str> = h.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Host", "X-Two", "x-one"]);
    assert_eq!(h.headers[2].1, b"1");
    assert_eq!(h.framing, BodyFraming::None);
    assert!(!h.expects_continue);
}

#[test]
fn incomplete_heads_wait_for_more() {
    assert!(
        parse_with("GET / HTTP/1.1\r\nHost: x\r\n", &Limits::default())
            .unwrap()
            .is_none()
    );
    assert!(parse_with("GET / HT", &Limits::default())
        .unwrap()
        .is_none());
}

#[test]
fn skips_empty_lines_before_the_request_line() {
    assert_eq!(
        head("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n").method,
        "GET"
    );
}

#[test]
fn http10_needs_no_host() {
    assert_eq!(head("GET / HTTP/1.0\r\n\r\n").version, Version::Http10);
}

#[test]
fn versions_other_than_1_0_and_1_1() {
    assert_eq!(status("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), 505);
    assert_eq!(status("GET / HTTP/1.2\r\nHost: x\r\n\r\n"), 505);
    assert_eq!(status("GET / HTTP/1.10\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET / HTTP/11\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET / FOO/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET / http/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET / HTTP/1.1 \r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET /\r\n\r\n"), 400);
}

#[test]
fn http2_preface_is_refused() {
    assert_eq!(status("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 505);
}

#[test]
fn methods_are_tokens_and_the_line_has_single_spaces() {
    assert_eq!(status("G@T / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(head("PURGE / HTTP/1.1\r\nHost: x\r\n\r\n").method, "PURGE");
}

#[test]
fn whitespace_before_colon_and_obs_fold_are_refused() {
    assert_eq!(
        err("GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
        ProtocolError::BadHeaderName
    );
    assert_eq!(
        err("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n"),
        ProtocolError::BadHeaderName
    );
    assert_eq!(
        status("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"),
        400
    );
    assert_eq!(
        status("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n"),
        400
    );
}

#[test]
fn obfuscated_transfer_encoding_is_never_chunked() {
    let h = head("POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n");
    assert_eq!(h.framing, BodyFraming::None);
    assert_eq!(
        status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \x0bchunked\r\n\r\n"),
        400
    );
    assert_eq!(
        status("POST / HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n\r\n"),
        400
    );
    assert_eq!(
        status("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"),
        501
    );
}

#[test]
fn bare_lf_and_bare_cr_are_refused() {
    assert_eq!(
        err("GET / HTTP/1.1\nHost: x\n\n"),
        ProtocolError::BareLineEnding
    );
    assert_eq!(
        err("GET / HTTP/1.1\r\nHost: x\n\r\n"),
        ProtocolError::BareLineEnding
    );
    assert_eq!(status("GET / HTTP/1.1\rHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n"), 400);
    assert_eq!(
        err("\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ProtocolError::BareLineEnding
    );
}

#[test]
fn control_bytes_in_names_and_values_are_refused() {
    for raw in [
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX\x00A: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n",
    ] {
        assert_eq!(status(raw), 400, "{raw:?}");
    }
    assert_eq!(
        head("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n").headers[1].1,
        b"a\tb"
    );
}

#[test]
fn host_is_required_once_on_http11() {
    assert_eq!(err("GET / HTTP/1.1\r\n\r\n"), ProtocolError::MissingHost);
    assert_eq!(
        err("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
        ProtocolError::DuplicateHeader("host")
    );
    assert_eq!(status("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
}

#[test]
fn duplicate_content_type_is_refused() {
    assert_eq!(
        status("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n"),
        400
    );
}

#[test]
fn content_length_is_digits_once() {
    let h = head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n");
    assert_eq!(h.framing, BodyFraming::Length(12));
    assert_eq!(
        head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").framing,
        BodyFraming::None
    );
    assert_eq!(
        head("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  007 \r\n\r\n").framing,
        BodyFraming::Length(7)
    );
    for bad in ["+1", "-0", "5, 5", "5,5", "1e3", "0x10", "", "1 2", "٣"] {
        let raw = format!("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {bad}\r\n\r\n");
        assert_eq!(status(&raw), 400, "{bad:?}");
    }
    assert_eq!(
        err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
        ProtocolError::DuplicateHeader("content-length")
    );
    assert_eq!(
        err("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        ProtocolError::BodyTooLarge
    );
}

#[test]
fn transfer_encoding_rules() {
    let te =
        |value: &str| format!("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {value}\r\n\r\n");
    assert_eq!(head(&te("chunked")).framing, BodyFraming::Chunked);
    assert_eq!(head(&te("Chunked")).framing, BodyFraming::Chunked);
    assert_eq!(status(&te("gzip, chunked")), 501);
    assert_eq!(status(&te("identity")), 501);
    assert_eq!(status(&te("gzip")), 501);
    assert_eq!(status(&te("chunked, identity")), 400);
    assert_eq!(status(&te("chunked, chunked")), 400);
    assert_eq!(status(&te("chunked,")), 400);
    assert_eq!(status(&te("")), 400);
    assert_eq!(status(&te("\"chunked\"")), 400);
    let two = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(status(two), 400);
    let split = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(status(split), 501);
}

#[test]
fn transfer_encoding_with_length_or_on_http10_is_refused() {
    assert_eq!(
        err(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        ProtocolError::LengthWithTransferEncoding
    );
    assert_eq!(
        err("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ProtocolError::TransferEncodingOnHttp10
    );
}

#[test]
fn expect_rules() {
    let h = head("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
    assert!(h.expects_continue);
    assert!(!head("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expects_continue);
    assert_eq!(
        status("GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n"),
        417
    );
    assert_eq!(
        status("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, x\r\n\r\n"),
        417
    );
}

#[test]
fn request_line_limit_at_and_past_the_bound() {
    let limits = Limits {
        request_line: 64,
        ..Limits::default()
    };
    let line = |len: usize| format!("GET /{} HTTP/1.1", "a".repeat(len - "GET / HTTP/1.1".len()));
    let at = format!("{}\r\nHost: x\r\n\r\n", line(64));
    assert!(parse_with(&at, &limits).unwrap().is_some());
    let past = format!("{}\r\nHost: x\r\n\r\n", line(65));
    assert_eq!(err_with(&past, &limits), ProtocolError::RequestLineTooLong);
    // Known before the line ends.
    let partial = format!("GET /{}", "a".repeat(70));
    assert_eq!(
        check_partial_head(partial.as_bytes(), &limits),
        Err(ProtocolError::RequestLineTooLong)
    );
    assert_eq!(
        check_partial_head(&partial.as_bytes()[..60], &limits),
        Ok(())
    );
}

#[test]
fn field_count_limit_at_and_past_the_bound() {
    let limits = Limits {
        request_fields: 5,
        ..Limits::default()
    };
    let with = |n: usize| {
        let fields: String = (1..n).map(|i| format!("X-{i}: v\r\n")).collect();
        format!("GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n")
    };
    assert!(parse_with(&with(5), &limits).unwrap().is_some());
    assert_eq!(err_with(&with(6), &limits), ProtocolError::TooManyFields);
    assert_eq!(err_with(&with(6), &limits).status(), 431);
}

#[test]
fn many_fields_beyond_the_stack_slots() {
    let limits = Limits {
        request_fields: 300,
        ..Limits::default()
    };
    let fields: String = (0..299).map(|i| format!("X-{i}: v\r\n")).collect();
    let raw = format!("GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n");
    assert_eq!(head_with(&raw, &limits).headers.len(), 300);
}

fn head_with(raw: &str, limits: &Limits) -> Head {
    parse_with(raw, limits).unwrap().unwrap().0
}

#[test]
fn field_size_limit_at_and_past_the_bound() {
    let limits = Limits {
        request_field_size: 20,
        ..Limits::default()
    };
    // name (5) + value (15) = 20
    let at = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "v".repeat(15)
    );
    assert!(parse_with(&at, &limits).unwrap().is_some());
    let past = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "v".repeat(16)
    );
    assert_eq!(err_with(&past, &limits), ProtocolError::FieldTooLarge);
    assert_eq!(err_with(&past, &limits).status(), 431);
}

#[test]
fn a_head_that_never_ends_is_bounded() {
    let limits = Limits {
        request_fields: 2,
        request_field_size: 100,
        ..Limits::default()
    };
    let max = max_head_len(&limits);
    let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
    while raw.len() <= max {
        raw.extend_from_slice(b"X-A: b\r\n");
    }
    assert_eq!(
        check_partial_head(&raw, &limits),
        Err(ProtocolError::HeadTooLarge)
    );
    assert_eq!(check_partial_head(&raw[..max], &limits), Ok(()));
}

#[test]
fn targets() {
    let h = head("GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(
        (h.path.as_str(), h.query.as_str(), h.target.as_str()),
        ("/x", "y", "http://example.com/x?y")
    );
    assert_eq!(head("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").path, "*");
    assert_eq!(status("GET * HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(
        status("CONNECT example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
        400
    );
    assert_eq!(status("GET /../x HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET /%ZZ HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    assert_eq!(status("GET /%FF HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    // httparse passes raw UTF-8 in a target through; it decodes to itself.
    assert_eq!(
        head("GET /\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n").path,
        "/\u{e9}"
    );
    let invalid_utf8 = parse_head(b"GET /\x80 HTTP/1.1\r\nHost: x\r\n\r\n", &Limits::default());
    assert_eq!(invalid_utf8.map(|_| ()).unwrap_err().status(), 400);
}

#[test]
fn head_end_scan_finds_crlf_and_lf_endings() {
    assert!(may_hold_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0));
    assert!(may_hold_head_end(b"GET / HTTP/1.1\nHost: x\n\n", 0));
    assert!(!may_hold_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0));
    // Resuming the scan near the end still sees an ending split across reads.
    let buf = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert!(may_hold_head_end(buf, buf.len() - 1));
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_head(&bytes, &Limits::default());
        let _ = check_partial_head(&bytes, &Limits::default());
    }

    #[test]
    fn never_panics_on_head_like_text(
        text in "(GET|POST|PRI|[A-Z]{1,4}) (/[a-z%0-9./?*]{0,12}|\\*|http://h/x) HTTP/[0-9]\\.[0-9]{1,2}(\r\n|\n|\r)((Host|Content-Length|Transfer-Encoding|Expect|X)[ :]{1,2}[ -~\t]{0,12}(\r\n|\n)){0,5}(\r\n|\n)?",
        request_line in 0usize..40,
    ) {
        let limits = Limits { request_line, request_fields: 3, request_field_size: 16, ..Limits::default() };
        let _ = parse_head(text.as_bytes(), &limits);
    }
}

#[test]
fn request_line_zero_means_only_the_hard_bound() {
    let limits = Limits {
        request_line: 0,
        ..Limits::default()
    };
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(10_000));
    assert!(parse_with(&long, &limits).unwrap().is_some());
    let endless = format!("GET /{}", "a".repeat(UNLIMITED_LINE + 10));
    assert_eq!(
        check_partial_head(endless.as_bytes(), &limits),
        Err(ProtocolError::RequestLineTooLong)
    );
}
