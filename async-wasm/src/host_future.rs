//! [`HostFuture`]: the future type async host functions hand to wasmtime.

use core::future::{Future, IntoFuture};
use core::pin::Pin;

/// The future an async host function returns, boxed as `Box<dyn HostFuture<Output = R> +
/// Send + 'a>`. Every [`Future`] is one.
///
/// wasmtime takes host futures as `Box<dyn Future + Send + 'a>`, which cannot be `.await`ed
/// (a boxed future must be pinned first). A `Box<dyn HostFuture>` is accepted wherever this
/// crate takes a host function and, unlike that, can be awaited directly: that is what lets
/// an [`#[async_host]`](crate::async_host) fn be registered with
/// [`wrap_asyncN`](crate::FuncExt::wrap_async1) and still be called from Rust. Closures
/// return one by writing `Box::new(async move { .. })`, as for wasmtime.
///
/// # Example
///
/// ```
/// use async_wasm::HostFuture;
///
/// fn answer<'a>() -> Box<dyn HostFuture<Output = i32> + Send + 'a> {
///     Box::new(async { 42 })
/// }
///
/// assert_eq!(futures::executor::block_on(async { answer().await }), 42);
/// ```
pub trait HostFuture: Future {}

impl<F: Future + ?Sized> HostFuture for F {}

impl<'a, R> IntoFuture for Box<dyn HostFuture<Output = R> + Send + 'a> {
    type Output = R;
    type IntoFuture = Pin<Box<dyn Future<Output = R> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::into_pin(self)
    }
}
