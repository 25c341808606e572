//! Which redirects are followed, and how, as Extism's HTTP client (ureq 3, with its
//! defaults) follows them.

use hyper::header::{self, HeaderMap};
use hyper::{Method, StatusCode};
use url::Url;

use super::HttpError;

/// How many redirects one request follows; the response after the last one may not be
/// another redirect.
pub(super) const MAX_REDIRECTS: u32 = 10;

/// Where a redirect leads, and with which method; `None` if `status` is not a redirect
/// (every 3xx but 304 is). The body is never sent again (a 307 or 308 that would need it
/// is an error), and the plugin's `Authorization` and `Cookie` headers not at all.
pub(super) fn next(
    status: StatusCode,
    headers: &HeaderMap,
    url: &Url,
    method: &Method,
    followed: u32,
) -> Result<Option<(Url, Method)>, HttpError> {
    if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    let refuse = |reason: String| HttpError::Redirect {
        url: url.to_string(),
        reason,
    };
    if followed == MAX_REDIRECTS {
        return Err(refuse(format!("more than {MAX_REDIRECTS} redirects")));
    }
    let location = headers
        .get(header::LOCATION)
        .ok_or_else(|| refuse(format!("a {status} response without a Location header")))?;
    let location = location
        .to_str()
        .map_err(|_| refuse("its Location header is not visible ASCII".to_owned()))?;
    let target = url
        .join(location)
        .map_err(|e| refuse(format!("its Location {location:?} is not a URL: {e}")))?;
    let method = match status {
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT => {
            // These keep the method; ureq does not resend a body, nor a DELETE.
            if [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method) {
                return Err(refuse(format!(
                    "a {status} response to a {method} request, which would be sent again"
                )));
            }
            method.clone()
        }
        _ if *method == Method::HEAD => Method::HEAD,
        _ => Method::GET,
    };
    Ok(Some((target, method)))
}

/// The plugin's headers for a redirected request.
pub(super) fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::COOKIE);
}
