//! The child → master protocol in one place: exit codes, slot states, exit reasons, the wake
//! byte, and the environment variables a binary upgrade hands to the new master.
//!
//! A worker talks to its master only through its exit status, its slot in the shared worker
//! table (see `table`), and single bytes on the master's wake pipe. Everything both sides must
//! agree on is named here.

/// Process exit statuses of the master (returned by [`crate::run`]) and of workers.
pub mod exit_code {
    /// Master: stopped (gracefully or quickly). Worker: stopped, recycled or returned.
    pub const OK: i32 = 0;
    /// Master: a worker failed to boot before any worker had ever booted; the worker's
    /// [`crate::BootError`] message is logged first. Worker: `boot_worker` returned `Err` before
    /// calling `ready()`. Same number as gunicorn's `WORKER_BOOT_ERROR`.
    pub const BOOT_FAILED: i32 = 3;
    /// Worker: `boot_worker` returned `Err` after it had called `ready()`.
    pub const SERVE_FAILED: i32 = 4;
    /// Worker: `boot_worker` panicked (`EX_SOFTWARE`).
    pub const PANICKED: i32 = 70;
    /// Upgrade child: the new binary could not be executed (the shell's convention).
    pub const EXEC_FAILED: i32 = 127;
}

/// Where a worker is in its life, as written in its slot (`table::Slot::state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Nobody owns the slot.
    Free = 0,
    /// Forked, `boot_worker` has not called `ready()` yet.
    Booting = 1,
    /// Serving.
    Ready = 2,
    /// Saw a stop request and is draining.
    Stopping = 3,
    /// Wrote its exit reason and is about to exit.
    Exited = 4,
}

impl SlotState {
    pub(crate) fn from_word(word: u64) -> SlotState {
        match word {
            1 => SlotState::Booting,
            2 => SlotState::Ready,
            3 => SlotState::Stopping,
            4 => SlotState::Exited,
            _ => SlotState::Free,
        }
    }
}

/// Why a worker exited, written by the worker just before it does, read by the master when it
/// reaps the worker so the log line can say more than an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitReason {
    /// Nothing recorded (killed, or exited before it could write).
    Unknown = 0,
    /// Asked to stop (TERM, retired, master gone) and drained.
    Stopped = 1,
    /// Served its `max_requests`.
    Recycled = 2,
    /// `boot_worker` returned `Ok` on its own.
    Returned = 3,
    /// `boot_worker` failed before `ready()`; the slot holds the message.
    BootFailed = 4,
    /// `boot_worker` failed after `ready()`; the slot holds the message.
    ServeFailed = 5,
    /// `boot_worker` panicked; the slot holds the panic message.
    Panicked = 6,
}

impl ExitReason {
    pub(crate) fn from_word(word: u64) -> ExitReason {
        match word {
            1 => ExitReason::Stopped,
            2 => ExitReason::Recycled,
            3 => ExitReason::Returned,
            4 => ExitReason::BootFailed,
            5 => ExitReason::ServeFailed,
            6 => ExitReason::Panicked,
            _ => ExitReason::Unknown,
        }
    }
}

/// Written by a worker to the master's wake pipe when its slot changed in a way the master
/// should notice at once (it became ready). Signal numbers use the other byte values.
pub(crate) const WAKE_BYTE: u8 = 0;

/// Comma-separated listening fds handed to a new master by USR2 (`3,4`).
pub(crate) const ENV_LISTEN_FDS: &str = "PYBLOGD_LISTEN_FDS";
/// Set (to `1`) next to [`ENV_LISTEN_FDS`] when the old master served sockets handed to it to
/// serve as they are (systemd's): the new master then serves every one of them and ignores
/// `--bind`, as the old one did, instead of keeping only those a `--bind` names.
pub(crate) const ENV_SERVE_PASSED: &str = "PYBLOGD_SERVE_PASSED_SOCKETS";
/// Set in a new master started by USR2: the pid of the master that started it.
pub(crate) const ENV_UPGRADE_FROM: &str = "PYBLOGD_UPGRADE_FROM";
