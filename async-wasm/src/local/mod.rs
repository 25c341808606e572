//! [`Local`] and [`LocalFuture`]: `!Send` host state and host futures, bound to the thread
//! that made them. Why this is sound is on [`Local`].

mod block;
mod thread_id;

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use core::pin::Pin;
use core::ptr::NonNull;
use core::task::{Context, Poll};

use thread_id::ThreadId;

/// Panics with the message every misuse gets: which value, which threads, what to do.
#[cold]
#[track_caller]
fn wrong_thread(what: &str, owner: ThreadId) -> ! {
    panic!(
        "async_wasm::{what} was used on a thread other than the one that made it \
         (made on thread #{owner}, used on thread #{}): local host state and local host \
         futures must stay on their thread, so run calls into a store with local data on \
         that thread (a tokio LocalSet or current-thread runtime, futures' LocalPool)",
        ThreadId::current()
    )
}

/// A value that stays on the thread that made it, so that it can be store data or be held
/// by a host future even when it is not `Send` (an `Rc<RefCell<Db>>`, say).
///
/// wasmtime needs `Send` store data and `Send` host futures, because a call future may be
/// polled on any thread. Single-threaded hosts (a tokio `LocalSet` or current-thread
/// runtime, futures' `LocalPool`, thread-per-core runtimes) keep their state in
/// `Rc`/`RefCell` and hold such values across `.await`s; `unsafe impl Send` on such a type
/// is undefined behaviour the moment the value reaches another thread. `Local` and
/// [`LocalFuture`] make the same programs sound by checking instead of promising:
///
/// - each remembers the thread that made it (a number never reused in the process);
/// - every access ([`get`](Local::get), [`get_mut`](Local::get_mut), `Deref`, `DerefMut`,
///   [`into_inner`](Local::into_inner)) and every poll of a `LocalFuture` compares the
///   current thread with it, and panics on another thread with a message naming both;
/// - dropped on another thread, it leaks its value instead of running the value's
///   destructor there. Leaking is safe; a `LocalFuture` keeps its future in an allocation of
///   its own, so a leaked future's pinned memory is never freed or reused.
///
/// So a `!Send` value is only ever touched on its own thread, which is all `!Send` asks.
/// The cost is a thread-local read and a compare per access and per poll, and, per
/// `LocalFuture`, an allocation of its own, reused from one future to the next on a thread.
/// The README's performance section measures it against the `Send` path.
///
/// If a store with `Local` data, or a call future into it, is moved to another thread
/// anyway (spawned on a multi-thread runtime, say), nothing undefined happens: the first
/// host function that touches the data, or the first poll of a local host future, panics
/// there (the panic reaches the task awaiting the call), and whatever is dropped there is
/// leaked.
///
/// # Example
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use async_wasm::Local;
///
/// let counter = Local::new(Rc::new(RefCell::new(0)));
/// *counter.borrow_mut() += 1; // through Deref, checked
/// assert_eq!(*counter.get().borrow(), 1);
///
/// // On another thread every access panics, and a drop there leaks.
/// let moved = std::thread::spawn(move || {
///     let access = std::panic::AssertUnwindSafe(|| *counter.borrow());
///     std::panic::catch_unwind(access).is_err()
/// });
/// assert!(moved.join().unwrap());
/// ```
pub struct Local<T> {
    value: ManuallyDrop<T>,
    thread: ThreadId,
}

// SAFETY: `value` is only reachable through methods that first check that the current
// thread is `thread` (`checked`), and `Drop` leaks it on any other thread. So a `T` is only
// read, written or dropped on the thread that made it, whatever thread holds or shares the
// `Local`. Handing out `&T` on that thread cannot leak it elsewhere: sending `&T` needs
// `T: Sync`, which is then the type's own promise.
unsafe impl<T> Send for Local<T> {}
// SAFETY: as above: `&Local<T>` on another thread gives no access to `T` (it panics).
unsafe impl<T> Sync for Local<T> {}

impl<T> Local<T> {
    /// Binds `value` to the current thread.
    ///
    /// # Example
    ///
    /// ```
    /// let state = async_wasm::Local::new(std::rc::Rc::new(5));
    /// assert_eq!(**state, 5);
    /// ```
    pub fn new(value: T) -> Local<T> {
        Local {
            value: ManuallyDrop::new(value),
            thread: ThreadId::current(),
        }
    }

    /// Whether the current thread is the one this value belongs to: when it is not, every
    /// access panics.
    ///
    /// # Example
    ///
    /// ```
    /// let state = async_wasm::Local::new(1);
    /// assert!(state.is_here());
    /// ```
    pub fn is_here(&self) -> bool {
        self.thread == ThreadId::current()
    }

    /// The value, on its own thread.
    ///
    /// # Panics
    ///
    /// On any other thread.
    ///
    /// # Example
    ///
    /// ```
    /// let state = async_wasm::Local::new(String::from("db"));
    /// assert_eq!(state.get(), "db");
    /// ```
    #[track_caller]
    pub fn get(&self) -> &T {
        self.check();
        &self.value
    }

    /// The value, mutably, on its own thread.
    ///
    /// # Panics
    ///
    /// On any other thread.
    ///
    /// # Example
    ///
    /// ```
    /// let mut state = async_wasm::Local::new(vec![1]);
    /// state.get_mut().push(2);
    /// assert_eq!(state.get(), &[1, 2]);
    /// ```
    #[track_caller]
    pub fn get_mut(&mut self) -> &mut T {
        self.check();
        &mut self.value
    }

    /// The value, if the current thread is its own.
    ///
    /// # Example
    ///
    /// ```
    /// let state = async_wasm::Local::new(3);
    /// assert_eq!(state.try_get(), Some(&3));
    /// ```
    pub fn try_get(&self) -> Option<&T> {
        self.is_here().then(|| &*self.value)
    }

    /// Takes the value back, on its own thread.
    ///
    /// # Panics
    ///
    /// On any other thread (the value is then leaked, not dropped).
    ///
    /// # Example
    ///
    /// ```
    /// let state = async_wasm::Local::new(std::rc::Rc::new(7));
    /// assert_eq!(*state.into_inner(), 7);
    /// ```
    #[track_caller]
    pub fn into_inner(self) -> T {
        self.check();
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the value is moved out once.
        unsafe { ManuallyDrop::take(&mut this.value) }
    }

    #[track_caller]
    fn check(&self) {
        if self.thread != ThreadId::current() {
            wrong_thread("Local", self.thread);
        }
    }
}

impl<T> Deref for Local<T> {
    type Target = T;

    /// # Panics
    ///
    /// On a thread other than the value's own.
    #[track_caller]
    fn deref(&self) -> &T {
        self.get()
    }
}

impl<T> DerefMut for Local<T> {
    /// # Panics
    ///
    /// On a thread other than the value's own.
    #[track_caller]
    fn deref_mut(&mut self) -> &mut T {
        self.get_mut()
    }
}

impl<T> Drop for Local<T> {
    fn drop(&mut self) {
        if self.is_here() {
            // SAFETY: dropped once, here; `value` is not used after.
            unsafe { ManuallyDrop::drop(&mut self.value) }
        }
        // On another thread the value is leaked: running its destructor there is exactly
        // what `!Send` forbids.
    }
}

impl<T: Default> Default for Local<T> {
    fn default() -> Local<T> {
        Local::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.try_get() {
            Some(value) => f.debug_tuple("Local").field(value).finish(),
            None => f.write_str("Local(<on another thread>)"),
        }
    }
}

/// A future that stays on the thread that made it, so that a host function may hold `!Send`
/// values (an `Rc`, a `RefCell` borrow) across `.await`s.
///
/// It is `Send` whatever the future is, because the future is only polled or dropped on its
/// own thread: a poll on any other thread panics (wasmtime passes the panic on to the task
/// awaiting the call), and a drop on another thread leaks the future. The future lives in
/// an allocation of its own, which a leak never frees, so its pinned memory stays valid;
/// after a drop on its own thread, the allocation serves the thread's next `LocalFuture` of
/// the same size.
/// See [`Local`] for why this is sound and what it costs.
/// [`#[async_host(local)]`](crate::async_host) wraps a host function's body in one; closures
/// write `Box::new(LocalFuture::new(async move { .. }))`.
///
/// # Example
///
/// ```
/// use std::rc::Rc;
/// use async_wasm::prelude::*;
/// use async_wasm::{Local, LocalFuture};
/// use wasmtime::{Caller, Engine, Func, Store};
///
/// let mut store = Store::new(&Engine::default(), Local::new(Rc::new(40)));
/// let f = Func::wrap_async1(&mut store, |caller: Caller<'_, Local<Rc<i32>>>, x: i32| {
///     let shared = Rc::clone(caller.data()); // !Send, held across the await below
///     Box::new(LocalFuture::new(async move {
///         futures::future::ready(()).await;
///         *shared + x
///     }))
/// });
/// let add = f.get_async().get1::<i32, i32>(&store)?;
/// assert_eq!(futures::executor::block_on(add.call(&mut store, 2))?, 42);
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub struct LocalFuture<F> {
    /// The future, alone in an allocation from `block::take` (or dangling when `F` is
    /// zero-sized), owned by this `LocalFuture`: never moved out, so pinned once polled.
    future: NonNull<F>,
    thread: ThreadId,
    _owns: PhantomData<F>,
}

// SAFETY: the future is only polled (`poll` checks the thread first) and dropped (`Drop`
// checks, and leaks otherwise) on the thread that made the `LocalFuture`, so nothing of `F`
// is touched on another thread.
unsafe impl<F> Send for LocalFuture<F> {}
// SAFETY: a shared `&LocalFuture` reaches nothing of `F` (polling needs `Pin<&mut Self>`,
// and `Debug` shows the thread only).
unsafe impl<F> Sync for LocalFuture<F> {}
// The future sits behind a pointer, like a `Box`'s: moving a `LocalFuture` never moves it.
impl<F> Unpin for LocalFuture<F> {}

impl<F: Future> LocalFuture<F> {
    /// Binds `future` to the current thread.
    ///
    /// # Example
    ///
    /// ```
    /// let fut = async_wasm::LocalFuture::new(async { std::rc::Rc::new(1) });
    /// assert_eq!(*futures::executor::block_on(fut), 1);
    /// ```
    pub fn new(future: F) -> LocalFuture<F> {
        let ptr = if size_of::<F>() == 0 {
            NonNull::dangling()
        } else {
            block::take::<F>()
        };
        // SAFETY: `ptr` is valid for writes of one `F` and aligned for it: a fresh or spare
        // allocation of `F`'s layout, or dangling (aligned) for a zero-sized `F`.
        unsafe { ptr.as_ptr().write(future) };
        LocalFuture {
            future: ptr,
            thread: ThreadId::current(),
            _owns: PhantomData,
        }
    }
}

impl<F: Future> Future for LocalFuture<F> {
    type Output = F::Output;

    /// # Panics
    ///
    /// On a thread other than the one that made it.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if self.thread != ThreadId::current() {
            wrong_thread("LocalFuture", self.thread);
        }
        // SAFETY: `future` points to a live `F` that this `LocalFuture` owns exclusively
        // (`&mut self`), and it is never moved out of its allocation until dropped there.
        unsafe { Pin::new_unchecked(&mut *self.get_mut().future.as_ptr()) }.poll(cx)
    }
}

impl<F> Drop for LocalFuture<F> {
    fn drop(&mut self) {
        if self.thread != ThreadId::current() {
            // Leaked: its destructor must not run here, and its allocation, which may be
            // pinned, is never freed.
            return;
        }
        // SAFETY: `future` points to a live `F` owned by this `LocalFuture`, dropped once,
        // here, and not used after.
        unsafe { self.future.as_ptr().drop_in_place() };
        if size_of::<F>() != 0 {
            // SAFETY: the allocation came from `block::take::<F>()` and its `F` is gone.
            unsafe { block::recycle(self.future) };
        }
    }
}

impl<F> fmt::Debug for LocalFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalFuture")
            .field("thread", &self.thread)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};

    /// Records the thread its destructor ran on.
    struct Recorder(Arc<Mutex<Vec<ThreadId>>>);

    impl Drop for Recorder {
        fn drop(&mut self) {
            self.0.lock().unwrap().push(ThreadId::current());
        }
    }

    #[test]
    fn a_local_dropped_on_its_thread_runs_its_destructor() {
        let log = Arc::new(Mutex::new(Vec::new()));
        drop(Local::new(Recorder(log.clone())));
        assert_eq!(*log.lock().unwrap(), [ThreadId::current()]);
    }

    #[test]
    fn a_local_dropped_elsewhere_leaks() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let local = Local::new((Rc::new(()), Recorder(log.clone())));
        std::thread::spawn(move || drop(local)).join().unwrap();
        assert!(log.lock().unwrap().is_empty(), "no destructor ran anywhere");
    }

    #[test]
    fn access_elsewhere_panics_with_the_message() {
        let local = Local::new(Rc::new(1));
        let message = std::thread::spawn(move || {
            let err =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| **local)).unwrap_err();
            err.downcast_ref::<String>().cloned().unwrap()
        })
        .join()
        .unwrap();
        assert!(message.contains("async_wasm::Local"), "{message}");
        assert!(message.contains("LocalSet"), "{message}");
    }

    #[test]
    fn a_future_polled_elsewhere_panics_and_dropped_elsewhere_leaks() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder(log.clone());
        let mut fut = Box::pin(LocalFuture::new(async move {
            let _recorder = recorder;
            std::future::pending::<()>().await;
        }));
        let waker = std::task::Waker::noop();
        assert!(
            fut.as_mut()
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
        std::thread::spawn(move || {
            let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let _ = fut
                    .as_mut()
                    .poll(&mut Context::from_waker(std::task::Waker::noop()));
            }));
            assert!(polled.is_err());
            drop(fut);
        })
        .join()
        .unwrap();
        assert!(
            log.lock().unwrap().is_empty(),
            "the future's state was leaked"
        );
    }

    /// Futures of one type, made one after another on a thread, share one allocation.
    #[test]
    fn a_futures_allocation_serves_the_next_one_on_its_thread() {
        fn make(n: u8) -> impl Future<Output = u8> {
            let bytes = [n; 64];
            async move { bytes[63] }
        }
        let first = LocalFuture::new(make(1));
        let at = first.future.as_ptr() as usize;
        assert_eq!(futures::executor::block_on(first), 1);
        let second = LocalFuture::new(make(2));
        assert_eq!(second.future.as_ptr() as usize, at);
        let third = LocalFuture::new(make(3)); // the second still holds it
        assert_ne!(third.future.as_ptr() as usize, at);
        assert_eq!(futures::executor::block_on(second), 2);
        assert_eq!(futures::executor::block_on(third), 3);
    }

    /// A zero-sized future needs no allocation, and works the same.
    #[test]
    fn a_zero_sized_future() {
        struct Seven;
        impl Future for Seven {
            type Output = u8;
            fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<u8> {
                Poll::Ready(7)
            }
        }
        assert_eq!(size_of::<Seven>(), 0);
        assert_eq!(futures::executor::block_on(LocalFuture::new(Seven)), 7);
        drop(LocalFuture::new(std::future::pending::<()>()));
    }
}
