//! [`EngineError`]: the settings an [`AsyncEngine`](super::AsyncEngine) refuses, as a type a
//! program can match on.

use core::fmt;

use super::Allocation;
use super::headroom::MIN_HOST_STACK;

/// Why [`AsyncEngineBuilder::build`](super::AsyncEngineBuilder::build),
/// [`StackPool::engine`](crate::StackPool::engine) or
/// [`AsyncEngine::restart_timeout`](super::AsyncEngine::restart_timeout) refused.
///
/// `build` and `StackPool::engine` return a [`wasmtime::Error`], since wasmtime's own
/// errors (a pool that cannot be reserved, say) pass through them: find this type in it with
/// [`downcast_ref`](wasmtime::Error::downcast_ref).
///
/// # Example
///
/// ```
/// use async_wasm::{AsyncEngine, EngineError};
///
/// let err = AsyncEngine::builder().stack_size(64 << 10).build().unwrap_err();
/// match err.downcast_ref::<EngineError>() {
///     Some(EngineError::HostStackTooSmall { stack_size, max_wasm_stack }) => {
///         assert_eq!((*stack_size, *max_wasm_stack), (64 << 10, 512 << 10));
///     }
///     other => panic!("unexpected: {other:?}"),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// `stack_size` minus `max_wasm_stack` leaves host functions less than
    /// [`MIN_HOST_STACK`](crate::MIN_HOST_STACK): a host function running below a guest
    /// that used all of wasm's share could overflow the stack, which ends the process.
    HostStackTooSmall {
        /// The async stack size: [`AsyncEngineBuilder::stack_size`](super::AsyncEngineBuilder::stack_size),
        /// or the [`StackPool`](crate::StackPool)'s.
        stack_size: usize,
        /// wasm's share of it: [`Config::max_wasm_stack`](wasmtime::Config::max_wasm_stack).
        max_wasm_stack: usize,
    },
    /// A setting of zero, which would refuse every store or call: `"max_stores"`,
    /// `"fuel"`, `"yield_every"`, `"timeout"` or `"acquire_timeout"` (the builder
    /// method's name).
    Zero {
        /// The builder method given zero.
        setting: &'static str,
    },
    /// A builder setting that the chosen [`Allocation`] has no use for, under
    /// [`Allocation::StackPool`]: `"max_memory_size"` or `"memory_keep_resident"`, and,
    /// without [`max_stores`](super::AsyncEngineBuilder::max_stores) (where nothing waits
    /// for a store), `"max_waiting"` or `"acquire_timeout"`.
    NotUnder {
        /// The builder method.
        setting: &'static str,
        /// The allocation it does not apply to.
        allocation: Allocation,
    },
    /// The [`Config`](wasmtime::Config) given to
    /// [`config`](super::AsyncEngineBuilder::config) turns on what the builder owns, and the
    /// builder was not asked for it: `"Config::epoch_interruption"` (with
    /// `builder_setting` `"yield_every or timeout"`: without them no store would have a
    /// deadline, and every call would trap), `"Config::consume_fuel"` (`"fuel"`: without it
    /// every store would start with none) or `"Config::async_stack_zeroing"`
    /// (`"zeroed_stacks"`).
    OwnedByBuilder {
        /// The `Config` setting.
        config_setting: &'static str,
        /// The builder method that sets it.
        builder_setting: &'static str,
    },
    /// [`restart_timeout`](super::AsyncEngine::restart_timeout) was given a store of another
    /// engine, whose epochs this engine's clock does not count.
    ForeignStore,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::HostStackTooSmall {
                stack_size,
                max_wasm_stack,
            } => write!(
                f,
                "a stack_size of {} KiB with a max_wasm_stack of {} KiB leaves host functions \
                 less than the {} KiB (MIN_HOST_STACK) they may need below a guest that used \
                 all of its share: raise stack_size to at least {} KiB, or lower \
                 Config::max_wasm_stack",
                stack_size / 1024,
                max_wasm_stack / 1024,
                MIN_HOST_STACK / 1024,
                max_wasm_stack.saturating_add(MIN_HOST_STACK).div_ceil(1024),
            ),
            EngineError::Zero { setting } => write!(
                f,
                "AsyncEngineBuilder::{setting} needs a value above zero: zero would refuse \
                 every store or call"
            ),
            EngineError::NotUnder {
                setting,
                allocation,
            } => write!(
                f,
                "AsyncEngineBuilder::{setting} has no effect under Allocation::{allocation:?}: \
                 {}",
                match setting {
                    &"max_memory_size" => {
                        "limit memories per store with a wasmtime::ResourceLimiter \
                         (Store::limiter) instead"
                    }
                    &"max_waiting" | &"acquire_timeout" => {
                        "nothing waits for a store without a bound: set max_stores too, or \
                         remove it"
                    }
                    _ => "remove it, or use Allocation::Pooling",
                }
            ),
            EngineError::OwnedByBuilder {
                config_setting,
                builder_setting,
            } => write!(
                f,
                "the Config given to AsyncEngineBuilder::config turns on {config_setting}, \
                 which the builder sets itself: remove it from the Config and call \
                 AsyncEngineBuilder::{builder_setting} instead"
            ),
            EngineError::ForeignStore => f.write_str(
                "restart_timeout was given a store of another engine: an AsyncEngine can \
                 only set the deadline of its own stores",
            ),
        }
    }
}

impl std::error::Error for EngineError {}
