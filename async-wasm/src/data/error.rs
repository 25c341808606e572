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
    /// A result of 4 GiB or more, which no wasm32 guest can hold.
    ResultTooLarge {
        /// The result's length.
        len: usize,
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
        }
    }
}

impl std::error::Error for DataError {}
