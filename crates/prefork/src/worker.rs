//! The worker's side of the supervisor (contract; implementation to follow).

use std::sync::Arc;

/// Handed to [`crate::Service::boot_worker`] in each worker.
pub struct WorkerContext {
    /// Inherited listeners, ready to accept (non-blocking state is the server's choice).
    pub listeners: Vec<crate::Listener>,
    /// This worker's monitor: stop requests, readiness, heartbeats, activity.
    pub monitor: Arc<Monitor>,
    /// Requests to serve before recycling (jitter applied), `None` = never.
    pub max_requests: Option<u64>,
}

/// The worker's link to the master; cheap to call from any thread.
pub struct Monitor {}

/// A worker could not start (bad database, unreadable templates…): the message reaches the
/// master's log, and if no worker ever booted the master exits with it.
#[derive(Debug)]
pub struct BootError(pub String);
