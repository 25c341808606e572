//! [`Manifest`]: the wasm, configuration and limits of a plugin, as Extism users write
//! them (in Rust, or Extism's JSON manifest format).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A plugin's wasm, configuration and limits: Extism's manifest, in Rust or from its JSON
/// format with [`Manifest::from_json`].
///
/// | field | here |
/// |---|---|
/// | `wasm` (one module: bytes, a file; `name` and `hash`) | supported; the SHA-256 `hash` is checked |
/// | `config` | supported: `config_get`, [`HostContext::config`](super::HostContext::config) |
/// | `memory.max_pages` | supported: Extism memory and linear memory together; default [`Manifest::DEFAULT_MAX_PAGES`] instead of unbounded |
/// | `memory.max_var_bytes` | supported; default 1 MiB, 0 disables vars |
/// | `memory.max_http_response_bytes` | supported with the feature `http`; default 50 MiB |
/// | `allowed_hosts` | supported with the feature `http` (glob patterns, as Extism); none: every request refused |
/// | `timeout_ms` | supported: per call, checked at the engine's epoch ticks (an engine without them refuses it); the engine's own `timeout`, when shorter, still bounds the call |
/// | `wasm` from a URL, several modules | refused by [`PluginBuilder::build`](super::PluginBuilder::build): no fetching at build time, no module linking |
/// | `allowed_paths` | refused when not empty: plugins get no filesystem |
///
/// # Example
///
/// ```
/// use async_wasm::extism::Manifest;
///
/// let manifest = Manifest::from_json(r#"{
///     "wasm": [{ "data": "AGFzbQEAAAA=" }],
///     "config": { "vowels": "aeiou" },
///     "memory": { "max_pages": 64, "max_var_bytes": 4096 },
///     "timeout_ms": 1000
/// }"#)?;
/// assert_eq!(manifest.config["vowels"], "aeiou");
/// assert_eq!(manifest.memory.max_pages, Some(64));
///
/// let same = Manifest::new([b"\0asm\x01\0\0\0".to_vec()])
///     .with_config_key("vowels", "aeiou")
///     .with_memory_max(64)
///     .with_max_var_bytes(4096)
///     .with_timeout(std::time::Duration::from_secs(1));
/// assert_eq!(manifest, same);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Manifest {
    /// The plugin's module (exactly one is supported).
    #[serde(default)]
    pub wasm: Vec<Wasm>,
    /// Memory limits.
    #[serde(default)]
    pub memory: MemoryOptions,
    /// What `config_get` answers.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Hosts `http_request` may reach (glob patterns), `None` for none.
    #[serde(default)]
    pub allowed_hosts: Option<Vec<String>>,
    /// Directories WASI may open: not supported (must be empty).
    #[serde(default)]
    pub allowed_paths: Option<BTreeMap<String, PathBuf>>,
    /// Time a call may take, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// The manifest's memory limits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MemoryOptions {
    /// Extism memory plus the plugin's linear memory, in 64 KiB pages;
    /// [`Manifest::DEFAULT_MAX_PAGES`] when `None`, at most [`Manifest::MAX_PAGES`] counted.
    #[serde(default)]
    pub max_pages: Option<u32>,
    /// The largest HTTP response body, in bytes; 50 MiB when `None` (feature `http`).
    #[serde(default)]
    pub max_http_response_bytes: Option<u64>,
    /// Vars, keys and values together, in bytes; 1 MiB when `None`, 0 disables vars.
    #[serde(default = "default_var_bytes")]
    pub max_var_bytes: Option<u64>,
}

fn default_var_bytes() -> Option<u64> {
    Some(Manifest::DEFAULT_MAX_VAR_BYTES)
}

impl Default for MemoryOptions {
    fn default() -> Self {
        MemoryOptions {
            max_pages: None,
            max_http_response_bytes: None,
            max_var_bytes: default_var_bytes(),
        }
    }
}

/// Where a plugin's module comes from, with its optional `name` and SHA-256 `hash` (hex).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
#[non_exhaustive]
pub enum Wasm {
    /// A file.
    File {
        /// Its path.
        path: PathBuf,
        /// The module's name.
        #[serde(default)]
        name: Option<String>,
        /// Its SHA-256, lower-case hex.
        #[serde(default)]
        hash: Option<String>,
    },
    /// Bytes (base64 in JSON).
    Data {
        /// The module's bytes (or text format).
        #[serde(deserialize_with = "base64_bytes")]
        data: Vec<u8>,
        /// The module's name.
        #[serde(default)]
        name: Option<String>,
        /// Its SHA-256, lower-case hex.
        #[serde(default)]
        hash: Option<String>,
    },
    /// A URL: parsed, but refused by [`PluginBuilder::build`](super::PluginBuilder::build).
    Url {
        /// The URL.
        url: String,
        /// Request headers.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// The request method.
        #[serde(default)]
        method: Option<String>,
        /// The module's name.
        #[serde(default)]
        name: Option<String>,
        /// Its SHA-256, lower-case hex.
        #[serde(default)]
        hash: Option<String>,
    },
}

fn base64_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    use base64::Engine as _;
    let text = String::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(serde::de::Error::custom)
}

impl Wasm {
    /// A module from a file.
    ///
    /// # Example
    ///
    /// ```
    /// let wasm = async_wasm::extism::Wasm::file("plugin.wasm").with_hash("ab12");
    /// # drop(wasm);
    /// ```
    pub fn file(path: impl AsRef<Path>) -> Wasm {
        Wasm::File {
            path: path.as_ref().to_owned(),
            name: None,
            hash: None,
        }
    }

    /// A module from bytes (binary or text format).
    ///
    /// # Example
    ///
    /// ```
    /// let wasm = async_wasm::extism::Wasm::data(b"\0asm\x01\0\0\0".to_vec());
    /// # drop(wasm);
    /// ```
    pub fn data(data: impl Into<Vec<u8>>) -> Wasm {
        Wasm::Data {
            data: data.into(),
            name: None,
            hash: None,
        }
    }

    /// The same, with the SHA-256 (lower-case hex) its bytes must have.
    ///
    /// # Example
    ///
    /// See [`Wasm::file`].
    pub fn with_hash(mut self, sha256: impl Into<String>) -> Wasm {
        match &mut self {
            Wasm::File { hash, .. } | Wasm::Data { hash, .. } | Wasm::Url { hash, .. } => {
                *hash = Some(sha256.into())
            }
        }
        self
    }

    pub(crate) fn hash(&self) -> Option<&str> {
        match self {
            Wasm::File { hash, .. } | Wasm::Data { hash, .. } | Wasm::Url { hash, .. } => {
                hash.as_deref()
            }
        }
    }
}

impl From<Vec<u8>> for Wasm {
    fn from(data: Vec<u8>) -> Wasm {
        Wasm::data(data)
    }
}

impl From<&[u8]> for Wasm {
    fn from(data: &[u8]) -> Wasm {
        Wasm::data(data)
    }
}

impl From<PathBuf> for Wasm {
    fn from(path: PathBuf) -> Wasm {
        Wasm::file(path)
    }
}

impl From<&Path> for Wasm {
    fn from(path: &Path) -> Wasm {
        Wasm::file(path)
    }
}

impl Manifest {
    /// Pages of memory (64 KiB each) a plugin may use, Extism memory and linear memory
    /// together, when the manifest sets no `max_pages`: 64 MiB. Extism's own host has no
    /// bound by default; a server running many plugins needs one.
    pub const DEFAULT_MAX_PAGES: u32 = 1024;

    /// The most pages `max_pages` counts: 65,536 (4 GiB), what a wasm32 memory can reach.
    /// A larger `max_pages` bounds memory at this, so that a plugin cannot make the host
    /// try to allocate more than a wasm32 plugin could ever use.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::extism::Manifest;
    /// assert_eq!(u64::from(Manifest::MAX_PAGES) * 65536, 4 << 30);
    /// ```
    pub const MAX_PAGES: u32 = 65536;

    /// Bytes of vars a plugin may keep unless `max_var_bytes` says otherwise: 1 MiB, as
    /// Extism's host.
    pub const DEFAULT_MAX_VAR_BYTES: u64 = 1 << 20;

    /// A manifest with these modules and defaults for the rest.
    ///
    /// # Example
    ///
    /// See [`Manifest`].
    pub fn new(wasm: impl IntoIterator<Item = impl Into<Wasm>>) -> Manifest {
        Manifest {
            wasm: wasm.into_iter().map(Into::into).collect(),
            ..Manifest::default()
        }
    }

    /// Parses Extism's JSON manifest format (`wasm` data in base64).
    ///
    /// # Errors
    ///
    /// serde_json's, for JSON that is not a manifest (unknown fields included).
    ///
    /// # Example
    ///
    /// See [`Manifest`].
    pub fn from_json(json: &str) -> Result<Manifest, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Sets a config value.
    ///
    /// # Example
    ///
    /// See [`Manifest`].
    pub fn with_config_key(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }

    /// Sets config values.
    ///
    /// # Example
    ///
    /// ```
    /// let m = async_wasm::extism::Manifest::default().with_config([("a", "1"), ("b", "2")]);
    /// assert_eq!(m.config.len(), 2);
    /// ```
    pub fn with_config(
        mut self,
        config: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> Self {
        for (key, value) in config {
            self.config.insert(key.into(), value.into());
        }
        self
    }

    /// Lets `http_request` reach `host` (a glob pattern, as in Extism).
    ///
    /// # Example
    ///
    /// ```
    /// let m = async_wasm::extism::Manifest::default().with_allowed_host("*.example.com");
    /// assert_eq!(m.allowed_hosts.unwrap(), ["*.example.com"]);
    /// ```
    pub fn with_allowed_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts
            .get_or_insert_with(Vec::new)
            .push(host.into());
        self
    }

    /// Bounds Extism memory and linear memory together to `pages` of 64 KiB.
    ///
    /// # Example
    ///
    /// See [`Manifest`].
    pub fn with_memory_max(mut self, pages: u32) -> Self {
        self.memory.max_pages = Some(pages);
        self
    }

    /// Bounds the plugin's vars to `bytes` (0 disables them).
    ///
    /// # Example
    ///
    /// See [`Manifest`].
    pub fn with_max_var_bytes(mut self, bytes: u64) -> Self {
        self.memory.max_var_bytes = Some(bytes);
        self
    }

    /// Bounds an HTTP response's body to `bytes`.
    ///
    /// # Example
    ///
    /// ```
    /// let m = async_wasm::extism::Manifest::default().with_max_http_response_bytes(1 << 20);
    /// assert_eq!(m.memory.max_http_response_bytes, Some(1 << 20));
    /// ```
    pub fn with_max_http_response_bytes(mut self, bytes: u64) -> Self {
        self.memory.max_http_response_bytes = Some(bytes);
        self
    }

    /// Bounds the time of each call.
    ///
    /// # Example
    ///
    /// See [`Manifest`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(timeout.as_millis().try_into().unwrap_or(u64::MAX));
        self
    }
}

/// A manifest that cannot be built into a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestError {
    /// The manifest names no module, or more than one (module linking is not supported).
    ModuleCount {
        /// How many it names.
        found: usize,
    },
    /// A module's bytes do not have the manifest's SHA-256.
    HashMismatch {
        /// The manifest's.
        expected: String,
        /// The bytes'.
        found: String,
    },
    /// A module file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// The manifest sets `timeout_ms`, and the engine has no epoch ticks to check a
    /// deadline at: build it with [`timeout`](crate::AsyncEngineBuilder::timeout) or
    /// [`yield_every`](crate::AsyncEngineBuilder::yield_every).
    TimeoutNeedsTicks {
        /// The manifest's `timeout_ms`.
        timeout_ms: u64,
    },
    /// A field this host does not support.
    Unsupported {
        /// Which.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl core::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ManifestError::ModuleCount { found } => write!(
                f,
                "the manifest names {found} wasm modules; exactly one is supported"
            ),
            ManifestError::HashMismatch { expected, found } => write!(
                f,
                "the wasm module's SHA-256 is {found}, not the manifest's {expected}"
            ),
            ManifestError::Read { path, message } => {
                write!(
                    f,
                    "cannot read the wasm module {}: {message}",
                    path.display()
                )
            }
            ManifestError::TimeoutNeedsTicks { timeout_ms } => write!(
                f,
                "the manifest's `timeout_ms` ({timeout_ms}) needs an engine with epoch ticks \
                 to enforce it: build the engine with `timeout` or `yield_every`"
            ),
            ManifestError::Unsupported { field, reason } => {
                write!(f, "the manifest's `{field}` is not supported: {reason}")
            }
        }
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    /// The module's bytes, checked against its hash.
    pub(crate) fn module_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        if self.allowed_paths.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(ManifestError::Unsupported {
                field: "allowed_paths",
                reason: "plugins get no filesystem here",
            });
        }
        let [wasm] = self.wasm.as_slice() else {
            return Err(ManifestError::ModuleCount {
                found: self.wasm.len(),
            });
        };
        let bytes = match wasm {
            Wasm::Data { data, .. } => data.clone(),
            Wasm::File { path, .. } => std::fs::read(path).map_err(|err| ManifestError::Read {
                path: path.clone(),
                message: err.to_string(),
            })?,
            Wasm::Url { .. } => {
                return Err(ManifestError::Unsupported {
                    field: "wasm.url",
                    reason: "fetch the module yourself and pass its bytes; building a plugin \
                             makes no network requests",
                });
            }
        };
        if let Some(expected) = wasm.hash() {
            use sha2::Digest as _;
            let found: String = sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if !found.eq_ignore_ascii_case(expected) {
                return Err(ManifestError::HashMismatch {
                    expected: expected.to_owned(),
                    found,
                });
            }
        }
        Ok(bytes)
    }
}
