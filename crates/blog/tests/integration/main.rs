//! The blog crate's integration tests: the whole application through `App::handle`, on a
//! fresh SQLite file per test, with requests built as the http crate hands them over.
//!
//! One test crate, as ripgrep does: one binary to link instead of one per file, sharing one
//! harness (`support`).

// Test code: a failed unwrap is a failed test; the workspace denies them everywhere else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod authorship;
mod database;
mod hostile_input;
mod pages;
mod posts;
