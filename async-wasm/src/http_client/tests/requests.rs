//! What the plugin's request becomes on the wire: its JSON, method, headers and body.

use super::super::parse_request;
use super::server::{Server, reply};
use super::*;

#[test]
fn the_json_is_extisms_http_request() {
    let req = parse_request(
        br#"{"url":"http://a/","headers":{"x-a":"1"},"method":"PUT"}"#,
        Some(b"body".to_vec()),
    )
    .unwrap();
    assert_eq!(req.url, "http://a/");
    assert_eq!(req.method.as_deref(), Some("PUT"));
    assert_eq!(req.headers["x-a"], "1");
    assert_eq!(req.body.as_deref(), Some(&b"body"[..]));
    // The Rust PDK writes `"method":null` for no method; headers may be left out.
    let req = parse_request(br#"{"url":"http://a/","method":null}"#, None).unwrap();
    assert_eq!((req.method, req.headers.len(), req.body), (None, 0, None));
}

#[test]
fn json_that_is_no_http_request_is_refused() {
    for json in [
        &b"not json"[..],
        b"",
        b"\xff\xfe",
        br#"{"method":"GET"}"#,
        br#"{"url":7}"#,
        br#"{"url":"http://a/","headers":{"x":1}}"#,
        br#"{"url":"http://a/","headers":null}"#,
        // Extism's HttpRequest denies unknown fields.
        br#"{"url":"http://a/","body":"x"}"#,
        br#""http://a/""#,
    ] {
        let e = parse_request(json, None).unwrap_err();
        assert!(matches!(e, HttpError::InvalidRequest { .. }), "{e}");
    }
}

#[tokio::test]
async fn the_method_is_uppercased_and_must_be_http_1_1s() {
    let mut server = Server::start(|_| reply("200 OK", &[], b"")).await;
    for (method, sent) in [
        (None, "GET"),
        (Some("post"), "POST"),
        (Some("Options"), "OPTIONS"),
    ] {
        let req = Request {
            method: method.map(str::to_owned),
            ..get(&server.url("/m?q=1#fragment"))
        };
        ok(req, &loopback()).await;
        assert_eq!(
            server.request().await.line(),
            format!("{sent} /m?q=1 HTTP/1.1")
        );
    }
    // Not a token; and tokens Extism's client refuses (not HTTP/1.1's own) or a tunnel.
    for method in ["GE T", "", "GET\r\n", "ÜBER", "PURGE", "connect"] {
        let req = Request {
            method: Some(method.to_owned()),
            ..get(&server.url("/"))
        };
        let e = err(req, &loopback()).await;
        assert!(
            matches!(&e, HttpError::InvalidMethod { method: m } if m == method),
            "{e}"
        );
    }
    assert!(server.untouched());
}

#[tokio::test]
async fn headers_are_sent_and_checked() {
    let mut server = Server::start(|_| reply("200 OK", &[], b"")).await;
    let url = server.url("/");
    let json = format!(
        r#"{{"url":"{url}","headers":{{"X-Token":"abc","accept":"text/plain","content-length":"999"}}}}"#
    );
    ok(from_json(&json, Some(b"12345")), &loopback()).await;
    let got = server.request().await;
    assert_eq!(got.header("x-token"), Some("abc"));
    assert_eq!(got.header("accept"), Some("text/plain"));
    assert_eq!(got.header("host"), Some(&*server.addr.to_string()));
    // The body is framed by its length, not by the plugin's header.
    assert_eq!(got.header("content-length"), Some("5"));
    assert_eq!(got.body, b"12345");

    // A Host of the plugin's own is sent as it is (Extism sends it too).
    let json = format!(r#"{{"url":"{url}","headers":{{"host":"example.com"}}}}"#);
    ok(from_json(&json, None), &loopback()).await;
    assert_eq!(server.request().await.header("host"), Some("example.com"));

    for (name, value) in [
        ("x bad", "v"),
        ("", "v"),
        ("x-ok", "line\r\nbreak"),
        ("é", "v"),
    ] {
        let mut req = get(&url);
        req.headers.insert(name.to_owned(), value.to_owned());
        let e = err(req, &loopback()).await;
        assert!(
            matches!(&e, HttpError::InvalidHeader { name: n } if n == name),
            "{e}"
        );
    }
    assert!(server.untouched());
}

#[tokio::test]
async fn bodies_are_sent_byte_for_byte_whatever_the_method() {
    let mut server = Server::start(|r| reply("200 OK", &[], &r.body)).await;
    let body: Vec<u8> = (0..=255).cycle().take(100_000).collect();
    for method in ["POST", "PUT", "GET"] {
        let req = Request {
            method: Some(method.to_owned()),
            body: Some(body.clone()),
            ..get(&server.url("/echo"))
        };
        assert_eq!(ok(req, &loopback()).await.body, body);
        let got = server.request().await;
        assert_eq!(got.line(), format!("{method} /echo HTTP/1.1"));
        assert_eq!(got.body, body);
    }
    // No body: none sent.
    ok(get(&server.url("/")), &loopback()).await;
    assert_eq!(server.request().await.body, b"");
    // A HEAD may not have one.
    let req = Request {
        method: Some("head".to_owned()),
        body: Some(b"x".to_vec()),
        ..get(&server.url("/"))
    };
    let e = err(req, &loopback()).await;
    assert!(
        matches!(&e, HttpError::BodyNotAllowed { method } if method == "HEAD"),
        "{e}"
    );
    assert!(server.untouched());
}

#[test]
fn credentials_are_encoded_in_standard_base64() {
    // RFC 4648's test vectors.
    let vectors = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
    ];
    for (plain, encoded) in vectors
        .into_iter()
        .chain([("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")])
    {
        assert_eq!(super::super::request::base64(plain.as_bytes()), encoded);
    }
    assert_eq!(super::super::request::base64(&[0xfb, 0xff]), "+/8=");
}

#[tokio::test]
async fn a_request_gets_default_headers_unless_the_plugin_set_them() {
    let mut server = Server::start(|_| reply("200 OK", &[], b"")).await;
    let port = server.addr.port();
    ok(
        get(&format!("http://user:p%40ss@127.0.0.1:{port}/")),
        &loopback(),
    )
    .await;
    let got = server.request().await;
    // base64("user:p%40ss"): the credentials as the URL writes them, as Extism's client
    // sends them.
    assert_eq!(got.header("authorization"), Some("Basic dXNlcjpwJTQwc3M="));
    assert!(got.header("user-agent").unwrap().starts_with("async-wasm/"));
    assert_eq!(got.header("accept"), Some("*/*"));
    // Without a user, no Authorization; the plugin's own headers win.
    let mut req = get(&format!("http://127.0.0.1:{port}/"));
    for (name, value) in [("user-agent", "plugin/1"), ("accept", "text/html")] {
        req.headers.insert(name.to_owned(), value.to_owned());
    }
    ok(req, &loopback()).await;
    let got = server.request().await;
    assert_eq!(got.header("authorization"), None);
    assert_eq!(got.header("user-agent"), Some("plugin/1"));
    assert_eq!(got.header("accept"), Some("text/html"));
}

#[tokio::test]
async fn urls_this_client_cannot_reach_are_refused_before_sending() {
    let e = err(get("not a url"), &loopback()).await;
    assert!(matches!(e, HttpError::InvalidUrl { .. }), "{e}");
    // The allowed hosts come first, as in Extism; then the scheme.
    let e = err(get("ftp://127.0.0.1/file"), &loopback()).await;
    assert!(matches!(e, HttpError::InvalidUrl { .. }), "{e}");
    let e = err(get("ftp://example.com/file"), &loopback()).await;
    assert!(matches!(e, HttpError::NotAllowed { .. }), "{e}");
    #[cfg(not(feature = "https"))]
    {
        let e = err(get("https://127.0.0.1/"), &loopback()).await;
        assert!(matches!(e, HttpError::InvalidUrl { .. }), "{e}");
        assert!(e.to_string().contains("https is not supported"), "{e}");
    }
}

/// With the `https` feature: a server that answers in plain HTTP fails the handshake, a
/// connection error. No certificate is trusted but those of the webpki roots, which no
/// loopback server can present, so no test here reaches a response over TLS.
#[cfg(feature = "https")]
#[tokio::test]
async fn https_needs_a_tls_server() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    for (url, host) in [
        ("https://127.0.0.1", "127.0.0.1"),
        ("https://localhost", "localhost"),
    ] {
        let e = err(get(&format!("{url}:{port}/")), &policy(&[host], None)).await;
        assert!(matches!(e, HttpError::Connect { .. }), "{e}");
    }
}

#[test]
fn off_tokio_a_request_fails_with_a_typed_error() {
    let e = futures::executor::block_on(request(get("http://127.0.0.1:9/"), &loopback()));
    assert!(matches!(e, Err(HttpError::NoRuntime { .. })), "{e:?}");
}

#[test]
fn the_request_future_is_send() {
    fn send<T: Send>(_: &T) {}
    let policy = loopback();
    send(&request(get("http://127.0.0.1/"), &policy));
}
