//! Catches a handler's panic and keeps its message and backtrace for the error page and log.
//!
//! A process-wide panic hook (installed once) checks a thread-local flag: inside [`catch`] it
//! stashes the message, location and a forced backtrace in a thread-local instead of printing
//! to stderr, so the server logs the panic once, with its request, through `log`. Panics
//! elsewhere go to whatever hook was installed before.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::sync::Once;

/// What a caught panic said.
#[derive(Debug, Clone)]
pub(crate) struct PanicReport {
    /// The panic message with its source location.
    pub message: String,
    pub backtrace: String,
}

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static CAPTURED: RefCell<Option<PanicReport>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Installs the capturing hook (idempotent), chaining to the previous hook for other threads.
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let report = PanicReport {
                    message: describe(info.payload(), info.location()),
                    backtrace: std::backtrace::Backtrace::force_capture().to_string(),
                };
                CAPTURED.with(|c| *c.borrow_mut() = Some(report));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into a [`PanicReport`]. Call [`install_hook`] first, or the
/// report has no backtrace and the default hook prints to stderr.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, PanicReport> {
    CAPTURING.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    CAPTURING.with(|c| c.set(false));
    result.map_err(|payload| {
        CAPTURED
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| PanicReport {
                message: payload_text(payload.as_ref()).to_string(),
                backtrace: String::new(),
            })
    })
}

fn describe(payload: &(dyn Any + Send), location: Option<&Location<'_>>) -> String {
    let text = payload_text(payload);
    match location {
        Some(at) => format!("{text} at {}:{}", at.file(), at.line()),
        None => text.to_string(),
    }
}

fn payload_text(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_without_a_panic() {
        install_hook();
        assert_eq!(catch(|| 41 + 1).unwrap(), 42);
    }

    #[test]
    fn captures_message_location_and_backtrace() {
        install_hook();
        let report = catch(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert!(
            report.message.starts_with("boom 7 at "),
            "{}",
            report.message
        );
        assert!(report.message.contains("panic_capture.rs"));
        assert!(!report.backtrace.is_empty());
        // The next catch starts clean.
        assert_eq!(catch(|| "ok").unwrap(), "ok");
    }
}
