//! The http crate's integration tests: `serve` on 127.0.0.1:0 in a thread of this process,
//! a real application (`support::TestHandler`) and a raw client that reads byte for byte.
//!
//! One test crate, as ripgrep does: one binary to link instead of one per file, one harness
//! (`support`). Tests that change the whole process (a global logger, a lowered descriptor
//! limit) run in a child process of their own (rusty-fork), so they share nothing with the rest.

// Test code: a failed unwrap is a failed test; the workspace denies them everywhere else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod access_log;
mod fd_exhaustion;
mod lifecycle;
mod limits;
mod protocol;
mod slow_clients;
mod smuggling;
