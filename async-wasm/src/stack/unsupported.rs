//! Targets where this crate makes no stacks: Windows, and every other target that is not
//! unix.
//!
//! On Windows wasmtime's fiber crate makes its fibers with `CreateFiber`, which allocates
//! the stack itself, and its `FiberStack::from_custom` returns `ERROR_NOT_SUPPORTED`, so
//! wasmtime cannot run async calls on a stack it did not make; the stacks corosensei maps
//! there also differ in layout (reserved, uncommitted memory and `PAGE_GUARD` pages the
//! kernel moves as the stack grows). Other targets that are not unix have no corosensei
//! `DefaultStack`, nor a guard-page API this crate knows.
//!
//! So here no [`Stack`](super::Stack) can be made: every attempt is
//! [`StackPoolError::Unsupported`], and the code that would touch stack memory cannot run,
//! since it needs a `Stack` to run on.

use core::ops::Range;
use std::io;

use crate::pool::StackPoolError;

/// No value of this type exists, so neither does a [`Stack`](super::Stack).
pub(super) enum Memory {}

impl Memory {
    pub(super) fn new(_size: usize) -> Result<Memory, StackPoolError> {
        Err(StackPoolError::Unsupported)
    }

    pub(super) fn top(&self) -> usize {
        match *self {}
    }

    pub(super) fn guard_start(&self) -> usize {
        match *self {}
    }
}

/// A page size to round the sizes a pool reports; no memory is ever mapped with it.
pub(super) fn page_size() -> usize {
    4096
}

/// Never called: its ranges come from stacks, and none exist here. It reports an error
/// rather than claim memory was cleared.
///
/// # Safety
///
/// As the unix version: the ranges are the idle usable memory of stacks.
pub(super) unsafe fn decommit(_ranges: &[Range<usize>]) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}
