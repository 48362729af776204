//! The binary's integration tests: each module starts the real `pyblogd`
//! (`env!("CARGO_BIN_EXE_pyblogd")`) in a temp dir and talks raw TCP to it on 127.0.0.1.
//!
//! One test crate, as ripgrep does: a single binary to link on 2 cores instead of one per
//! file, sharing one harness (`support`). Servers are separate processes, so tests in one
//! binary share nothing but `support`'s bound on how many servers run at once.

// Test code: a failed unwrap is a failed test; the workspace denies them everywhere else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod abuse;
mod activation;
mod blog;
mod browser;
mod config;
mod corpus;
mod db_faults;
mod durability;
mod hostile;
mod metrics;
mod postgres;
mod protocol;
mod security;
mod status;
mod supervisor;
