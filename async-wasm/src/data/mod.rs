//! Strings, bytes and JSON between a guest and async host functions: the data ABI.
//!
//! An [`#[async_host]`](crate::async_host) fn may take and return `String`, `Vec<u8>` and
//! (with the `json` feature) [`Json<T>`] besides wasm numbers:
//!
//! ```
//! use async_wasm::prelude::*;
//! use wasmtime::Caller;
//!
//! #[async_host]
//! async fn greet(caller: Caller<'_, ()>, name: String, times: i32) -> wasmtime::Result<String> {
//!     futures::future::ready(()).await; // a database, a socket...
//!     Ok(format!("hello, {name}!").repeat(times as usize))
//! }
//! // wasm type: (name_ptr: i32, name_len: i32, times: i32) -> i64
//! # let mut linker = wasmtime::Linker::<()>::new(&wasmtime::Engine::default());
//! linker.func_wrap_host("env", "greet", greet)?;
//! # wasmtime::Result::<()>::Ok(())
//! ```
//!
//! The host function's future owns its data: every data parameter is copied out of the
//! guest's memory, bounds-checked and validated, before the future first runs, and a data
//! result is written back after it completes. No borrow of guest memory lives across an
//! `.await`, where the guest's memory may grow, the call may be cancelled or the store
//! dropped.
//!
//! # The guest's side
//!
//! A guest author needs this section and the C header below, nothing else.
//!
//! **Exports.** The guest exports its linear memory as `memory` (32-bit, not shared: a
//! 64-bit memory fails with [`DataErrorKind::Memory64`], a shared one with
//! [`DataErrorKind::SharedMemory`]), and an allocator
//! `cabi_realloc(old_ptr: i32, old_len: i32, align: i32, new_len: i32) -> i32`. That is the
//! component model's canonical-ABI allocator, name and type: guests built with
//! `wit-bindgen` already export it, and C guests get it from `async_wasm.h`. Both names can
//! be changed per host function (`#[async_host(memory = "mem", realloc = "my_alloc")]`, or
//! [`GuestAbi::with_memory`] / [`GuestAbi::with_realloc`]). To receive error values it
//! exports `async_wasm_set_error(code: i32, msg_ptr: i32, msg_len: i32)`, and it marks the
//! ABI version it speaks with an export `async_wasm_abi_v1` (a function, never called);
//! the header defines both.
//!
//! **Version.** This is version 1 ([`ABI_VERSION`]). The host checks a module with
//! [`check_module`] where it loads it, before instantiating: a guest that marks only other
//! versions is refused with [`AbiMismatch::Version`]. A guest without a marker is taken to
//! speak version 1, which is what async-wasm 0.2's guests and `wit-bindgen`'s (memory and
//! `cabi_realloc`) speak; a later version of the ABI will be marked `async_wasm_abi_v2`,
//! and a host may speak both. Nothing is checked at each call.
//!
//! **Parameters.** A data parameter is two wasm `i32`s in the import's signature, in place:
//! a pointer and a length, both unsigned. `fn f(caller, key: String, n: i32)` is the import
//! `(key_ptr: i32, key_len: i32, n: i32)`. The guest keeps ownership; the host only reads
//! the range, once, before the host function starts. The pointer of a zero-length
//! parameter is not looked at (C passes NULL for an empty buffer, Rust a dangling pointer):
//! it reads as empty whatever it is.
//!
//! **The cap.** One call moves at most [`GuestAbi::DEFAULT_MAX_LEN`] (16 MiB) in, all its
//! data parameters together (those read through one [`CallData`], as `#[async_host]`
//! reads them; each [`GuestAbi::read`] on its own is held to the cap alone), and as much
//! out, unless the host sets another cap per function
//! ([`GuestAbi::with_max_len`], `#[async_host(max_len = ..)]`) or per engine
//! ([`AsyncEngineBuilder::max_data_len`](crate::AsyncEngineBuilder::max_data_len)). Over
//! it the call fails with [`DataErrorKind::TooLarge`], before the host copies or the guest's
//! allocator is called: a guest can reserve 4 GiB of memory for nothing and pass all of it,
//! so the host's copy must be bounded.
//!
//! | Rust type | bytes at `ptr .. ptr + len` |
//! |---|---|
//! | `String` | UTF-8, no terminating NUL |
//! | `Vec<u8>` | anything |
//! | `Json<T>` | UTF-8 JSON text that deserializes into `T` |
//!
//! **Results.** A data result (also inside `Result<_, E>`) is one wasm `i64`: the pointer in
//! the low 32 bits, the length in the high 32 bits. For a non-empty result the host called
//! `cabi_realloc(0, 0, 1, len)` and wrote the bytes there, so the **guest owns the memory and
//! frees it** with its allocator (`free` in C). An empty result is pointer 0, length 0, and
//! allocates nothing.
//!
//! **Errors as values.** A host function fails a call in one of two ways. A trap (any error
//! of the host function) ends the guest's call: the guest cannot handle it, and the host
//! should drop the instance. An error value ([`GuestError`]: a code and a message) is for
//! what the guest should handle: the host places the message with `cabi_realloc`, calls the
//! guest's `async_wasm_set_error(code, msg_ptr, msg_len)`, and the import returns its zero
//! value (0; an empty data result). The guest then reads it (`aw_error_take` in C) and
//! frees the message. A guest without `async_wasm_set_error` gets a trap instead
//! ([`DataErrorKind::MissingErrorReceiver`]).
//!
//! **The exports the host calls must not call host functions.** A data host function
//! called while the host is inside the guest's `cabi_realloc` or `async_wasm_set_error`, on
//! the same store, fails with [`DataErrorKind::Reentrant`] (the component model's rule for
//! allocators: without it each nested call takes another fiber stack, until the pool or the
//! address space runs out).
//!
//! **Cancelled inside the allocator.** The allocator is guest code: with
//! [`yield_every`](crate::AsyncEngineBuilder::yield_every) the call can be suspended in it,
//! and dropped there (a timeout). The guest's heap is then as the allocator left it, perhaps
//! half-updated, and the block it was making is lost: **drop an instance whose call was
//! cancelled while its allocator ran**. A call cancelled while the host function's future
//! waits allocates nothing in the guest.
//!
//! **Why an exported allocator.** It is what real plugin ABIs do (proxy-wasm's
//! `proxy_on_memory_allocate`, wasm-bindgen's `__wbindgen_malloc`, the canonical ABI's
//! `cabi_realloc`), and it suits async host functions better than a guest-supplied output
//! buffer: with a buffer too small, the guest would have to call again, and the host would
//! have to redo its I/O or keep the result somewhere between the calls. Here one call always
//! suffices. The allocator runs after the host function's future completes, as a nested call
//! through its `Caller`: wasmtime runs every async call into wasm on a fiber of its own, so
//! the allocation takes a second stack from the engine's allocator, which wasmtime keeps
//! cached in the store until the outer call ends. A store mid-call after a data result
//! therefore holds two stacks: count two per store when bounding stacks
//! ([`AsyncEngineBuilder::max_stores`](crate::AsyncEngineBuilder::max_stores) does).
//!
//! **Errors.** Everything the guest passes is checked: a range outside its memory (including
//! `ptr + len` past 4 GiB), more than the cap, bytes that are not UTF-8 or not `T`'s JSON, a
//! missing, shared or 64-bit memory, a missing allocator export, an allocator that traps,
//! returns 0, returns memory outside the guest's, or calls a data host function. Each fails
//! the guest's call with a [`DataError`] naming the host function, the parameter and the
//! cause; nothing is written outside the guest's memory, and the store
//! stays usable (though a C guest's own state, its shadow stack pointer for one, is then
//! wherever the aborted call left it).
//!
//! **The C header**, `guest/async_wasm.h` in this crate's package:
//!
#![doc = concat!("```c\n", include_str!("../../guest/async_wasm.h"), "```")]
//!
//! A C guest using it (`guest/example.c`, which the tests build and run against host
//! functions `greet` and `find`: rustdoc does not compile C):
//!
#![doc = concat!("```c\n", include_str!("../../guest/example.c"), "```")]
//!
//! # Without the macro
//!
//! [`GuestAbi`] is what the macro's expansion uses; call it from hand-written host functions
//! the same way.

pub(crate) mod call;
mod error;
mod guest_error;
#[cfg(feature = "json")]
mod json;
pub(crate) mod limit;
mod reentry;
mod version;

pub use call::CallData;
pub use error::{DataError, DataErrorKind};
pub use guest_error::GuestError;
#[cfg(feature = "json")]
pub use json::Json;
pub use version::{ABI_MARKER_PREFIX, ABI_VERSION, AbiMismatch, check_module};

use wasmtime::Caller;

/// How one host function reaches its guest's data: its name (for errors) and the names of
/// the guest's memory and allocator exports.
///
/// # Example
///
/// A hand-written host function with a `String` parameter and a `Vec<u8>` result, the same
/// as what [`#[async_host]`](crate::async_host) generates:
///
/// ```
/// use async_wasm::data::GuestAbi;
/// use async_wasm::prelude::*;
/// use wasmtime::{Caller, Engine, Linker};
///
/// const ABI: GuestAbi = GuestAbi::new("kv_get");
///
/// let mut linker = Linker::<()>::new(&Engine::default());
/// linker.func_wrap_async2("kv", "get", |mut caller: Caller<'_, ()>, ptr: i32, len: i32| {
///     let key = ABI.read::<String, _>(&mut caller, "key", ptr, len);
///     Box::new(async move {
///         let key = key?;
///         let value: Vec<u8> = key.into_bytes(); // look it up...
///         ABI.write(&mut caller, value).await
///     })
/// })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestAbi {
    function: &'static str,
    memory: &'static str,
    realloc: &'static str,
    max_len: Option<u32>,
}

impl GuestAbi {
    /// The memory export's name unless changed: `memory`.
    pub const DEFAULT_MEMORY: &'static str = "memory";
    /// The allocator export's name unless changed: `cabi_realloc`.
    pub const DEFAULT_REALLOC: &'static str = "cabi_realloc";
    /// The cap on the bytes one call moves unless changed, engine-wide or per function:
    /// 16 MiB in (all data parameters together) and 16 MiB out. The README's data section
    /// says why this figure.
    pub const DEFAULT_MAX_LEN: u32 = 16 << 20;

    /// The ABI of the host function `function` (named in errors), with the default export
    /// names.
    ///
    /// # Example
    ///
    /// ```
    /// let abi = async_wasm::data::GuestAbi::new("kv_get");
    /// assert_eq!(abi.memory(), "memory");
    /// assert_eq!(abi.realloc(), "cabi_realloc");
    /// ```
    pub const fn new(function: &'static str) -> GuestAbi {
        GuestAbi {
            function,
            memory: Self::DEFAULT_MEMORY,
            realloc: Self::DEFAULT_REALLOC,
            max_len: None,
        }
    }

    /// The same, with the guest's memory exported as `name`.
    ///
    /// # Example
    ///
    /// ```
    /// let abi = async_wasm::data::GuestAbi::new("f").with_memory("mem");
    /// assert_eq!(abi.memory(), "mem");
    /// ```
    pub const fn with_memory(self, name: &'static str) -> GuestAbi {
        GuestAbi {
            memory: name,
            ..self
        }
    }

    /// The same, with the guest's allocator exported as `name` (with `cabi_realloc`'s type).
    ///
    /// # Example
    ///
    /// ```
    /// let abi = async_wasm::data::GuestAbi::new("f").with_realloc("my_realloc");
    /// assert_eq!(abi.realloc(), "my_realloc");
    /// ```
    pub const fn with_realloc(self, name: &'static str) -> GuestAbi {
        GuestAbi {
            realloc: name,
            ..self
        }
    }

    /// The same, with a cap of `max_len` bytes per call: on the data parameters of one call
    /// together, and on its result. It replaces the engine's cap
    /// ([`AsyncEngineBuilder::max_data_len`](crate::AsyncEngineBuilder::max_data_len)) or
    /// the default, [`DEFAULT_MAX_LEN`](GuestAbi::DEFAULT_MAX_LEN). A call over the cap fails
    /// with [`DataErrorKind::TooLarge`] before anything is copied or allocated.
    ///
    /// # Example
    ///
    /// ```
    /// let abi = async_wasm::data::GuestAbi::new("upload").with_max_len(64 << 20);
    /// assert_eq!(abi.max_len(), Some(64 << 20));
    /// assert_eq!(async_wasm::data::GuestAbi::new("f").max_len(), None);
    /// ```
    pub const fn with_max_len(self, max_len: u32) -> GuestAbi {
        GuestAbi {
            max_len: Some(max_len),
            ..self
        }
    }

    /// The cap given with [`with_max_len`](GuestAbi::with_max_len), or `None`: then the
    /// engine's, else [`DEFAULT_MAX_LEN`](GuestAbi::DEFAULT_MAX_LEN), applies.
    ///
    /// # Example
    ///
    /// See [`GuestAbi::with_max_len`].
    pub const fn max_len(&self) -> Option<u32> {
        self.max_len
    }

    /// The host function's name.
    ///
    /// # Example
    ///
    /// See [`GuestAbi::new`].
    pub const fn function(&self) -> &'static str {
        self.function
    }

    /// The memory export's name.
    ///
    /// # Example
    ///
    /// See [`GuestAbi::with_memory`].
    pub const fn memory(&self) -> &'static str {
        self.memory
    }

    /// The allocator export's name.
    ///
    /// # Example
    ///
    /// See [`GuestAbi::with_realloc`].
    pub const fn realloc(&self) -> &'static str {
        self.realloc
    }

    /// Copies the guest's `len` bytes at `ptr` (both unsigned) and converts them into `T`,
    /// for the parameter named `param`. Call it before the host function's future starts,
    /// so that the future owns its data.
    ///
    /// For a host function with more than one data parameter, or data in and out,
    /// [`call_data`](GuestAbi::call_data) looks the guest's memory up once for all of them,
    /// and holds them to the cap together: each `read` here is held to it alone.
    ///
    /// # Errors
    ///
    /// [`DataError`] when the guest has no memory export (or a shared or 64-bit one), the
    /// range is outside it, `len` is over the cap ([`DataErrorKind::TooLarge`]), the bytes
    /// are not a `T`, or the store is inside the guest's allocator
    /// ([`DataErrorKind::Reentrant`]). An empty range is read without looking at the memory
    /// or the pointer.
    ///
    /// # Example
    ///
    /// See [`GuestAbi`].
    pub fn read<T: FromGuest, D>(
        &self,
        caller: &mut Caller<'_, D>,
        param: &'static str,
        ptr: i32,
        len: i32,
    ) -> Result<T, DataError> {
        self.call_data().read(caller, param, ptr, len)
    }

    /// Hands `value` to the guest as a data result: allocates its bytes with the guest's
    /// allocator, writes them, and returns the `i64` the import returns (pointer low,
    /// length high; 0 for an empty value, which allocates nothing).
    ///
    /// # Errors
    ///
    /// A [`DataError`] when the value cannot be encoded, the guest lacks the exports, its
    /// allocator fails, returns 0 or returns memory outside the guest's, the value is over
    /// the cap ([`DataErrorKind::TooLarge`], before the guest's allocator is called), or the
    /// store is inside the guest's allocator ([`DataErrorKind::Reentrant`]). An allocator's
    /// own error (a trap) is kept as the cause, under a `DataError` context: both downcast.
    ///
    /// # Example
    ///
    /// See [`GuestAbi`].
    pub async fn write<T: IntoGuest, D: Send>(
        &self,
        caller: &mut Caller<'_, D>,
        value: T,
    ) -> wasmtime::Result<i64> {
        self.call_data().write(caller, value).await
    }

    /// The data side of one call of this host function: [`CallData::read`] and
    /// [`CallData::write`] as [`read`](GuestAbi::read) and [`write`](GuestAbi::write), with
    /// the guest's memory export looked up once for the whole call (a name lookup is a
    /// tenth of a small host call). What [`#[async_host]`](crate::async_host) uses.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::data::GuestAbi;
    /// use async_wasm::prelude::*;
    /// use wasmtime::{Caller, Engine, Linker};
    ///
    /// const ABI: GuestAbi = GuestAbi::new("concat");
    ///
    /// let mut linker = Linker::<()>::new(&Engine::default());
    /// linker.func_wrap_async4("env", "concat", |mut caller: Caller<'_, ()>, a: i32, a_len: i32, b: i32, b_len: i32| {
    ///     let mut data = ABI.call_data();
    ///     let a = data.read::<String, _>(&mut caller, "a", a, a_len);
    ///     let b = data.read::<String, _>(&mut caller, "b", b, b_len);
    ///     Box::new(async move {
    ///         let joined = a? + &b?;
    ///         data.write(&mut caller, joined).await
    ///     })
    /// })?;
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn call_data(&self) -> CallData {
        CallData::new(*self)
    }
}

/// A type a host function can take from guest memory: `String`, `Vec<u8>`, and with the
/// `json` feature [`Json<T>`]. Sealed.
///
/// # Example
///
/// ```
/// use async_wasm::data::FromGuest;
///
/// fn takes<T: FromGuest>() {}
/// takes::<String>();
/// takes::<Vec<u8>>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be read from the guest's memory",
    label = "not a data type of the guest ABI",
    note = "data parameters are `String`, `Vec<u8>` and, with the `json` feature, `Json<T>` \
            for `T: Deserialize`"
)]
pub trait FromGuest: Sized + sealed::Sealed {
    #[doc(hidden)]
    fn from_guest(bytes: Vec<u8>) -> Result<Self, DataErrorKind>;
}

/// A type a host function can give the guest as a data result: `String`, `Vec<u8>`, and
/// with the `json` feature [`Json<T>`]. Sealed.
///
/// # Example
///
/// ```
/// use async_wasm::data::IntoGuest;
///
/// fn gives<T: IntoGuest>() {}
/// gives::<String>();
/// gives::<Vec<u8>>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be given to the guest as data",
    label = "not a data type of the guest ABI",
    note = "data results are `String`, `Vec<u8>` and, with the `json` feature, `Json<T>` \
            for `T: Serialize`"
)]
pub trait IntoGuest: sealed::Sealed {
    #[doc(hidden)]
    fn into_guest(self) -> Result<Vec<u8>, DataErrorKind>;
}

impl FromGuest for Vec<u8> {
    fn from_guest(bytes: Vec<u8>) -> Result<Self, DataErrorKind> {
        Ok(bytes)
    }
}

impl IntoGuest for Vec<u8> {
    fn into_guest(self) -> Result<Vec<u8>, DataErrorKind> {
        Ok(self)
    }
}

impl FromGuest for String {
    fn from_guest(bytes: Vec<u8>) -> Result<Self, DataErrorKind> {
        String::from_utf8(bytes).map_err(|err| DataErrorKind::InvalidUtf8 {
            valid_up_to: err.utf8_error().valid_up_to(),
        })
    }
}

impl IntoGuest for String {
    fn into_guest(self) -> Result<Vec<u8>, DataErrorKind> {
        Ok(self.into_bytes())
    }
}

pub(crate) mod sealed {
    /// Keeps [`FromGuest`](super::FromGuest) and [`IntoGuest`](super::IntoGuest) to the
    /// types the data ABI defines.
    pub trait Sealed {}

    impl Sealed for Vec<u8> {}
    impl Sealed for String {}
    #[cfg(feature = "json")]
    impl<T> Sealed for super::Json<T> {}
}
