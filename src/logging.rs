//! The process logger: gunicorn's line format on the error log, Apache lines on the access log.
//!
//! Error-log lines read `[2026-11-26 02:11:18 +0000] [1234] [INFO] message`; lines logged with
//! target `pyblogd::access` (written by the http crate, already formatted) go verbatim to the
//! access log, or nowhere when none is configured. `--log-level` filters the error log only:
//! like gunicorn, access lines are written whatever the level. Files are opened in append mode
//! and reopened on USR1 (logrotate) and on HUP when their paths change.

use crate::config::LogConfig;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The log target whose lines are access-log lines.
const ACCESS_TARGET: &str = "pyblogd::access";

enum Sink {
    Stdout,
    Stderr,
    File(File),
}

impl Sink {
    fn open(spec: &str, dash: Sink) -> std::io::Result<Sink> {
        if spec == "-" {
            return Ok(dash);
        }
        let file = OpenOptions::new().create(true).append(true).open(spec)?;
        Ok(Sink::File(file))
    }

    /// One `write` per line, so lines from several processes sharing a file never interleave.
    fn write_line(&mut self, line: &[u8]) {
        // A failed log write has nowhere better to be reported; dropping it keeps serving.
        let _ = match self {
            Sink::Stdout => std::io::stdout().lock().write_all(line),
            Sink::Stderr => std::io::stderr().lock().write_all(line),
            Sink::File(f) => f.write_all(line),
        };
    }
}

struct Sinks {
    config: LogConfig,
    error: Sink,
    access: Option<Sink>,
}

impl Sinks {
    fn open(config: &LogConfig) -> std::io::Result<Sinks> {
        let error = Sink::open(&config.error_logfile, Sink::Stderr).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot open error log {}: {e}", config.error_logfile),
            )
        })?;
        let access = match &config.access_logfile {
            None => None,
            Some(path) => Some(Sink::open(path, Sink::Stdout).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot open access log {path}: {e}"))
            })?),
        };
        Ok(Sinks {
            config: config.clone(),
            error,
            access,
        })
    }
}

struct Logger {
    sinks: Mutex<Option<Sinks>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Ok(mut guard) = self.sinks.lock() else {
            return;
        };
        let Some(sinks) = guard.as_mut() else { return };
        if record.target() != ACCESS_TARGET && record.level() > sinks.config.level {
            return;
        }
        if record.target() == ACCESS_TARGET {
            if let Some(access) = sinks.access.as_mut() {
                access.write_line(format!("{}\n", record.args()).as_bytes());
            }
            return;
        }
        // Quieter crates log at debug only when asked for.
        if record.level() > log::Level::Info
            && !record.target().starts_with("pyblogd")
            && !record.target().starts_with("http")
            && !record.target().starts_with("prefork")
            && !record.target().starts_with("blog")
        {
            return;
        }
        let level = match record.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARNING",
            log::Level::Info => "INFO",
            log::Level::Debug => "DEBUG",
            log::Level::Trace => "TRACE",
        };
        let line = format!(
            "[{}] [{}] [{level}] {}\n",
            timestamp(SystemTime::now()),
            std::process::id(),
            record.args()
        );
        sinks.error.write_line(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger; call once at start, before any fork.
pub fn init(config: &LogConfig) -> std::io::Result<()> {
    let sinks = Sinks::open(config)?;
    let logger = LOGGER.get_or_init(|| Logger {
        sinks: Mutex::new(None),
    });
    if let Ok(mut guard) = logger.sinks.lock() {
        *guard = Some(sinks);
    }
    // Err only when a logger is already set, which is this same one on a second call.
    let _ = log::set_logger(logger);
    log::set_max_level(facade_level(config));
    Ok(())
}

/// Applies a (possibly changed) configuration: reopens files, adopts the level.
pub fn reconfigure(config: &LogConfig) -> std::io::Result<()> {
    let Some(logger) = LOGGER.get() else {
        return init(config);
    };
    let sinks = Sinks::open(config)?;
    if let Ok(mut guard) = logger.sinks.lock() {
        *guard = Some(sinks);
    }
    log::set_max_level(facade_level(config));
    Ok(())
}

/// The level the `log` facade lets through: access lines are logged at info, so with an access
/// log the facade passes info even when `--log-level` is quieter; the logger then drops the
/// error-log lines below the configured level.
fn facade_level(config: &LogConfig) -> log::LevelFilter {
    if config.access_logfile.is_some() {
        config.level.max(log::LevelFilter::Info)
    } else {
        config.level
    }
}

/// USR1: reopens the current files (after logrotate moved them away).
pub fn reopen() {
    let Some(logger) = LOGGER.get() else { return };
    let Ok(mut guard) = logger.sinks.lock() else {
        return;
    };
    let Some(current) = guard.as_ref() else {
        return;
    };
    match Sinks::open(&current.config) {
        Ok(sinks) => *guard = Some(sinks),
        Err(e) => {
            let line = format!(
                "[{}] [{}] [ERROR] cannot reopen log files: {e}\n",
                timestamp(SystemTime::now()),
                std::process::id()
            );
            if let Some(current) = guard.as_mut() {
                current.error.write_line(line.as_bytes());
            }
        }
    }
}

/// `2026-11-26 02:11:18 +0000`, always UTC.
fn timestamp(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (year, month, day) = http::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01 00:00:00 +0000");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_659_078);
        assert_eq!(timestamp(t), "2026-11-26 02:11:18 +0000");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(t), "2000-02-29 00:00:00 +0000");
    }
}
