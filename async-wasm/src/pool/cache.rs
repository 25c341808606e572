//! Slots of idle stacks, one per thread as far as the slots go, so that a store made and
//! dropped on the same thread (a request served on one worker: the common case) leases
//! and returns its stack without taking the pool's lock.
//!
//! With one lock for every lease and every return, two threads serving a store per request
//! on one pool met each other on about 5% of acquisitions, and each such meeting parks a
//! thread in the kernel. Each thread uses the slot its number picks; a slot is taken with
//! `try_lock` only, so that a thread that finds its slot busy (another thread's number
//! picked it too) goes to the pool's lists instead of waiting.
//!
//! The pool owns the slots, not the threads: a cached stack counts as idle, any thread
//! that finds no other idle stack takes it ([`Slots::take_any`]), [`StackPool::trim`]
//! empties the slots, and the stacks in them are unmapped with the pool, whichever threads
//! still run. Only stacks as their last store left them (not zeroed) are kept here: a
//! zeroing engine needs every byte zero, which the pool's lists keep track of.
//!
//! [`StackPool::trim`]: super::StackPool::trim

use core::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, TryLockError};

use crate::stack::Stack;

/// The most slots a pool keeps: more threads than this share slots.
const MAX_SLOTS: usize = 64;

/// One idle stack or none, alone on its cache line so that threads using neighbouring
/// slots do not slow each other down.
#[repr(align(128))]
struct Slot(Mutex<Option<Stack>>);

/// A pool's slots.
pub(super) struct Slots(Box<[Slot]>);

impl Slots {
    /// A slot per thread the machine runs at once (as far as it says), at most
    /// [`MAX_SLOTS`].
    pub(super) fn new() -> Slots {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        Slots(
            (0..threads.clamp(1, MAX_SLOTS))
                .map(|_| Slot(Mutex::new(None)))
                .collect(),
        )
    }

    /// This thread's slot.
    fn mine(&self) -> &Slot {
        &self.0[thread_number() % self.0.len()]
    }

    /// Takes the stack in this thread's slot, if there is one and the slot is free.
    pub(super) fn take_mine(&self) -> Option<Stack> {
        self.mine().try_take()
    }

    /// Takes a stack from any slot that has one and is free: for a lease that found no
    /// other idle stack, before it maps a new one.
    pub(super) fn take_any(&self) -> Option<Stack> {
        self.0.iter().find_map(Slot::try_take)
    }

    /// Puts `stack` in this thread's slot, or hands it back when the slot is full or busy.
    pub(super) fn put_mine(&self, stack: Stack) -> Result<(), Stack> {
        let mut slot = match self.mine().0.try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(stack),
        };
        match *slot {
            Some(_) => Err(stack),
            None => {
                *slot = Some(stack);
                Ok(())
            }
        }
    }

    /// Takes every stack from every slot, waiting for slots in use.
    pub(super) fn drain(&self) -> Vec<Stack> {
        self.0
            .iter()
            .filter_map(|slot| {
                // A slot only ever holds a whole `Option<Stack>`: poisoned, it is intact.
                slot.0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
            })
            .collect()
    }
}

impl Slot {
    fn try_take(&self) -> Option<Stack> {
        match self.0.try_lock() {
            Ok(mut slot) => slot.take(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().take(),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// A number for the current thread, given out in the order threads first ask: workers
/// started together get consecutive numbers, hence different slots. It only spreads
/// threads over slots, so it may wrap and repeat.
fn thread_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static NUMBER: Cell<Option<usize>> = const { Cell::new(None) };
    }
    // A thread-local that is already destroyed (a stack dropped during thread exit) gets
    // slot 0, which is still a valid slot.
    NUMBER
        .try_with(|number| {
            number.get().unwrap_or_else(|| {
                let fresh = NEXT.fetch_add(1, Ordering::Relaxed);
                number.set(Some(fresh));
                fresh
            })
        })
        .unwrap_or(0)
}
