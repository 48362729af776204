//! Replays the malformed-request corpus in `tests/requests/` against the real binary (`-w 2`).
//!
//! Each `.http` file is one raw request with its expected status (format: `tests/requests/
//! README.md`). Every case goes over its own TCP connection, which is half-closed after the
//! bytes are sent, so a request the server would wait on ends in EOF rather than a timeout.
//! After each case a normal request must still be answered, and at the end no worker may have
//! died: hostile input costs one connection, never a process.

use crate::support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::{children, Options};

/// One corpus file, decoded.
#[derive(Debug)]
struct Case {
    name: String,
    expect: u16,
    responses: usize,
    bytes: Vec<u8>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/requests")
}

fn load_corpus() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/requests exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

/// Parses a corpus file: `#` lines first (directives and comments), then the request text.
fn load(path: &Path) -> Case {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("utf-8 file name")
        .to_string();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut expect = None;
    let mut responses = 1;
    let mut request = String::new();
    let mut in_header = true;
    for line in text.lines() {
        if in_header {
            if let Some(comment) = line.strip_prefix('#') {
                let comment = comment.trim();
                if let Some(v) = comment.strip_prefix("expect:") {
                    expect = Some(v.trim().parse().unwrap_or_else(|_| panic!("{name}: {v}")));
                } else if let Some(v) = comment.strip_prefix("responses:") {
                    responses = v.trim().parse().unwrap_or_else(|_| panic!("{name}: {v}"));
                }
                continue;
            }
            in_header = false;
        }
        assert!(
            !line.ends_with([' ', '\t']),
            "{name}: trailing whitespace in {line:?}; write it as \\x20 or \\t"
        );
        request.push_str(line);
    }
    Case {
        expect: expect.unwrap_or_else(|| panic!("{name}: no `# expect:` line")),
        bytes: decode(&request).unwrap_or_else(|e| panic!("{name}: {e}")),
        name,
        responses,
    }
}

/// Decodes the request text: escapes `\r \n \t \0 \\ \xNN` and repeats `{{unit*count}}`.
fn decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.extend(unescape(&rest[..open])?);
        let close = rest[open..]
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ in {rest:?}"))?;
        let inner = &rest[open + 2..open + close];
        let (unit, count) = inner
            .rsplit_once('*')
            .ok_or_else(|| format!("repeat without *count: {inner:?}"))?;
        let count: usize = count
            .parse()
            .map_err(|_| format!("bad repeat count {count:?}"))?;
        out.extend(unescape(unit)?.repeat(count));
        rest = &rest[open + close + 2..];
    }
    out.extend(unescape(rest)?);
    Ok(out)
}

fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.next() {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'0') => out.push(0),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = [bytes.next(), bytes.next()];
                let hex: Vec<u8> = hex.into_iter().flatten().collect();
                let value = std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .filter(|_| hex.len() == 2)
                    .ok_or_else(|| format!("bad \\x escape in {text:?}"))?;
                out.push(value);
            }
            other => {
                return Err(format!(
                    "unknown escape \\{:?} in {text:?}",
                    other.map(char::from)
                ))
            }
        }
    }
    Ok(out)
}

/// Sends `bytes` on a fresh connection (from a thread, so a server that answers early and
/// stops reading cannot block us), half-closes, and reads everything until the server closes.
fn exchange(addr: SocketAddr, bytes: Vec<u8>) -> std::io::Result<Vec<u8>> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    let mut writer = stream.try_clone()?;
    let sender = std::thread::spawn(move || {
        // The server may answer (413, 431, 414) and close before reading everything.
        let _ = writer.write_all(&bytes);
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut out = Vec::new();
    let mut reader = stream;
    let result = reader.read_to_end(&mut out);
    let _ = sender.join();
    match result {
        Ok(_) => Ok(out),
        // A reset after the response arrived loses nothing we check.
        Err(e) if !out.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => Ok(out),
        Err(e) => Err(e),
    }
}

/// The statuses of the final (non-1xx) responses in `raw`, in order.
fn final_statuses(raw: &[u8]) -> Result<Vec<u16>, String> {
    let mut statuses = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| format!("unterminated response head in {:?}", lossy(rest)))?;
        let head = std::str::from_utf8(&rest[..end]).map_err(|_| "non-UTF-8 response head")?;
        let status: u16 = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line in {head:?}"))?;
        let length = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.trim().parse::<usize>())
            .transpose()
            .map_err(|_| format!("bad Content-Length in {head:?}"))?
            .unwrap_or(0);
        let body_end = end + 4 + if status < 200 { 0 } else { length };
        if body_end > rest.len() {
            return Err(format!("truncated body after {head:?}"));
        }
        if status >= 200 {
            statuses.push(status);
        }
        rest = &rest[body_end..];
    }
    Ok(statuses)
}

fn lossy(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(300)];
    String::from_utf8_lossy(shown).into_owned()
}

#[test]
fn the_corpus_decoder_handles_escapes_and_repeats() {
    assert_eq!(
        decode(r"GET /\x41\0\t{{ab*3}}\r\n{{\x20*2}}\\").unwrap(),
        b"GET /A\0\tababab\r\n  \\".to_vec()
    );
    assert!(decode(r"\q").is_err());
    assert!(decode(r"\x4").is_err());
    assert!(decode("{{a*x}}").is_err());
    assert_eq!(
        final_statuses(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            .unwrap(),
        vec![200, 404]
    );
}

#[test]
fn every_corpus_request_gets_its_status_and_the_server_serves_on() {
    let cases = load_corpus();
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    let server = support::start(Options::default().args(&["-w", "2"]));
    assert!(support::wait_until(support::PATIENCE, || {
        children(server.pid()).len() == 2
    }));
    let workers = children(server.pid());
    let mut failures = Vec::new();
    for case in &cases {
        let outcome = exchange(server.addr, case.bytes.clone())
            .map_err(|e| format!("i/o error {e}"))
            .and_then(|raw| {
                final_statuses(&raw).map_err(|e| format!("{e}; raw {:?}", lossy(&raw)))
            });
        match outcome {
            Ok(statuses)
                if statuses.first() == Some(&case.expect) && statuses.len() == case.responses => {}
            Ok(statuses) => failures.push(format!(
                "{}: expected {} ({} response(s)), got {statuses:?}",
                case.name, case.expect, case.responses
            )),
            Err(e) => failures.push(format!("{}: {e}", case.name)),
        }
        let after = server.try_get("/").map(|r| r.status);
        assert!(
            matches!(after, Ok(200)),
            "after {}: a normal request got {after:?}; log:\n{}",
            case.name,
            server.log_text()
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        children(server.pid()),
        workers,
        "a worker died; log:\n{}",
        server.log_text()
    );
    eprintln!("corpus: {} cases passed", cases.len());
}
