//! Running out of descriptors: the poller backs off instead of spinning on EMFILE, and serves
//! again once descriptors are free. Runs in a child process because it lowers the process limit.

use crate::support;
use rusty_fork::rusty_fork_test;

use http::Listener;
use nix::sys::resource::{getrlimit, getrusage, setrlimit, Resource, UsageWho};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;
use support::{get, Client, TestServer};

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").unwrap().count() as u64
}

fn cpu_time() -> Duration {
    let usage = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let (user, system) = (usage.user_time(), usage.system_time());
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    Duration::from_micros(micros(user) + micros(system))
}

// It lowers the descriptor limit of the whole process, so it runs in a child process of its
// own: no other test can hit EMFILE because of it.
rusty_fork_test! {
    #[test]
    fn emfile_backs_off_and_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("http.sock");
        let listener = Listener::Unix(UnixListener::bind(&path).unwrap());
        let _server = TestServer::with_listener(listener, support::config());
        let client = || Client::unix(UnixStream::connect(&path).unwrap());
        assert_eq!(client().round_trip(get("/")).status, 200);
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        // Client sockets exist before the limit drops; connecting them needs no new descriptor.
        let waiting: Vec<OwnedFd> = (0..20)
            .map(|_| {
                socket(
                    AddressFamily::Unix,
                    SockType::Stream,
                    SockFlag::empty(),
                    None,
                )
                .unwrap()
            })
            .collect();
        // Room for a couple of accepts, then EMFILE with connections left in the backlog.
        setrlimit(Resource::RLIMIT_NOFILE, open_fds() + 2, hard).unwrap();
        let addr = UnixAddr::new(&path).unwrap();
        for fd in &waiting {
            connect(fd.as_raw_fd(), &addr).unwrap();
        }
        let before = cpu_time();
        std::thread::sleep(Duration::from_millis(600));
        let spent = cpu_time() - before;
        drop(waiting);
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
        assert!(
            spent < Duration::from_millis(300),
            "poller spun on EMFILE: {spent:?} of CPU in 600 ms"
        );
        support::wait_until("served again", || {
            let mut fresh = client();
            fresh.send(get("/"));
            fresh.try_reply(false).is_ok_and(|r| r.status == 200)
        });
    }
}
