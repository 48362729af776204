//! Routes that misbehave on purpose, for testing the server around the app.
//!
//! They exist only when `Config.fault_routes` is set (`PYBLOGD_FAULT_ROUTES=1`); the router
//! answers 404 otherwise. Each exercises one failure the server must survive: a panic in a
//! handler, a handler that never returns, a worker that dies, a slow response.

use crate::failure::Failure;
use crate::router::Fault;
use http::{Request, Response};
use std::time::Duration;

/// The longest `/__fault/slow` sleeps, whatever it is asked.
const SLOW_CAP: Duration = Duration::from_secs(60);

pub(super) fn misbehave(fault: Fault, req: &Request) -> Result<Response, Failure> {
    match fault {
        Fault::Panic => panic!("deliberate panic from /__fault/panic"),
        Fault::Hang => {
            log::warn!("/__fault/hang: this thread now sleeps forever");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Fault::Abort => {
            log::warn!("/__fault/abort: aborting the process");
            std::process::abort()
        }
        Fault::Slow => {
            let pairs = req
                .query_pairs()
                .map_err(|e| Failure::BadRequest(format!("query string: {e}")))?;
            let ms = pairs
                .iter()
                .find(|(k, _)| k == "ms")
                .map_or(Ok(0), |(_, v)| v.trim().parse::<u64>())
                .map_err(|_| Failure::BadRequest("ms must be a whole number".to_string()))?;
            std::thread::sleep(Duration::from_millis(ms).min(SLOW_CAP));
            Ok(Response::text(200, "slow ok"))
        }
    }
}
