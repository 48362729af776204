//! Wiring: the blog served by the http crate inside prefork's workers.
//!
//! [`BlogService`] is what the supervisor runs. In each worker (after fork) it builds the blog
//! app, reports ready, and hands the inherited listeners to `http::serve`, bridging the http
//! crate's `Control` to prefork's `Monitor` so heartbeats and stuck requests reach the master.

use crate::cli::Cli;
use crate::config::Config;
use crate::logging;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

/// The supervisor's view of pyblogd: config, reload, and how to boot a worker.
pub struct BlogService {
    cli: Cli,
    config: Config,
}

impl BlogService {
    pub fn new(cli: Cli, config: Config) -> Self {
        BlogService { cli, config }
    }
}

impl prefork::Service for BlogService {
    fn settings(&self) -> prefork::Settings {
        self.config.supervisor.clone()
    }

    fn reload(&mut self) -> Result<(), String> {
        let fresh = Config::resolve(&self.cli)?;
        if fresh.binds != self.config.binds {
            log::warn!(
                "bind addresses changed in the configuration; keeping the current listeners \
                 (a USR2 upgrade or a restart applies new ones)"
            );
        }
        if fresh.log != self.config.log {
            logging::reconfigure(&fresh.log).map_err(|e| e.to_string())?;
        }
        self.config = Config {
            binds: self.config.binds.clone(),
            ..fresh
        };
        Ok(())
    }

    fn reopen_logs(&self) {
        logging::reopen();
    }

    fn summary(&self) -> Vec<(String, String)> {
        // The lines `--check-config` prints: one description of the configuration, not two.
        self.config
            .describe()
            .lines()
            .filter_map(|line| line.split_once(": "))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn boot_worker(&self, ctx: prefork::WorkerContext) -> Result<(), prefork::BootError> {
        // The blog may not depend on prefork, which owns the one unsafe allocator call: the
        // wiring happens here. The highlighter calls it from its own thread after it retired.
        let app = blog::App::new(self.config.blog.clone())
            .map_err(|e| prefork::BootError(e.to_string()))?
            .with_memory_release(|| {
                prefork::release_free_memory();
            });
        let listeners = ctx
            .listeners
            .into_iter()
            .map(|l| match l {
                prefork::Listener::Tcp(t) => http::Listener::Tcp(t),
                prefork::Listener::Unix(u) => http::Listener::Unix(u),
            })
            .collect();
        let mut server = self.config.server.clone();
        server.max_requests = ctx.max_requests;
        ctx.monitor.ready();
        let control = Arc::new(WorkerControl(ctx.monitor));
        match http::serve(listeners, Arc::new(app), &server, control) {
            Ok(http::ServeOutcome::Stopped) => Ok(()),
            Ok(http::ServeOutcome::Recycled) => {
                log::info!("Worker reached max requests, recycling");
                Ok(())
            }
            Err(e) => Err(prefork::BootError(format!("server failed: {e}"))),
        }
    }
}

/// Forwards the http crate's control calls to this worker's monitor.
struct WorkerControl(Arc<prefork::Monitor>);

impl http::Control for WorkerControl {
    fn should_stop(&self) -> bool {
        self.0.should_stop()
    }

    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.0.wake_fd()
    }

    fn heartbeat(&self) {
        self.0.heartbeat();
    }

    fn request_started(&self, thread: usize, method: &str, path: &str) {
        // Joined with a space straight into the fixed-size label in shared memory:
        // no allocation per request.
        self.0.task_started_parts(thread, &[method, path]);
    }

    fn request_finished(&self, thread: usize) {
        self.0.task_finished(thread);
    }

    fn request_measured(&self, _thread: usize, status: u16, elapsed: std::time::Duration) {
        crate::http_metrics::record(&self.0, status, elapsed);
    }
}
