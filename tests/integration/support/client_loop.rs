//! A background client for the "no request fails" tests (reloads, upgrades, socket hand-over):
//! `GET path` on a fresh connection, again and again, counting what came back, until stopped.
//! Bounded on its own: two minutes or 100k requests, whichever comes first.

use super::{wait_until, Server, PATIENCE};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct ClientLoop {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClientLoop {
    pub fn start(addr: SocketAddr, path: &'static str) -> ClientLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (s, o, f, e) = (stop.clone(), ok.clone(), failed.clone(), errors.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut n = 0;
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline && n < 100_000 {
                n += 1;
                match get_once(addr, path) {
                    Ok(200) => {
                        o.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        f.fetch_add(1, Ordering::Relaxed);
                        e.lock().unwrap().push(format!("{other:?}"));
                    }
                }
            }
        });
        ClientLoop {
            stop,
            ok,
            failed,
            errors,
            thread: Some(thread),
        }
    }

    /// Requests answered 200 so far.
    pub fn ok(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    /// Waits until `n` more requests succeeded than had when called.
    pub fn wait_for_more(&self, n: usize, server: &Server) {
        let from = self.ok();
        let ok = wait_until(PATIENCE, || self.ok() >= from + n);
        assert!(ok, "requests stalled; log:\n{}", server.log_text());
    }

    /// Stops the loop and returns (ok, failed, the first five errors).
    pub fn finish(mut self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        let errors = self
            .errors
            .lock()
            .unwrap()
            .iter()
            .take(5)
            .cloned()
            .collect();
        (self.ok(), self.failed.load(Ordering::Relaxed), errors)
    }
}

/// `GET path` on a fresh connection (`Connection: close`); the status.
pub fn get_once(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )?;
    Ok(super::read_reply(&mut std::io::BufReader::new(s), false)?.status)
}
