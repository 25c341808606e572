//! Redirects, followed as Extism's client follows them, to allowed hosts only.

use super::server::{Reply, Server, reply};
use super::*;

/// A server that redirects `/from/STATUS` to `/to` with that status, and echoes the
/// method and body at `/to`.
async fn redirecting() -> Server {
    Server::start(|r| {
        let path = r.line().split(' ').nth(1).unwrap_or_default();
        match path.strip_prefix("/from/") {
            Some(status) => reply(status, &["location: /to?x=1"], b"moved"),
            None => {
                let mut body = r.line().as_bytes().to_vec();
                body.extend_from_slice(b" ");
                body.extend_from_slice(&r.body);
                reply("200 OK", &["x-final: yes"], &body)
            }
        }
    })
    .await
}

fn with(method: &str, url: &str, body: &[u8]) -> Request {
    let mut req = Request {
        method: Some(method.to_owned()),
        body: Some(body.to_vec()),
        ..get(url)
    };
    req.headers
        .insert("authorization".into(), "Bearer secret".into());
    req.headers.insert("x-kept".into(), "kept".into());
    req
}

#[tokio::test]
async fn a_redirect_is_followed_to_the_final_response() {
    let mut server = redirecting().await;
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        let response = ok(
            with("GET", &server.url(&format!("/from/{}", &status[..3])), b""),
            &loopback(),
        )
        .await;
        assert_eq!(response.status, 200, "{status}");
        assert_eq!(
            response.headers.get("x-final").map(String::as_str),
            Some("yes")
        );
        assert_eq!(response.body, b"GET /to?x=1 HTTP/1.1 ", "{status}");
        server.request().await;
        let redirected = server.request().await;
        // Credentials stay with the host they were meant for; other headers go on.
        assert_eq!(redirected.header("authorization"), None);
        assert_eq!(redirected.header("x-kept"), Some("kept"));
    }
}

#[tokio::test]
async fn a_post_becomes_a_get_without_its_body_but_not_on_307_or_308() {
    let mut server = redirecting().await;
    for status in ["301", "302", "303"] {
        let response = ok(
            with("POST", &server.url(&format!("/from/{status}")), b"data"),
            &loopback(),
        )
        .await;
        assert_eq!(response.body, b"GET /to?x=1 HTTP/1.1 ", "{status}");
        assert_eq!(server.request().await.body, b"data");
        assert_eq!(server.request().await.body, b"");
    }
    // A HEAD stays a HEAD.
    let response = ok(with("HEAD", &server.url("/from/302"), b""), &loopback()).await;
    assert_eq!(response.body, b"");
    server.request().await;
    assert!(server.request().await.line().starts_with("HEAD /to"));
    // 307 and 308 keep the method, so a POST, PUT, PATCH or DELETE is not sent again.
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        let e = err(with(method, &server.url("/from/307"), b"data"), &loopback()).await;
        assert!(matches!(e, HttpError::Redirect { .. }), "{method}: {e}");
        server.request().await;
    }
    assert!(server.untouched());
}

#[tokio::test]
async fn redirects_are_bounded() {
    // Every path redirects to the next one.
    let mut server = Server::start(|r| {
        let path = r.line().split(' ').nth(1).unwrap_or_default();
        let n: u32 = path.trim_start_matches('/').parse().unwrap();
        reply("302 Found", &[&format!("location: /{}", n + 1)], b"")
    })
    .await;
    let e = err(get(&server.url("/0")), &loopback()).await;
    assert!(matches!(e, HttpError::Redirect { .. }), "{e}");
    assert!(e.to_string().contains("more than 10 redirects"), "{e}");
    // The request and 10 redirects were sent, no more.
    for n in 0..=10 {
        assert_eq!(server.request().await.line(), format!("GET /{n} HTTP/1.1"));
    }
    assert!(server.untouched());
}

#[tokio::test]
async fn a_redirect_to_a_host_that_is_not_allowed_is_refused() {
    let mut target = Server::start(|_| reply("200 OK", &[], b"secret")).await;
    // `localhost` is the same machine, but not an allowed host.
    let elsewhere = format!("http://localhost:{}/", target.addr.port());
    let location = format!("location: {elsewhere}");
    let mut server = Server::start(move |_| reply("302 Found", &[&location], b"")).await;
    let e = err(get(&server.url("/")), &loopback()).await;
    assert!(
        matches!(&e, HttpError::NotAllowed { url } if *url == elsewhere),
        "{e}"
    );
    server.request().await;
    assert!(target.untouched());
}

#[tokio::test]
async fn a_redirect_that_goes_nowhere_fails() {
    let server = Server::start(|r| match r.line() {
        l if l.starts_with("GET /none") => reply("302 Found", &[], b""),
        l if l.starts_with("GET /binary") => Reply::Bytes(
            b"HTTP/1.1 302 Found\r\nlocation: /\xff\r\ncontent-length: 0\r\n\r\n".to_vec(),
        ),
        l if l.starts_with("GET /ftp") => reply("302 Found", &["location: ftp://127.0.0.1/"], b""),
        _ => reply("304 Not Modified", &[], b""),
    })
    .await;
    for path in ["/none", "/binary"] {
        let e = err(get(&server.url(path)), &loopback()).await;
        assert!(matches!(e, HttpError::Redirect { .. }), "{path}: {e}");
    }
    let e = err(get(&server.url("/ftp")), &loopback()).await;
    assert!(matches!(e, HttpError::InvalidUrl { .. }), "{e}");
    // A 304 is a response, not a redirect.
    assert_eq!(
        ok(get(&server.url("/cached")), &loopback()).await.status,
        304
    );
}
