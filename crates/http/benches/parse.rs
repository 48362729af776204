//! Parsing costs: a typical browser request head, a chunked upload, a form body.
//!
//! Run with `cargo bench -p pyblogd-http --bench parse` on a quiet machine.

// A measurement harness, never run in production: a failed unwrap aborts the run, as it should.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use http::{form, parse_request, Limits};

const BROWSER_GET: &[u8] = b"GET /posts/hello-world?ref=home HTTP/1.1\r\n\
Host: blog.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://blog.example.com/\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Connection: keep-alive\r\n\r\n";

/// A 64 KiB upload in 4 KiB chunks.
fn chunked_upload() -> Vec<u8> {
    let mut out =
        b"POST /upload HTTP/1.1\r\nHost: blog.example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for _ in 0..16 {
        out.extend_from_slice(b"1000\r\n");
        out.extend(std::iter::repeat_n(b'x', 4096));
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn benches(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(BROWSER_GET.len() as u64));
    group.bench_function("browser_get_head", |b| {
        b.iter(|| {
            parse_request(black_box(BROWSER_GET), &limits)
                .unwrap()
                .unwrap()
        })
    });
    let upload = chunked_upload();
    group.throughput(Throughput::Bytes(upload.len() as u64));
    group.bench_function("chunked_64k", |b| {
        b.iter(|| parse_request(black_box(&upload), &limits).unwrap().unwrap())
    });
    let form_body = b"title=Hello+world%21&slug=hello-world&tags=rust%2Chttp&body=Some+%2Amarkdown%2A+text+with+%C3%A9+and+more+words+to+decode";
    group.throughput(Throughput::Bytes(form_body.len() as u64));
    group.bench_function("form_urlencoded", |b| {
        b.iter(|| form::parse_urlencoded(black_box(form_body)).unwrap())
    });
    group.finish();
}

criterion_group!(parse, benches);
criterion_main!(parse);
