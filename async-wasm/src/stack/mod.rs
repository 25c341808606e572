//! [`Stack`]: one owned, guard-paged stack that wasm runs on, and [`StackPoolError`], what
//! can go wrong with stacks and with the pools that lend them.
//!
//! # The layout of every `Stack`
//!
//! ```text
//! top                 page aligned, hence 16-byte aligned as every supported ABI
//!                     wants a stack pointer
//!   usable memory     `size` bytes, a nonzero multiple of the page size; read-write,
//!                     private to this stack, and zero when the stack is made
//! top - size
//!   guard page        one page, inaccessible: touching it faults
//! top - size - page
//! ```
//!
//! This is what wasmtime's `StackMemory` contract asks for (its fiber crate asserts the page
//! alignment of a custom stack's range when it takes one) and what lets a pool lend one
//! stack to one fiber after another. [`Stack::new`] asserts it of the memory the platform
//! module returns, so that a platform that breaks it fails there, loudly, before wasmtime
//! ever runs on the stack; everything else in the crate relies on it.
//!
//! The memory comes from a file per platform, chosen by `cfg`:
//! - `unix.rs`: one `mmap` per stack, its lowest page made the guard.
//! - `unsupported.rs`: Windows and every other target that is not unix, where wasmtime takes
//!   no custom stacks: [`Stack::new`] fails there with [`StackPoolError::Unsupported`].
//!
//! The error lives here, below the pool, because stacks report it too: the pool builds on
//! this module, never the other way round.

use core::ops::Range;

mod error;
pub use error::StackPoolError;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as imp;

#[cfg(not(unix))]
mod unsupported;
#[cfg(not(unix))]
use unsupported as imp;

/// Whether wasmtime can run on this crate's stacks here: see the module documentation.
pub(crate) const SUPPORTED: bool = cfg!(unix);

/// The `vm.max_map_count` assumed where it cannot be read: Linux's default.
const DEFAULT_MAX_MAP_COUNT: usize = 65_530;

/// The most memory mappings this process may hold: Linux's `vm.max_map_count`, read once;
/// elsewhere, and where it cannot be read, Linux's default of 65,530.
pub(crate) fn max_map_count() -> usize {
    imp::max_map_count()
}

/// The memory mappings one [`Stack`] takes.
pub(crate) const MAPPINGS_PER_STACK: usize = imp::MAPPINGS_PER_STACK;

/// An owned stack for wasm to run on: page-rounded, with one inaccessible guard page
/// directly below it, in a memory mapping of its own.
///
/// wasmtime runs every async call on a fiber, and a [`StackPool`](crate::StackPool) lends
/// these stacks to those fibers.
///
/// You rarely need one yourself: a pool makes its own stacks as stores need them, and
/// [`StackPool::prewarm`](crate::StackPool::prewarm) makes them ahead of time. Making
/// stacks yourself and handing them over with [`StackPool::put`](crate::StackPool::put)
/// is `prewarm` done by hand (on a thread of your choosing, say, before the pool is
/// shared).
///
/// A call borrows its store mutably, and wasmtime keeps the store's stack for the duration
/// of the call: two calls never share a stack.
///
/// Stacks exist on unix only: elsewhere wasmtime cannot run async calls on memory it did
/// not map, and [`Stack::new`] returns [`StackPoolError::Unsupported`].
///
/// # Example
///
/// ```
/// use async_wasm::Stack;
///
/// # #[cfg(unix)] {
/// let stack = Stack::new(64 * 1024)?;
/// assert!(stack.size() >= 64 * 1024);
/// assert!(Stack::new(0).is_err());
/// # }
/// # Ok::<(), async_wasm::StackPoolError>(())
/// ```
pub struct Stack {
    memory: imp::Memory,
    size: usize,
}

impl Stack {
    /// The largest stack [`Stack::new`] allocates: 1 GiB. wasm's own stack use is bounded by
    /// [`Config::max_wasm_stack`](wasmtime::Config::max_wasm_stack) (512 KiB by default), so
    /// a larger request is almost surely a unit mistake, and is refused before it reserves
    /// address space.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::Stack;
    ///
    /// assert!(Stack::new(Stack::MAX_SIZE + 1).is_err());
    /// ```
    pub const MAX_SIZE: usize = 1 << 30;

    /// Allocates a stack with at least `size` usable bytes, rounded up to whole pages, below
    /// which lies one inaccessible guard page.
    ///
    /// # Errors
    ///
    /// [`StackPoolError::InvalidSize`] when `size` is 0 or above [`Stack::MAX_SIZE`],
    /// [`StackPoolError::Unsupported`] on targets that are not unix, and
    /// [`StackPoolError::Allocation`] when the operating system refuses the mapping (out
    /// of memory, or out of mappings: see `vm.max_map_count` on Linux).
    ///
    /// # Panics
    ///
    /// If the memory the platform returned breaks the layout described on
    /// [`Stack`]: a bug in this crate, caught before anything runs on it.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::{Stack, StackPoolError};
    ///
    /// # #[cfg(unix)] {
    /// let stack = Stack::new(1 << 20)?;
    /// assert_eq!(stack.size(), 1 << 20);
    /// assert!(matches!(
    ///     Stack::new(1 << 40),
    ///     Err(StackPoolError::InvalidSize { size: 0x100_0000_0000 })
    /// ));
    /// # }
    /// # Ok::<(), StackPoolError>(())
    /// ```
    pub fn new(size: usize) -> Result<Stack, StackPoolError> {
        if !(1..=Stack::MAX_SIZE).contains(&size) {
            return Err(StackPoolError::InvalidSize { size });
        }
        if !SUPPORTED {
            return Err(StackPoolError::Unsupported);
        }
        let size = round_to_page(size);
        let memory =
            imp::Memory::new(size).map_err(|source| StackPoolError::Allocation { size, source })?;
        let stack = Stack { memory, size };
        stack.assert_layout();
        Ok(stack)
    }

    /// Checks the layout stated at the top of this module, as wasmtime's fiber crate checks
    /// the stacks it is given: a failure is a bug in the platform code, so it panics.
    fn assert_layout(&self) {
        let page = page_size();
        let top = self.memory.top().addr();
        assert!(
            top.is_multiple_of(page) && top.is_multiple_of(16),
            "stack top {top:#x} is page aligned ({page:#x}) and 16-byte aligned"
        );
        assert!(
            self.size > 0 && self.size.is_multiple_of(page),
            "usable stack size {:#x} is a nonzero multiple of the page size {page:#x}",
            self.size
        );
        assert_eq!(
            self.memory.guard_start().addr(),
            top - self.size - page,
            "the guard page lies directly below the usable memory"
        );
    }

    /// The usable bytes, guard page excluded: the size asked for, rounded up to whole pages.
    ///
    /// # Example
    ///
    /// ```
    /// let stack = async_wasm::Stack::new(1000)?;
    /// assert!(stack.size() >= 1000 && stack.size() % 4096 == 0);
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// The highest address of the stack (stacks grow down).
    pub(crate) fn top(&self) -> *mut u8 {
        self.memory.top()
    }

    /// The usable memory, guard page excluded.
    pub(crate) fn range(&self) -> Range<usize> {
        let top = self.memory.top().addr();
        top - self.size..top
    }

    /// The guard page, directly below [`Stack::range`].
    pub(crate) fn guard_range(&self) -> Range<*mut u8> {
        let start = self.memory.guard_start();
        start..start.wrapping_add(page_size())
    }

    /// How many bytes at the top [`Stack::zero_top`] writes: `keep_resident` in whole pages,
    /// at most the usable size.
    fn resident_len(&self, keep_resident: usize) -> usize {
        round_to_page(keep_resident.min(self.size))
    }

    /// Writes zeros over the top `keep_resident` bytes (in whole pages), which stay
    /// resident: the part of the stack every call touches, so the next call does not fault
    /// them back in.
    pub(crate) fn zero_top(&mut self, keep_resident: usize) {
        let len = self.resident_len(keep_resident);
        #[cfg(test)]
        ZERO_TOPS.with(|n| n.set(n.get() + 1));
        // SAFETY: `top - len .. top` is inside the usable memory (`len <= size`), which is
        // read-write (the layout); `&mut self` proves no fiber runs on this stack.
        unsafe { core::ptr::write_bytes(self.memory.top().sub(len), 0, len) };
    }

    /// The part of the usable memory below the top `keep_resident` bytes: what
    /// [`Stack::decommit_below`] gives back to the operating system.
    fn below_resident(&self, keep_resident: usize) -> Range<usize> {
        let range = self.range();
        range.start..range.end - self.resident_len(keep_resident)
    }

    /// Makes everything below the top `keep_resident` bytes of each stack read as zero,
    /// giving those pages back to the operating system: one system call for all the stacks
    /// where the platform allows. Together with [`Stack::zero_top`], every usable byte of
    /// each stack is zero afterwards.
    pub(crate) fn decommit_below(stacks: &mut [Stack], keep_resident: usize) {
        let ranges: Vec<Range<usize>> = stacks
            .iter()
            .map(|stack| stack.below_resident(keep_resident))
            .filter(|range| !range.is_empty())
            .collect();
        // SAFETY: each range is page aligned (the top and `resident_len` are) and inside
        // the usable memory of a stack borrowed mutably here, so no fiber runs on it.
        if unsafe { imp::decommit(&ranges) }.is_err() {
            for stack in stacks {
                let range = stack.below_resident(keep_resident);
                // SAFETY: as in `zero_top`: usable, read-write memory of a stack that
                // `&mut` proves idle. Slower than decommitting, and it keeps the pages
                // resident, but the memory is zero all the same.
                unsafe { core::ptr::write_bytes(range.start as *mut u8, 0, range.len()) };
            }
        }
    }

    /// Makes every usable byte zero: the top `keep_resident` bytes by writing, the rest by
    /// giving the pages back.
    pub(crate) fn zero(&mut self, keep_resident: usize) {
        self.zero_top(keep_resident);
        Stack::decommit_below(core::slice::from_mut(self), keep_resident);
    }
}

impl core::fmt::Debug for Stack {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stack")
            .field("top", &self.top())
            .field("size", &self.size)
            .finish()
    }
}

/// The size of a virtual memory page, which stacks and their guard are made of.
pub(crate) fn page_size() -> usize {
    imp::page_size()
}

/// `size` rounded up to whole pages; callers keep `size` at most [`Stack::MAX_SIZE`], so
/// this cannot overflow.
pub(crate) fn round_to_page(size: usize) -> usize {
    size.next_multiple_of(page_size())
}

#[cfg(test)]
std::thread_local! {
    /// How many times [`Stack::zero_top`] ran on this thread: zeroing is work that shows
    /// in no other way.
    pub(crate) static ZERO_TOPS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
    /// How many stacks were unmapped on this thread.
    pub(crate) static UNMAPS: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}

#[cfg(test)]
impl Drop for Stack {
    fn drop(&mut self) {
        UNMAPS.with(|n| n.set(n.get() + 1));
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn bytes(stack: &Stack) -> &[u8] {
        let range = stack.range();
        // SAFETY: the usable range is readable memory owned by `stack`, nothing runs on it.
        unsafe { core::slice::from_raw_parts(range.start as *const u8, range.len()) }
    }

    fn fill(stack: &mut Stack, byte: u8) {
        let range = stack.range();
        // SAFETY: as in `bytes`, and it is writable.
        unsafe { core::ptr::write_bytes(range.start as *mut u8, byte, range.len()) };
    }

    #[test]
    fn ranges_describe_the_mapping() {
        let stack = Stack::new(3 * page_size() + 1).unwrap();
        assert_eq!(stack.size(), 4 * page_size());
        let range = stack.range();
        assert_eq!(range.end, stack.top() as usize);
        assert_eq!(range.len(), stack.size());
        assert_eq!(range.start % page_size(), 0);
        let guard = stack.guard_range();
        assert_eq!(guard.end as usize, range.start);
        assert_eq!(guard.end as usize - guard.start as usize, page_size());
    }

    /// The operating system's view of a new stack: its guard page inaccessible, its usable
    /// memory read-write and private, and nothing else in the mapping.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_system_maps_the_layout() {
        let stack = Stack::new(4 * page_size()).unwrap();
        let guard = stack.guard_range();
        let usable = stack.range();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let protection_at = |addr: usize| {
            maps.lines()
                .find_map(|line| {
                    let (range, rest) = line.split_once(' ')?;
                    let (start, end) = range.split_once('-')?;
                    let start = usize::from_str_radix(start, 16).ok()?;
                    let end = usize::from_str_radix(end, 16).ok()?;
                    (start <= addr && addr < end).then(|| rest[..4].to_string())
                })
                .unwrap_or_else(|| format!("unmapped at {addr:#x}"))
        };
        assert_eq!(protection_at(guard.start.addr()), "---p");
        assert_eq!(protection_at(usable.start), "rw-p");
        assert_eq!(protection_at(usable.end - 1), "rw-p");
        assert!(bytes(&stack).iter().all(|&b| b == 0), "a new stack is zero");
    }

    #[test]
    fn zero_clears_what_was_written() {
        for keep_resident in [0, 1, page_size(), 3 * page_size(), usize::MAX] {
            let mut stack = Stack::new(4 * page_size()).unwrap();
            fill(&mut stack, 0xa5);
            stack.zero(keep_resident);
            assert!(bytes(&stack).iter().all(|&b| b == 0), "{keep_resident}");
        }
    }

    #[test]
    fn decommit_below_clears_many_stacks_at_once() {
        let mut stacks: Vec<Stack> = (0..3)
            .map(|_| Stack::new(8 * page_size()).unwrap())
            .collect();
        for stack in &mut stacks {
            fill(stack, 0x5a);
            stack.zero_top(2 * page_size());
        }
        Stack::decommit_below(&mut stacks, 2 * page_size());
        for stack in &stacks {
            assert!(bytes(stack).iter().all(|&b| b == 0));
        }
    }

    /// Set in the child process of [`a_write_just_below_the_usable_memory_faults`].
    const GUARD_CHILD: &str = "ASYNC_WASM_STACK_GUARD_CHILD";

    /// The child of [`a_write_just_below_the_usable_memory_faults`]: writes one byte just
    /// below a stack's usable memory.
    #[test]
    #[ignore = "the child of a_write_just_below_the_usable_memory_faults"]
    fn write_just_below_the_usable_memory() {
        assert!(
            std::env::var_os(GUARD_CHILD).is_some(),
            "run by a_write_just_below_the_usable_memory_faults only: it kills its process"
        );
        let stack = Stack::new(4 * page_size()).unwrap();
        let below = (stack.range().start - 1) as *mut u8;
        eprintln!("writing at {below:p}");
        // SAFETY: deliberately none. This writes to the guard page, which must fault and
        // kill this child process before the write lands; the parent test checks that it
        // did. If the page were writable, the byte would land in memory this process maps
        // for the stack alone and no one reads.
        unsafe { below.write_volatile(1) };
        eprintln!("the write below the stack did not fault");
    }

    #[test]
    fn a_write_just_below_the_usable_memory_faults() {
        use std::os::unix::process::ExitStatusExt;

        let output = crate::child_test::run_ignored(
            "stack::tests::write_just_below_the_usable_memory",
            GUARD_CHILD,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("writing at"), "the child ran: {stderr}");
        assert!(
            matches!(output.status.signal(), Some(libc::SIGSEGV | libc::SIGBUS)),
            "the child died of the fault, not {:?}: {stderr}",
            output.status
        );
    }

    #[test]
    fn bad_sizes_are_errors() {
        for size in [0, Stack::MAX_SIZE + 1, 1 << 40, usize::MAX] {
            assert!(matches!(
                Stack::new(size),
                Err(StackPoolError::InvalidSize { size: s }) if s == size
            ));
        }
    }
}
