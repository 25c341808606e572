//! [`GuestError`]: an expected error a host function hands to the guest as a value.

use core::fmt;

/// An error a host function gives the guest as a value, instead of trapping it: a code and
/// a message the guest reads (`aw_error_take` in `async_wasm.h`), after which the guest
/// goes on. For what the guest should survive: a key not found, a quota reached, an input
/// refused. Any other error of a host function traps the guest, as before.
///
/// Return it from an [`#[async_host]`](crate::async_host) fn whose result is a `Result`,
/// as its error type or converted into the error type (`wasmtime::Error`, say): the macro
/// finds it with `downcast`. Hand-written host functions use
/// [`CallData::write_error`](super::CallData::write_error).
///
/// **In the guest**: the import returns its zero value (0, or an empty data result) and the
/// host has called the guest's export `async_wasm_set_error(code: i32, msg_ptr: i32,
/// msg_len: i32)` first, with the message placed by the guest's allocator like a data
/// result. A guest that does not export `async_wasm_set_error` cannot receive error values:
/// the call then fails with
/// [`DataErrorKind::MissingErrorReceiver`](super::DataErrorKind::MissingErrorReceiver),
/// with this error as its cause.
///
/// # Example
///
/// ```
/// use async_wasm::data::GuestError;
/// use async_wasm::prelude::*;
/// use wasmtime::Caller;
///
/// /// Not-found is the guest's business; a broken database is not.
/// #[async_host]
/// async fn kv_get(_caller: Caller<'_, ()>, key: String) -> wasmtime::Result<String> {
///     match key.as_str() {
///         "greeting" => Ok("hello".to_string()),
///         "" => Err(wasmtime::format_err!("the database is down")), // traps
///         _ => Err(GuestError::new(404, format!("no key `{key}`")).into()), // a value
///     }
/// }
/// # let mut linker = wasmtime::Linker::<()>::new(&wasmtime::Engine::default());
/// # linker.func_wrap_host("kv", "get", kv_get)?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestError {
    code: i32,
    message: String,
}

impl GuestError {
    /// An error with a code and a message for the guest. The code's meaning is between the
    /// host and its guests; the message is UTF-8, cut to the host function's
    /// [cap](super::GuestAbi::with_max_len) when longer.
    ///
    /// # Example
    ///
    /// ```
    /// let err = async_wasm::data::GuestError::new(404, "no such key");
    /// assert_eq!((err.code(), err.message()), (404, "no such key"));
    /// ```
    pub fn new(code: i32, message: impl Into<String>) -> GuestError {
        GuestError {
            code,
            message: message.into(),
        }
    }

    /// The code.
    ///
    /// # Example
    ///
    /// See [`GuestError::new`].
    pub fn code(&self) -> i32 {
        self.code
    }

    /// The message.
    ///
    /// # Example
    ///
    /// See [`GuestError::new`].
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {} for the guest: {}", self.code, self.message)
    }
}

impl std::error::Error for GuestError {}
