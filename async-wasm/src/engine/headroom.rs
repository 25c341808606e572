//! The stack host functions keep for themselves: [`MIN_HOST_STACK`], and the check that
//! an engine leaves it.

use wasmtime::{Config, Engine, InstanceAllocationStrategy};

use super::EngineError;

/// The least stack an async stack must keep for host code beyond wasm's share
/// ([`Config::max_wasm_stack`]): [`AsyncEngineBuilder::build`](crate::AsyncEngineBuilder::build)
/// and [`StackPool::engine`](crate::StackPool::engine) refuse a stack size below
/// `max_wasm_stack + MIN_HOST_STACK` with [`EngineError::HostStackTooSmall`].
///
/// Host functions run on the guest's stack, below the guest's frames: a guest may use all
/// of `max_wasm_stack` and then call one. What the host function needs is then what is
/// left, and overflowing it hits the guard page, a `SIGSEGV` that ends the process rather
/// than a trap. The decoding of data parameters happens there too, and `Json<T>` decoding
/// recurses once per level of the guest's JSON, up to serde_json's limit of 128. This
/// minimum covers that deepest JSON, as a `serde_json::Value` or a recursive struct, in an
/// unoptimized build, with a margin for the host function's own frames; the README gives
/// the measurements. A host function that recurses, or keeps large buffers on the stack,
/// needs more: raise [`stack_size`](crate::AsyncEngineBuilder::stack_size).
///
/// # Example
///
/// ```
/// use async_wasm::{AsyncEngine, MIN_HOST_STACK};
///
/// let mut config = wasmtime::Config::new();
/// config.max_wasm_stack(128 << 10);
/// let engine = AsyncEngine::builder()
///     .config(config)
///     .stack_size((128 << 10) + MIN_HOST_STACK)
///     .build()?;
/// # drop(engine);
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub const MIN_HOST_STACK: usize = 256 << 10;

/// Refuses an engine whose async stacks leave host code less than [`MIN_HOST_STACK`].
pub(crate) fn check(engine: &Engine) -> Result<(), EngineError> {
    let (stack_size, max_wasm_stack) = (engine.get_async_stack_size(), engine.get_max_wasm_stack());
    if stack_size.saturating_sub(max_wasm_stack) < MIN_HOST_STACK {
        return Err(EngineError::HostStackTooSmall {
            stack_size,
            max_wasm_stack,
        });
    }
    Ok(())
}

/// After `Engine::new` failed with `config` and `stack_size`: whether `max_wasm_stack` not
/// fitting in the stack was the cause, as the typed error. wasmtime has no getter on a
/// `Config`, so this makes an engine whose stacks nothing outgrows (on-demand, which
/// reserves nothing) and reads the setting from it.
pub(crate) fn explain_failure(config: &Config, stack_size: usize) -> Option<EngineError> {
    let mut probe = config.clone();
    probe
        .allocation_strategy(InstanceAllocationStrategy::OnDemand)
        .async_stack_size(usize::MAX);
    let max_wasm_stack = Engine::new(&probe).ok()?.get_max_wasm_stack();
    (stack_size.saturating_sub(max_wasm_stack) < MIN_HOST_STACK).then_some(
        EngineError::HostStackTooSmall {
            stack_size,
            max_wasm_stack,
        },
    )
}
