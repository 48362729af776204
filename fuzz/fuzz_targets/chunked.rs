//! Fuzzes the chunked body decoder through the public parser: the input is the body of a
//! `Transfer-Encoding: chunked` request, so sizes, extensions, CRLFs and trailers are all
//! fuzzer-chosen while the head stays valid.
//!
//! A decoded body never exceeds the body limit, and the request never consumes more bytes than
//! it was given.
#![no_main]

use http::{parse_request, Limits};
use libfuzzer_sys::fuzz_target;

const HEAD: &[u8] = b"POST /posts HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let mut request = Vec::with_capacity(HEAD.len() + data.len());
    request.extend_from_slice(HEAD);
    request.extend_from_slice(data);
    let limits = Limits {
        request_body: 4096,
        ..Limits::default()
    };
    if let Ok(Some((req, used))) = parse_request(&request, &limits) {
        assert!(used <= request.len());
        assert!(req.body.len() <= limits.request_body);
        // The body is shorter than its chunked encoding, which has at least the last chunk.
        assert!(req.body.len() + 5 <= used - HEAD.len());
    }
});
