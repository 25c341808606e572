//! [`ThreadId`]: a number for each thread that touches local values, never reused.

use core::cell::Cell;
use core::fmt;
use core::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

/// The identity of a thread, unique for the life of the process: unlike a thread-local's
/// address or an OS thread id, it is never given to a later thread. Non-zero, so that a
/// thread that has none yet is `None`, not a number another thread could hold.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct ThreadId(NonZeroU64);

/// The last id given out; 0 before the first.
static LAST: AtomicU64 = AtomicU64::new(0);

impl ThreadId {
    /// The current thread's id, given on its first call.
    ///
    /// Never inlined: the checks run on wasmtime's fibers, which a work-stealing executor
    /// may resume on another OS thread between two polls. Inlined into a caller that spans
    /// such a switch, the compiler could compute the thread-local's address once and read
    /// the old thread's id after the switch, and the check would pass on the wrong thread.
    /// A call of its own computes the address afresh each time (wasmtime's own
    /// thread-local accessors are `inline(never)` for the same reason).
    #[inline(never)]
    pub(super) fn current() -> ThreadId {
        thread_local! {
            // `const` and without a destructor, so it stays readable while other
            // thread-locals are being destroyed.
            static ID: Cell<Option<ThreadId>> = const { Cell::new(None) };
        }
        ID.with(|id| {
            id.get().unwrap_or_else(|| {
                let fresh = ThreadId::next(&LAST);
                id.set(Some(fresh));
                fresh
            })
        })
    }

    /// The id after the last one `last` holds.
    ///
    /// # Aborts
    ///
    /// When every `u64` has been given out: an id given twice would let a value be used on
    /// the wrong thread, and a panic could be caught and the thread go on without an id.
    /// (At a billion threads a second, that takes over 500 years.)
    fn next(last: &AtomicU64) -> ThreadId {
        let next = last.try_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1));
        match next {
            // `n + 1` of a `u64` that did not overflow is at least 1.
            Ok(n) => ThreadId(NonZeroU64::new(n + 1).expect("n + 1 > 0")),
            Err(_) => exhausted(),
        }
    }
}

#[cold]
fn exhausted() -> ! {
    eprintln!("async_wasm: every thread id has been given out; aborting");
    std::process::abort()
}

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_between_threads_and_stay() {
        let here = ThreadId::current();
        assert_eq!(here, ThreadId::current());
        let there = std::thread::spawn(ThreadId::current).join().unwrap();
        assert_ne!(here, there);
    }

    #[test]
    fn the_first_id_is_one_and_ids_count_up() {
        let last = AtomicU64::new(0);
        assert_eq!(ThreadId::next(&last).0.get(), 1);
        assert_eq!(ThreadId::next(&last).0.get(), 2);
        let last = AtomicU64::new(u64::MAX - 1);
        assert_eq!(ThreadId::next(&last).0.get(), u64::MAX);
    }

    /// Set in the child process of [`running_out_of_ids_aborts`].
    const CHILD: &str = "ASYNC_WASM_THREAD_ID_CHILD";

    /// The child of [`running_out_of_ids_aborts`]: asks for an id past the last.
    #[test]
    #[ignore = "run as a child process by running_out_of_ids_aborts"]
    fn ask_past_the_last_id() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let last = AtomicU64::new(u64::MAX);
        eprintln!("asking");
        let id = ThreadId::next(&last);
        eprintln!(
            "got {id}, and the counter is {}",
            last.load(Ordering::Relaxed)
        );
    }

    #[cfg(unix)]
    #[test]
    fn running_out_of_ids_aborts() {
        use std::os::unix::process::ExitStatusExt;

        let output =
            crate::child_test::run_ignored("local::thread_id::tests::ask_past_the_last_id", CHILD);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("asking"), "the child ran: {stderr}");
        assert!(
            stderr.contains("every thread id has been given out"),
            "{stderr}"
        );
        assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{stderr}");
    }
}
