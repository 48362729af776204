//! One access-log line per response, in combined format, through the `log` facade.

use crate::support;
use rusty_fork::rusty_fork_test;

use std::sync::Mutex;
use support::{get, wait_until, TestServer};

struct Capture(Mutex<Vec<(String, log::Level, String)>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let entry = (
            record.target().to_string(),
            record.level(),
            record.args().to_string(),
        );
        self.0.lock().unwrap().push(entry);
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

fn access_lines() -> Vec<String> {
    CAPTURE
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(target, _, _)| target == "pyblogd::access")
        .map(|(_, _, line)| line.clone())
        .collect()
}

// It installs the process's one `log` logger and counts every access line it sees, so it
// runs in a child process of its own: no other test's server can add lines to its count.
rusty_fork_test! {
    #[test]
    fn logs_requests_errors_and_panics() {
        log::set_logger(&CAPTURE).unwrap();
        log::set_max_level(log::LevelFilter::Debug);
        let server = TestServer::start(support::config());
        let mut client = server.client();
        client.round_trip(
            "GET /echo?q=1 HTTP/1.1\r\nHost: t\r\nReferer: http://r/\r\nUser-Agent: t\"ua\r\n\r\n",
        );
        wait_until("one access line", || access_lines().len() == 1);
        let line = &access_lines()[0];
        let (prefix, rest) = line.split_once(" [").unwrap();
        assert_eq!(prefix, "127.0.0.1 - -");
        let (date, rest) = rest.split_once("] ").unwrap();
        assert!(date.ends_with(" +0000") && date.len() == 26, "{date}");
        let (fields, seconds) = rest.rsplit_once(' ').unwrap();
        assert_eq!(
            fields,
            r#""GET /echo?q=1 HTTP/1.1" 200 0 "http://r/" "t\"ua""#
        );
        let (whole, micros) = seconds.split_once('.').unwrap();
        assert!(
            whole.parse::<u64>().is_ok() && micros.len() == 6,
            "{seconds}"
        );

        server.client().round_trip("GET / HTTP/1.1\r\n\r\n");
        wait_until("the 400 line", || access_lines().len() == 2);
        assert!(
            access_lines()[1].contains(r#"] "-" 400 "#),
            "{}",
            access_lines()[1]
        );

        server.client().round_trip(get("/panic"));
        wait_until("the 500 line", || access_lines().len() == 3);
        assert!(access_lines()[2].contains(r#""GET /panic HTTP/1.1" 500 "#));
        let errors: Vec<String> = CAPTURE
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, level, _)| *level == log::Level::Error)
            .map(|(_, _, m)| m.clone())
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("GET /panic HTTP/1.1") && errors[0].contains("boom at /panic"),
            "{}",
            errors[0]
        );
    }
}
