//! Assembles complete requests from bytes as they arrive, with no I/O of its own.
//!
//! The poller reads into [`RequestReader::space`] and calls [`RequestReader::advance`]; a
//! handler thread calls `advance` alone to find a pipelined request. A Content-Length body is
//! read into its own buffer, never past its end, and grows only as bytes arrive: a client that
//! announces 1 MiB and sends nothing costs nothing.

use crate::chunked::ChunkedDecoder;
use crate::config::Limits;
use crate::error::ProtocolError;
use crate::head::{
    check_partial_head, max_head_len, may_hold_head_end, parse_head, BodyFraming, Head,
};
use crate::request::Request;

/// First allocation for a connection's read buffer.
const INITIAL_BUFFER: usize = 4096;
/// Room beyond the longest head, for chunk-size lines and trailers mid-body.
const BODY_SLACK: usize = 64 * 1024;
/// Smallest growth step of a Content-Length body buffer.
const BODY_STEP: usize = 16 * 1024;

/// Which part of a request the reader is waiting for (deadlines differ per phase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing of the next request has arrived.
    Idle,
    /// Part of a head has arrived.
    Head,
    /// The head is complete; part of the body is missing.
    Body,
}

/// The result of [`RequestReader::advance`].
#[derive(Debug)]
pub(crate) enum Progress {
    /// A complete request: its head and de-chunked body.
    Complete(Head, Vec<u8>),
    /// More bytes are needed.
    NeedMore,
    /// The request is unacceptable; answer with the error's status and close.
    Failed(ProtocolError),
}

#[derive(Debug)]
enum State {
    Idle,
    Head,
    Body {
        head: Head,
        body: Vec<u8>,
        progress: BodyProgress,
    },
}

#[derive(Debug)]
enum BodyProgress {
    /// `body[..filled]` holds data so far, of `len` in all (`body.len()` is read room).
    Length {
        len: usize,
        filled: usize,
    },
    Chunked(ChunkedDecoder),
}

/// Per-connection request assembly: a read buffer and where the current request stands.
#[derive(Debug)]
pub(crate) struct RequestReader {
    /// Storage; `buf[start..end]` holds received bytes not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes after `start` already searched for the end of a head.
    scanned: usize,
    state: State,
    continue_due: bool,
}

impl RequestReader {
    pub(crate) fn new() -> Self {
        RequestReader {
            buf: Vec::new(),
            start: 0,
            end: 0,
            scanned: 0,
            state: State::Idle,
            continue_due: false,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.state {
            State::Idle if self.start == self.end => Phase::Idle,
            State::Idle | State::Head => Phase::Head,
            State::Body { .. } => Phase::Body,
        }
    }

    /// `true` when no byte of a next request has been received.
    pub(crate) fn is_empty(&self) -> bool {
        self.phase() == Phase::Idle
    }

    /// Gives back a read buffer grown past its initial size by a large request, once nothing
    /// is buffered: a keep-alive connection that once sent a 100 KiB head should not keep
    /// 128 KiB while it idles.
    pub(crate) fn release_spare(&mut self) {
        if self.is_empty() && self.buf.len() > INITIAL_BUFFER {
            self.buf = Vec::new();
            self.start = 0;
            self.end = 0;
        }
    }

    /// Whether a `100 Continue` should be sent now (reported once per request).
    pub(crate) fn take_continue_due(&mut self) -> bool {
        std::mem::take(&mut self.continue_due)
    }

    /// Where the next read should go; `None` when the buffer is at its limit (the request is
    /// then too large: [`advance`](Self::advance) has either failed or cannot progress).
    pub(crate) fn space(&mut self, limits: &Limits) -> Option<&mut [u8]> {
        if let State::Body {
            body,
            progress: BodyProgress::Length { len, filled },
            ..
        } = &mut self.state
        {
            if *filled == body.len() {
                let room = (*filled * 2).max(BODY_STEP).min(*len);
                body.resize(room, 0);
            }
            return Some(&mut body[*filled..]).filter(|s| !s.is_empty());
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.buf.len() && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let cap = max_head_len(limits).saturating_add(BODY_SLACK);
            if self.buf.len() >= cap {
                return None;
            }
            let grown = (self.buf.len() * 2).max(INITIAL_BUFFER).min(cap);
            self.buf.resize(grown, 0);
        }
        Some(&mut self.buf[self.end..])
    }

    /// Records that `n` bytes were read into the slice last returned by [`space`](Self::space).
    pub(crate) fn filled(&mut self, n: usize) {
        match &mut self.state {
            State::Body {
                progress: BodyProgress::Length { filled, .. },
                ..
            } => *filled += n,
            _ => self.end += n,
        }
    }

    /// Moves the current request forward with the bytes buffered so far.
    pub(crate) fn advance(&mut self, limits: &Limits) -> Progress {
        match self.try_advance(limits) {
            Ok(Some((head, body))) => Progress::Complete(head, body),
            Ok(None) => Progress::NeedMore,
            Err(e) => Progress::Failed(e),
        }
    }

    fn try_advance(&mut self, limits: &Limits) -> Result<Option<(Head, Vec<u8>)>, ProtocolError> {
        if let State::Idle = self.state {
            if self.start == self.end {
                return Ok(None);
            }
            self.state = State::Head;
            self.scanned = 0;
        }
        if let State::Head = self.state {
            let pending = &self.buf[self.start..self.end];
            if !may_hold_head_end(pending, self.scanned) {
                check_partial_head(pending, limits)?;
                self.scanned = pending.len();
                return Ok(None);
            }
            let Some((head, len)) = parse_head(pending, limits)? else {
                self.scanned = pending.len();
                return Ok(None);
            };
            self.start += len;
            self.start_body(head, limits)?;
        }
        let State::Body { body, progress, .. } = &mut self.state else {
            return Ok(None);
        };
        let complete = match progress {
            BodyProgress::Length { len, filled } => {
                let done = *filled == *len;
                if done {
                    body.truncate(*len);
                }
                done
            }
            BodyProgress::Chunked(decoder) => {
                let pending = &self.buf[self.start..self.end];
                let (used, done) = decoder.decode(pending, body, limits.request_body)?;
                self.start += used;
                done
            }
        };
        if !complete {
            return Ok(None);
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Body { head, body, .. } => Ok(Some((head, body))),
            _ => Ok(None),
        }
    }

    /// Enters the body phase for `head`, taking whatever body bytes are already buffered.
    fn start_body(&mut self, head: Head, limits: &Limits) -> Result<(), ProtocolError> {
        let buffered = self.end - self.start;
        let (body, progress) = match head.framing {
            BodyFraming::None => (Vec::new(), BodyProgress::Length { len: 0, filled: 0 }),
            BodyFraming::Length(len) if len > limits.request_body => {
                return Err(ProtocolError::BodyTooLarge)
            }
            BodyFraming::Length(len) => {
                let take = buffered.min(len);
                let body = self.buf[self.start..self.start + take].to_vec();
                self.start += take;
                (body, BodyProgress::Length { len, filled: take })
            }
            BodyFraming::Chunked => (Vec::new(), BodyProgress::Chunked(ChunkedDecoder::new())),
        };
        self.continue_due =
            head.expects_continue && head.framing != BodyFraming::None && buffered == 0;
        self.state = State::Body {
            head,
            body,
            progress,
        };
        Ok(())
    }
}

/// Parses one complete request (head and body) from the start of `bytes`, exactly as the
/// server would, feeding the bytes in read-sized pieces. `Ok(None)`: incomplete. On success
/// also returns how many bytes the request took (pipelined bytes after it are not touched).
/// Useful for tests and benchmarks; the request has no peer.
pub fn parse_request(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Option<(Request, usize)>, ProtocolError> {
    let mut reader = RequestReader::new();
    let mut fed = 0;
    loop {
        match reader.advance(limits) {
            Progress::Complete(head, body) => {
                let used = fed - (reader.end - reader.start);
                return Ok(Some((Request::from_head(head, body, None), used)));
            }
            Progress::Failed(e) => return Err(e),
            Progress::NeedMore if fed == bytes.len() => return Ok(None),
            Progress::NeedMore => {}
        }
        let space = reader.space(limits).ok_or(ProtocolError::HeadTooLarge)?;
        let n = space.len().min(bytes.len() - fed);
        space[..n].copy_from_slice(&bytes[fed..fed + n]);
        reader.filled(n);
        fed += n;
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
