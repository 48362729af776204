//! Syntax highlighting of fenced code blocks with syntect, as CSS classes (`hl-…`), on one
//! thread per worker that exists only while posts are being saved.
//!
//! Classes rather than inline colours: the sanitiser forbids `style`, and one committed
//! stylesheet (`static/highlight.css`) gives light and dark themes. One thread, because
//! syntect's pure-Rust regex engine keeps a match cache per pattern for every thread that runs
//! it, on top of the 4–6 MB that each language's loaded grammar and compiled patterns take.
//! The thread starts with the first block to highlight and exits, dropping the grammars, after
//! [`IDLE`] without one, so a worker that only serves pages does not keep them resident after
//! a burst of saves.

use crate::escape::escape_html;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};
use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

/// Every class syntect emits starts with this prefix; the sanitiser keeps only those.
pub(crate) const CLASS_PREFIX: &str = "hl-";
const CLASS_STYLE: ClassStyle = ClassStyle::SpacedPrefixed {
    prefix: CLASS_PREFIX,
};

/// How long the highlighting thread waits for another block before it drops the syntax set
/// and exits. Saves come in bursts (an author editing, an import), so a few seconds keep a
/// burst on one warm thread; after that the next save pays a one-off restart: loading its
/// language's grammar and compiling its patterns again, 15–30 ms measured (a warm save takes
/// ~2 ms), which is also what the first save after a start pays.
pub(crate) const IDLE: Duration = Duration::from_secs(3);

/// Called by a retiring highlighting thread once its memory is freed, so the binary can have
/// the allocator hand the free pages back to the OS (see [`crate::App::with_memory_release`]).
pub(crate) type ReleaseMemory = Arc<dyn Fn() + Send + Sync>;

/// Turns code into highlighted HTML by handing it to the highlighting thread.
pub(crate) struct Highlighter {
    shared: Arc<Shared>,
}

/// What the highlighter and its thread share.
struct Shared {
    /// The running thread's queue (`None`: no thread runs). Jobs are sent with this lock
    /// held, and a thread retires only with it held and its queue empty: so a job sent just
    /// as the thread times out is either seen by it, or finds `None` and starts a new thread.
    /// This is the only sender, so dropping the highlighter also ends the thread.
    queue: Mutex<Option<Sender<Job>>>,
    idle: Duration,
    /// Set once by the binary, through [`crate::App::with_memory_release`].
    release: OnceLock<ReleaseMemory>,
    /// Threads started so far (for tests and the debug log).
    starts: AtomicU64,
    /// Times a thread found itself idle and went for the lock to retire (a test seam: it
    /// lets a test hold the lock at exactly that moment).
    retire_attempts: AtomicU64,
    /// Threads that retired and released their memory (for tests and the debug log).
    retirements: AtomicU64,
}

/// One block to highlight, and where its HTML goes (`None`: show it as plain code).
struct Job {
    lang: String,
    code: String,
    reply: SyncSender<Option<String>>,
}

impl Default for Highlighter {
    fn default() -> Highlighter {
        Highlighter::with_idle(IDLE)
    }
}

impl Highlighter {
    /// A highlighter whose thread retires after `idle` without a block.
    pub fn with_idle(idle: Duration) -> Highlighter {
        Highlighter {
            shared: Arc::new(Shared {
                queue: Mutex::new(None),
                idle,
                release: OnceLock::new(),
                starts: AtomicU64::new(0),
                retire_attempts: AtomicU64::new(0),
                retirements: AtomicU64::new(0),
            }),
        }
    }

    /// Calls `release` each time the thread has retired and freed its memory. Only the first
    /// call sets it; later ones are ignored.
    pub fn set_memory_release(&self, release: ReleaseMemory) {
        let _ = self.shared.release.set(release);
    }

    /// A complete `<pre><code>` block. `lang` is the fence's first word; an unknown or empty
    /// one (or a grammar that fails) yields plain escaped code.
    pub fn block(&self, lang: &str, code: &str) -> String {
        let highlighted = if lang.is_empty() {
            None
        } else {
            self.classed(lang, code)
        };
        match highlighted {
            Some(spans) => {
                format!("<pre class=\"{CLASS_PREFIX}code\"><code>{spans}</code></pre>\n")
            }
            None => format!("<pre><code>{}</code></pre>\n", escape_html(code)),
        }
    }

    fn classed(&self, lang: &str, code: &str) -> Option<String> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job = Job {
            lang: lang.to_string(),
            code: code.to_string(),
            reply,
        };
        self.submit(&mut self.shared.lock(), job)?;
        // Fails only if the thread died outside `catch_unwind`: the block stays plain.
        answer.recv().ok().flatten()
    }

    /// Queues `job` on the running thread, starting one when none runs. `None`: no thread
    /// could take it.
    fn submit(&self, queue: &mut Option<Sender<Job>>, job: Job) -> Option<()> {
        if queue.is_none() {
            *queue = start(&self.shared);
        }
        let sent = queue.as_ref()?.send(job);
        if sent.is_err() {
            // The thread is gone without retiring (it panicked): the next block starts anew.
            *queue = None;
        }
        sent.ok()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<Sender<Job>>> {
        // The guarded value is a sender, valid whatever a panicking holder was doing.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn start(shared: &Arc<Shared>) -> Option<Sender<Job>> {
    let (jobs, queue) = mpsc::channel();
    let weak = Arc::downgrade(shared);
    let idle = shared.idle;
    match std::thread::Builder::new()
        .name("highlighter".into())
        .spawn(move || serve(&queue, &weak, idle))
    {
        Ok(_) => {
            shared.starts.fetch_add(1, Ordering::Relaxed);
            Some(jobs)
        }
        Err(err) => {
            log::warn!("cannot start the highlighting thread, this block stays plain: {err}");
            None
        }
    }
}

/// The highlighting thread: answers jobs until it has been idle for `idle` (then retires) or
/// the highlighter is dropped.
fn serve(queue: &Receiver<Job>, shared: &Weak<Shared>, idle: Duration) {
    let mut syntaxes: Option<SyntaxSet> = None;
    loop {
        let job = match queue.recv_timeout(idle) {
            Ok(job) => job,
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => match retire(queue, shared) {
                Some(job) => job,
                None => break,
            },
        };
        let syntaxes = syntaxes.get_or_insert_with(load_syntaxes);
        // A grammar bug must not take the save down: fall back to plain code.
        let html = catch_unwind(AssertUnwindSafe(|| classed(syntaxes, &job.lang, &job.code)))
            .unwrap_or(None);
        // The saving thread waits for this answer; if it went away, nobody needs it.
        let _ = job.reply.send(html);
    }
    // Retired: free the grammars, compiled patterns and match caches, then let the allocator
    // return the pages (the release hook), since glibc keeps most of a thread's freed heap.
    drop(syntaxes);
    if let Some(shared) = shared.upgrade() {
        if let Some(release) = shared.release.get() {
            release();
        }
        let retired = shared.retirements.fetch_add(1, Ordering::Relaxed) + 1;
        log::debug!(
            "highlighter idle for {idle:?}: retired and released its memory \
             ({retired} retirements, {} starts so far)",
            shared.starts.load(Ordering::Relaxed)
        );
    }
}

/// Called after `idle` without a job. Under the queue lock, so no sender can slip a job in
/// between: either a job arrived meanwhile (returned, and the thread goes on), or the thread's
/// sender is removed and the next block starts a new thread (`None`).
fn retire(queue: &Receiver<Job>, shared: &Weak<Shared>) -> Option<Job> {
    let shared = shared.upgrade()?;
    shared.retire_attempts.fetch_add(1, Ordering::Relaxed);
    let mut slot = shared.lock();
    match queue.try_recv() {
        Ok(job) => Some(job),
        Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
            *slot = None;
            None
        }
    }
}

fn load_syntaxes() -> SyntaxSet {
    let began = Instant::now();
    let syntaxes = SyntaxSet::load_defaults_newlines();
    log::debug!("highlighter loaded its syntax set in {:?}", began.elapsed());
    syntaxes
}

fn classed(syntaxes: &SyntaxSet, lang: &str, code: &str) -> Option<String> {
    let syntax = syntaxes.find_syntax_by_token(lang)?;
    let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, syntaxes, CLASS_STYLE);
    for line in LinesWithEndings::from(code) {
        if let Err(err) = generator.parse_html_for_line_which_includes_newline(line) {
            log::warn!("highlighting {lang} failed, showing plain code: {err}");
            return None;
        }
    }
    Some(generator.finalize())
}

#[cfg(test)]
#[path = "highlight_tests.rs"]
mod tests;
