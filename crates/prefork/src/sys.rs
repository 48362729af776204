//! Every `unsafe` of the project: fork, the shared mapping, raw signal actions, adopting fds,
//! trimming the heap.
//!
//! Each function here wraps one unsafe OS call behind a safe signature and states, in a
//! `// SAFETY:` note, the contract that makes it sound. Nothing else in the workspace may say
//! `unsafe`; when a new raw call is needed it is added here, with its note.

use nix::sys::mman::{mmap_anonymous, munmap, MapFlags, ProtFlags};
use nix::unistd::{fork, ForkResult, Pid};
use signal_hook::SigId;
use std::ffi::c_void;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// An anonymous `MAP_SHARED` mapping of zeroed 64-bit words.
///
/// Created by the master before its first fork, so every worker sees the same physical pages;
/// both sides touch it only through the atomics it is typed as.
pub(crate) struct SharedWords {
    ptr: NonNull<AtomicU64>,
    len: usize,
}

impl SharedWords {
    /// Maps `len` zeroed words shared with every process forked after this call.
    pub(crate) fn new(len: usize) -> io::Result<SharedWords> {
        let bytes = len
            .checked_mul(std::mem::size_of::<AtomicU64>())
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad table size"))?;
        // SAFETY: an anonymous mapping at an address the kernel chooses aliases no existing
        // Rust object; the result is checked for failure by nix.
        let ptr = unsafe {
            mmap_anonymous(
                None,
                bytes,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
            )
        }?;
        Ok(SharedWords {
            ptr: ptr.cast(),
            len,
        })
    }

    /// The mapping as a slice of atomics.
    pub(crate) fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is `len` words long, page-aligned (so aligned for AtomicU64),
        // zero-filled by the kernel (a valid AtomicU64), and stays mapped until `self` drops.
        // AtomicU64 has interior mutability, so handing out shared references while other
        // threads and processes write through their own is exactly its contract.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for SharedWords {
    fn drop(&mut self) {
        let bytes = self.len * std::mem::size_of::<AtomicU64>();
        // SAFETY: `ptr`/`bytes` are exactly what mmap returned; no reference from `words()` can
        // outlive `self`, so nothing points into the mapping any more.
        let _ = unsafe { munmap(self.ptr.cast::<c_void>(), bytes) };
    }
}

// SAFETY: the mapping is plain memory reached only through atomics; moving or sharing the
// handle between threads is as safe as sharing a `[AtomicU64]`.
unsafe impl Send for SharedWords {}
// SAFETY: see `Send`: all access goes through `&[AtomicU64]`.
unsafe impl Sync for SharedWords {}

/// The two sides of a successful fork.
pub(crate) enum Forked {
    Parent(Pid),
    Child,
}

/// Forks the master. Refuses when the process has more than one thread.
///
/// The child continues in the caller's code with a copy of the whole heap, so a second thread
/// holding a lock (the allocator's, a logger's) at the moment of the fork would leave that lock
/// held forever in the child. Checking the thread count turns that hazard into an error.
pub(crate) fn fork_single_threaded() -> io::Result<Forked> {
    if let Some(threads) = thread_count() {
        if threads > 1 {
            return Err(io::Error::other(format!(
                "refusing to fork: the master has {threads} threads and must have one"
            )));
        }
    }
    // SAFETY: the process has exactly one thread (checked just above; the master never starts
    // one), so the child gets a consistent heap and no lock held by a vanished thread. The
    // child resets its signal actions and either enters the worker, which leaves through
    // `process::exit` with a named exit code, or execs the new binary (USR2).
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(Forked::Parent(child)),
        ForkResult::Child => Ok(Forked::Child),
    }
}

/// Threads of this process, from `/proc/self/status` (`None` when it cannot be read).
fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Registers a signal action that writes the signal's number, as one byte, to `pipe`.
///
/// `pipe` must be the write end of a non-blocking pipe that stays open until the returned id
/// is unregistered (`signals::SignalQueue` owns both and unregisters first when it drops).
pub(crate) fn record_signal_in_pipe(signal: i32, pipe: RawFd) -> io::Result<SigId> {
    let byte = [u8::try_from(signal).unwrap_or(u8::MAX)];
    let action = move || {
        // SAFETY: write(2) is async-signal-safe; `byte` lives in the closure; a full pipe
        // (EAGAIN) just drops the byte, and signal-hook restores errno around the action.
        let _ = unsafe { libc::write(pipe, byte.as_ptr().cast::<c_void>(), 1) };
    };
    // SAFETY: the action only calls write(2) on a descriptor the caller keeps open while
    // registered, allocates nothing, takes no lock and cannot panic.
    unsafe { signal_hook::low_level::register(signal, action) }
}

/// Takes ownership of a listening socket inherited as descriptor `fd` (from systemd, from
/// our own USR2 parent, or named by `fd://N`).
///
/// The caller must pass each inherited number at most once; `fd` is checked to be an open
/// socket before it is adopted, so a wrong number fails instead of seizing another object.
pub(crate) fn adopt_inherited_socket(fd: RawFd) -> io::Result<socket2::Socket> {
    if fd < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd} is a standard stream, not a socket"),
        ));
    }
    // stat(2) through the /proc link reaches the descriptor's inode without borrowing a raw
    // number that might not be open.
    let meta = std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .map_err(|e| io::Error::new(e.kind(), format!("fd {fd} is not open: {e}")))?;
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("fd {fd} is not a socket"),
        ));
    }
    // SAFETY: `fd` is open (its /proc link resolved) and is a socket this process inherited across
    // exec; no Rust object in this process owns it (inherited numbers are adopted once, and
    // nothing else in the program opens or closes it), so the new OwnedFd is its sole owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(socket2::Socket::from(owned))
}

/// Hands the C allocator's free memory back to the OS: glibc's `malloc_trim(0)` releases the
/// free pages inside every arena, not only the top of the main heap, which is all glibc gives
/// back by itself. True when some memory was released. Elsewhere (musl) a no-op returning
/// false: that allocator returns memory on its own.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn malloc_trim() -> bool {
    // SAFETY: malloc_trim takes no pointers and touches only the allocator's own state, under
    // each arena's lock, so it is sound from any thread at any time, concurrently with other
    // threads allocating (glibc documents it MT-Safe). Nothing else is required of the caller.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// See the glibc version above.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn malloc_trim() -> bool {
    false
}
