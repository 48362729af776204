//! The supervisor's integration tests: `prefork-demo` (a small server on the supervisor)
//! driven as a real process tree, with real signals, on 127.0.0.1.
//!
//! One test crate with one harness (`support`), laid out as the workspace's other crates.

// Test code: a failed unwrap is a failed test; the workspace denies them everywhere else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod master;
