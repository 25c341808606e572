//! What `#[async_host]`'s expansion and the generated arity families name. Not public API:
//! reached as `async_wasm::__private`, and may change in any release.

use core::future::Future;

pub use wasmtime;

/// Marks the `IntoHostFunc` impls for callbacks that take a `Caller` first.
#[derive(Debug)]
pub struct WithCaller;

/// Marks the `IntoHostFunc` impls for callbacks without a `Caller`.
#[derive(Debug)]
pub struct NoCaller;

/// A host function's future that wasmtime can poll from any thread.
#[diagnostic::on_unimplemented(
    message = "the future of this `#[async_host]` fn is not `Send`",
    label = "this future holds a value that is not `Send` across an `.await`",
    note = "wasmtime may poll a host future on whichever thread polls the call; for a \
            single-threaded host with `Rc`/`RefCell` state, write `#[async_host(local)]` \
            (see `async_wasm::Local` and `async_wasm::LocalFuture`)"
)]
pub trait SendHostFuture: Future {}

impl<F: Future + Send> SendHostFuture for F {}

/// Passes a host future through, checking that it is `Send`.
///
/// When a future is not `Send`, rustc reports its own "future cannot be sent between threads
/// safely", whatever the bound's trait says, and then "required by a bound in" this fn: its
/// name is the one line of ours the user sees, so it carries the way out.
#[inline(always)]
pub fn if_not_send_use_async_host_local<F: SendHostFuture>(future: F) -> F {
    future
}

/// A type a host function's number parameter may have.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a wasm value, so it cannot be a parameter of an `#[async_host]` fn",
    label = "not a wasm value",
    note = "parameters are wasm values (i32, i64, f32, f64, v128, references) or, passed \
            through the guest's memory, `String`, `Vec<u8>` and `Json<T>` written by those \
            names; a type alias for one of these is not recognised: write the type itself"
)]
pub trait WasmParam: wasmtime::WasmTy {}

impl<T: wasmtime::WasmTy> WasmParam for T {}

/// Checks, at compile time, that `T` can be a number parameter.
#[inline(always)]
pub fn wasm_param<T: WasmParam>() {}

/// The future of a data host function that failed before the user's future was made: a
/// guest's data did not pass the checks. The error is the outermost context, over the
/// guest's backtrace, so that its first line says what happened.
pub fn failed<T, D>(
    caller: &wasmtime::Caller<'_, D>,
    error: crate::data::DataError,
) -> core::future::Ready<wasmtime::Result<T>> {
    core::future::ready(Err(crate::data::call::traced(caller, None, error)))
}

/// The zero value of a wasm result: what a host function returns to the guest along with
/// an error value (a `GuestError`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no zero value to return with a `GuestError`",
    label = "a fn returning `Result` hands a `GuestError` to the guest with a zero result",
    note = "`Result` results are numbers (i32, i64, f32, f64, v128), nullable references, \
            data (`String`, `Vec<u8>`, `Json<T>`), `()` or tuples of these"
)]
pub trait ZeroValue {
    /// The value.
    fn zero_value() -> Self;
}

macro_rules! zero_values {
    ($($ty:ty => $zero:expr),* $(,)?) => {
        $(impl ZeroValue for $ty {
            #[inline]
            fn zero_value() -> Self {
                $zero
            }
        })*
    };
}

zero_values!(
    i32 => 0, i64 => 0, u32 => 0, u64 => 0, f32 => 0.0, f64 => 0.0, () => (),
    wasmtime::V128 => wasmtime::V128::from(0u128),
);

impl<T> ZeroValue for Option<T> {
    #[inline]
    fn zero_value() -> Self {
        None
    }
}

macro_rules! zero_tuples {
    ($(($($t:ident),+))*) => {
        $(impl<$($t: ZeroValue),+> ZeroValue for ($($t,)+) {
            #[inline]
            fn zero_value() -> Self {
                ($($t::zero_value(),)+)
            }
        })*
    };
}

zero_tuples!((A)(A, B)(A, B, C)(A, B, C, D)(A, B, C, D, E)(
    A, B, C, D, E, F
));

/// The zero value of `T`.
#[inline]
pub fn zero_value<T: ZeroValue>() -> T {
    T::zero_value()
}
