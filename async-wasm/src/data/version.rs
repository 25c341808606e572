//! The data ABI's version: the marker export a guest carries, and the host's check of it.

use core::fmt;

use wasmtime::{ExternType, Module};

use super::GuestAbi;

/// The prefix of the marker export: a guest speaking version `N` of the data ABI exports a
/// function named `async_wasm_abi_v{N}` (never called; `async_wasm.h` defines it).
pub const ABI_MARKER_PREFIX: &str = "async_wasm_abi_v";

/// The version of the data ABI this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// A guest that does not speak this host's version of the data ABI, or whose memory export
/// the ABI cannot read. From [`check_module`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbiMismatch {
    /// The guest marks versions of the data ABI, none of them this crate's.
    Version {
        /// The versions the guest marks, in export order.
        found: Vec<u32>,
        /// The version this host speaks, [`ABI_VERSION`].
        supported: u32,
    },
    /// The guest's memory export is a 64-bit memory.
    Memory64 {
        /// The export.
        name: &'static str,
    },
    /// The guest's memory export is a shared memory.
    SharedMemory {
        /// The export.
        name: &'static str,
    },
}

impl fmt::Display for AbiMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbiMismatch::Version { found, supported } => write!(
                f,
                "the guest speaks async-wasm data ABI version {found:?}, this host speaks \
                 version {supported}: rebuild the guest against this host's async_wasm.h, \
                 or run a host that speaks the guest's version"
            ),
            AbiMismatch::Memory64 { name } => write!(
                f,
                "the guest's memory `{name}` is a 64-bit memory; the data ABI passes 32-bit \
                 pointers"
            ),
            AbiMismatch::SharedMemory { name } => write!(
                f,
                "the guest's memory `{name}` is a shared memory, which the data ABI does not \
                 read"
            ),
        }
    }
}

impl std::error::Error for AbiMismatch {}

/// Checks, before instantiation, that a guest speaks this host's data ABI, and returns the
/// version it speaks. A guest without a marker export is taken to speak version 1, the ABI
/// of async-wasm 0.2, which guests made by `wit-bindgen` (memory and `cabi_realloc`) also
/// fit; a guest that marks only other versions is refused. Also refuses a memory export
/// (named as in `abi`) that the ABI cannot read. Nothing is checked at each call: check each
/// module once, where it is loaded.
///
/// # Errors
///
/// [`AbiMismatch`] as above.
///
/// # Example
///
/// ```
/// use async_wasm::data::{AbiMismatch, GuestAbi, check_module};
/// use wasmtime::{Engine, Module};
///
/// let engine = Engine::default();
/// let v1 = Module::new(&engine, r#"(module (func (export "async_wasm_abi_v1")) (memory (export "memory") 1))"#)?;
/// assert_eq!(check_module(&v1, &GuestAbi::new("any"))?, 1);
/// let unmarked = Module::new(&engine, "(module)")?;
/// assert_eq!(check_module(&unmarked, &GuestAbi::new("any"))?, 1);
/// let v2 = Module::new(&engine, r#"(module (func (export "async_wasm_abi_v2")))"#)?;
/// assert!(matches!(check_module(&v2, &GuestAbi::new("any")), Err(AbiMismatch::Version { .. })));
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub fn check_module(module: &Module, abi: &GuestAbi) -> Result<u32, AbiMismatch> {
    let mut found = Vec::new();
    for export in module.exports() {
        if let Some(version) = export.name().strip_prefix(ABI_MARKER_PREFIX)
            && let Ok(version) = version.parse::<u32>()
        {
            found.push(version);
        }
        if export.name() == abi.memory()
            && let ExternType::Memory(memory) = export.ty()
        {
            if memory.is_64() {
                return Err(AbiMismatch::Memory64 { name: abi.memory() });
            }
            if memory.is_shared() {
                return Err(AbiMismatch::SharedMemory { name: abi.memory() });
            }
        }
    }
    if found.is_empty() || found.contains(&ABI_VERSION) {
        Ok(ABI_VERSION)
    } else {
        Err(AbiMismatch::Version {
            found,
            supported: ABI_VERSION,
        })
    }
}
