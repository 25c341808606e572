//! The client against scripted servers on 127.0.0.1, on tokio.

mod allowed_hosts;
mod redirects;
mod requests;
mod responses;
mod server;

use std::time::Duration;

use super::{HttpError, HttpPolicy, Request, Response, request};

/// A policy allowing `hosts`, with `limit` bytes of response and a timeout no test reaches
/// unless its server never answers.
fn policy(hosts: &[&str], limit: Option<u64>) -> HttpPolicy {
    let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
    HttpPolicy::new(Some(&hosts), limit)
}

/// The loopback policy most tests use.
fn loopback() -> HttpPolicy {
    policy(&["127.0.0.1"], None)
}

/// A request from its JSON, as a plugin sends it, and a body.
fn from_json(json: &str, body: Option<&[u8]>) -> Request {
    super::parse_request(json.as_bytes(), body.map(<[u8]>::to_vec)).unwrap()
}

/// A `GET` of `url`.
fn get(url: &str) -> Request {
    Request {
        url: url.to_owned(),
        ..Request::default()
    }
}

/// Sends `req` and expects a response.
async fn ok(req: Request, policy: &HttpPolicy) -> Response {
    match request(req, policy).await {
        Ok(response) => response,
        Err(e) => panic!("expected a response, got: {e}"),
    }
}

/// Sends `req` and expects an error.
async fn err(req: Request, policy: &HttpPolicy) -> HttpError {
    match request(req, policy).await {
        Ok(response) => panic!("expected an error, got a response: {response:?}"),
        Err(e) => e,
    }
}

/// Long enough for any loopback exchange, short enough for a test that waits it out.
const SHORT: Duration = Duration::from_millis(300);
