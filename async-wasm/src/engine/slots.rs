//! The store slots of an [`AsyncEngine`](super::AsyncEngine): a fair (first come, first
//! served) counting semaphore whose waits are plain futures, so that any executor can
//! poll them, bounded by a queue limit and a wait timeout.
//!
//! A freed slot goes straight to the oldest waiter, never to whoever polls first, so a
//! newcomer cannot overtake the queue. A waiter that is dropped leaves the queue, and one
//! dropped after it was handed a slot (but before it saw it) passes the slot on: no slot
//! is ever lost. The timeout needs a clock no executor provides in common, so a thread of
//! our own ends overdue waits; it runs only while someone waits with a timeout.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::AcquireError;

/// How long the timeout thread stays after the last timed wait, for the next busy spell.
const TIMER_LINGER: Duration = Duration::from_secs(1);

/// Shared by an engine, its pending acquisitions and the slots they hold.
pub(crate) struct Slots {
    state: Mutex<State>,
    /// Wakes the timeout thread when a timed wait joins an empty queue.
    timer: Condvar,
    max_waiting: Option<usize>,
    timeout: Option<Duration>,
}

struct State {
    free: usize,
    next_ticket: u64,
    /// Waiters in arrival order. With one timeout for all, deadlines are in order too.
    queue: VecDeque<Waiter>,
    /// Tickets handed a slot that have not seen it yet.
    granted: HashSet<u64>,
    /// Tickets whose wait timed out that have not seen it yet.
    expired: HashSet<u64>,
    timer_running: bool,
}

struct Waiter {
    ticket: u64,
    waker: Waker,
    deadline: Option<Instant>,
}

impl Slots {
    pub(crate) fn new(
        slots: usize,
        max_waiting: Option<usize>,
        timeout: Option<Duration>,
    ) -> Slots {
        Slots {
            state: Mutex::new(State {
                free: slots,
                next_ticket: 0,
                queue: VecDeque::new(),
                granted: HashSet::new(),
                expired: HashSet::new(),
                timer_running: false,
            }),
            timer: Condvar::new(),
            max_waiting,
            timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned lock still holds a valid count.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot: see [`Acquire`].
    pub(crate) fn acquire(self: &Arc<Self>) -> Acquire {
        Acquire {
            slots: Arc::clone(self),
            ticket: None,
        }
    }

    /// A slot is free again: hand it to the oldest waiter, or count it.
    fn release(&self) {
        let mut state = self.lock();
        match state.queue.pop_front() {
            Some(waiter) => {
                state.granted.insert(waiter.ticket);
                drop(state);
                waiter.waker.wake();
            }
            None => state.free += 1,
        }
    }

    /// The timeout thread: ends the waits at the front of the queue whose deadline passed,
    /// sleeps until the next one, and leaves once nobody waited for a while. It only sleeps
    /// with the lock held since it last looked, so no new waiter's notification is missed.
    fn expire_overdue(self: Arc<Self>) {
        let mut idle_since = None;
        let mut state = self.lock();
        loop {
            let now = Instant::now();
            let mut overdue = Vec::new();
            while let Some(deadline) = state.queue.front().and_then(|w| w.deadline)
                && deadline <= now
            {
                let waiter = state.queue.pop_front().expect("the front was just seen");
                state.expired.insert(waiter.ticket);
                overdue.push(waiter.waker);
            }
            if !overdue.is_empty() {
                // Wake outside the lock (a waker may run anything), then look again.
                drop(state);
                overdue.into_iter().for_each(Waker::wake);
                idle_since = None;
                state = self.lock();
                continue;
            }
            let sleep = match state.queue.front() {
                Some(waiter) => {
                    idle_since = None;
                    waiter.deadline.map_or(TIMER_LINGER, |d| d - now)
                }
                None => {
                    let idle = *idle_since.get_or_insert(now);
                    match TIMER_LINGER.checked_sub(now - idle) {
                        Some(left) if !left.is_zero() => left,
                        _ => {
                            state.timer_running = false;
                            return;
                        }
                    }
                }
            };
            state = self
                .timer
                .wait_timeout(state, sleep)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A held slot; dropping it frees the slot.
pub(crate) struct Permit {
    slots: Arc<Slots>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.slots.release();
    }
}

/// The wait for a slot. Cancel-safe: dropped while queued it leaves the queue, dropped
/// after it was handed a slot it passes the slot to the next waiter.
pub(crate) struct Acquire {
    slots: Arc<Slots>,
    /// Set while queued or handed a slot not yet seen.
    ticket: Option<u64>,
}

impl Future for Acquire {
    type Output = Result<Permit, AcquireError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let slots = &this.slots;
        let mut state = slots.lock();
        let Some(ticket) = this.ticket else {
            if state.free > 0 {
                state.free -= 1;
                return Poll::Ready(Ok(Permit {
                    slots: Arc::clone(slots),
                }));
            }
            if slots
                .max_waiting
                .is_some_and(|max| state.queue.len() >= max)
            {
                return Poll::Ready(Err(AcquireError::QueueFull {
                    max_waiting: slots.max_waiting.unwrap_or_default(),
                }));
            }
            let now = Instant::now();
            let ticket = state.next_ticket;
            state.next_ticket += 1;
            // A timeout too long for an `Instant` (`Duration::MAX`) is no timeout.
            let deadline = slots.timeout.and_then(|t| now.checked_add(t));
            let was_empty = state.queue.is_empty();
            state.queue.push_back(Waiter {
                ticket,
                waker: cx.waker().clone(),
                deadline,
            });
            this.ticket = Some(ticket);
            if deadline.is_some() {
                if !state.timer_running {
                    state.timer_running = true;
                    let timer = Arc::clone(slots);
                    let spawned = std::thread::Builder::new()
                        .name("async-wasm-wait".into())
                        .spawn(move || timer.expire_overdue());
                    if spawned.is_err() {
                        // Without the thread the wait could outlast its timeout: end it
                        // now, as if timed out, rather than break the bound.
                        state.timer_running = false;
                        state.queue.pop_back();
                        this.ticket = None;
                        return Poll::Ready(Err(AcquireError::TimedOut {
                            timeout: slots.timeout.unwrap_or_default(),
                        }));
                    }
                } else if was_empty {
                    slots.timer.notify_one();
                }
            }
            return Poll::Pending;
        };
        if state.granted.remove(&ticket) {
            this.ticket = None;
            return Poll::Ready(Ok(Permit {
                slots: Arc::clone(slots),
            }));
        }
        if state.expired.remove(&ticket) {
            this.ticket = None;
            return Poll::Ready(Err(AcquireError::TimedOut {
                timeout: slots.timeout.unwrap_or_default(),
            }));
        }
        if let Some(waiter) = state.queue.iter_mut().find(|w| w.ticket == ticket) {
            waiter.waker.clone_from(cx.waker());
        }
        Poll::Pending
    }
}

impl Drop for Acquire {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else { return };
        let mut state = self.slots.lock();
        if let Some(at) = state.queue.iter().position(|w| w.ticket == ticket) {
            state.queue.remove(at);
        } else if state.granted.remove(&ticket) {
            drop(state);
            self.slots.release();
        } else {
            state.expired.remove(&ticket);
        }
    }
}
