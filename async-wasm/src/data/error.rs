//! [`DataError`]: what went wrong moving data between a guest and a host function.

use core::fmt;

/// Guest data that a host function could not take or give: a bad pointer or length, bytes
/// that are not what the parameter's type needs, or a guest that cannot receive a result.
///
/// The call that passed the data fails with this error (the guest is not resumed), and the
/// store stays usable. Downcast the call's error to tell it apart from a trap or a host
/// function's own error:
///
/// ```
/// use async_wasm::data::{DataError, DataErrorKind};
///
/// fn is_guest_fault(err: &wasmtime::Error) -> bool {
///     err.downcast_ref::<DataError>().is_some_and(|data| {
///         matches!(data.kind(), DataErrorKind::OutOfBounds { .. } | DataErrorKind::InvalidUtf8 { .. })
///     })
/// }
/// # assert!(!is_guest_fault(&wasmtime::format_err!("other")));
/// ```
///
/// **Logging it.** The call's error carries wasmtime's backtrace as its outermost context,
/// so `{}` on the call's error prints only `error while executing at wasm backtrace: ...`;
/// this error is under `Caused by:`. The errors of [`#[async_host]`](crate::async_host) fns
/// and of [`CallData::write`](super::CallData::write) put themselves above that backtrace,
/// so their first line is this error's text (`host function `f`, parameter `key`: <what
/// happened>`); a hand-written function's `?` on [`CallData::read`](super::CallData::read)
/// leaves wasmtime's line first. Log with `{:#}` (one line: every context and cause) or
/// `{:?}` (with the backtrace), and match with `downcast_ref` (it searches the whole chain,
/// contexts included), not on the text:
///
/// ```
/// use async_wasm::data::{DataError, DataErrorKind};
/// use async_wasm::prelude::*;
/// use wasmtime::{Engine, Linker, Module, Store};
///
/// #[async_host(max_len = 2)]
/// async fn count(text: String) -> i32 {
///     text.len() as i32
/// }
///
/// let engine = Engine::default();
/// let mut linker = Linker::new(&engine);
/// linker.func_wrap_host("env", "count", count)?;
/// let module = Module::new(&engine, r#"(module
///     (import "env" "count" (func $count (param i32 i32) (result i32)))
///     (memory (export "memory") 1)
///     (func (export "run") (result i32) (call $count (i32.const 0) (i32.const 3))))"#)?;
/// let mut store = Store::new(&engine, ());
/// let err = futures::executor::block_on(async {
///     let instance = linker.instantiate_async(&mut store, &module).await?;
///     let run = instance.get_func(&mut store, "run").unwrap();
///     run.get_async().get0::<i32>(&store)?.call(&mut store).await
/// })
/// .unwrap_err();
/// let data = err.downcast_ref::<DataError>().expect("a DataError");
/// assert_eq!(data.kind(), &DataErrorKind::TooLarge { len: 3, max_len: 2 });
/// assert_eq!(
///     err.to_string(),
///     "host function `count`, parameter `text`: 3 bytes is over this host function's cap \
///      of 2 bytes per call"
/// );
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataError {
    function: &'static str,
    operand: Operand,
    kind: DataErrorKind,
}

/// Which value of a host function the error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operand {
    Param(&'static str),
    Result,
}

/// Why guest data could not be moved. `#[non_exhaustive]`: match with a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataErrorKind {
    /// `ptr .. ptr + len` is not inside the guest's memory (`ptr + len` may exceed 2³²).
    OutOfBounds {
        /// The guest's pointer, as unsigned.
        ptr: u32,
        /// The guest's length, as unsigned.
        len: u32,
        /// The memory's size in bytes when it was checked.
        memory_size: u64,
    },
    /// A `String` parameter whose bytes are not UTF-8.
    InvalidUtf8 {
        /// How many leading bytes are valid UTF-8.
        valid_up_to: usize,
    },
    /// A `Json<T>` parameter that does not parse into `T`, or a `Json<T>` result that does
    /// not serialize.
    Json {
        /// serde_json's message, with line and column.
        message: String,
    },
    /// The guest exports no linear memory under this name.
    MissingMemory {
        /// The export looked for.
        name: &'static str,
    },
    /// The guest exports no function under this name to allocate a result in.
    MissingAllocator {
        /// The export looked for.
        name: &'static str,
    },
    /// The allocator export is not `(i32, i32, i32, i32) -> i32`, `cabi_realloc`'s type.
    AllocatorType {
        /// The export.
        name: &'static str,
        /// Its actual type.
        found: String,
    },
    /// The allocator trapped or failed; the call's error also carries the allocator's own
    /// error (a [`Trap`](wasmtime::Trap), say) as its cause.
    AllocatorFailed {
        /// The export.
        name: &'static str,
    },
    /// The allocator returned 0 (no memory) for a result of `len` bytes.
    OutOfGuestMemory {
        /// The result's length.
        len: u32,
    },
    /// The allocator returned memory that is not inside the guest's memory.
    AllocatorOutOfBounds {
        /// What the allocator returned.
        ptr: u32,
        /// The result's length.
        len: u32,
        /// The memory's size in bytes when it was checked.
        memory_size: u64,
    },
    /// A result of 4 GiB or more, which no wasm32 guest can hold. No longer produced: every
    /// cap is below 4 GiB, so such a result is [`TooLarge`](DataErrorKind::TooLarge); kept
    /// so that matches written for 0.2 compile.
    ResultTooLarge {
        /// The result's length.
        len: usize,
    },
    /// More bytes than the host function's cap ([`GuestAbi::with_max_len`](super::GuestAbi::with_max_len),
    /// `#[async_host(max_len = ..)]`, [`AsyncEngineBuilder::max_data_len`](crate::AsyncEngineBuilder::max_data_len),
    /// or [`GuestAbi::DEFAULT_MAX_LEN`](super::GuestAbi::DEFAULT_MAX_LEN)): checked before
    /// anything is copied or allocated. For parameters, `len` counts every data parameter
    /// of the call up to and including the one named; for a result, its length.
    TooLarge {
        /// The bytes asked for.
        len: u64,
        /// The cap.
        max_len: u32,
    },
    /// The guest called a data host function while the host was inside one of the guest's
    /// ABI exports (its allocator or `async_wasm_set_error`), on the same store. The
    /// component model forbids an allocator from calling imports; each nested call would
    /// take another fiber stack.
    Reentrant {
        /// The export the host was inside.
        inside: &'static str,
    },
    /// The guest's memory export is a shared memory, which the data ABI does not read: a
    /// shared memory can change under the host while it copies.
    SharedMemory {
        /// The export.
        name: &'static str,
    },
    /// The guest's memory export is a 64-bit memory; the data ABI passes 32-bit pointers
    /// and lengths.
    Memory64 {
        /// The export.
        name: &'static str,
    },
    /// The guest's `async_wasm_set_error` export, called to hand it a
    /// [`GuestError`](super::GuestError), trapped or failed; the call's error carries that
    /// failure as its cause.
    ErrorReceiverFailed {
        /// The export.
        name: &'static str,
    },
    /// A host function returned a [`GuestError`](super::GuestError), and the guest does
    /// not export the function that receives it (`async_wasm_set_error(i32, i32, i32)`,
    /// defined by `async_wasm.h`), or exports it with another type. The `GuestError` is
    /// kept as the cause.
    MissingErrorReceiver {
        /// The export looked for.
        name: &'static str,
    },
}

impl DataError {
    pub(crate) fn param(function: &'static str, param: &'static str, kind: DataErrorKind) -> Self {
        DataError {
            function,
            operand: Operand::Param(param),
            kind,
        }
    }

    pub(crate) fn result(function: &'static str, kind: DataErrorKind) -> Self {
        DataError {
            function,
            operand: Operand::Result,
            kind,
        }
    }

    /// The host function's name, as the [`GuestAbi`](super::GuestAbi) was given it (the
    /// Rust name for an [`#[async_host]`](crate::async_host) fn).
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::data::GuestAbi;
    /// assert_eq!(GuestAbi::new("kv_get").function(), "kv_get");
    /// ```
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The parameter the error is about, or `None` when it is about the result.
    ///
    /// # Example
    ///
    /// See [`DataError`].
    pub fn param_name(&self) -> Option<&'static str> {
        match self.operand {
            Operand::Param(name) => Some(name),
            Operand::Result => None,
        }
    }

    /// What went wrong.
    ///
    /// # Example
    ///
    /// See [`DataError`].
    pub fn kind(&self) -> &DataErrorKind {
        &self.kind
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host function `{}`, ", self.function)?;
        match self.operand {
            Operand::Param(name) => write!(f, "parameter `{name}`: ")?,
            Operand::Result => f.write_str("result: ")?,
        }
        fmt::Display::fmt(&self.kind, f)
    }
}

impl fmt::Display for DataErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataErrorKind::OutOfBounds {
                ptr,
                len,
                memory_size,
            } => write!(
                f,
                "the guest passed {len} bytes at {ptr:#x}, outside its {memory_size}-byte memory"
            ),
            DataErrorKind::InvalidUtf8 { valid_up_to } => write!(
                f,
                "the guest's string is not UTF-8 (invalid after {valid_up_to} bytes)"
            ),
            DataErrorKind::Json { message } => write!(f, "invalid JSON: {message}"),
            DataErrorKind::MissingMemory { name } => write!(
                f,
                "the guest exports no memory named `{name}` (a guest passing data must export \
                 its linear memory)"
            ),
            DataErrorKind::MissingAllocator { name } => write!(
                f,
                "the guest exports no function `{name}` to allocate the result in (include \
                 async_wasm.h, or export `{name}(old_ptr, old_len, align, new_len) -> ptr`)"
            ),
            DataErrorKind::AllocatorType { name, found } => write!(
                f,
                "the guest's `{name}` has type {found}, not cabi_realloc's \
                 (i32, i32, i32, i32) -> i32"
            ),
            DataErrorKind::AllocatorFailed { name } => {
                write!(f, "the guest's allocator `{name}` failed")
            }
            DataErrorKind::OutOfGuestMemory { len } => write!(
                f,
                "the guest's allocator returned no memory for a {len}-byte result"
            ),
            DataErrorKind::AllocatorOutOfBounds {
                ptr,
                len,
                memory_size,
            } => write!(
                f,
                "the guest's allocator returned {ptr:#x} for {len} bytes, outside its \
                 {memory_size}-byte memory"
            ),
            DataErrorKind::ResultTooLarge { len } => write!(
                f,
                "a result of {len} bytes does not fit a wasm32 guest (at most 4 GiB - 1)"
            ),
            DataErrorKind::TooLarge { len, max_len } => write!(
                f,
                "{len} bytes is over this host function's cap of {max_len} bytes per call"
            ),
            DataErrorKind::Reentrant { inside } => write!(
                f,
                "the guest called a data host function from inside its `{inside}` export, \
                 which must not call imports"
            ),
            DataErrorKind::SharedMemory { name } => write!(
                f,
                "the guest's memory `{name}` is a shared memory, which the data ABI does not \
                 read (export a non-shared memory)"
            ),
            DataErrorKind::Memory64 { name } => write!(
                f,
                "the guest's memory `{name}` is a 64-bit memory; the data ABI passes 32-bit \
                 pointers (build the guest for wasm32)"
            ),
            DataErrorKind::MissingErrorReceiver { name } => write!(
                f,
                "the host function returned an error value, and the guest exports no `{name}` \
                 of type (i32, i32, i32) -> () to receive it (include async_wasm.h)"
            ),
            DataErrorKind::ErrorReceiverFailed { name } => write!(
                f,
                "the guest's `{name}` failed while receiving the host function's error value"
            ),
        }
    }
}

impl std::error::Error for DataError {}
