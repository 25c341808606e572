//! The response handed back to the plugin, and its body read within the limit.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::pin::Pin;

use hyper::body::{Body as _, Incoming};
use hyper::header::HeaderMap;

use super::HttpError;
use super::connection::Driver;

/// What `http_request`, `http_status_code` and `http_headers` give the plugin.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Response {
    /// The final response's status (after redirects); any status, 4xx and 5xx included.
    pub(crate) status: u16,
    /// Its headers as Extism gives them: names lowercase, one value per name (the last
    /// one the server sent), and headers whose value is not visible ASCII left out.
    pub(crate) headers: BTreeMap<String, String>,
    /// Its body, at most the policy's `max_response_bytes`.
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The headers as `http_headers` returns them when the host enables it: a JSON
    /// object of strings.
    pub(crate) fn headers_json(&self) -> String {
        // A map of strings always serializes.
        serde_json::to_string(&self.headers).unwrap_or_default()
    }
}

/// The headers a plugin sees, from the response's.
pub(super) fn plugin_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// Reads `body` to its end, failing as soon as it is longer than `limit`: a server that
/// sends without end costs at most `limit` bytes and one read's worth more.
pub(super) async fn read_body(
    driver: &mut Driver,
    mut body: Incoming,
    limit: u64,
    url: &str,
) -> Result<Vec<u8>, HttpError> {
    let too_large = || HttpError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    // A declared length over the limit fails before a byte is read.
    if body.size_hint().lower() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    loop {
        let frame = driver
            .drive(poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)))
            .await;
        let frame = match frame {
            None => return Ok(bytes),
            Some(frame) => frame.map_err(|e| HttpError::Transport {
                url: url.to_owned(),
                source: Box::new(e),
            })?,
        };
        // Trailers are not part of Extism's response.
        if let Ok(data) = frame.into_data() {
            if (bytes.len() + data.len()) as u64 > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }
}
