//! [`PluginBuilder`], [`CompiledPlugin`] (a fresh instance per call) and [`Plugin`] (one
//! instance, calls in sequence, vars kept).

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{
    Caller, FuncType, Instance, InstancePre, Linker, Module, Store, TypedFunc, UpdateDeadline, Val,
    ValType,
};

use super::convert::{FromExtism, ToExtism};
use super::error::{DataSite, ExtismError};
use super::host_fn::private::{Erase, EraseLocal, Erased};
use super::host_fn::{HostContext, HostFn, HostFnError, LocalHostFn};
use super::manifest::Manifest;
use super::state::{PluginState, Shared, Vars};
use super::{kernel, services};
use crate::{AsyncEngine, DeadlineExceeded};

/// The namespace plugins import host functions from unless told otherwise: the Rust PDK's
/// `#[host_fn]` default.
pub const USER_NAMESPACE: &str = "extism:host/user";

/// Builds a [`CompiledPlugin`] from a [`Manifest`] and your host functions.
///
/// # Example
///
/// ```
/// use async_wasm::AsyncEngine;
/// use async_wasm::extism::{Manifest, PluginBuilder};
///
/// let engine = AsyncEngine::builder().build()?;
/// let wat = r#"(module
///     (import "extism:host/user" "shout" (func $shout (param i64) (result i64)))
///     (import "extism:host/env" "input_offset" (func $input (result i64)))
///     (import "extism:host/env" "input_length" (func $input_length (result i64)))
///     (import "extism:host/env" "length" (func $length (param i64) (result i64)))
///     (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
///     (func (export "run") (result i32) (local $out i64)
///         (local.set $out (call $shout (call $input)))
///         (call $output_set (local.get $out) (call $length (local.get $out)))
///         (i32.const 0)))"#;
/// let plugin = PluginBuilder::new(Manifest::new([wat.as_bytes()]))
///     .host_fn("shout", |text: String| async move { text.to_uppercase() })
///     .build(&engine)?;
/// # futures::executor::block_on(async {
/// let out: String = plugin.call("run", "hello").await?;
/// assert_eq!(out, "HELLO");
/// # wasmtime::Result::<()>::Ok(())
/// # })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub struct PluginBuilder {
    manifest: Manifest,
    functions: Vec<(String, String, Erased)>,
    #[cfg(feature = "wasi")]
    wasi: Option<super::wasi::WasiOptions>,
    #[cfg(feature = "http")]
    http_response_headers: bool,
}

impl core::fmt::Debug for PluginBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PluginBuilder")
            .field("manifest", &self.manifest)
            .field(
                "host_fns",
                &self
                    .functions
                    .iter()
                    .map(|(ns, name, _)| format!("{ns}::{name}"))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl PluginBuilder {
    /// A builder for the plugin `manifest` describes, with no host functions yet.
    ///
    /// # Example
    ///
    /// See [`PluginBuilder`].
    pub fn new(manifest: Manifest) -> PluginBuilder {
        PluginBuilder {
            manifest,
            functions: Vec::new(),
            #[cfg(feature = "wasi")]
            wasi: None,
            #[cfg(feature = "http")]
            http_response_headers: false,
        }
    }

    /// Adds the async host function `name` in [`USER_NAMESPACE`]: a closure or `async fn`
    /// over [`FromExtism`] parameters (see [`HostFn`]). Adding a name twice keeps the last.
    ///
    /// # Example
    ///
    /// See [`PluginBuilder`]; [`HostFn`] lists what a host function may be.
    pub fn host_fn<M>(self, name: &str, function: impl HostFn<M>) -> PluginBuilder {
        self.host_fn_in_namespace(USER_NAMESPACE, name, function)
    }

    /// Adds the async host function `name` in `namespace` (the Rust PDK's
    /// `#[host_fn("namespace")]`), as Extism's `with_function_in_namespace`.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::extism::{Manifest, PluginBuilder};
    ///
    /// let builder = PluginBuilder::new(Manifest::default())
    ///     .host_fn_in_namespace("kv", "get", |key: String| async move { key.len() as i64 });
    /// # drop(builder);
    /// ```
    pub fn host_fn_in_namespace<M>(
        mut self,
        namespace: &str,
        name: &str,
        function: impl HostFn<M>,
    ) -> PluginBuilder {
        let erased = Erase::erase(function, name);
        self.add(namespace, name, erased);
        self
    }

    /// Adds a host function whose closure and future need not be `Send` (the local mode,
    /// see [`Local`](crate::Local)): the plugin built from it must then be called on this
    /// thread only, on a single-threaded executor (`LocalSet`, `LocalPool`).
    ///
    /// # Panics
    ///
    /// Not here: a call of the plugin on another thread panics when it reaches this host
    /// function.
    ///
    /// # Example
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// use async_wasm::extism::{Manifest, PluginBuilder};
    ///
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let builder = PluginBuilder::new(Manifest::default()).host_fn_local("record", {
    ///     let seen = Rc::clone(&seen);
    ///     move |item: String| {
    ///         let seen = Rc::clone(&seen);
    ///         async move { seen.borrow_mut().push(item) }
    ///     }
    /// });
    /// # drop(builder);
    /// ```
    pub fn host_fn_local<M>(self, name: &str, function: impl LocalHostFn<M>) -> PluginBuilder {
        self.host_fn_local_in_namespace(USER_NAMESPACE, name, function)
    }

    /// [`host_fn_local`](PluginBuilder::host_fn_local) in `namespace`.
    ///
    /// # Panics
    ///
    /// As [`host_fn_local`](PluginBuilder::host_fn_local).
    ///
    /// # Example
    ///
    /// ```
    /// use std::rc::Rc;
    /// use async_wasm::extism::{Manifest, PluginBuilder};
    ///
    /// let prefix = Rc::new(String::from("> "));
    /// let builder = PluginBuilder::new(Manifest::default())
    ///     .host_fn_local_in_namespace("ui", "quote", move |text: String| {
    ///         let prefix = Rc::clone(&prefix);
    ///         async move { format!("{prefix}{text}") }
    ///     });
    /// # drop(builder);
    /// ```
    pub fn host_fn_local_in_namespace<M>(
        mut self,
        namespace: &str,
        name: &str,
        function: impl LocalHostFn<M>,
    ) -> PluginBuilder {
        let erased = EraseLocal::erase_local(function, name);
        self.add(namespace, name, erased);
        self
    }

    fn add(&mut self, namespace: &str, name: &str, erased: Erased) {
        self.functions
            .retain(|(ns, n, _)| !(ns == namespace && n == name));
        self.functions
            .push((namespace.to_owned(), name.to_owned(), erased));
    }

    /// Gives the plugin WASI (preview 1, `wasi_snapshot_preview1`), as Extism's
    /// `with_wasi(true)`: no arguments, no environment, no files; stdout and stderr
    /// discarded unless [`wasi_output`](PluginBuilder::wasi_output) says otherwise.
    ///
    /// # Example
    ///
    /// ```
    /// let builder = async_wasm::extism::PluginBuilder::new(Default::default()).wasi(true);
    /// # drop(builder);
    /// ```
    #[cfg(feature = "wasi")]
    pub fn wasi(mut self, enabled: bool) -> PluginBuilder {
        self.wasi = enabled.then(|| self.wasi.take().unwrap_or_default());
        self
    }

    /// Where the plugin's WASI stdout and stderr go; enables WASI.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::extism::{CapturedOutput, PluginBuilder, WasiOutput};
    ///
    /// let stdout = CapturedOutput::new(64 << 10);
    /// let builder = PluginBuilder::new(Default::default())
    ///     .wasi_output(WasiOutput::Capture(stdout.clone()), WasiOutput::Inherit);
    /// # drop(builder);
    /// ```
    #[cfg(feature = "wasi")]
    pub fn wasi_output(
        mut self,
        stdout: super::wasi::WasiOutput,
        stderr: super::wasi::WasiOutput,
    ) -> PluginBuilder {
        self.wasi = Some(super::wasi::WasiOptions { stdout, stderr });
        self
    }

    /// Keeps each HTTP response's headers for the plugin's `http_headers`, as Extism's
    /// `with_http_response_headers(true)`; without it `http_headers` answers the null
    /// handle (Extism's default too).
    ///
    /// # Example
    ///
    /// ```
    /// let builder = async_wasm::extism::PluginBuilder::new(Default::default())
    ///     .http_response_headers(true);
    /// # drop(builder);
    /// ```
    #[cfg(feature = "http")]
    pub fn http_response_headers(mut self, keep: bool) -> PluginBuilder {
        self.http_response_headers = keep;
        self
    }

    /// Compiles the plugin for `engine` and links it: the kernel, the host services, WASI
    /// if enabled and your host functions.
    ///
    /// A module this engine already compiled from the same bytes, for a plugin still alive,
    /// is reused: plugins that differ only in config, limits or host functions (one per
    /// tenant, say) share one compilation.
    ///
    /// # Errors
    ///
    /// A [`ManifestError`](super::ManifestError) for a manifest this host cannot serve (no
    /// module or several, a hash that does not match, a file that cannot be read, a URL,
    /// `allowed_paths`, a `timeout_ms` on an engine without epoch ticks:
    /// [`ManifestError::TimeoutNeedsTicks`](super::ManifestError::TimeoutNeedsTicks));
    /// wasmtime's error for a module that does not compile or imports
    /// something not defined here (a host function you did not add, or one whose
    /// parameter count differs from the plugin's import).
    ///
    /// # Example
    ///
    /// See [`PluginBuilder`].
    pub fn build(self, engine: &AsyncEngine) -> wasmtime::Result<CompiledPlugin> {
        if let Some(timeout_ms) = self.manifest.timeout_ms
            && !engine.has_epoch_ticks()
        {
            // Nothing would check the deadline: refused rather than silently unenforced.
            return Err(super::ManifestError::TimeoutNeedsTicks { timeout_ms }.into());
        }
        let bytes = self.manifest.module_bytes()?;
        let module = super::module_cache::module(engine.engine(), &bytes).map_err(|err| {
            // Which plugin, on the first line; wasmtime's reason below it.
            match self.manifest.wasm.as_slice() {
                [super::Wasm::File { path, .. }] => {
                    err.context(format!("cannot compile the plugin {}", path.display()))
                }
                _ => err.context("cannot compile the plugin's module"),
            }
        })?;
        #[cfg(feature = "wasi")]
        let wasi = self.wasi.is_some();
        #[cfg(not(feature = "wasi"))]
        let wasi = false;
        let mut linker = Linker::new(engine.engine());
        kernel::add_to_linker(&mut linker)?;
        services::add_to_linker(&mut linker)?;
        #[cfg(feature = "wasi")]
        if self.wasi.is_some() {
            wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut PluginState| {
                state
                    .wasi
                    .as_mut()
                    .expect("a plugin with WASI gets a WASI context in every store")
            })?;
        }
        for (namespace, name, erased) in self.functions {
            link_host_fn(&mut linker, &namespace, name, erased)?;
        }
        let pre = linker.instantiate_pre(&module).map_err(|err| {
            let imports_wasi = module
                .imports()
                .any(|import| import.module() == "wasi_snapshot_preview1");
            if imports_wasi && !wasi {
                return err.context(
                    "the plugin imports WASI (`wasi_snapshot_preview1`): give it WASI with \
                     `PluginBuilder::wasi(true)` (cargo feature `wasi`)",
                );
            }
            err
        })?;
        let initialize = module
            .get_export("_initialize")
            .and_then(|ty| ty.func().cloned())
            .is_some_and(|ty| ty.params().len() == 0 && ty.results().len() == 0);
        let memory = &self.manifest.memory;
        let shared = Shared {
            config: Arc::new(self.manifest.config.clone()),
            max_memory_bytes: u64::from(
                memory
                    .max_pages
                    .unwrap_or(Manifest::DEFAULT_MAX_PAGES)
                    .min(Manifest::MAX_PAGES),
            ) * 65536,
            max_var_bytes: memory
                .max_var_bytes
                .unwrap_or(Manifest::DEFAULT_MAX_VAR_BYTES),
            timeout: self.manifest.timeout_ms.map(Duration::from_millis),
            #[cfg(feature = "wasi")]
            wasi: self.wasi,
            #[cfg(feature = "http")]
            http: super::http::policy(&self.manifest),
            #[cfg(feature = "http")]
            http_response_headers: self.http_response_headers,
        };
        Ok(CompiledPlugin {
            inner: Arc::new(Compiled {
                engine: engine.clone(),
                pre,
                _module: module,
                initialize,
                shared: Arc::new(shared),
                manifest: self.manifest,
            }),
        })
    }
}

/// Registers one user host function: handles in, the plugin's data copied out before the
/// function's future starts, its result copied into a new block after it completes.
fn link_host_fn(
    linker: &mut Linker<PluginState>,
    namespace: &str,
    name: String,
    erased: Erased,
) -> wasmtime::Result<()> {
    let ty = FuncType::new(
        linker.engine(),
        std::iter::repeat_n(ValType::I64, erased.params),
        erased.returns.then_some(ValType::I64),
    );
    let Erased { returns, call, .. } = erased;
    let function: Arc<str> = name.as_str().into();
    linker.func_new_async(
        namespace,
        &name,
        ty,
        move |mut caller: Caller<'_, PluginState>, params: &[Val], results: &mut [Val]| {
            let call = Arc::clone(&call);
            let function = Arc::clone(&function);
            Box::new(async move {
                let state = caller.data();
                let mut args = Vec::with_capacity(params.len());
                // The copies of one call together stay within the plugin's memory bound:
                // the same large block passed as every parameter would otherwise cost the
                // host that block's size once per parameter.
                let mut copied = 0u64;
                for param in params {
                    // The wasm type is i64 by construction; a handle is its bits.
                    let handle = param.unwrap_i64() as u64;
                    let bytes = state
                        .memory
                        .block(handle)
                        .map_err(|v| ExtismError::kernel(&function, v))?;
                    copied += bytes.len() as u64;
                    if copied > state.shared.max_memory_bytes {
                        return Err(state.over_memory(copied).into());
                    }
                    args.push(bytes.to_vec());
                }
                let cx = HostContext::new(state.id, Arc::clone(&state.shared.config));
                let bytes = match call(cx, args)?.await {
                    Ok(bytes) => bytes,
                    Err(HostFnError::Ours(err)) => return Err(err.into()),
                    Err(HostFnError::User(err)) => {
                        caller.data_mut().failed_host_fn = Some(Arc::clone(&function));
                        return Err(err);
                    }
                };
                if returns {
                    let state = caller.data_mut();
                    let handle = state
                        .memory
                        .alloc_bytes(&bytes)
                        .map_err(|err| state.memory_full(err))?;
                    results[0] = Val::I64(handle as i64);
                }
                Ok(())
            })
        },
    )?;
    Ok(())
}

struct Compiled {
    engine: AsyncEngine,
    pre: InstancePre<PluginState>,
    /// Keeps the module in the cache while this plugin lives.
    _module: Arc<Module>,
    /// The module exports a WASI reactor's `_initialize`, run once per instance.
    initialize: bool,
    shared: Arc<Shared>,
    manifest: Manifest,
}

/// A plugin compiled and linked once, from which a fresh instance serves each call: the
/// per-request shape, with as many calls in flight at once as the engine allows stores.
/// `Clone` (a shared handle), `Send` and `Sync`.
///
/// Each [`call`](CompiledPlugin::call) runs in a new store, so no state (vars, the
/// plugin's own memory) passes from one call to the next; [`Plugin`] keeps it.
///
/// # Example
///
/// ```
/// use async_wasm::AsyncEngine;
/// use async_wasm::extism::{CompiledPlugin, Manifest};
///
/// let engine = AsyncEngine::builder().build()?;
/// // An echo plugin, against the kernel ABI.
/// let wat = r#"(module
///     (import "extism:host/env" "input_offset" (func $input (result i64)))
///     (import "extism:host/env" "input_length" (func $input_length (result i64)))
///     (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
///     (func (export "echo") (result i32)
///         (call $output_set (call $input) (call $input_length))
///         (i32.const 0)))"#;
/// let plugin = CompiledPlugin::builder(Manifest::new([wat.as_bytes()])).build(&engine)?;
/// # futures::executor::block_on(async {
/// let calls = (0..3).map(|i| {
///     let plugin = plugin.clone();
///     async move { plugin.call::<_, String>("echo", format!("call {i}")).await }
/// });
/// let outputs = futures::future::try_join_all(calls).await?;
/// assert_eq!(outputs, ["call 0", "call 1", "call 2"]);
/// # wasmtime::Result::<()>::Ok(())
/// # })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Clone)]
pub struct CompiledPlugin {
    inner: Arc<Compiled>,
}

impl core::fmt::Debug for CompiledPlugin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CompiledPlugin")
            .field("manifest", &self.inner.manifest)
            .finish_non_exhaustive()
    }
}

impl CompiledPlugin {
    /// Starts building a plugin: [`PluginBuilder::new`].
    ///
    /// # Example
    ///
    /// See [`CompiledPlugin`].
    pub fn builder(manifest: Manifest) -> PluginBuilder {
        PluginBuilder::new(manifest)
    }

    /// Calls `export` on a fresh instance with `input`, and returns its output as `O`.
    ///
    /// The instance's store comes from
    /// [`AsyncEngine::acquire_store`](crate::AsyncEngine::acquire_store): when every one of
    /// the engine's [`max_stores`](crate::AsyncEngineBuilder::max_stores) is taken, the
    /// call waits for one (first come, first served), up to the engine's
    /// [`acquire_timeout`](crate::AsyncEngineBuilder::acquire_timeout) and
    /// [`max_waiting`](crate::AsyncEngineBuilder::max_waiting).
    ///
    /// # Errors
    ///
    /// See [`Plugin::call`]; besides, [`AcquireError`](crate::AcquireError) when no slot
    /// came free in time or the queue is full, and the engine's errors for an instance it
    /// cannot make.
    ///
    /// # Cancellation
    ///
    /// Dropping the future drops the instance with it; nothing else is affected.
    ///
    /// # Example
    ///
    /// See [`CompiledPlugin`].
    pub async fn call<I: ToExtism, O: FromExtism>(
        &self,
        export: &str,
        input: I,
    ) -> wasmtime::Result<O> {
        let state = self.new_state(Vars::default());
        let mut store = self.inner.engine.acquire_store(state).await?;
        let instance = self.instantiate_in(&mut store).await?;
        run(&self.inner, &mut store, instance, None, export, input).await
    }

    /// A long-lived [`Plugin`] of this compiled plugin.
    ///
    /// Its store is the engine's [`store`](crate::AsyncEngine::store): it does not wait for,
    /// nor hold, one of the slots [`call`](CompiledPlugin::call) waits for, so bound the
    /// long-lived plugins you keep yourself (with `max_stores`, past that bound their
    /// instantiation fails with the engine's error).
    ///
    /// # Errors
    ///
    /// The engine's, for a store or instance it cannot make; the plugin's, when its
    /// `_initialize` traps; [`ExtismError::Limit`] when its memory does not fit
    /// `max_pages`.
    ///
    /// # Example
    ///
    /// See [`Plugin`].
    pub async fn instantiate(&self) -> wasmtime::Result<Plugin> {
        let (store, instance) = self.instantiate_with(Vars::default()).await?;
        Ok(Plugin {
            compiled: self.clone(),
            store,
            instance,
            exports: Vec::new(),
            stale: false,
        })
    }

    /// Whether the plugin exports a function `name` (of any type), as Extism's
    /// `function_exists`.
    ///
    /// # Example
    ///
    /// ```
    /// # let engine = async_wasm::AsyncEngine::builder().build()?;
    /// use async_wasm::extism::{CompiledPlugin, Manifest};
    /// let wat = r#"(module (func (export "run") (result i32) (i32.const 0)))"#;
    /// let plugin = CompiledPlugin::builder(Manifest::new([wat.as_bytes()])).build(&engine)?;
    /// assert!(plugin.function_exists("run"));
    /// assert!(!plugin.function_exists("walk"));
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn function_exists(&self, name: &str) -> bool {
        self.inner
            .pre
            .module()
            .get_export(name)
            .is_some_and(|ty| ty.func().is_some())
    }

    /// The manifest the plugin was built from.
    ///
    /// # Example
    ///
    /// ```
    /// # let engine = async_wasm::AsyncEngine::builder().build()?;
    /// use async_wasm::extism::{CompiledPlugin, Manifest};
    /// let plugin = CompiledPlugin::builder(Manifest::new([&b"(module)"[..]]).with_config_key("k", "v"))
    ///     .build(&engine)?;
    /// assert_eq!(plugin.manifest().config["k"], "v");
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    async fn instantiate_with(
        &self,
        vars: Vars,
    ) -> wasmtime::Result<(Store<PluginState>, Instance)> {
        let mut store = self.inner.engine.store(self.new_state(vars));
        let instance = self.instantiate_in(&mut store).await?;
        Ok((store, instance))
    }

    fn new_state(&self, vars: Vars) -> PluginState {
        let mut state = PluginState::new(Arc::clone(&self.inner.shared));
        state.vars = vars;
        state
    }

    /// The plugin's instance in `store`, initialized.
    async fn instantiate_in(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Instance> {
        store.limiter(|state| state);
        let instance = self.inner.pre.instantiate_async(&mut *store).await?;
        if self.inner.initialize {
            let init = instance.get_typed_func::<(), ()>(&mut *store, "_initialize")?;
            init.call_async(&mut *store, ()).await?;
        }
        Ok(instance)
    }
}

/// One instance of a plugin, called in sequence (`&mut self`): vars are kept from call to
/// call, as in Extism's `Plugin`. Each call starts with empty Extism memory (Extism resets
/// it too); the plugin's own linear memory and globals carry over.
///
/// # Cancellation and failures
///
/// A call that did not return normally (its future was dropped, it trapped, timed out,
/// broke a kernel rule or a host function failed) leaves the instance wherever it
/// stopped, its own allocator perhaps mid-update. The next call therefore runs on a fresh
/// instance, which keeps the vars (they live on the host) and [`id`](Plugin::id). A call
/// that returned an error code is a normal return: the instance is kept.
///
/// # Example
///
/// ```
/// use async_wasm::AsyncEngine;
/// use async_wasm::extism::{CompiledPlugin, Manifest};
///
/// let engine = AsyncEngine::builder().build()?;
/// // Counts its calls in linear memory.
/// let wat = r#"(module
///     (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
///     (import "extism:host/env" "store_u64" (func $store (param i64 i64)))
///     (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
///     (memory 1)
///     (func (export "count") (result i32) (local $out i64)
///         (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
///         (local.set $out (call $alloc (i64.const 8)))
///         (call $store (local.get $out) (i64.load (i32.const 0)))
///         (call $output_set (local.get $out) (i64.const 8))
///         (i32.const 0)))"#;
/// let compiled = CompiledPlugin::builder(Manifest::new([wat.as_bytes()])).build(&engine)?;
/// # futures::executor::block_on(async {
/// let mut plugin = compiled.instantiate().await?;
/// assert_eq!(plugin.call::<_, u64>("count", "").await?, 1);
/// assert_eq!(plugin.call::<_, u64>("count", "").await?, 2);
/// # wasmtime::Result::<()>::Ok(())
/// # })?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
pub struct Plugin {
    compiled: CompiledPlugin,
    store: Store<PluginState>,
    instance: Instance,
    /// The exports called on `instance` so far, each looked up and type-checked once.
    exports: Vec<(Box<str>, Export)>,
    /// A call did not return normally: the next one needs a fresh instance.
    stale: bool,
}

impl core::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.id())
            .field("vars", &self.store.data().vars.len())
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// Calls `export` with `input`, and returns its output as `O`. Extism memory is reset
    /// first, and the output copied out before this returns.
    ///
    /// # Errors
    ///
    /// An error that downcasts to [`ExtismError`] for: the plugin's own error
    /// ([`ExtismError::Plugin`]: a message set with `error_set`, a non-zero return code);
    /// a kernel rule it broke ([`ExtismError::Kernel`]); a limit it reached
    /// ([`ExtismError::Limit`]); an export that is missing or not `() -> i32`; the
    /// manifest's `timeout_ms` or the engine's timeout ([`ExtismError::Timeout`]); an
    /// input or output that does not convert ([`ExtismError::Data`]). A trap in the
    /// plugin downcasts to [`wasmtime::Trap`]; a host function's error to its own type; a
    /// failed HTTP request (feature `http`) to `HttpError`.
    ///
    /// # Cancellation
    ///
    /// Dropping the future cancels the call where the plugin waits (in a host function's
    /// `.await`); see [`Plugin`] for what the next call runs on.
    ///
    /// # Example
    ///
    /// See [`Plugin`].
    pub async fn call<I: ToExtism, O: FromExtism>(
        &mut self,
        export: &str,
        input: I,
    ) -> wasmtime::Result<O> {
        if self.stale {
            // The old instance goes before the fresh one is made: on an engine at its bound
            // of instances, the fresh one needs the old one's slot. The vars and id move to
            // the new store first, so that a failed or cancelled instantiation keeps them
            // (and leaves the plugin stale, to try again at the next call).
            let old = self.store.data_mut();
            let mut state = self.compiled.new_state(std::mem::take(&mut old.vars));
            state.id = old.id;
            self.store = self.compiled.inner.engine.store(state);
            self.exports.clear();
            self.instance = self.compiled.instantiate_in(&mut self.store).await?;
            self.stale = false;
        }
        if self.compiled.inner.shared.timeout.is_none() {
            self.compiled
                .inner
                .engine
                .restart_timeout(&mut self.store)?;
        }
        self.stale = true;
        let result = run(
            &self.compiled.inner,
            &mut self.store,
            self.instance,
            Some(&mut self.exports),
            export,
            input,
        )
        .await;
        self.stale = result.as_ref().is_err_and(|err| !returned_normally(err));
        result
    }

    /// This plugin's id, unique in the process (what its logs and
    /// [`HostContext::plugin_id`] say).
    ///
    /// # Example
    ///
    /// ```
    /// # let engine = async_wasm::AsyncEngine::builder().build()?;
    /// # futures::executor::block_on(async {
    /// use async_wasm::extism::{CompiledPlugin, Manifest};
    /// let compiled = CompiledPlugin::builder(Manifest::new([&b"(module)"[..]])).build(&engine)?;
    /// let (a, b) = (compiled.instantiate().await?, compiled.instantiate().await?);
    /// assert_ne!(a.id(), b.id());
    /// # wasmtime::Result::<()>::Ok(())
    /// # })?;
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn id(&self) -> u64 {
        self.store.data().id
    }

    /// The plugin's var `key`, as it last set it.
    ///
    /// # Example
    ///
    /// ```
    /// # let engine = async_wasm::AsyncEngine::builder().build()?;
    /// # futures::executor::block_on(async {
    /// use async_wasm::extism::{CompiledPlugin, Manifest};
    /// let compiled = CompiledPlugin::builder(Manifest::new([&b"(module)"[..]])).build(&engine)?;
    /// let plugin = compiled.instantiate().await?;
    /// assert_eq!(plugin.var("total"), None);
    /// # wasmtime::Result::<()>::Ok(())
    /// # })?;
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn var(&self, key: &str) -> Option<&[u8]> {
        self.store.data().vars.get(key)
    }

    /// The compiled plugin this instance came from.
    ///
    /// # Example
    ///
    /// ```
    /// # let engine = async_wasm::AsyncEngine::builder().build()?;
    /// # futures::executor::block_on(async {
    /// use async_wasm::extism::{CompiledPlugin, Manifest};
    /// let compiled = CompiledPlugin::builder(Manifest::new([&b"(module)"[..]])).build(&engine)?;
    /// let plugin = compiled.instantiate().await?;
    /// let another = plugin.compiled().instantiate().await?;
    /// # drop(another);
    /// # wasmtime::Result::<()>::Ok(())
    /// # })?;
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub fn compiled(&self) -> &CompiledPlugin {
        &self.compiled
    }
}

/// Whether a call's error leaves the instance as a normal return does: the plugin's own
/// error, or an input or output that did not convert outside wasm.
fn returned_normally(err: &wasmtime::Error) -> bool {
    matches!(
        err.downcast_ref::<ExtismError>(),
        Some(
            ExtismError::Plugin { .. }
                | ExtismError::MissingExport { .. }
                | ExtismError::ExportType { .. }
                | ExtismError::Data {
                    site: DataSite::Input | DataSite::Output,
                    ..
                }
        )
    )
}

/// An export of one instance, found and type-checked: Extism's `() -> i32`, or `()`.
enum Export {
    Code(TypedFunc<(), i32>),
    Unit(TypedFunc<(), ()>),
}

impl Export {
    fn find(
        store: &mut Store<PluginState>,
        instance: Instance,
        name: &str,
    ) -> Result<Export, ExtismError> {
        let Some(func) = instance.get_func(&mut *store, name) else {
            return Err(ExtismError::MissingExport {
                name: name.to_owned(),
            });
        };
        if let Ok(typed) = func.typed::<(), i32>(&*store) {
            Ok(Export::Code(typed))
        } else if let Ok(typed) = func.typed::<(), ()>(&*store) {
            Ok(Export::Unit(typed))
        } else {
            Err(ExtismError::ExportType {
                name: name.to_owned(),
                found: func.ty(&*store).to_string(),
            })
        }
    }
}

/// One call: reset Extism memory, set the input, run the export, read its error or output.
/// `exports` keeps what a long-lived instance has found, so that a call of an export it
/// called before does not look it up and check its type again.
async fn run<I: ToExtism, O: FromExtism>(
    compiled: &Compiled,
    store: &mut Store<PluginState>,
    instance: Instance,
    exports: Option<&mut Vec<(Box<str>, Export)>>,
    export: &str,
    input: I,
) -> wasmtime::Result<O> {
    let input = input.to_extism().map_err(|problem| ExtismError::Data {
        site: DataSite::Input,
        problem,
    })?;
    let state = store.data_mut();
    state.failed_host_fn = None;
    state.deadline = None;
    state.memory.reset();
    let handle = state
        .memory
        .alloc_bytes(&input)
        .map_err(|err| state.memory_full(err))?;
    state.memory.input_set(handle, input.len() as u64).ok();
    drop(input);

    let found;
    let func = match exports {
        Some(exports) => {
            let at = match exports.iter().position(|(name, _)| **name == *export) {
                Some(at) => at,
                None => {
                    let func = Export::find(store, instance, export)?;
                    exports.push((export.into(), func));
                    exports.len() - 1
                }
            };
            &exports[at].1
        }
        None => {
            found = Export::find(store, instance, export)?;
            &found
        }
    };
    if let Some(timeout) = compiled.shared.timeout {
        set_deadline(store, timeout, compiled.engine.timeout());
    }
    let result = match func {
        Export::Code(typed) => typed.call_async(&mut *store, ()).await,
        Export::Unit(typed) => typed.call_async(&mut *store, ()).await.map(|()| 0),
    };
    let code = result.map_err(|err| surface(store.data_mut(), err))?;

    let memory = &mut store.data_mut().memory;
    let error = memory.error();
    // An error block freed since `error_set` is no error, as Extism's host reads it.
    let message = match memory.block(error) {
        Ok(bytes) if !bytes.is_empty() => Some(String::from_utf8_lossy(bytes).into_owned()),
        _ => None,
    };
    if message.is_some() || code != 0 {
        return Err(ExtismError::Plugin { message, code }.into());
    }
    let (addr, len) = memory.output();
    let output = memory
        .range(addr, len)
        .map_err(|v| ExtismError::kernel("output_set", v))?
        .to_vec();
    O::from_extism(output).map_err(|problem| {
        ExtismError::Data {
            site: DataSite::Output,
            problem,
        }
        .into()
    })
}

/// Puts what happened on top of a failed call's error, above wasmtime's backtrace (which
/// stays in the chain, so `downcast_ref` still finds every error in it), so that the first
/// line a server logs says it: the [`ExtismError`], a timeout for the engine's
/// [`DeadlineExceeded`], the failed host function's name with its error's text, an HTTP
/// error, or else the root cause's text (a trap's, say).
fn surface(state: &mut PluginState, err: wasmtime::Error) -> wasmtime::Error {
    if let Some(function) = state.failed_host_fn.take() {
        let reason = err.root_cause().to_string();
        return err.context(format!("host function `{function}` failed: {reason}"));
    }
    let top = match (
        err.downcast_ref::<ExtismError>(),
        err.downcast_ref::<DeadlineExceeded>(),
    ) {
        (Some(ours), _) => ours.clone(),
        (None, Some(deadline)) => ExtismError::Timeout {
            timeout: deadline.timeout(),
        },
        (None, None) => {
            #[cfg(feature = "http")]
            match err.downcast_ref::<super::HttpError>() {
                Some(super::HttpError::TooLarge { limit, .. }) => {
                    let limit = *limit;
                    return err.context(ExtismError::Limit {
                        limit: super::Limit::HttpResponse,
                        requested: limit.saturating_add(1),
                        max: limit,
                    });
                }
                Some(http) => {
                    let text = http.to_string();
                    return err.context(text);
                }
                None => {}
            }
            // A trap, a WASI error: the root cause says what happened.
            let text = err.root_cause().to_string();
            return err.context(text);
        }
    };
    err.context(top)
}

/// Gives this call `timeout` from now, checked at every epoch tick (which also yields to
/// the executor, as an engine with yields does). The callback replaces the engine's on the
/// store, so the engine's own timeout, when shorter, is enforced here too: a manifest's
/// `timeout_ms` never lets a call run past the engine's bound.
fn set_deadline(store: &mut Store<PluginState>, timeout: Duration, engine: Option<Duration>) {
    let engine = engine.filter(|&engine| engine < timeout);
    let deadline = Instant::now() + engine.unwrap_or(timeout);
    store.data_mut().deadline = Some(deadline);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            return Err(match engine {
                // Typed as the engine's timeout is elsewhere; `surface` adds ours on top.
                Some(engine) => DeadlineExceeded::new(engine).into(),
                None => ExtismError::Timeout { timeout }.into(),
            });
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store.set_epoch_deadline(1);
}
