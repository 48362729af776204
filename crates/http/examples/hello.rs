//! A trivial server for load tests: `cargo run --release -p pyblogd-http --example hello -- PORT THREADS`.
//!
//! Answers every request with `200 hello`, so a load generator measures the server core alone
//! (compare with nginx `return 200`). The port is bound with SO_REUSEPORT, so starting it twice
//! gives two "workers" sharing the port, as prefork does. It runs until killed.

use http::{Control, Handler, Listener, Request, Response, ServerConfig};
use socket2::{Domain, Socket, Type};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::BorrowedFd;
use std::sync::Arc;

struct Hello;

impl Handler for Hello {
    fn handle(&self, _req: &Request) -> Response {
        Response::text(200, "hello")
    }
}

struct Forever;

impl Control for Forever {
    fn should_stop(&self) -> bool {
        false
    }
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn heartbeat(&self) {}
    fn request_started(&self, _thread: usize, _method: &str, _path: &str) {}
    fn request_finished(&self, _thread: usize) {}
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8000);
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(4);
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    socket.listen(2048)?;
    let listener = TcpListener::from(socket);
    let config = ServerConfig {
        threads,
        ..ServerConfig::default()
    };
    let outcome = http::serve(
        vec![Listener::Tcp(listener)],
        Arc::new(Hello),
        &config,
        Arc::new(Forever),
    )?;
    println!("{outcome:?}");
    Ok(())
}
