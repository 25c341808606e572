//! User host functions: plain closures and `async fn`s over the PDK's types, imported by
//! plugins from `extism:host/user` (or another namespace) with `u64` handles.

use std::collections::BTreeMap;
use std::convert::identity;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::convert::{FromExtism, ToExtism};
use super::error::{DataSite, ExtismError};
use crate::{Local, LocalFuture};

/// What a host function may take first, before its data parameters: the calling plugin's
/// identity and configuration.
///
/// # Example
///
/// ```
/// use async_wasm::extism::{HostContext, Manifest, PluginBuilder};
///
/// let builder = PluginBuilder::new(Manifest::new([b"\0asm\x01\0\0\0".to_vec()]))
///     .host_fn("tenant", |cx: HostContext| async move {
///         cx.config("tenant").unwrap_or("none").to_owned()
///     });
/// # drop(builder);
/// ```
#[derive(Debug, Clone)]
pub struct HostContext {
    plugin_id: u64,
    config: Arc<BTreeMap<String, String>>,
}

impl HostContext {
    pub(crate) fn new(plugin_id: u64, config: Arc<BTreeMap<String, String>>) -> HostContext {
        HostContext { plugin_id, config }
    }

    /// The calling instance's id, unique in this process: a [`Plugin`](super::Plugin)'s
    /// ([`Plugin::id`](super::Plugin::id)), or a per-request instance's.
    ///
    /// # Example
    ///
    /// See [`HostContext`].
    pub fn plugin_id(&self) -> u64 {
        self.plugin_id
    }

    /// The manifest's `config` value for `key`.
    ///
    /// # Example
    ///
    /// See [`HostContext`].
    pub fn config(&self, key: &str) -> Option<&str> {
        self.config.get(key).map(String::as_str)
    }
}

/// What a host function's future may complete with: a value the plugin gets (see
/// [`ToExtism`]; `()` gives it nothing), or a `Result` of one. An `Err` fails the plugin's
/// call, as Extism's host does: the plugin does not resume, and the call's error is yours
/// (it downcasts to your error type), with the host function named in its context. Sealed.
///
/// # Example
///
/// ```
/// use async_wasm::extism::HostResult;
///
/// fn result<R: HostResult>() {}
/// result::<String>();
/// result::<()>();
/// result::<Result<Vec<u8>, std::io::Error>>();
/// result::<wasmtime::Result<i64>>();
/// ```
pub trait HostResult: private::SealedResult + Send + 'static {}

impl<T: ToExtism + Send + 'static> private::SealedResult for T {
    const HAS_VALUE: bool = T::HAS_VALUE;
    fn into_bytes(self, function: &str) -> Result<Vec<u8>, HostFnError> {
        encode(&self, function).map_err(HostFnError::Ours)
    }
}
impl<T: ToExtism + Send + 'static> HostResult for T {}

impl<T, E> private::SealedResult for Result<T, E>
where
    T: ToExtism + Send + 'static,
    E: Into<wasmtime::Error> + Send + 'static,
{
    const HAS_VALUE: bool = T::HAS_VALUE;
    fn into_bytes(self, function: &str) -> Result<Vec<u8>, HostFnError> {
        match self {
            Ok(value) => encode(&value, function).map_err(HostFnError::Ours),
            // Named by the call (`run`), above wasmtime's backtrace, so that the error's
            // first line says which host function failed.
            Err(err) => Err(HostFnError::User(err.into())),
        }
    }
}
impl<T, E> HostResult for Result<T, E>
where
    T: ToExtism + Send + 'static,
    E: Into<wasmtime::Error> + Send + 'static,
{
}

fn encode<T: ToExtism>(value: &T, function: &str) -> Result<Vec<u8>, ExtismError> {
    value
        .to_extism()
        .map(|bytes| bytes.into_owned())
        .map_err(|problem| ExtismError::Data {
            site: DataSite::Result {
                function: function.to_owned(),
            },
            problem,
        })
}

fn decode<T: FromExtism>(function: &str, index: usize, bytes: Vec<u8>) -> Result<T, ExtismError> {
    T::from_extism(bytes).map_err(|problem| ExtismError::Data {
        site: DataSite::Param {
            function: function.to_owned(),
            index,
        },
        problem,
    })
}

/// An async host function for [`PluginBuilder::host_fn`](super::PluginBuilder::host_fn):
/// a closure or `async fn` taking up to eight [`FromExtism`] parameters (optionally after
/// a [`HostContext`]) and returning a `Send` future whose output is a [`HostResult`]. The
/// plugin imports it with one `i64` (a handle) per parameter, and an `i64` result unless
/// the result is `()`, as the Rust PDK's `#[host_fn]` declares it. Sealed; `Marker` only
/// tells the implementations apart.
///
/// # Example
///
/// ```
/// use async_wasm::extism::HostFn;
///
/// async fn add(a: i64, b: i64) -> i64 { a + b }
///
/// fn takes<M>(_: impl HostFn<M>) {}
/// takes(add);
/// takes(|name: String| async move { format!("hello {name}") });
/// ```
pub trait HostFn<Marker>: private::Erase<Marker> {}

/// A host function for [`PluginBuilder::host_fn_local`](super::PluginBuilder::host_fn_local):
/// as [`HostFn`], but the closure and its future need not be `Send` (`Rc`, `RefCell`
/// held across `.await`s). Sealed.
///
/// # Example
///
/// ```
/// use std::rc::Rc;
/// use async_wasm::extism::LocalHostFn;
///
/// let counter = Rc::new(std::cell::Cell::new(0));
/// fn takes<M>(_: impl LocalHostFn<M>) {}
/// takes(move |step: i64| {
///     let counter = Rc::clone(&counter);
///     async move { counter.set(counter.get() + step); counter.get() }
/// });
/// ```
pub trait LocalHostFn<Marker>: private::EraseLocal<Marker> {}

/// Marks the implementations of [`HostFn`] whose function takes a [`HostContext`] first.
#[doc(hidden)]
#[derive(Debug)]
pub enum WithContext {}

/// Marks the implementations of [`HostFn`] whose function takes data parameters only.
#[doc(hidden)]
#[derive(Debug)]
pub enum Plain {}

pub(crate) type HostFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, HostFnError>> + Send>>;

type Call = dyn Fn(HostContext, Vec<Vec<u8>>) -> Result<HostFuture, ExtismError> + Send + Sync;

pub(crate) mod private {
    /// A host function with its types erased: what the linker registers.
    pub struct Erased {
        pub params: usize,
        pub returns: bool,
        pub call: std::sync::Arc<super::Call>,
    }

    pub trait Erase<Marker> {
        fn erase(self, name: &str) -> Erased;
    }

    pub trait EraseLocal<Marker> {
        fn erase_local(self, name: &str) -> Erased;
    }

    /// How a host function's future failed: its own error, or its result did not encode.
    pub enum HostFnError {
        User(wasmtime::Error),
        Ours(super::ExtismError),
    }

    pub trait SealedResult {
        const HAS_VALUE: bool;
        fn into_bytes(self, function: &str) -> Result<Vec<u8>, HostFnError>;
    }
}

pub(crate) use private::HostFnError;
use private::{Erase, EraseLocal, Erased};

macro_rules! count {
    () => { 0 };
    ($head:ident $($tail:ident)*) => { 1 + count!($($tail)*) };
}

/// The [`Erased`] form of a host function: its parameters (`$ty` decoded into `$var`, the
/// `$index`th) taken from the plugin's blocks, `$call` made with them (and the context,
/// bound to `$cx`), and its future, wrapped by `$wrap`, encoding the result. One body for
/// every kind `host_fns!` implements.
macro_rules! erased {
    ($name:ident, $cx:ident, [$($ty:ident $var:ident $index:tt),*], $call:expr, $wrap:path) => {{
        let name: Arc<str> = $name.into();
        Erased {
            params: count!($($ty)*),
            returns: R::HAS_VALUE,
            call: Arc::new(move |$cx: HostContext, args: Vec<Vec<u8>>| {
                #[allow(unused_mut, unused_variables)]
                let mut args = args.into_iter();
                $(let $var = decode::<$ty>(&name, $index, args.next().unwrap_or_default())?;)*
                let future = $call;
                let name = Arc::clone(&name);
                Ok(Box::pin($wrap(async move { future.await.into_bytes(&name) })) as HostFuture)
            }),
        }
    }};
}

macro_rules! host_fns {
    ($($ty:ident $var:ident $index:tt),*) => {
        impl<F, Fut, R, $($ty,)*> Erase<(Plain, $($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: HostResult,
            $($ty: FromExtism + 'static,)*
        {
            fn erase(self, name: &str) -> Erased {
                erased!(name, _cx, [$($ty $var $index),*], self($($var),*), identity)
            }
        }
        impl<F, Fut, R, $($ty,)*> HostFn<(Plain, $($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: HostResult,
            $($ty: FromExtism + 'static,)*
        {
        }

        impl<F, Fut, R, $($ty,)*> Erase<(WithContext, $($ty,)*)> for F
        where
            F: Fn(HostContext, $($ty),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: HostResult,
            $($ty: FromExtism + 'static,)*
        {
            fn erase(self, name: &str) -> Erased {
                erased!(name, cx, [$($ty $var $index),*], self(cx, $($var),*), identity)
            }
        }
        impl<F, Fut, R, $($ty,)*> HostFn<(WithContext, $($ty,)*)> for F
        where
            F: Fn(HostContext, $($ty),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: HostResult,
            $($ty: FromExtism + 'static,)*
        {
        }

        impl<F, Fut, R, $($ty,)*> EraseLocal<(Plain, $($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + 'static,
            Fut: Future<Output = R> + 'static,
            R: HostResult,
            $($ty: FromExtism + 'static,)*
        {
            fn erase_local(self, name: &str) -> Erased {
                // Bound to this thread: calling it elsewhere panics, as `Local` promises.
                let function = Local::new(self);
                erased!(name, _cx, [$($ty $var $index),*], (function.get())($($var),*), LocalFuture::new)
            }
        }
        impl<F, Fut, R, $($ty,)*> LocalHostFn<(Plain, $($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + 'static,
            Fut: Future<Output = R> + 'static,
            R: HostResult,
            $($ty: FromExtism + 'static,)*
        {
        }
    };
}

host_fns!();
host_fns!(A0 a0 0);
host_fns!(A0 a0 0, A1 a1 1);
host_fns!(A0 a0 0, A1 a1 1, A2 a2 2);
host_fns!(A0 a0 0, A1 a1 1, A2 a2 2, A3 a3 3);
host_fns!(A0 a0 0, A1 a1 1, A2 a2 2, A3 a3 3, A4 a4 4);
host_fns!(A0 a0 0, A1 a1 1, A2 a2 2, A3 a3 3, A4 a4 4, A5 a5 5);
host_fns!(A0 a0 0, A1 a1 1, A2 a2 2, A3 a3 3, A4 a4 4, A5 a5 5, A6 a6 6);
host_fns!(A0 a0 0, A1 a1 1, A2 a2 2, A3 a3 3, A4 a4 4, A5 a5 5, A6 a6 6, A7 a7 7);
