//! Targets where this crate makes no stacks: Windows, and every other target that is not
//! unix.
//!
//! On Windows wasmtime's fiber crate makes its fibers with `CreateFiber`, which allocates
//! the stack itself, and its `FiberStack::from_custom` returns `ERROR_NOT_SUPPORTED`, so
//! wasmtime cannot run async calls on a stack it did not make. Other targets that are not
//! unix have no guard-page API this crate knows.
//!
//! So here no [`Stack`](super::Stack) can be made: every attempt is
//! [`StackPoolError::Unsupported`](super::StackPoolError::Unsupported), and the code that
//! would touch stack memory cannot run, since it needs a `Stack` to run on.

use core::ops::Range;
use std::io;

/// No value of this type exists, so neither does a [`Stack`](super::Stack).
pub(super) enum Memory {}

impl Memory {
    /// Never called: [`Stack::new`](super::Stack::new) checks the target first.
    pub(super) fn new(_size: usize) -> io::Result<Memory> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(super) fn top(&self) -> *mut u8 {
        match *self {}
    }

    pub(super) fn guard_start(&self) -> *mut u8 {
        match *self {}
    }
}

/// No stack is ever mapped here; the pool's default bound is derived from this all the
/// same, so that it is the same number everywhere this crate has no better one.
pub(super) fn max_map_count() -> usize {
    super::DEFAULT_MAX_MAP_COUNT
}

/// As on unix, for the same default bound.
pub(super) const MAPPINGS_PER_STACK: usize = 2;

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
