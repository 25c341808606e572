//! [`StackPoolError`]: what can go wrong with stacks and pools, as a type an embedder can
//! match on.

use core::fmt;

/// Why a [`Stack`](crate::Stack) or a [`StackPool`](crate::StackPool) could not serve.
///
/// [`Stack::new`](crate::Stack::new), [`StackPoolBuilder::build`](crate::StackPoolBuilder::build),
/// [`StackPool::configure`](crate::StackPool::configure),
/// [`prewarm`](crate::StackPool::prewarm) and [`put`](crate::StackPool::put) return it as
/// it is. [`StackPool::engine`](crate::StackPool::engine), and the calls and
/// instantiations that needed a stack from a pool that could not lend one, return a
/// [`wasmtime::Error`] holding one: find it with
/// [`downcast_ref`](wasmtime::Error::downcast_ref), which looks through the whole chain of
/// causes and context, whatever wasmtime added around it.
///
/// # Example
///
/// ```
/// use async_wasm::{StackPool, StackPoolError};
/// use wasmtime::{Config, Module, Store};
///
/// # #[cfg(unix)] {
/// let pool = StackPool::builder(1 << 20).max_stacks(1).build()?;
/// let engine = pool.engine(&Config::new())?;
/// let module = Module::new(&engine, r#"(module (func (export "f")))"#)?;
/// let (mut first, mut second) = (Store::new(&engine, ()), Store::new(&engine, ()));
/// futures::executor::block_on(async {
///     let f = wasmtime::Instance::new_async(&mut first, &module, &[]).await?
///         .get_func(&mut first, "f").unwrap();
///     f.call_async(&mut first, &[], &mut []).await?; // `first` keeps its stack
///
///     let f = wasmtime::Instance::new_async(&mut second, &module, &[]).await?
///         .get_func(&mut second, "f").unwrap();
///     let err = f.call_async(&mut second, &[], &mut []).await.unwrap_err();
///     match err.downcast_ref::<StackPoolError>() {
///         Some(StackPoolError::Exhausted { max_stacks: 1 }) => {} // shed load, say
///         _ => panic!("unexpected: {err:?}"),
///     }
///     wasmtime::Result::<()>::Ok(())
/// })?;
/// # }
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum StackPoolError {
    /// The pool already lends its [`max_stacks`](crate::StackPoolBuilder::max_stacks)
    /// bound (by default, what this process can map: see there); the call or
    /// instantiation that needed one more stack failed, and every other store goes on.
    Exhausted {
        /// The bound that was reached.
        max_stacks: usize,
    },
    /// This target cannot run wasm on stacks that wasmtime did not make: custom async
    /// stacks work on unix only (on Windows wasmtime's fibers allocate their own).
    Unsupported,
    /// The engine uses [`InstanceAllocationStrategy::Pooling`](wasmtime::InstanceAllocationStrategy::Pooling),
    /// which takes its async stacks from its own pool and never asks a `StackPool`.
    PoolingAllocator,
    /// A stack of the wrong size was given to [`StackPool::put`](crate::StackPool::put).
    SizeMismatch {
        /// The pool's [`stack_size`](crate::StackPool::stack_size).
        expected: usize,
        /// The size of the stack given.
        found: usize,
    },
    /// The engine asks for larger async stacks than the pool's: its
    /// [`async_stack_size`](wasmtime::Config::async_stack_size) was raised after
    /// [`StackPool::configure`](crate::StackPool::configure).
    StackTooSmall {
        /// The engine's `async_stack_size`.
        requested: usize,
        /// The pool's [`stack_size`](crate::StackPool::stack_size).
        stack_size: usize,
    },
    /// The engine's [`max_wasm_stack`](wasmtime::Config::max_wasm_stack) does not fit in
    /// the pool's stacks, so wasmtime refused to make the engine.
    MaxWasmStack {
        /// The pool's [`stack_size`](crate::StackPool::stack_size).
        stack_size: usize,
    },
    /// A stack size of 0, or above [`Stack::MAX_SIZE`](crate::Stack::MAX_SIZE); from
    /// [`Stack::new`](crate::Stack::new) and
    /// [`StackPoolBuilder::build`](crate::StackPoolBuilder::build).
    InvalidSize {
        /// The size asked for.
        size: usize,
    },
    /// The operating system refused to map a stack: out of memory, or out of mappings
    /// (`vm.max_map_count` on Linux).
    Allocation {
        /// The usable size asked for.
        size: usize,
        /// What the operating system said.
        source: std::io::Error,
    },
}

impl fmt::Display for StackPoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackPoolError::Exhausted { max_stacks } => write!(
                f,
                "the StackPool already lends its max_stacks bound of {max_stacks} stacks and \
                 this call needs one more; every store that has made an async call holds one \
                 until it is dropped, so drop idle stores, admit fewer at once, or raise \
                 StackPoolBuilder::max_stacks (by default half of what vm.max_map_count \
                 lets the process map)"
            ),
            StackPoolError::Unsupported => f.write_str(
                "wasmtime cannot run async calls on custom stacks on this target (unix \
                 only; on Windows its fibers allocate their own stacks): use wasmtime's \
                 default async stacks or its pooling allocator instead of a StackPool",
            ),
            StackPoolError::PoolingAllocator => f.write_str(
                "this config uses the pooling allocator, which takes its async stacks from \
                 its own pool and would leave the StackPool unused: use the pooling \
                 allocator alone (its PoolingAllocationConfig::total_stacks and \
                 async_stack_keep_resident are its pool's settings), or the on-demand \
                 allocator with the StackPool",
            ),
            StackPoolError::SizeMismatch { expected, found } => write!(
                f,
                "cannot put a stack of {found} bytes into a StackPool of {expected}-byte \
                 stacks: make it with Stack::new({expected})"
            ),
            StackPoolError::StackTooSmall {
                requested,
                stack_size,
            } => write!(
                f,
                "the engine asks for {requested}-byte async stacks but its StackPool has \
                 {stack_size}-byte stacks: call StackPool::configure after \
                 Config::async_stack_size, or make the pool with {requested}-byte stacks"
            ),
            StackPoolError::MaxWasmStack { stack_size } => write!(
                f,
                "cannot make an engine with a StackPool of {} KiB stacks: wasm's share of \
                 each stack, Config::max_wasm_stack (512 KiB unless set), must fit in it, \
                 with room left for host functions; make the pool with larger stacks, or \
                 lower max_wasm_stack",
                stack_size / 1024
            ),
            StackPoolError::InvalidSize { size } => write!(
                f,
                "a stack of {size} bytes was asked for; stack sizes are from 1 byte to {} \
                 bytes (1 GiB), rounded up to whole pages",
                crate::Stack::MAX_SIZE
            ),
            StackPoolError::Allocation { size, .. } => write!(
                f,
                "the operating system refused to map a stack of {size} bytes (out of memory, \
                 or out of mappings: see vm.max_map_count on Linux, where each stack is two); \
                 bound the pool with StackPoolBuilder::max_stacks"
            ),
        }
    }
}

impl std::error::Error for StackPoolError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StackPoolError::Allocation { source, .. } => Some(source),
            _ => None,
        }
    }
}
