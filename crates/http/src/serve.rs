//! Serving: [`serve`] wires the poller thread (the calling thread) to a pool of handler
//! threads and waits for the drain.
//!
//! `serve` owns the threads it starts: on a normal return every handler thread has been
//! joined. Only when `graceful_timeout` runs out with a request still running are the busy
//! threads left behind (a thread cannot be cancelled); the caller is expected to exit then.

use crate::config::{Listener, ServeOutcome, ServerConfig};
use crate::handler::{Control, Handler};
use crate::handler_pool;
use crate::handoff::Handoff;
use crate::poller::Poller;
use std::io;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Serves `listeners` with `handler` until `control` asks to stop or `max_requests` is reached.
///
/// The calling thread becomes the poller; `config.threads` handler threads are started and
/// joined before a normal return. Listeners are made non-blocking and closed when the drain
/// begins. Errors are start-up failures (threads, the wake pipe) or a failing poll(2).
pub fn serve(
    listeners: Vec<Listener>,
    handler: Arc<dyn Handler>,
    config: &ServerConfig,
    control: Arc<dyn Control>,
) -> io::Result<ServeOutcome> {
    if config.threads == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "threads must be at least 1",
        ));
    }
    crate::panic_capture::install_hook();
    for listener in &listeners {
        listener.set_nonblocking()?;
    }
    let (wake_rx, wake_tx) = UnixStream::pair()?;
    wake_rx.set_nonblocking(true)?;
    wake_tx.set_nonblocking(true)?;
    let handoff = Arc::new(Handoff::new(config.clone(), handler, control, wake_tx));
    let mut threads = Vec::with_capacity(config.threads);
    for index in 0..config.threads {
        let shared = Arc::clone(&handoff);
        let spawned = std::thread::Builder::new()
            .name(format!("http-handler-{index}"))
            .spawn(move || handler_pool::run(&shared, index));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                stop_pool(&handoff, threads);
                return Err(io::Error::new(
                    e.kind(),
                    format!("starting handler thread {index}: {e}"),
                ));
            }
        }
    }
    let outcome = Poller::new(&handoff, listeners, wake_rx).run();
    stop_pool(&handoff, threads);
    outcome
}

/// Closes the job queue and joins the handler threads, unless some are still busy (after a
/// graceful timeout): those are left to finish or die with the process.
fn stop_pool(handoff: &Handoff, threads: Vec<JoinHandle<()>>) {
    handoff.close_queue();
    if handoff.busy() > 0 {
        log::warn!("leaving {} busy handler threads behind", handoff.busy());
        return;
    }
    for thread in threads {
        if thread.join().is_err() {
            log::error!("a handler thread panicked outside a request");
        }
    }
}
