//! The default of `max_stacks`: what this process can map.
//!
//! A pool without a bound of its own would map stacks until the operating system refuses,
//! and on Linux what runs out first is `vm.max_map_count`, the memory mappings a process
//! may hold: then the next `mmap` anywhere in the process fails, and an allocation that
//! cannot fail (a `Vec` growing, a thread's stack) aborts the process. So the default
//! gives stacks half of the mappings, and a lease past it is
//! [`StackPoolError::Exhausted`](crate::StackPoolError::Exhausted) instead.

use crate::stack;

/// The share of the process's mappings the default bound gives a pool's stacks, as a
/// divisor: the other half is the rest of the process's (guest memories, the allocator,
/// libraries, other pools).
const SHARE: usize = 2;

/// `max_stacks` unless the builder sets it.
pub(super) fn default_max_stacks() -> usize {
    stacks_for(stack::max_map_count())
}

/// The default bound in a process that may hold `max_map_count` mappings: at least one
/// stack, so that a pool always works.
fn stacks_for(max_map_count: usize) -> usize {
    (max_map_count / SHARE / stack::MAPPINGS_PER_STACK).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_half_the_mappings_in_stacks() {
        assert_eq!(stacks_for(65_530), 65_530 / 2 / stack::MAPPINGS_PER_STACK);
        if stack::MAPPINGS_PER_STACK == 2 {
            assert_eq!(stacks_for(65_530), 16_382);
        }
        assert_eq!(stacks_for(0), 1);
        assert_eq!(default_max_stacks(), stacks_for(stack::max_map_count()));
        assert!(default_max_stacks() < usize::MAX);
    }
}
