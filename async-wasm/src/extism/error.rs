//! [`ExtismError`]: why an Extism plugin's call failed, typed for a server to match on.

use core::fmt;
use std::time::Duration;

/// Why a call into an Extism plugin failed, when the plugin, the kernel's rules or a limit
/// is the reason. Calls return [`wasmtime::Error`]; this is what it downcasts to:
///
/// ```
/// use async_wasm::extism::ExtismError;
///
/// fn plugin_code(err: &wasmtime::Error) -> Option<i32> {
///     match err.downcast_ref::<ExtismError>()? {
///         ExtismError::Plugin { code, .. } => Some(*code),
///         _ => None,
///     }
/// }
/// # let err = wasmtime::Error::new(ExtismError::Plugin { message: None, code: 3 });
/// # assert_eq!(plugin_code(&err), Some(3));
/// ```
///
/// Other failures keep their own types: a trap in the plugin downcasts to
/// [`wasmtime::Trap`], a host function's error to that function's error type (with the
/// host function named in its context), a failed `http_request` (feature `http`) to
/// `HttpError`.
///
/// Each variant's `Display` says in its first line what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtismError {
    /// The plugin's export returned an error: it set an error message (the Rust PDK's
    /// `Err(..)`), returned a non-zero code, or both. As Extism's host does, a message
    /// makes the call fail even with code 0.
    Plugin {
        /// What the plugin passed to `error_set`, if anything.
        message: Option<String>,
        /// The export's return code (0 when only a message was set).
        code: i32,
    },
    /// The plugin broke a rule of the Extism kernel in the call of `function`.
    Kernel {
        /// The kernel or host function the plugin called (`load_u64`, `var_set`, a host
        /// function of yours...).
        function: String,
        /// The rule, and what broke it.
        violation: Violation,
    },
    /// A bound on what the plugin may use was reached.
    Limit {
        /// Which one.
        limit: Limit,
        /// Bytes the plugin asked for.
        requested: u64,
        /// The bound, in bytes.
        max: u64,
    },
    /// The plugin exports no function of that name.
    MissingExport {
        /// The export called.
        name: String,
    },
    /// The export is not a plugin function: Extism calls `() -> i32` or `() -> ()`.
    ExportType {
        /// The export called.
        name: String,
        /// Its type.
        found: String,
    },
    /// The call ran past the manifest's `timeout_ms` (or the engine's timeout).
    Timeout {
        /// The time it had.
        timeout: Duration,
    },
    /// Data could not be converted: the call's input or output, or a host function's
    /// parameter or result.
    Data {
        /// Whose data.
        site: DataSite,
        /// What was wrong with it.
        problem: DataProblem,
    },
    /// The plugin called `http_request`, and this host was built without the feature
    /// `http`, so makes no HTTP requests (to `url`). With it, a failed request is an
    /// `HttpError` instead.
    HttpNotEnabled {
        /// The URL the plugin asked for.
        url: String,
    },
}

/// A rule of the Extism kernel, and what the plugin passed that broke it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// `handle` is not an allocated block: never allocated, freed, or not a block's start.
    NotABlock {
        /// The handle passed.
        handle: u64,
    },
    /// A load or store of `len` bytes at `addr` is not inside one allocated block.
    OutsideBlock {
        /// The address passed.
        addr: u64,
        /// The bytes accessed.
        len: u64,
    },
    /// `output_set` or `input_set` of a range that is not inside one allocated block.
    RangeNotInBlock {
        /// The range's start.
        addr: u64,
        /// Its length.
        len: u64,
    },
    /// `input_load_*` of `len` bytes at `offset`, past the input's `input_len`.
    OutsideInput {
        /// The offset into the input.
        offset: u64,
        /// The bytes loaded.
        len: u64,
        /// The input's length.
        input_len: u64,
    },
    /// A key or message that must be UTF-8 is not.
    NotUtf8 {
        /// Which (`"var key"`, `"config key"`, `"HTTP request"`...).
        what: &'static str,
        /// Bytes before the first invalid one.
        valid_up_to: usize,
    },
    /// A value the host function expects as JSON is not (an HTTP request, when the crate
    /// is built without the feature `http`; with it, the request's checks are
    /// `HttpError`'s).
    Json {
        /// Which.
        what: &'static str,
        /// serde_json's message.
        message: String,
    },
}

/// A bound on what a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// Extism memory and the plugin's linear memory together: the manifest's
    /// `memory.max_pages`, or the default. The same bound holds the bytes one call of a host
    /// function copies out of the plugin's blocks, its parameters together.
    Memory,
    /// The plugin's vars, keys and values together: `memory.max_var_bytes` (0 disables
    /// vars).
    Vars,
    /// An HTTP response's body: `memory.max_http_response_bytes` (the request's error,
    /// underneath, is `HttpError::TooLarge`; `requested` is then
    /// the limit plus one, reading having stopped at the first byte over it).
    HttpResponse,
}

/// Whose data an [`ExtismError::Data`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataSite {
    /// The call's input.
    Input,
    /// The call's output.
    Output,
    /// Parameter `index` (from 0) of the host function `function`.
    Param {
        /// The host function.
        function: String,
        /// The parameter, from 0.
        index: usize,
    },
    /// The result of the host function `function`.
    Result {
        /// The host function.
        function: String,
    },
}

/// What was wrong with data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataProblem {
    /// Not UTF-8 where a string was expected.
    Utf8 {
        /// Bytes before the first invalid one.
        valid_up_to: usize,
    },
    /// Not the JSON expected, or a value that does not serialize.
    Json {
        /// serde_json's message.
        message: String,
    },
    /// A number of the wrong size: the PDK passes numbers as their little-endian bytes.
    Length {
        /// The bytes the type takes.
        expected: usize,
        /// The bytes there were.
        found: usize,
    },
}

impl fmt::Display for ExtismError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtismError::Plugin {
                message: Some(message),
                code,
            } => write!(f, "the plugin returned an error (code {code}): {message}"),
            ExtismError::Plugin {
                message: None,
                code,
            } => write!(f, "the plugin returned non-zero exit code {code}"),
            ExtismError::Kernel {
                function,
                violation,
            } => write!(
                f,
                "the plugin misused the Extism kernel in `{function}`: {violation}"
            ),
            ExtismError::Limit {
                limit,
                requested,
                max,
            } => write!(
                f,
                "the plugin reached its {limit} limit: {requested} bytes asked for, at most \
                 {max}"
            ),
            ExtismError::MissingExport { name } => {
                write!(f, "the plugin exports no function `{name}`")
            }
            ExtismError::ExportType { name, found } => write!(
                f,
                "the plugin's export `{name}` has type {found}, not a plugin function's \
                 () -> i32"
            ),
            ExtismError::Timeout { timeout } => {
                write!(f, "the plugin's call timed out after {timeout:?}")
            }
            ExtismError::Data { site, problem } => write!(f, "{site}: {problem}"),
            ExtismError::HttpNotEnabled { url } => write!(
                f,
                "the plugin's HTTP request to {url} was refused: this host makes no HTTP \
                 requests"
            ),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::NotABlock { handle } => {
                write!(f, "handle {handle:#x} is not an allocated block")
            }
            Violation::OutsideBlock { addr, len } => write!(
                f,
                "{len} bytes at {addr:#x} are not inside an allocated block"
            ),
            Violation::RangeNotInBlock { addr, len } => write!(
                f,
                "the range of {len} bytes at {addr:#x} is not inside an allocated block"
            ),
            Violation::OutsideInput {
                offset,
                len,
                input_len,
            } => write!(
                f,
                "{len} bytes at offset {offset} are past the end of the {input_len}-byte input"
            ),
            Violation::NotUtf8 { what, valid_up_to } => write!(
                f,
                "the {what} is not UTF-8 (invalid after {valid_up_to} bytes)"
            ),
            Violation::Json { what, message } => write!(f, "the {what} is not valid: {message}"),
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Memory => "memory (memory.max_pages)",
            Limit::Vars => "vars (memory.max_var_bytes)",
            Limit::HttpResponse => "HTTP response (memory.max_http_response_bytes)",
        })
    }
}

impl fmt::Display for DataSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSite::Input => f.write_str("the call's input"),
            DataSite::Output => f.write_str("the plugin's output"),
            DataSite::Param { function, index } => {
                write!(f, "host function `{function}`, parameter {index}")
            }
            DataSite::Result { function } => write!(f, "host function `{function}`, result"),
        }
    }
}

impl fmt::Display for DataProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataProblem::Utf8 { valid_up_to } => {
                write!(f, "not UTF-8 (invalid after {valid_up_to} bytes)")
            }
            DataProblem::Json { message } => write!(f, "invalid JSON: {message}"),
            DataProblem::Length { expected, found } => write!(
                f,
                "{found} bytes where a number of {expected} bytes was expected"
            ),
        }
    }
}

impl std::error::Error for ExtismError {}

impl ExtismError {
    pub(crate) fn kernel(function: &str, violation: Violation) -> ExtismError {
        ExtismError::Kernel {
            function: function.to_owned(),
            violation,
        }
    }
}
