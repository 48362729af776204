//! Signals: the master's queue, the worker's quick-exit action, and signal masks.
//!
//! In the master, a handler only writes the signal's number as one byte into a self-pipe; the
//! arbiter loop reads the bytes back in arrival order (so two TTINs are two TTINs) and does
//! all the work. Workers write `protocol::WAKE_BYTE` into the same pipe to wake the master when
//! they become ready.

use crate::protocol::WAKE_BYTE;
use crate::sys;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use signal_hook::SigId;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// The signals the master answers.
pub(crate) const MASTER_SIGNALS: [Signal; 9] = [
    Signal::SIGHUP,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCHLD,
];

/// What woke the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Signal(Signal),
    /// A worker changed its slot (became ready).
    WorkerChanged,
}

/// The master's self-pipe and the signal actions that feed it.
pub(crate) struct SignalQueue {
    ids: Vec<SigId>,
    read: OwnedFd,
    write: OwnedFd,
}

impl SignalQueue {
    /// Installs the master's actions for [`MASTER_SIGNALS`].
    pub(crate) fn install() -> io::Result<SignalQueue> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let mut queue = SignalQueue {
            ids: Vec::new(),
            read,
            write,
        };
        for signal in MASTER_SIGNALS {
            let id = sys::record_signal_in_pipe(signal as i32, queue.write.as_raw_fd())?;
            queue.ids.push(id);
        }
        Ok(queue)
    }

    /// Waits at most `timeout` for something to happen; returns what did, oldest first.
    /// `also` (control socket, metrics listener and its clients) end the wait too when
    /// readable; the caller looks at them.
    pub(crate) fn wait(
        &self,
        timeout: Duration,
        also: &[BorrowedFd<'_>],
    ) -> io::Result<Vec<Event>> {
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = vec![PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
        fds.extend(also.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)));
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let mut events = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match nix::unistd::read(&self.read, &mut buf) {
                Ok(0) | Err(Errno::EAGAIN) => break,
                Ok(n) => events.extend(buf[..n].iter().filter_map(|&b| decode(b))),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(events)
    }

    /// A descriptor a worker keeps to wake the master (`protocol::WAKE_BYTE`).
    pub(crate) fn waker(&self) -> io::Result<OwnedFd> {
        self.write.try_clone()
    }

    /// Removes the master's actions. A forked child calls this first (with signals blocked),
    /// so a signal meant for it is never queued as if the master had received it.
    pub(crate) fn uninstall(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

impl Drop for SignalQueue {
    fn drop(&mut self) {
        // Actions first: they write to `write`, which closes right after.
        self.uninstall();
    }
}

fn decode(byte: u8) -> Option<Event> {
    if byte == WAKE_BYTE {
        return Some(Event::WorkerChanged);
    }
    Signal::try_from(i32::from(byte)).ok().map(Event::Signal)
}

/// Wakes the master through a descriptor from [`SignalQueue::waker`]; never blocks.
pub(crate) fn wake_master(waker: &OwnedFd) {
    // A full pipe already guarantees a wake-up, so EAGAIN is as good as success.
    let _ = nix::unistd::write(waker, &[WAKE_BYTE]);
}

/// `hup`, `term`, `ttin`: how gunicorn names signals in `Handling signal:` lines.
pub(crate) fn name(signal: Signal) -> String {
    signal
        .as_str()
        .trim_start_matches("SIG")
        .to_ascii_lowercase()
}

/// In a worker: INT and QUIT end the process at once with status 0 (gunicorn's quick exit).
/// `_exit` runs in the handler itself, so this works even while every thread is busy.
pub(crate) fn install_quick_exit() -> io::Result<()> {
    let always = Arc::new(AtomicBool::new(true));
    for signal in [Signal::SIGINT, Signal::SIGQUIT] {
        signal_hook::flag::register_conditional_shutdown(signal as i32, 0, Arc::clone(&always))?;
    }
    Ok(())
}

/// Signals blocked in the calling thread until this guard drops, which restores the mask.
///
/// The master forks with everything blocked: the child inherits the mask, replaces the master's
/// actions with its own and only then lets signals in, so none reaches it in between.
pub(crate) struct BlockedSignals {
    previous: SigSet,
    restore: bool,
}

impl BlockedSignals {
    /// Blocks every signal.
    pub(crate) fn block_all() -> io::Result<BlockedSignals> {
        BlockedSignals::block(&SigSet::all())
    }

    /// Blocks the supervisor's signals ([`MASTER_SIGNALS`]) in this thread and in the threads
    /// it starts from now on, so they are delivered to a thread that keeps them unblocked.
    pub(crate) fn block_handled() -> io::Result<BlockedSignals> {
        BlockedSignals::block(&handled_set())
    }

    fn block(set: &SigSet) -> io::Result<BlockedSignals> {
        let previous = set.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        Ok(BlockedSignals {
            previous,
            restore: true,
        })
    }

    /// In a worker: narrows "everything blocked" to "the supervisor's signals blocked" for
    /// good in this thread (and the server threads it will start), and returns the mask a
    /// signal thread should take with [`receive_signals_here`].
    ///
    /// A signal then never lands in a server thread: it would interrupt a blocking socket call
    /// with a timeout, which SA_RESTART does not restart (signal(7)), with EINTR.
    pub(crate) fn keep_handled_blocked(mut self) -> io::Result<SigSet> {
        let mut mask = self.previous;
        for signal in MASTER_SIGNALS {
            mask.add(signal);
        }
        mask.thread_set_mask()?;
        self.restore = false;
        Ok(self.previous)
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        if self.restore {
            // Restoring a mask read back a moment ago cannot fail (EINVAL needs a bad `how`).
            let _ = self.previous.thread_set_mask();
        }
    }
}

/// Makes the calling thread one that receives signals (`mask` from `keep_handled_blocked`).
pub(crate) fn receive_signals_here(mask: &SigSet) -> io::Result<()> {
    Ok(mask.thread_set_mask()?)
}

fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    for signal in MASTER_SIGNALS {
        set.add(signal);
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_like_gunicorn() {
        assert_eq!(name(Signal::SIGHUP), "hup");
        assert_eq!(name(Signal::SIGTTIN), "ttin");
        assert_eq!(name(Signal::SIGUSR2), "usr2");
    }

    #[test]
    fn bytes_decode_to_events() {
        assert_eq!(decode(0), Some(Event::WorkerChanged));
        assert_eq!(decode(1), Some(Event::Signal(Signal::SIGHUP)));
        assert_eq!(decode(15), Some(Event::Signal(Signal::SIGTERM)));
        assert_eq!(decode(200), None);
    }
}
