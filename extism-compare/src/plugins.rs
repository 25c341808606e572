//! The plugin files and what each needs of a host.

use std::path::PathBuf;

/// One built plugin in `guests/extism`.
#[derive(Clone, Copy, Debug)]
pub struct PluginFile {
    /// The file name, relative to `guests/extism`.
    pub file: &'static str,
    /// Built against WASI (a host must link WASI preview 1 and enable it in Extism).
    pub wasi: bool,
}

pub const RUST: PluginFile = PluginFile {
    file: "rust_plugin.wasm",
    wasi: false,
};
pub const RUST_WASI: PluginFile = PluginFile {
    file: "rust_plugin_wasi.wasm",
    wasi: true,
};
pub const AS: PluginFile = PluginFile {
    file: "as_plugin.wasm",
    wasi: false,
};
pub const AS_WASI: PluginFile = PluginFile {
    file: "as_plugin_wasi.wasm",
    wasi: true,
};

pub const ALL: [PluginFile; 4] = [RUST, RUST_WASI, AS, AS_WASI];

/// `guests/extism` in this repository.
pub fn guests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../guests/extism")
}

impl PluginFile {
    pub fn bytes(&self) -> Vec<u8> {
        let path = guests_dir().join(self.file);
        std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }
}
