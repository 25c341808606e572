//! [`Stack`]: one owned, guard-paged stack that wasm runs on.

use core::ops::Range;

use corosensei::stack::{DefaultStack, Stack as _};

/// An owned stack for wasm to run on: memory from corosensei's `DefaultStack` (an `mmap`
/// with one guard page at the bottom, page-rounded).
///
/// wasmtime runs every async call on a fiber, and a [`StackPool`](crate::StackPool) lends
/// these stacks to those fibers. Creating one yourself is useful to
/// [`prewarm`](crate::StackPool::prewarm) or [`put`](crate::StackPool::put) stacks into a
/// pool.
///
/// In the 2020 crate a call borrowed `&mut Stack` so two calls could not share one stack.
/// Today wasmtime holds the stack for the duration of a call on the `&mut Store` the call
/// borrows, which gives the same exclusivity.
///
/// # Example
///
/// ```
/// use async_wasm::Stack;
///
/// let stack = Stack::new(64 * 1024)?;
/// assert!(stack.size() >= 64 * 1024);
/// assert!(Stack::new(0).is_err());
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub struct Stack {
    memory: DefaultStack,
    size: usize,
}

impl Stack {
    /// The largest stack [`Stack::new`] allocates: 1 GiB. wasm's own stack use is bounded by
    /// [`Config::max_wasm_stack`](wasmtime::Config::max_wasm_stack) (512 KiB by default), so
    /// a larger request is almost surely a unit mistake, and is refused before it reserves
    /// address space.
    pub const MAX_SIZE: usize = 1 << 30;

    /// Allocates a stack with at least `size` usable bytes, rounded up to whole pages, below
    /// which lies one inaccessible guard page.
    ///
    /// # Errors
    ///
    /// When `size` is 0 or above [`Stack::MAX_SIZE`], or when the operating system refuses
    /// the mapping (out of memory, or out of mappings: see `vm.max_map_count` on Linux).
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::Stack;
    ///
    /// let stack = Stack::new(1 << 20)?;
    /// assert_eq!(stack.size(), 1 << 20);
    /// let err = Stack::new(1 << 40).err().unwrap();
    /// assert!(err.to_string().contains("at most"), "{err}");
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn new(size: usize) -> wasmtime::Result<Stack> {
        if size == 0 {
            wasmtime::bail!("a stack needs a size above 0 bytes");
        }
        if size > Self::MAX_SIZE {
            wasmtime::bail!(
                "a stack of {size} bytes was asked for; stacks are at most {} bytes (1 GiB)",
                Self::MAX_SIZE
            );
        }
        let memory = DefaultStack::new(round_to_page(size)).map_err(|err| {
            wasmtime::format_err!("failed to allocate a stack of {size} bytes: {err}")
        })?;
        let size = memory.base().get() - memory.limit().get() - page_size();
        Ok(Stack { memory, size })
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

    /// The highest address of the stack (stacks grow down); page aligned.
    pub(crate) fn top(&self) -> *mut u8 {
        self.memory.base().get() as *mut u8
    }

    /// The usable memory, guard page excluded.
    pub(crate) fn range(&self) -> Range<usize> {
        let top = self.memory.base().get();
        top - self.size..top
    }

    /// The guard page, just below [`Stack::range`].
    pub(crate) fn guard_range(&self) -> Range<*mut u8> {
        let bottom = self.memory.limit().get();
        bottom as *mut u8..(bottom + page_size()) as *mut u8
    }

    /// Makes every usable byte zero again, so nothing one guest left on the stack is seen by
    /// the next.
    pub(crate) fn zero(&mut self) {
        let range = self.range();
        #[cfg(target_os = "linux")]
        {
            // SAFETY: `range` is this stack's own private anonymous read-write mapping, which
            // `&mut self` proves no fiber is running on. On Linux MADV_DONTNEED on such a
            // mapping drops its pages, and the next touch maps in fresh zero pages: zeroing
            // that costs nothing for pages never touched, and returns memory to the system.
            let ret = unsafe {
                libc::madvise(
                    range.start as *mut libc::c_void,
                    range.len(),
                    libc::MADV_DONTNEED,
                )
            };
            if ret == 0 {
                return;
            }
        }
        // SAFETY: as above, `range` is writable memory owned by this stack and not in use.
        unsafe { core::ptr::write_bytes(range.start as *mut u8, 0, range.len()) };
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
    use std::sync::OnceLock;
    static PAGE_SIZE: OnceLock<usize> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: sysconf has no preconditions; _SC_PAGESIZE always has a value.
            let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            usize::try_from(size).unwrap_or(4096)
        }
        #[cfg(not(unix))]
        {
            4096
        }
    })
}

/// `size` rounded up to whole pages; callers keep `size` at most [`Stack::MAX_SIZE`], so
/// this cannot overflow.
pub(crate) fn round_to_page(size: usize) -> usize {
    size.next_multiple_of(page_size())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn zero_clears_what_was_written() {
        let mut stack = Stack::new(4 * page_size()).unwrap();
        let range = stack.range();
        // SAFETY: the range is this stack's writable memory and nothing runs on it.
        let bytes = unsafe { core::slice::from_raw_parts_mut(range.start as *mut u8, range.len()) };
        bytes.fill(0xa5);
        stack.zero();
        // SAFETY: as above.
        let bytes = unsafe { core::slice::from_raw_parts(range.start as *const u8, range.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(Stack::new(0).is_err());
        assert!(Stack::new(1 << 40).is_err());
        assert!(Stack::new(Stack::MAX_SIZE + 1).is_err());
        assert!(Stack::new(usize::MAX).is_err());
    }
}
