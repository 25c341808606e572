//! The pool as wasmtime sees it: a [`StackCreator`] that lends stacks and the
//! [`StackMemory`] each lent stack is while wasmtime holds it. These are separate types so
//! that the unsafe contracts stay out of the public API.

use std::sync::Arc;

use wasmtime::{StackCreator, StackMemory};

use super::Shared;
use crate::stack::{Stack, StackPoolError};

/// What [`StackPool::configure`](super::StackPool::configure) hands to wasmtime.
pub(super) struct PoolStackCreator(pub(super) Arc<Shared>);

// SAFETY: every stack handed out is a `Stack` owned by the returned `LeasedStack` until
// wasmtime drops it, so no other fiber or guest uses its memory meanwhile; its memory has
// the layout `StackMemory` asks for (page aligned, a guard page below: see `crate::stack`);
// and when `zeroed` is asked every usable byte is zero (`Shared::lease`).
unsafe impl StackCreator for PoolStackCreator {
    fn new_stack(&self, size: usize, zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        // A larger stack than asked is safe (wasm's stack limit is measured from the top);
        // a smaller one is not.
        if size > self.0.stack_size {
            return Err(StackPoolError::StackTooSmall {
                requested: size,
                stack_size: self.0.stack_size,
            }
            .into());
        }
        let stack = self.0.lease(zeroed)?;
        Ok(Box::new(LeasedStack {
            stack: Some(stack),
            zeroed,
            pool: self.0.clone(),
        }))
    }
}

/// A stack lent to wasmtime; it goes back to its pool when wasmtime drops it.
pub(super) struct LeasedStack {
    /// Always `Some` until `drop` takes it.
    stack: Option<Stack>,
    /// Whether the engine that leased it asks for zeroed stacks: then the pool zeroes it on
    /// its way back, while its top is still in cache.
    zeroed: bool,
    pool: Arc<Shared>,
}

impl LeasedStack {
    fn stack(&self) -> &Stack {
        self.stack
            .as_ref()
            .expect("a leased stack is only taken in drop")
    }
}

impl Drop for LeasedStack {
    fn drop(&mut self) {
        // wasmtime drops a stack only once no fiber runs on it.
        if let Some(stack) = self.stack.take() {
            self.pool.give_back(stack, self.zeroed);
        }
    }
}

// SAFETY: the three methods describe the one `Stack` this lease owns, exactly: `top` is the
// end of its usable range (page aligned), `range` is the usable memory, `guard_range` the
// inaccessible page directly below it.
unsafe impl StackMemory for LeasedStack {
    fn top(&self) -> *mut u8 {
        self.stack().top()
    }

    fn range(&self) -> core::ops::Range<usize> {
        self.stack().range()
    }

    fn guard_range(&self) -> core::ops::Range<*mut u8> {
        self.stack().guard_range()
    }
}
