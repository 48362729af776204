//! systemd readiness notifications (`Type=notify`), sent only when `NOTIFY_SOCKET` is set.
//!
//! The master sends `READY=1` with `MAINPID=` once its first generation booted, `RELOADING=1`
//! and `READY=1` around a HUP, `STOPPING=1` on stop, and hands `MAINPID=` to the new master
//! after a USR2 upgrade (gunicorn never does, which is why its upgrades confuse systemd).

use sd_notify::NotifyState;

/// Sends `states` to the service manager; a failure is logged, never fatal.
pub(crate) fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("Cannot notify systemd: {e}");
    }
}
