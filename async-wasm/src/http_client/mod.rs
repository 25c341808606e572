//! The HTTP client behind Extism's `http_request` (feature `http`): async, on tokio, with
//! Extism's rules for which requests a plugin may make.
//!
//! # For the Extism host
//!
//! The host's `http_request(request, body) -> response` import hands over bytes and gets
//! a [`Response`] or an [`HttpError`]:
//!
//! 1. [`parse_request`] reads the JSON at the plugin's first handle (Extism's
//!    `HttpRequest`: `url`, `method`, `headers`) and takes the bytes at its second handle,
//!    if non-zero, as the body. The host frees both handles, as Extism's does.
//! 2. [`HttpPolicy::new`] is built once per plugin from the manifest's `allowed_hosts`
//!    and `max_http_response_bytes`; [`HttpPolicy::for_call`] bounds one request by what
//!    is left of the call's `timeout_ms`.
//! 3. [`request()`] sends it and reads the response. On `Ok`, the host stores the status for
//!    `http_status_code` and, if the plugin was built with response headers enabled, the
//!    headers for `http_headers` ([`Response::headers_json`]), and returns the body in a
//!    new block. On `Err`, the host fails the plugin's call with the error: Extism's host
//!    returns every one of these as an error from the import, which traps the plugin.
//!    Before each request the host sets the status to 0 and clears the headers, as
//!    Extism's does.
//!
//! # What matches Extism, and what does not
//!
//! - Allowed hosts: as Extism, see [`AllowedHosts`](policy::AllowedHosts); no `allowed_hosts` refuses every
//!   request. The URL is parsed by the `url` crate, as Extism's is, so that the host
//!   matched is the host connected to.
//! - The request: the method uppercased and one of HTTP/1.1's (Extism's client refuses
//!   others; `CONNECT` is refused here too); the body sent with any method but `HEAD`
//!   (refused, as by Extism's client); `Host`, `Authorization` from the URL's user and
//!   password, `User-Agent` and `Accept: */*` added unless the plugin set them, as
//!   Extism's client adds its own; the plugin's `Content-Length` and `Transfer-Encoding`
//!   dropped, the client framing the body itself.
//! - Status: any status is a response (Extism turns off its client's status errors).
//! - Response headers: one per name, the last sent winning; names lowercase; values that
//!   are not visible ASCII (a byte over 0x7e, a control byte) left out, as Extism's
//!   `to_str` does.
//! - Redirects are followed as Extism's client (ureq 3's defaults) follows them: up to 10;
//!   301, 302, 303 and the other 3xx but 304 turn the request into a `GET` (a `HEAD` stays
//!   one) without its body; 307 and 308 keep the method, but fail a `POST`, `PUT`, `PATCH`
//!   or `DELETE`, whose body or effect would be sent again; `Authorization` and `Cookie`
//!   are not sent on. One difference, on purpose: each redirect's host must be allowed too
//!   (Extism checks only the first URL, so an allowed host could send a plugin anywhere).
//! - Response size: the body is read up to `max_http_response_bytes` (50 MiB by default,
//!   as Extism) and the request fails at the first byte over it, with Extism's message; a
//!   `Content-Length` over it fails before reading. Extism asks for gzip and counts the
//!   decompressed bytes; this client does not ask for compression, so the server sends,
//!   and the limit counts, the same bytes the plugin gets.
//! - Timeout: the whole request, redirects and body included, is bounded by the call's
//!   remaining `timeout_ms`, as Extism's is; without one, by
//!   [`HttpPolicy::DEFAULT_TIMEOUT`], where Extism waits forever.
//! - Errors: typed, [`HttpError`]; their messages are this crate's, but a refused host and
//!   a response over the limit say what Extism's host says.
//! - HTTP/1.1 only. `https` URLs with the `https` feature (rustls on ring, the webpki
//!   roots: the trust store of Extism's client); without it they are refused with
//!   [`HttpError::InvalidUrl`].
//! - The client opens a connection per request and pools none, as Extism's host does (a
//!   new agent per request).
//!
//! [`request()`] must run on a tokio runtime with I/O and time enabled (its sockets and timer
//! are tokio's); on no runtime at all it fails with [`HttpError::NoRuntime`].

mod connection;
mod error;
mod policy;
mod redirect;
mod request;
mod response;
mod stream;

#[cfg(test)]
mod tests;

use std::future::poll_fn;

use hyper::Method;
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use url::Url;

use connection::Connection;
pub use error::HttpError;
pub(crate) use policy::HttpPolicy;
pub(crate) use request::{Request, parse_request};
pub(crate) use response::Response;

/// Sends a plugin's request under `policy` and reads the response, following redirects.
///
/// The checks come in Extism's order: the URL parses, its host is allowed, its scheme is
/// `http` (or `https`, with that feature), the method, headers and body are valid; nothing
/// is sent before all pass. Dropping the future closes the connection.
///
/// # Errors
///
/// [`HttpError`]: [`InvalidUrl`](HttpError::InvalidUrl),
/// [`NotAllowed`](HttpError::NotAllowed), [`InvalidMethod`](HttpError::InvalidMethod),
/// [`InvalidHeader`](HttpError::InvalidHeader) and
/// [`BodyNotAllowed`](HttpError::BodyNotAllowed) before anything is sent;
/// [`Connect`](HttpError::Connect), [`Transport`](HttpError::Transport),
/// [`Redirect`](HttpError::Redirect), [`TooLarge`](HttpError::TooLarge) and
/// [`TimedOut`](HttpError::TimedOut) after; [`NoRuntime`](HttpError::NoRuntime) off tokio.
/// A 4xx or 5xx status is a response, not an error.
pub(crate) async fn request(request: Request, policy: &HttpPolicy) -> Result<Response, HttpError> {
    let url = request::parse_url(&request.url)?;
    if !policy.allowed_hosts.allows(&url) {
        return Err(HttpError::NotAllowed { url: request.url });
    }
    request::check_scheme(&url)?;
    let method = request::method(request.method.as_deref())?;
    let headers = request::headers(&request.headers)?;
    request::check_body(&method, request.body.as_deref())?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(HttpError::NoRuntime { url: request.url });
    }
    let body = request.body.map(Bytes::from);
    let exchange = exchange(url, method, headers, body, policy);
    match tokio::time::timeout(policy.timeout, exchange).await {
        Ok(response) => response,
        Err(_) => Err(HttpError::TimedOut {
            url: request.url,
            after: policy.timeout,
        }),
    }
}

/// The request, then each redirect in turn, each on a connection of its own.
async fn exchange(
    mut url: Url,
    mut method: Method,
    mut headers: HeaderMap,
    mut body: Option<Bytes>,
    policy: &HttpPolicy,
) -> Result<Response, HttpError> {
    let mut followed = 0;
    loop {
        let mut connection = Connection::open(&url).await?;
        let transport = |e: hyper::Error| HttpError::Transport {
            url: url.to_string(),
            source: Box::new(e),
        };

        let mut hop = hyper::Request::new(request::Body::new(body.take()));
        *hop.method_mut() = method.clone();
        *hop.uri_mut() = request::target(&url)?;
        *hop.headers_mut() = headers.clone();
        request::default_headers(&url, hop.headers_mut())?;

        let Connection { driver, sender } = &mut connection;
        let ready = poll_fn(|cx| sender.poll_ready(cx));
        driver.drive(ready).await.map_err(transport)?;
        let response = driver.drive(sender.send_request(hop)).await;
        let (head, incoming) = response.map_err(transport)?.into_parts();

        match redirect::next(head.status, &head.headers, &url, &method, followed)? {
            Some((next, next_method)) => {
                if !policy.allowed_hosts.allows(&next) {
                    return Err(HttpError::NotAllowed {
                        url: next.to_string(),
                    });
                }
                request::check_scheme(&next)?;
                redirect::strip_credentials(&mut headers);
                url = next;
                method = next_method;
                followed += 1;
            }
            None => {
                let limit = policy.max_response_bytes;
                let body = response::read_body(driver, incoming, limit, url.as_str());
                return Ok(Response {
                    status: head.status.as_u16(),
                    headers: response::plugin_headers(&head.headers),
                    body: body.await?,
                });
            }
        }
    }
}
