//! What a plugin may request: the allowed hosts, the response size limit, the timeout.

use std::time::Duration;

use url::Url;

/// The limits one plugin's HTTP requests run under, built once from its manifest.
#[derive(Clone, Debug)]
pub(crate) struct HttpPolicy {
    /// The hosts a request (and each redirect) may go to.
    pub(crate) allowed_hosts: AllowedHosts,
    /// The most bytes a response body may have; one more and the request fails with
    /// [`HttpError::TooLarge`](super::HttpError::TooLarge).
    pub(crate) max_response_bytes: u64,
    /// How long the whole request may take: resolving, connecting, each redirect, the
    /// response's head and its body.
    pub(crate) timeout: Duration,
}

impl HttpPolicy {
    /// Extism's limit when a manifest sets no `max_http_response_bytes`: 50 MiB.
    pub(crate) const DEFAULT_MAX_RESPONSE_BYTES: u64 = 50 * 1024 * 1024;

    /// The timeout of a request made from a call without a deadline (Extism's
    /// `timeout_ms` unset). Extism's host has none there: a server that never answers
    /// blocks the plugin's call, and its thread, for good. Here the call's future could be
    /// dropped instead, but a host that never drops it would keep the connection, so the
    /// client gives up on its own; 30 seconds is the common default of HTTP clients for a
    /// whole request and longer than an interactive plugin call should take.
    pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A policy from a manifest's fields: `allowed_hosts` (`None`: no host is allowed, as
    /// in Extism) and `max_http_response_bytes` (`None`: 50 MiB, as in Extism), with the
    /// [default timeout](Self::DEFAULT_TIMEOUT).
    pub(crate) fn new(allowed_hosts: Option<&[String]>, max_response_bytes: Option<u64>) -> Self {
        Self {
            allowed_hosts: AllowedHosts::new(allowed_hosts.unwrap_or_default()),
            max_response_bytes: max_response_bytes.unwrap_or(Self::DEFAULT_MAX_RESPONSE_BYTES),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    /// This policy for a request made by a call with `remaining` time left before its
    /// deadline (Extism's `timeout_ms` less the time the call has run): the request may
    /// take that long, and no longer. `None` (no deadline) keeps the policy's timeout.
    pub(crate) fn for_call(&self, remaining: Option<Duration>) -> Self {
        Self {
            timeout: remaining.unwrap_or(self.timeout),
            ..self.clone()
        }
    }
}

/// The hosts a plugin may send requests to, matched as Extism's host matches them.
///
/// Each entry is a `glob` pattern (`*.example.com`, `api-?.example.com`,
/// `10.0.0.[1-5]`) matched against the whole of the URL's host as the `url` crate gives it:
/// without the port, domain names lowercased (and IDNA-encoded), IPv4 addresses in dotted
/// decimal, IPv6 addresses in brackets (`[::1]`). The match is case-sensitive, so an entry
/// with capitals matches no domain. An entry that is not a valid pattern (`a**b`, `[`)
/// matches only a host equal to it. `*` matches dots too: `*.example.com` allows
/// `a.b.example.com`, but neither `example.com` nor `evilexample.com`. No entries: no host
/// is allowed.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllowedHosts {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug)]
enum Entry {
    Pattern(glob::Pattern),
    Exact(String),
}

impl AllowedHosts {
    /// The allowed hosts from a manifest's `allowed_hosts` entries.
    pub(crate) fn new(entries: &[String]) -> Self {
        let entries = entries
            .iter()
            .map(|entry| match glob::Pattern::new(entry) {
                Ok(pattern) => Entry::Pattern(pattern),
                Err(_) => Entry::Exact(entry.clone()),
            })
            .collect();
        Self { entries }
    }

    /// Whether a request to `url` may be sent.
    pub(crate) fn allows(&self, url: &Url) -> bool {
        let host = url.host_str().unwrap_or_default();
        self.entries.iter().any(|entry| match entry {
            Entry::Pattern(pattern) => pattern.matches(host),
            Entry::Exact(exact) => exact == host,
        })
    }
}
