//! WASI for plugins built for `wasm32-wasip1` (feature `wasi`): where their stdout and
//! stderr go.

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Where a plugin's WASI stdout or stderr goes.
///
/// # Example
///
/// See [`PluginBuilder::wasi_output`](super::PluginBuilder::wasi_output).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum WasiOutput {
    /// Nowhere (Extism's default).
    #[default]
    Discard,
    /// This process's own stdout or stderr.
    Inherit,
    /// Into a buffer that every instance of the plugin shares (tests, `extism call`).
    Capture(CapturedOutput),
}

/// A bounded buffer a plugin's output is captured into: `Clone` shares it. Writes past its
/// capacity fail in the plugin (a WASI error), never grow it.
///
/// # Example
///
/// ```
/// let out = async_wasm::extism::CapturedOutput::new(1024);
/// assert!(out.contents().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct CapturedOutput(MemoryOutputPipe);

impl CapturedOutput {
    /// An empty buffer of `capacity` bytes.
    ///
    /// # Example
    ///
    /// See [`CapturedOutput`].
    pub fn new(capacity: usize) -> CapturedOutput {
        CapturedOutput(MemoryOutputPipe::new(capacity))
    }

    /// What was written so far.
    ///
    /// # Example
    ///
    /// See [`CapturedOutput`].
    pub fn contents(&self) -> Vec<u8> {
        self.0.contents().to_vec()
    }
}

/// A plugin's WASI settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct WasiOptions {
    pub stdout: WasiOutput,
    pub stderr: WasiOutput,
}

impl WasiOptions {
    /// A context for one store: no arguments, environment or files, as Extism gives.
    pub(crate) fn context(&self) -> WasiP1Ctx {
        let mut builder = WasiCtxBuilder::new();
        match &self.stdout {
            WasiOutput::Discard => {}
            WasiOutput::Inherit => {
                builder.inherit_stdout();
            }
            WasiOutput::Capture(out) => {
                builder.stdout(out.0.clone());
            }
        }
        match &self.stderr {
            WasiOutput::Discard => {}
            WasiOutput::Inherit => {
                builder.inherit_stderr();
            }
            WasiOutput::Capture(out) => {
                builder.stderr(out.0.clone());
            }
        }
        builder.build_p1()
    }
}
