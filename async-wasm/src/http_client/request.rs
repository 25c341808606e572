//! The request as a plugin sends it, and its checks before anything goes on the wire.

use std::collections::BTreeMap;

use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Uri};
use url::Url;

use super::HttpError;

/// A plugin's HTTP request: the fields of Extism's `HttpRequest` and the body, unchecked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Request {
    /// The URL, as the plugin wrote it.
    pub(crate) url: String,
    /// The method; `None` is `GET`. Any case: it is uppercased, as Extism does.
    pub(crate) method: Option<String>,
    /// The request's headers. A plugin's `Content-Length` and `Transfer-Encoding` are
    /// dropped: the client frames the body itself.
    pub(crate) headers: BTreeMap<String, String>,
    /// The body, sent with any method but `HEAD` (Extism sends it with a `GET` too).
    pub(crate) body: Option<Vec<u8>>,
}

/// Extism's `HttpRequest` as the PDKs serialize it: no field but these three.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    method: Option<String>,
}

/// Reads a plugin's request: the JSON at the first handle of Extism's `http_request`
/// (`{"url": "..", "method": "POST", "headers": {"name": "value"}}`; `method` may be
/// missing or `null`, `headers` missing), and the bytes at its second handle, if the plugin
/// gave one, as the body.
///
/// # Errors
///
/// [`HttpError::InvalidRequest`] if `json` is not such an object (not JSON, a field
/// missing or of another type, a field Extism does not know). The URL, method and headers
/// are checked when the request is sent, in Extism's order.
pub(crate) fn parse_request(json: &[u8], body: Option<Vec<u8>>) -> Result<Request, HttpError> {
    let wire: Wire = serde_json::from_slice(json).map_err(|e| HttpError::InvalidRequest {
        reason: e.to_string(),
    })?;
    Ok(Request {
        url: wire.url,
        method: wire.method,
        headers: wire.headers,
        body,
    })
}

/// Parses a URL as Extism does (the WHATWG rules of the `url` crate), whatever its
/// scheme: the host is checked against the allowed hosts first, the scheme after.
pub(super) fn parse_url(url: &str) -> Result<Url, HttpError> {
    Url::parse(url).map_err(|e| HttpError::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })
}

/// Refuses a URL whose scheme this client does not speak.
pub(super) fn check_scheme(url: &Url) -> Result<(), HttpError> {
    let reason = match url.scheme() {
        "http" => return Ok(()),
        #[cfg(feature = "https")]
        "https" => return Ok(()),
        #[cfg(not(feature = "https"))]
        "https" => "https is not supported: async-wasm was built without its `https` feature",
        _ => "only http URLs are supported",
    };
    Err(HttpError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_owned(),
    })
}

/// The method: uppercased (Extism's host does), then one of HTTP/1.1's: Extism's client
/// refuses other methods (ureq's default), and `CONNECT`, which asks for a tunnel, has no
/// use in a request that is read to its end.
pub(super) fn method(method: Option<&str>) -> Result<Method, HttpError> {
    let upper = method.unwrap_or("GET").to_uppercase();
    match Method::from_bytes(upper.as_bytes()) {
        Ok(m) if STANDARD_METHODS.contains(&m) => Ok(m),
        _ => Err(HttpError::InvalidMethod {
            method: method.unwrap_or_default().to_owned(),
        }),
    }
}

const STANDARD_METHODS: [Method; 8] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::TRACE,
    Method::PATCH,
];

/// Refuses a body with a `HEAD`, whose request may have none (Extism's client refuses it).
pub(super) fn check_body(method: &Method, body: Option<&[u8]>) -> Result<(), HttpError> {
    match body {
        Some(body) if !body.is_empty() && *method == Method::HEAD => {
            Err(HttpError::BodyNotAllowed {
                method: method.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// The plugin's headers, checked, without those that frame the body.
pub(super) fn headers(headers: &BTreeMap<String, String>) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let invalid = || HttpError::InvalidHeader { name: name.clone() };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            map.append(name, value);
        }
    }
    Ok(map)
}

/// The request line's target: the URL's path and query (never its fragment).
pub(super) fn target(url: &Url) -> Result<Uri, HttpError> {
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    Uri::try_from(target).map_err(|e| HttpError::InvalidUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// The headers a request gets unless the plugin set them: `Host`, `Authorization` from the
/// URL's user and password (as Extism's client does), a `User-Agent` and `Accept`.
pub(super) fn default_headers(url: &Url, headers: &mut HeaderMap) -> Result<(), HttpError> {
    if !headers.contains_key(header::HOST) {
        headers.insert(header::HOST, host_header(url)?);
    }
    if !headers.contains_key(header::AUTHORIZATION)
        && (!url.username().is_empty() || url.password().is_some())
    {
        let credentials = format!("{}:{}", url.username(), url.password().unwrap_or_default());
        let value = format!("Basic {}", base64(credentials.as_bytes()));
        // Base64 is visible ASCII.
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(header::AUTHORIZATION, value);
        }
    }
    headers
        .entry(header::USER_AGENT)
        .or_insert(HeaderValue::from_static(concat!(
            "async-wasm/",
            env!("CARGO_PKG_VERSION")
        )));
    headers
        .entry(header::ACCEPT)
        .or_insert(HeaderValue::from_static("*/*"));
    Ok(())
}

/// Standard base64, padded: for the few bytes of a URL's credentials.
pub(super) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `Host` header for `url`: its host, and its port unless it is the scheme's default.
fn host_header(url: &Url) -> Result<HeaderValue, HttpError> {
    let host = url.host_str().unwrap_or_default();
    let value = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    HeaderValue::try_from(value).map_err(|e| HttpError::InvalidUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// A request body that is sent in one piece, its length known (`Content-Length`).
pub(super) struct Body(Option<Bytes>);

impl Body {
    pub(super) fn new(bytes: Option<Bytes>) -> Self {
        Self(bytes.filter(|b| !b.is_empty()))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.get_mut()
                .0
                .take()
                .map(|b| Ok(hyper::body::Frame::data(b))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}
