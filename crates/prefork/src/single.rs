//! `--single-process`: the worker runs in the master's place, without fork.
//!
//! Useful under a debugger or a profiler. TERM stops gracefully (drain, at most
//! `graceful_timeout`), INT/QUIT quickly (a one-second grace), USR1 reopens logs; HUP, TTIN,
//! TTOU and USR2 need a master and are logged and ignored. A control thread waits for the
//! signals while `boot_worker` runs on the calling thread.

use crate::pidfile::Pidfile;
use crate::protocol::exit_code;
use crate::signals::{name, BlockedSignals};
use crate::table::{monotonic_ms, WorkerTable};
use crate::worker::{panic_message, with_jitter};
use crate::{bind, upgrade, BootError, Error, Listener, Monitor, Service, WorkerContext};
use nix::sys::signal::Signal;
use signal_hook::iterator::Signals;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a quick stop (INT/QUIT) waits for the server before exiting anyway.
const QUICK_STOP_GRACE: Duration = Duration::from_secs(1);
/// How often the control thread looks at signals while it waits for the server to drain.
const DRAIN_POLL: Duration = Duration::from_millis(100);
const MAX_TASKS: usize = 1024;

/// What must happen on every way out: pidfile and Unix sockets removed.
struct Cleanup {
    pidfile: Option<Pidfile>,
    unix_paths: Vec<PathBuf>,
}

impl Cleanup {
    /// Idempotent: the pidfile is removed only while it names us, sockets only once exist.
    fn run(&self) {
        if let Some(pidfile) = &self.pidfile {
            pidfile.remove();
        }
        for path in &self.unix_paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub(crate) fn run_single<S: Service + Sync>(
    service: S,
    listeners: Vec<Listener>,
) -> Result<i32, Error> {
    let settings = service.settings();
    let threads = settings.threads.max(1);
    let pidfile = match &settings.pidfile {
        Some(path) => Some(Pidfile::create(path, upgrade::predecessor_from_env())?),
        None => None,
    };
    let cleanup = Cleanup {
        pidfile,
        unix_paths: bind::unix_paths(&listeners),
    };
    log::info!("Using worker: single-process (threads: {threads})");
    let table = Arc::new(WorkerTable::local(1, threads.min(MAX_TASKS)));
    if let Some(slot) = table.slot(0) {
        slot.claim(1, monotonic_ms());
    }
    let setup = || -> std::io::Result<_> {
        let monitor = Monitor::attach(Arc::clone(&table), 0, None, None)?;
        let signals = Signals::new(
            [
                Signal::SIGTERM,
                Signal::SIGINT,
                Signal::SIGQUIT,
                Signal::SIGUSR1,
                Signal::SIGHUP,
                Signal::SIGTTIN,
                Signal::SIGTTOU,
                Signal::SIGUSR2,
            ]
            .map(|s| s as i32),
        )?;
        Ok((Arc::new(monitor), signals))
    };
    let (monitor, mut signals) = setup().map_err(|e| {
        cleanup.run();
        Error::io("installing signal handlers", e)
    })?;
    let seed = u64::from(std::process::id()) ^ monotonic_ms();
    let ctx = WorkerContext {
        listeners,
        monitor: Arc::clone(&monitor),
        max_requests: with_jitter(settings.max_requests, settings.max_requests_jitter, seed),
    };
    let handle = signals.handle();
    let (done_tx, done_rx) = channel::<()>();
    let outcome = std::thread::scope(|scope| {
        let control = Control {
            service: &service,
            monitor: &monitor,
            cleanup: &cleanup,
            graceful: settings.graceful_timeout,
        };
        let signals = &mut signals;
        scope.spawn(move || control.run(signals, &done_rx));
        // Signals go to the control thread, never to the server's threads (see
        // `BlockedSignals::keep_handled_blocked`); the mask comes back when this returns.
        let routed = BlockedSignals::block_handled();
        if let Err(e) = &routed {
            log::warn!("Cannot keep signals away from the server's threads: {e}");
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| service.boot_worker(ctx)));
        drop(routed);
        drop(done_tx);
        handle.close();
        outcome
    });
    let status = match outcome {
        Ok(Ok(())) => exit_code::OK,
        Ok(Err(BootError(message))) if monitor.is_ready() => {
            log::error!("Worker failed: {message}");
            exit_code::SERVE_FAILED
        }
        Ok(Err(BootError(message))) => {
            log::error!("Worker failed to boot: {message}");
            exit_code::BOOT_FAILED
        }
        Err(panic) => {
            log::error!("Worker panicked: {}", panic_message(panic.as_ref()));
            exit_code::PANICKED
        }
    };
    cleanup.run();
    log::info!("Shutting down: Master");
    Ok(status)
}

/// The control thread: turns signals into stop requests and enforces the drain deadline.
struct Control<'a, S> {
    service: &'a S,
    monitor: &'a Monitor,
    cleanup: &'a Cleanup,
    graceful: Duration,
}

impl<S: Service + Sync> Control<'_, S> {
    fn run(&self, signals: &mut Signals, done: &Receiver<()>) {
        let mut deadline: Option<Instant> = None;
        loop {
            let pending: Vec<i32> = match deadline {
                None => signals.wait().collect(),
                Some(at) => match done.recv_timeout(DRAIN_POLL) {
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) if Instant::now() >= at => self.give_up(),
                    Err(RecvTimeoutError::Timeout) => signals.pending().collect(),
                },
            };
            if signals.is_closed() {
                return;
            }
            for signal in pending.into_iter().filter_map(|s| Signal::try_from(s).ok()) {
                log::info!("Handling signal: {}", name(signal));
                let now = Instant::now();
                let grace = match signal {
                    // The monitor's own TERM action already raised the stop flag.
                    Signal::SIGTERM => self.graceful,
                    Signal::SIGINT | Signal::SIGQUIT => {
                        self.monitor.request_stop();
                        QUICK_STOP_GRACE
                    }
                    Signal::SIGUSR1 => {
                        self.service.reopen_logs();
                        continue;
                    }
                    other => {
                        log::warn!(
                            "Ignoring {}: single-process mode has no workers to manage",
                            name(other)
                        );
                        continue;
                    }
                };
                let at = now + grace;
                deadline = Some(deadline.map_or(at, |d| d.min(at)));
            }
        }
    }

    /// The server did not finish draining in time: leave without it.
    fn give_up(&self) -> ! {
        log::warn!("Still serving after the stop deadline: exiting now");
        self.cleanup.run();
        log::info!("Shutting down: Master");
        log::logger().flush();
        std::process::exit(exit_code::OK)
    }
}
