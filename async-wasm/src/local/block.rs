//! The allocation a [`LocalFuture`](super::LocalFuture) keeps its future in, and the one
//! spare such allocation each thread keeps for the next.
//!
//! A local future must live in an allocation of its own: dropped on the wrong thread it is
//! leaked, and its memory, which may be pinned (a timer registered in a runtime's wheel
//! points into it), must then never be freed. The allocation is therefore separate from the
//! box wasmtime holds, which wasmtime frees whatever happens. A host function called in a
//! loop would pay for that second allocation on every call (a sizeable part of a call
//! that is ready at once), so a future dropped on its own thread hands its allocation to the next future of
//! the same layout on that thread instead of freeing it.

use core::cell::Cell;
use core::ptr::NonNull;
use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};

/// One free allocation, of `layout`.
#[derive(Clone, Copy)]
struct Free {
    layout: Layout,
    ptr: NonNull<u8>,
}

/// This thread's spare allocation; freed when the thread exits.
struct Spare(Cell<Option<Free>>);

impl Drop for Spare {
    fn drop(&mut self) {
        if let Some(free) = self.0.take() {
            // SAFETY: `free` came from `alloc` with this layout and nothing points into it:
            // it was handed over by `recycle`, after its future was dropped.
            unsafe { dealloc(free.ptr.as_ptr(), free.layout) }
        }
    }
}

thread_local! {
    static SPARE: Spare = const { Spare(Cell::new(None)) };
}

/// An allocation for one `T`, `T` not zero-sized: this thread's spare if it has that
/// layout, a new one otherwise.
///
/// Never inlined, as `ThreadId::current` is not: a fiber may resume on another thread,
/// and a thread-local's address computed before such a switch must not be used after it.
#[inline(never)]
pub(super) fn take<T>() -> NonNull<T> {
    let layout = Layout::new::<T>();
    debug_assert_ne!(layout.size(), 0, "a zero-sized future needs no allocation");
    let spare = SPARE
        .try_with(|spare| match spare.0.get() {
            Some(free) if free.layout == layout => spare.0.take(),
            _ => None,
        })
        .ok()
        .flatten();
    match spare {
        Some(free) => free.ptr.cast(),
        None => {
            // SAFETY: `layout` is not zero-sized.
            let ptr = unsafe { alloc(layout) };
            NonNull::new(ptr)
                .unwrap_or_else(|| handle_alloc_error(layout))
                .cast()
        }
    }
}

/// The largest allocation kept as a spare: a host function's future is rarely above a
/// few hundred bytes, and a thread should not hold a large one for as long as it lives.
const MAX_SPARE: usize = 16 << 10;

/// Gives back an allocation from [`take`] whose `T` has been dropped: it becomes this
/// thread's spare, and the spare it replaces is freed (or it is freed, when larger than
/// [`MAX_SPARE`]).
///
/// # Safety
///
/// `ptr` came from `take::<T>()`, nothing points into it any more, and it is not used
/// after this call.
#[inline(never)]
pub(super) unsafe fn recycle<T>(ptr: NonNull<T>) {
    let free = Free {
        layout: Layout::new::<T>(),
        ptr: ptr.cast(),
    };
    // A thread that is exiting has no spare any more: then `free` itself is freed.
    let replaced = match free.layout.size() <= MAX_SPARE {
        true => SPARE
            .try_with(|spare| spare.0.replace(Some(free)))
            .unwrap_or(Some(free)),
        false => Some(free),
    };
    if let Some(old) = replaced {
        // SAFETY: `old` came from `alloc` with its layout, and is unused: either the spare
        // just replaced, or `free`, which the caller gave up.
        unsafe { dealloc(old.ptr.as_ptr(), old.layout) }
    }
}
