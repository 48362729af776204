//! Test harness: a tiny handler and control, a server on 127.0.0.1:0 in a thread, and a raw
//! HTTP client that reads responses byte for byte.

use http::{Control, Handler, Listener, Request, Response, ServeOutcome, ServerConfig};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Routes: `/` hello, `/echo` (body and request facts back), `/panic`, `/slow?ms=N`,
/// `/big?n=N` (N bytes of `x`), `/status?code=N`.
pub struct TestHandler;

impl Handler for TestHandler {
    fn handle(&self, req: &Request) -> Response {
        let query = req.query_pairs().unwrap_or_default();
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        match req.path.as_str() {
            "/" => Response::text(200, "hello"),
            "/echo" => Response::new(200)
                .with_header("X-Method", req.method.clone())
                .with_header("X-Path", req.path.clone())
                .with_header("X-Query", req.query.clone())
                .with_header("X-Version", req.version.as_str())
                .with_body(http::Body::Owned(req.body.clone())),
            "/panic" => panic!("boom at {}", req.path),
            "/slow" => {
                std::thread::sleep(Duration::from_millis(param("ms")));
                Response::text(200, "slow done")
            }
            "/big" => {
                Response::new(200).with_body(http::Body::Owned(vec![b'x'; param("n") as usize]))
            }
            "/status" => Response::new(param("code") as u16),
            _ => Response::text(404, "not found"),
        }
    }

    fn panic_response(&self, _req: &Request, message: &str, backtrace: &str) -> Response {
        Response::text(
            500,
            format!("panic: {message}\nbacktrace: {}", !backtrace.is_empty()),
        )
    }
}

/// A control the test drives: a stop flag with a wake pipe, and records of what happened.
pub struct TestControl {
    stop: AtomicBool,
    wake_rx: UnixStream,
    wake_tx: UnixStream,
    pub heartbeats: AtomicU64,
    pub started: Mutex<Vec<(usize, String, String)>>,
    pub finished: AtomicU64,
}

impl TestControl {
    pub fn new() -> Arc<Self> {
        let (wake_rx, wake_tx) = UnixStream::pair().unwrap();
        Arc::new(TestControl {
            stop: AtomicBool::new(false),
            wake_rx,
            wake_tx,
            heartbeats: AtomicU64::new(0),
            started: Mutex::new(Vec::new()),
            finished: AtomicU64::new(0),
        })
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        (&self.wake_tx).write_all(&[1]).unwrap();
    }

    pub fn started_paths(&self) -> Vec<String> {
        self.started
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, p)| p.clone())
            .collect()
    }
}

impl Control for TestControl {
    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.wake_rx.as_fd())
    }
    fn heartbeat(&self) {
        self.heartbeats.fetch_add(1, Ordering::SeqCst);
    }
    fn request_started(&self, thread: usize, method: &str, path: &str) {
        // Lets a test check that a panic outside the application costs one connection only.
        assert_ne!(path, "/control-panic", "control panicked on purpose");
        self.started
            .lock()
            .unwrap()
            .push((thread, method.to_string(), path.to_string()));
    }
    fn request_finished(&self, _thread: usize) {
        self.finished.fetch_add(1, Ordering::SeqCst);
    }
}

/// A server running in a thread.
pub struct TestServer {
    pub addr: Option<SocketAddr>,
    pub control: Arc<TestControl>,
    thread: Option<JoinHandle<io::Result<ServeOutcome>>>,
}

impl TestServer {
    pub fn start(config: ServerConfig) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = TestServer::with_listener(Listener::Tcp(listener), config);
        server.addr = Some(addr);
        server
    }

    pub fn with_listener(listener: Listener, config: ServerConfig) -> TestServer {
        let control = TestControl::new();
        let ctl: Arc<dyn Control> = control.clone();
        let thread = std::thread::spawn(move || {
            http::serve(vec![listener], Arc::new(TestHandler), &config, ctl)
        });
        TestServer {
            addr: None,
            control,
            thread: Some(thread),
        }
    }

    pub fn client(&self) -> Client {
        Client::new(TcpStream::connect(self.addr.unwrap()).unwrap())
    }

    /// Waits (bounded) for `serve` to return on its own.
    pub fn join(&mut self) -> ServeOutcome {
        let thread = self.thread.take().expect("joined once");
        wait_until("serve returns", || thread.is_finished());
        thread.join().unwrap().unwrap()
    }

    pub fn stop(&mut self) -> ServeOutcome {
        self.control.stop();
        self.join()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.control.stop();
            let _ = thread.join();
        }
    }
}

/// The harness's one way to wait: polls `cond` until true, failing the test after
/// [`PATIENCE`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn closes(&self) -> bool {
        self.header("connection") == Some("close")
    }
}

/// A raw HTTP client over any stream.
pub struct Client<S: Read + Write = TcpStream> {
    reader: BufReader<S>,
}

impl Client<TcpStream> {
    pub fn new(stream: TcpStream) -> Self {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn shutdown_write(&self) {
        self.reader
            .get_ref()
            .shutdown(std::net::Shutdown::Write)
            .unwrap();
    }
}

impl Client<UnixStream> {
    pub fn unix(stream: UnixStream) -> Self {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }
}

impl<S: Read + Write> Client<S> {
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) -> &mut Self {
        self.reader.get_mut().write_all(bytes.as_ref()).unwrap();
        self
    }

    /// Reads one response; `head_request` means no body follows whatever Content-Length says.
    pub fn try_reply(&mut self, head_request: bool) -> io::Result<Reply> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status_line = line.trim_end();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            assert!(line.ends_with("\r\n"), "header line without CRLF: {line:?}");
            let field = line.trim_end();
            if field.is_empty() {
                break;
            }
            let (name, value) = field.split_once(':').expect("header has ':'");
            headers.push((name.to_string(), value.trim_start().to_string()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: Vec::new(),
        };
        if !head_request && status >= 200 {
            let len: usize = reply
                .header("content-length")
                .map_or(0, |v| v.parse().unwrap());
            reply.body = vec![0; len];
            self.reader.read_exact(&mut reply.body)?;
        }
        Ok(reply)
    }

    pub fn reply(&mut self) -> Reply {
        self.try_reply(false).unwrap()
    }

    pub fn head_reply(&mut self) -> Reply {
        self.try_reply(true).unwrap()
    }

    /// Sends `request` and reads its response.
    pub fn round_trip(&mut self, request: impl AsRef<[u8]>) -> Reply {
        self.send(request).reply()
    }

    /// Asserts the server closed the connection (EOF, or a reset after it closed).
    pub fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(
                rest.is_empty(),
                "unexpected bytes: {:?}",
                String::from_utf8_lossy(&rest)
            ),
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
}

pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

pub fn config() -> ServerConfig {
    ServerConfig {
        threads: 2,
        ..ServerConfig::default()
    }
}
