//! Fuzzes request parsing as the server does it (`http::parse_request`: head, limits, framing
//! and body), under the default limits and under tiny ones that put every limit in reach.
//!
//! Beyond "never panics", an accepted request must be unambiguous: one framing (never both
//! Content-Length and Transfer-Encoding), at most one Host and one Content-Length, no CR, LF
//! or NUL in a field, and the same result from the bytes it consumed alone.
#![no_main]

use http::{parse_request, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tiny = Limits {
        request_line: 64,
        request_fields: 4,
        request_field_size: 64,
        request_body: 128,
    };
    for limits in [Limits::default(), tiny] {
        let Ok(Some((req, used))) = parse_request(data, &limits) else {
            continue;
        };
        assert!(used <= data.len());
        let count = |name: &str| {
            req.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .count()
        };
        let lengths = count("content-length");
        assert!(lengths <= 1, "several Content-Length fields accepted");
        assert!(
            lengths == 0 || count("transfer-encoding") == 0,
            "Content-Length with Transfer-Encoding accepted"
        );
        assert!(count("host") <= 1, "several Host fields accepted");
        for (_, value) in &req.headers {
            assert!(!value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0));
        }
        assert!(req.body.len() <= limits.request_body);
        let again = parse_request(&data[..used], &limits);
        assert!(
            matches!(&again, Ok(Some((r, u))) if *u == used && r.body == req.body),
            "the consumed bytes alone parse differently"
        );
    }
});
