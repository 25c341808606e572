//! Stack memory on unix: one anonymous private mapping per stack, its lowest page the
//! guard.
//!
//! The whole mapping is made inaccessible first, then everything above its lowest page
//! is made read-write, so that no moment exists in which the guard page is accessible:
//!
//! ```text
//! start + page + size     top of the usable memory: the end of the mapping
//!   read-write pages      `size` bytes, zero until written
//! start + page            bottom of the usable memory
//!   guard page            PROT_NONE, for the stack's whole life
//! start                   start of the mapping, page aligned (mmap's guarantee)
//! ```
//!
//! [`super::Stack::new`] asserts that this is the layout it got.

use core::ops::Range;
use core::ptr::NonNull;
use std::io;

/// The mapping behind one [`Stack`](super::Stack): `len` bytes from `start`, unmapped on
/// drop.
pub(super) struct Memory {
    start: NonNull<u8>,
    len: usize,
}

// SAFETY: `Memory` owns its mapping exclusively (nothing else holds its address), and the
// mapping has no tie to the thread that made it: `munmap` may run on any thread.
unsafe impl Send for Memory {}
// SAFETY: `&Memory` only reads `start` and `len`; the memory itself is reached only
// through `&mut Stack` or a lease that owns the stack.
unsafe impl Sync for Memory {}

impl Memory {
    /// Maps `size` usable bytes (a nonzero multiple of the page size, at most
    /// [`Stack::MAX_SIZE`](super::Stack::MAX_SIZE)) above one guard page.
    pub(super) fn new(size: usize) -> io::Result<Memory> {
        let page = page_size();
        // `size` is at most 1 GiB, so this cannot overflow.
        let len = size + page;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing
        // (no MAP_FIXED) replaces nothing; the result is checked before use.
        let start = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANON,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let start = NonNull::new(start.cast::<u8>()).expect("mmap returns no null mapping");
        // From here on `memory` unmaps the mapping should `mprotect` fail.
        let memory = Memory { start, len };
        // SAFETY: `start + page .. start + len` lies inside the mapping just made, which
        // nothing else knows of; `page` is below `len`.
        let ret = unsafe {
            libc::mprotect(
                start.as_ptr().add(page).cast(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if ret != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(memory)
    }

    /// The end of the mapping: the highest address of the usable memory.
    pub(super) fn top(&self) -> *mut u8 {
        // SAFETY: one past the end of the mapping, which is in bounds for `add`.
        unsafe { self.start.as_ptr().add(self.len) }
    }

    /// The start of the mapping: the lowest address of the guard page.
    pub(super) fn guard_start(&self) -> *mut u8 {
        self.start.as_ptr()
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping `new` made, which nothing uses any more: a `Memory`
        // is dropped with its `Stack`, which no fiber runs on then.
        let ret = unsafe { libc::munmap(self.start.as_ptr().cast(), self.len) };
        // munmap of a whole mapping fails only on bad arguments, a bug here; a failure
        // leaks the address space and hurts nothing else.
        debug_assert_eq!(ret, 0, "munmap: {}", io::Error::last_os_error());
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

/// The most memory mappings this process may hold: Linux's `vm.max_map_count`, read once.
/// Where it cannot be read, and on other systems (which have no such setting, or no way
/// to read it this crate knows), Linux's default, 65,530: a conservative guess.
pub(super) fn max_map_count() -> usize {
    use std::sync::OnceLock;
    static MAX_MAP_COUNT: OnceLock<usize> = OnceLock::new();
    *MAX_MAP_COUNT.get_or_init(|| {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(n) = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            return n;
        }
        super::DEFAULT_MAX_MAP_COUNT
    })
}

/// The mappings one stack takes: the guard page and the usable memory, two on Linux. The
/// systems that zero a stack by remapping part of it (see `decommit`) may split the
/// usable memory in two, so three there.
pub(super) const MAPPINGS_PER_STACK: usize =
    if cfg!(any(target_os = "linux", target_os = "android")) {
        2
    } else {
        3
    };

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
/// uses for its batched decommits (the README's zeroing figures measure what it saves).
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
