//! What can go wrong with a plugin's HTTP request.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// Why a plugin's HTTP request failed.
///
/// Under Extism's host every one of these fails the plugin's call (the host function
/// returns an error, which traps the plugin); an HTTP status, 4xx and 5xx included, is not
/// an error but a response. The first line of [`Display`](fmt::Display) says what happened
/// and names the request's URL; [`source`](StdError::source) gives the I/O or protocol
/// error underneath, where there is one.
///
/// The variants carry what a host needs to decide (the URL refused, the limit exceeded,
/// the timeout reached); new variants may come, so match with a wildcard arm.
///
/// # Example
///
/// A plugin asks for a host its manifest does not allow:
///
/// ```
/// use async_wasm::AsyncEngine;
/// use async_wasm::extism::{CompiledPlugin, HttpError, Manifest};
///
/// let wat = r#"(module
///     (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
///     (import "extism:host/env" "store_u8" (func $store (param i64 i32)))
///     (import "extism:host/env" "http_request" (func $http (param i64 i64) (result i64)))
///     (memory 1)
///     (data (i32.const 0) "{\"url\":\"http://example.com/\"}")
///     (func (export "fetch") (result i32) (local $req i64) (local $i i32)
///         (local.set $req (call $alloc (i64.const 29)))
///         (loop $copy
///             (call $store (i64.add (local.get $req) (i64.extend_i32_u (local.get $i)))
///                 (i32.load8_u (local.get $i)))
///             (local.set $i (i32.add (local.get $i) (i32.const 1)))
///             (br_if $copy (i32.lt_u (local.get $i) (i32.const 29))))
///         (drop (call $http (local.get $req) (i64.const 0)))
///         (i32.const 0)))"#;
/// // No `allowed_hosts`: every request is refused, before anything is sent.
/// let manifest = Manifest::new([wat.as_bytes()]);
/// let plugin = CompiledPlugin::builder(manifest).build(&AsyncEngine::builder().build()?)?;
/// let err = futures::executor::block_on(plugin.call::<_, Vec<u8>>("fetch", "")).unwrap_err();
/// match err.downcast_ref::<HttpError>() {
///     Some(HttpError::NotAllowed { url }) => assert_eq!(url, "http://example.com/"),
///     other => panic!("{other:?}"),
/// }
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError {
    /// The plugin's request is not the JSON object Extism's `HttpRequest` is
    /// (`{"url": .., "method": .., "headers": {..}}`, no other fields).
    InvalidRequest {
        /// What the JSON parser said.
        reason: String,
    },
    /// The URL does not parse, or is not one this client can reach: a scheme other than
    /// `http` and `https`, or `https` without the crate's `https` feature.
    InvalidUrl {
        /// The URL as the plugin gave it (or as a redirect gave it).
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The URL's host is not among the allowed hosts (or there are none). A redirect to a
    /// host that is not allowed fails the same way.
    NotAllowed {
        /// The URL refused.
        url: String,
    },
    /// The method is not one of HTTP/1.1's (`GET`, `HEAD`, `POST`, `PUT`, `DELETE`,
    /// `OPTIONS`, `TRACE`, `PATCH`), in any case. Extism's client refuses other methods too;
    /// `CONNECT` is refused here as well.
    InvalidMethod {
        /// The method as the plugin gave it.
        method: String,
    },
    /// A request header's name or value is not valid in HTTP.
    InvalidHeader {
        /// The header's name as the plugin gave it.
        name: String,
    },
    /// A body came with a request whose method allows none (`HEAD`).
    BodyNotAllowed {
        /// The method.
        method: String,
    },
    /// The connection could not be made: the name did not resolve, no address accepted
    /// it, or (for `https`) the TLS handshake failed, an untrusted certificate included.
    Connect {
        /// The URL requested.
        url: String,
        /// Why, from the resolver or the socket.
        source: std::io::Error,
    },
    /// The connection failed after it was made, or the server broke the protocol (a
    /// malformed response, headers past the parser's limits, a body cut short).
    Transport {
        /// The URL requested.
        url: String,
        /// The error underneath.
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A redirect could not be followed: no `Location`, a `Location` that is not a URL,
    /// more redirects than the client follows, or a 307/308 that would resend a body.
    Redirect {
        /// The URL that answered with the redirect.
        url: String,
        /// Why it was not followed.
        reason: String,
    },
    /// The response's body is longer than the limit (the policy's
    /// `max_response_bytes`, Extism's `max_http_response_bytes`). Reading stopped at the
    /// limit.
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The plugin's call is not running on a tokio runtime, which the client's sockets
    /// and timer need (the runtime must also have its I/O and time drivers enabled, as
    /// `#[tokio::main]` and `Runtime::new` do).
    NoRuntime {
        /// The URL requested.
        url: String,
    },
    /// The whole request (connecting, redirects, the response and its body) took longer
    /// than the policy's timeout.
    TimedOut {
        /// The URL requested.
        url: String,
        /// The timeout that was reached.
        after: Duration,
    },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRequest { reason } => {
                write!(f, "invalid HTTP request from the plugin: {reason}")
            }
            Self::InvalidUrl { url, reason } => write!(f, "invalid URL {url:?}: {reason}"),
            // Extism's own words, so that a plugin's error reads the same under both hosts.
            Self::NotAllowed { url } => write!(f, "HTTP request to {url} is not allowed"),
            Self::InvalidMethod { method } => write!(f, "invalid HTTP method {method:?}"),
            Self::InvalidHeader { name } => write!(f, "invalid HTTP request header {name:?}"),
            Self::BodyNotAllowed { method } => write!(f, "a {method} request may not have a body"),
            Self::Connect { url, source } => {
                write!(f, "HTTP request to {url} failed to connect: {source}")
            }
            Self::Transport { url, source } => write!(f, "HTTP request to {url} failed: {source}"),
            Self::Redirect { url, reason } => {
                write!(f, "HTTP request to {url}: redirect not followed: {reason}")
            }
            Self::TooLarge { limit, .. } => write!(
                f,
                "HTTP response exceeds the configured maximum number of bytes: {limit}"
            ),
            Self::NoRuntime { url } => write!(
                f,
                "HTTP request to {url} needs a tokio runtime, and the plugin's call is not running on one"
            ),
            Self::TimedOut { url, after } => {
                write!(f, "HTTP request to {url} timed out after {after:?}")
            }
        }
    }
}

impl StdError for HttpError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Connect { source, .. } => Some(source),
            Self::Transport { source, .. } => Some(&**source),
            _ => None,
        }
    }
}
