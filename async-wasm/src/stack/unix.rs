//! Stack memory on unix: corosensei's `DefaultStack`.
//!
//! `DefaultStack::new(size)` maps `size` rounded up to whole pages plus one page with
//! `PROT_NONE`, then makes all but the lowest page read-write. Its `base()` is the end of
//! the mapping (the top of the stack) and its `limit()` the start of the mapping, which is
//! the start of the guard page:
//!
//! ```text
//! base()                  top of the usable memory, page aligned
//!   read-write pages      `size` bytes
//! limit() + page          bottom of the usable memory
//!   guard page            PROT_NONE
//! limit()                 start of the mapping
//! ```
//!
//! [`super::Stack::new`] asserts that this is what it got.

use core::ops::Range;
use std::io;

use corosensei::stack::{DefaultStack, Stack as _};

use crate::pool::StackPoolError;

/// The mapping behind one [`Stack`](super::Stack).
pub(super) struct Memory(DefaultStack);

impl Memory {
    /// Maps `size` usable bytes (a nonzero multiple of the page size) above one guard page.
    pub(super) fn new(size: usize) -> Result<Memory, StackPoolError> {
        DefaultStack::new(size)
            .map(Memory)
            .map_err(|source| StackPoolError::Allocation { size, source })
    }

    /// The highest address of the usable memory.
    pub(super) fn top(&self) -> usize {
        self.0.base().get()
    }

    /// The lowest address of the guard page.
    pub(super) fn guard_start(&self) -> usize {
        self.0.limit().get()
    }
}

/// The size of a virtual memory page.
pub(super) fn page_size() -> usize {
    use std::sync::OnceLock;
    static PAGE_SIZE: OnceLock<usize> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; _SC_PAGESIZE always has a value.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let size = usize::try_from(size).expect("the page size is positive");
        assert!(size.is_power_of_two(), "page size {size} is a power of two");
        size
    })
}

/// Gives the pages of `ranges` back to the operating system, so that each reads as zero
/// the next time it is touched, at the cost of a page fault then. Pages that were never
/// touched cost only the page-table walk.
///
/// # Safety
///
/// Each range is page aligned, lies in the usable memory of one [`Stack`](super::Stack)
/// (a private anonymous read-write mapping), and nothing reads or writes it meanwhile: no
/// fiber runs on that stack.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) unsafe fn decommit(ranges: &[Range<usize>]) -> io::Result<()> {
    // SAFETY: forwarded from this function's contract.
    #[cfg(target_os = "linux")]
    if ranges.len() > 1 && unsafe { process_madvise::dontneed(ranges) } {
        return Ok(());
    }
    for range in ranges {
        // SAFETY: the range is private anonymous memory of an idle stack (this function's
        // contract). On Linux MADV_DONTNEED drops such pages, and the next touch maps in a
        // zero page: the memory reads as zero, whatever was swapped out or resident.
        let ret = unsafe {
            libc::madvise(
                range.start as *mut libc::c_void,
                range.len(),
                libc::MADV_DONTNEED,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// See the Linux version above. Elsewhere MADV_DONTNEED may keep the old contents (macOS,
/// the BSDs), so each range is replaced by a fresh anonymous mapping, which reads as zero;
/// wasmtime's pooling allocator resets memory the same way on these systems.
///
/// # Safety
///
/// As the Linux version.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) unsafe fn decommit(ranges: &[Range<usize>]) -> io::Result<()> {
    for range in ranges {
        // SAFETY: the range is page aligned and inside a private anonymous read-write
        // mapping owned by an idle stack (this function's contract); MAP_FIXED replaces
        // exactly those pages with new zero-filled ones of the same protection, and touches
        // nothing outside the range.
        let ret = unsafe {
            libc::mmap(
                range.start as *mut libc::c_void,
                range.len(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANON | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if ret == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `process_madvise(2)`: one system call for many ranges, as wasmtime's pooling allocator
/// uses for its batched decommits. On this project's machine (Linux 6.18, an x86_64 VM) a
/// zeroed store costs 0.4 µs less with 32 stacks per call than with one `madvise` each;
/// what remains, about 0.45 µs per stack, is mostly the kernel's walk of the stack's page
/// table.
#[cfg(target_os = "linux")]
mod process_madvise {
    use core::ops::Range;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Cleared on the first failure that says this kernel cannot do it (too old for the
    /// system call, for MADV_DONTNEED through it, or for `PIDFD_SELF`; or forbidden).
    static SUPPORTED: AtomicBool = AtomicBool::new(true);

    /// The calling process, as a pidfd (Linux 6.14 and later).
    const PIDFD_SELF: libc::c_int = -10000;

    /// Applies MADV_DONTNEED to every range; `false` when it could not do all of them, in
    /// which case the caller does them one by one (doing one twice is harmless).
    ///
    /// # Safety
    ///
    /// As [`super::decommit`].
    pub(super) unsafe fn dontneed(ranges: &[Range<usize>]) -> bool {
        if !SUPPORTED.load(Ordering::Relaxed) {
            return false;
        }
        let iovecs: Vec<libc::iovec> = ranges
            .iter()
            .map(|range| libc::iovec {
                iov_base: range.start as *mut libc::c_void,
                iov_len: range.len(),
            })
            .collect();
        let max = usize::try_from(libc::UIO_MAXIOV).unwrap_or(1024);
        for chunk in iovecs.chunks(max) {
            let expected: usize = chunk.iter().map(|iovec| iovec.iov_len).sum();
            // SAFETY: `chunk` is a valid array of `chunk.len()` iovecs, each describing
            // memory that may be dropped (the caller's contract); the kernel only reads the
            // array.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_process_madvise,
                    PIDFD_SELF,
                    chunk.as_ptr(),
                    chunk.len(),
                    libc::MADV_DONTNEED,
                    0,
                )
            };
            if ret < 0 {
                let errno = std::io::Error::last_os_error().raw_os_error();
                if matches!(
                    errno,
                    Some(libc::ENOSYS | libc::EINVAL | libc::EPERM | libc::EBADF)
                ) {
                    SUPPORTED.store(false, Ordering::Relaxed);
                }
                return false;
            }
            if usize::try_from(ret).ok() != Some(expected) {
                return false;
            }
        }
        true
    }
}
