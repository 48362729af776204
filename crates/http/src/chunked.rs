//! Incremental decoder for `Transfer-Encoding: chunked` request bodies.
//!
//! Fed whatever has arrived, it consumes what it can, so the poller decodes a trickling body
//! without a thread. Strict where leniency enables smuggling: hex sizes only (overflow-checked),
//! CRLF exactly, no framing fields in trailers; chunk extensions are tolerated and ignored.

use crate::error::ProtocolError;
use crate::head::is_token;

/// Longest chunk-size line (size plus extensions) accepted.
const MAX_SIZE_LINE: usize = 4096;
/// Most bytes of trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// Trailer fields that would change how the request is framed, routed or authorised.
const FORBIDDEN_TRAILERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "trailer",
    "te",
    "expect",
    "content-type",
    "content-encoding",
    "content-range",
    "authorization",
    "cookie",
];

/// Where the decoder is inside the chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(usize),
    /// Expecting the CRLF that ends chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
    /// The body is complete.
    Done,
}

/// Decodes one chunked body across any number of `decode` calls.
#[derive(Debug, Clone)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    trailer_bytes: usize,
}

impl ChunkedDecoder {
    pub(crate) fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            trailer_bytes: 0,
        }
    }

    /// Decodes from `input`, appending chunk data to `body` (never beyond `limit` bytes in all).
    /// Returns how many bytes of `input` were consumed and whether the body is complete; bytes
    /// after the end of the body are left unconsumed (they belong to the next request).
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        body: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(usize, bool), ProtocolError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                ChunkState::Done => return Ok((pos, true)),
                ChunkState::Size => {
                    let Some(line) = take_line(rest, MAX_SIZE_LINE, "chunk size line too long")?
                    else {
                        return Ok((pos, false));
                    };
                    let size = parse_size_line(&rest[..line.content])?;
                    if size > limit.saturating_sub(body.len()) {
                        return Err(ProtocolError::BodyTooLarge);
                    }
                    pos += line.total;
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(remaining) => {
                    if rest.is_empty() {
                        return Ok((pos, false));
                    }
                    let n = remaining.min(rest.len());
                    body.extend_from_slice(&rest[..n]);
                    pos += n;
                    self.state = if n == remaining {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(remaining - n)
                    };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        if rest.first().is_some_and(|&b| b != b'\r') {
                            return Err(ProtocolError::BadChunk("chunk data not followed by crlf"));
                        }
                        return Ok((pos, false));
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(ProtocolError::BadChunk("chunk data not followed by crlf"));
                    }
                    pos += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let budget = MAX_TRAILERS - self.trailer_bytes;
                    let Some(line) = take_line(rest, budget, "trailers too large")? else {
                        return Ok((pos, false));
                    };
                    self.trailer_bytes += line.total;
                    if line.content == 0 {
                        self.state = ChunkState::Done;
                    } else {
                        check_trailer(&rest[..line.content])?;
                    }
                    pos += line.total;
                }
            }
        }
    }
}

/// One CRLF-terminated line at the start of a buffer: its length without and with the CRLF.
struct Line {
    content: usize,
    total: usize,
}

/// Finds the CRLF-terminated line starting `buf`: `None` when incomplete (and within
/// `max` bytes), an error on a bare CR or LF or an over-long line.
fn take_line(
    buf: &[u8],
    max: usize,
    too_long: &'static str,
) -> Result<Option<Line>, ProtocolError> {
    let window = &buf[..buf.len().min(max)];
    match window.iter().position(|&b| b == b'\n' || b == b'\r') {
        Some(i) if window[i] == b'\n' => Err(ProtocolError::BadChunk("bare lf")),
        Some(i) => match buf.get(i + 1) {
            Some(b'\n') => Ok(Some(Line {
                content: i,
                total: i + 2,
            })),
            Some(_) => Err(ProtocolError::BadChunk("bare cr")),
            None if i + 1 >= max => Err(ProtocolError::BadChunk(too_long)),
            None => Ok(None),
        },
        None if buf.len() >= max => Err(ProtocolError::BadChunk(too_long)),
        None => Ok(None),
    }
}

/// Parses `1a;name=value` (without CRLF): hex digits only, then optional extensions.
fn parse_size_line(line: &[u8]) -> Result<usize, ProtocolError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ProtocolError::BadChunk("chunk size is not hex"));
    }
    let mut size: usize = 0;
    for &b in &line[..digits] {
        let digit =
            crate::form::hex_value(b).ok_or(ProtocolError::BadChunk("chunk size is not hex"))?;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(usize::from(digit)))
            .ok_or(ProtocolError::BodyTooLarge)?;
    }
    let rest = &line[digits..];
    let after_ws = rest.iter().position(|&b| b != b' ' && b != b'\t');
    match after_ws {
        None if rest.is_empty() => Ok(size),
        Some(i) if rest[i] == b';' => {
            let ext = &rest[i + 1..];
            if ext.iter().any(|&b| is_ctl(b) && b != b'\t') {
                return Err(ProtocolError::BadChunk("control byte in chunk extension"));
            }
            Ok(size)
        }
        _ => Err(ProtocolError::BadChunk("junk after chunk size")),
    }
}

/// Validates one trailer line `name: value` and refuses fields that matter for framing.
fn check_trailer(line: &[u8]) -> Result<(), ProtocolError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(ProtocolError::BadHeaderName)?;
    let name = &line[..colon];
    if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
        return Err(ProtocolError::BadHeaderName);
    }
    if line[colon + 1..].iter().any(|&b| is_ctl(b) && b != b'\t') {
        return Err(ProtocolError::BadHeaderValue);
    }
    if FORBIDDEN_TRAILERS
        .iter()
        .any(|f| f.as_bytes().eq_ignore_ascii_case(name))
    {
        return Err(ProtocolError::ForbiddenTrailer);
    }
    Ok(())
}

fn is_ctl(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// Encodes `body` as chunks of the given sizes (cycled), for tests.
#[cfg(test)]
pub(crate) fn encode(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut rest = body;
    let mut sizes = sizes.iter().copied().filter(|&s| s > 0).cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Decodes `input` fed in pieces of `step` bytes, as the poller would.
    fn decode_in_steps(
        input: &[u8],
        step: usize,
        limit: usize,
    ) -> Result<(Vec<u8>, usize), ProtocolError> {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        let mut consumed = 0;
        let mut available = 0;
        loop {
            available = (available + step).min(input.len());
            let (n, done) = decoder.decode(&input[consumed..available], &mut body, limit)?;
            consumed += n;
            if done {
                return Ok((body, consumed));
            }
            if available == input.len() {
                return Err(ProtocolError::Incomplete);
            }
        }
    }

    fn decode_all(input: &[u8]) -> Result<Vec<u8>, ProtocolError> {
        decode_in_steps(input, input.len().max(1), 1 << 20).map(|(b, _)| b)
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let input = b"5;ext=1\r\nhello\r\n6 ; a=\"b\"\r\n world\r\n0\r\nX-Sum: 1\r\n\r\nNEXT";
        let (body, used) = decode_in_steps(input, 1, 100).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(&input[used..], b"NEXT");
    }

    #[test]
    fn accepts_upper_and_lower_hex_and_leading_zeros() {
        assert_eq!(
            decode_all(b"000A\r\n0123456789\r\n0\r\n\r\n").unwrap(),
            b"0123456789"
        );
        assert_eq!(
            decode_all(b"a\r\n0123456789\r\n00\r\n\r\n").unwrap(),
            b"0123456789"
        );
    }

    #[test]
    fn rejects_malformed_sizes() {
        for bad in [
            &b"+5\r\nhello\r\n0\r\n\r\n"[..],
            b"-0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\rhello\r\n0\r\n\r\n",
            b"5;a\x01\r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(
                matches!(decode_all(bad), Err(ProtocolError::BadChunk(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rejects_size_overflow_as_too_large() {
        assert_eq!(
            decode_all(b"ffffffffffffffffffff\r\n"),
            Err(ProtocolError::BodyTooLarge)
        );
    }

    #[test]
    fn data_must_end_in_crlf() {
        for bad in [
            &b"5\r\nhelloX\r\n0\r\n\r\n"[..],
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\rX",
        ] {
            assert!(matches!(decode_all(bad), Err(ProtocolError::BadChunk(_))));
        }
    }

    #[test]
    fn enforces_the_body_limit_before_reading_data() {
        let input = b"4\r\nabcd\r\n5\r\n";
        assert_eq!(
            decode_in_steps(input, 64, 8),
            Err(ProtocolError::BodyTooLarge)
        );
        assert_eq!(
            decode_in_steps(b"4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n", 3, 8)
                .unwrap()
                .0,
            b"abcdefgh"
        );
    }

    #[test]
    fn rejects_forbidden_and_malformed_trailers() {
        assert_eq!(
            decode_all(b"0\r\nContent-Length: 5\r\n\r\n"),
            Err(ProtocolError::ForbiddenTrailer)
        );
        assert_eq!(
            decode_all(b"0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(ProtocolError::ForbiddenTrailer)
        );
        assert_eq!(
            decode_all(b"0\r\nBad Name: x\r\n\r\n"),
            Err(ProtocolError::BadHeaderName)
        );
        assert_eq!(
            decode_all(b"0\r\nX: a\x00b\r\n\r\n"),
            Err(ProtocolError::BadHeaderValue)
        );
    }

    #[test]
    fn bounds_lines_that_never_end() {
        let long = vec![b'1'; MAX_SIZE_LINE + 1];
        assert!(matches!(decode_all(&long), Err(ProtocolError::BadChunk(_))));
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(
            std::iter::repeat_n(
                b"X-A: aaaaaaaaaaaaaaaa
",
                1000,
            )
            .flatten(),
        );
        assert!(decode_all(&trailers).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(body in proptest::collection::vec(any::<u8>(), 0..2000),
                       sizes in proptest::collection::vec(1usize..300, 1..8),
                       step in 1usize..64) {
            let encoded = encode(&body, &sizes);
            let (decoded, used) = decode_in_steps(&encoded, step, body.len()).unwrap();
            prop_assert_eq!(decoded, body);
            prop_assert_eq!(used, encoded.len());
        }

        #[test]
        fn never_panics(input in proptest::collection::vec(any::<u8>(), 0..512), step in 1usize..32) {
            let _ = decode_in_steps(&input, step, 256);
        }

        #[test]
        fn never_panics_on_chunk_like_input(input in "([0-9a-fA-F;= \r\n]|x|\r\n){0,80}") {
            let _ = decode_in_steps(input.as_bytes(), 3, 256);
        }
    }
}
