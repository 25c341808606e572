//! What the plugin gets back: status, headers and body, or why not, within bounds.

use super::server::{Reply, Server, reply};
use super::*;

#[tokio::test]
async fn any_status_is_a_response() {
    let mut server = Server::start(|r| match r.line() {
        l if l.starts_with("GET /missing") => reply("404 Not Found", &[], b"no such thing"),
        l if l.starts_with("GET /broken") => reply("500 Internal Server Error", &[], b"oops"),
        l if l.starts_with("GET /empty") => reply("204 No Content", &[], b""),
        _ => reply("200 OK", &["content-type: text/plain"], b"fine"),
    })
    .await;
    for (path, status, body) in [
        ("/", 200, &b"fine"[..]),
        ("/missing", 404, b"no such thing"),
        ("/broken", 500, b"oops"),
        ("/empty", 204, b""),
    ] {
        let response = ok(get(&server.url(path)), &loopback()).await;
        assert_eq!((response.status, &*response.body), (status, body), "{path}");
        server.request().await;
    }
}

#[tokio::test]
async fn headers_are_given_as_extism_gives_them() {
    let head = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nX-Mixed-Case: yes\r\nx-twice: first\r\n\
        x-twice: second\r\nx-latin1: caf\xe9\r\nx-utf8: caf\xc3\xa9\r\nx-empty:\r\n\r\nok";
    let server = Server::start(move |_| Reply::Bytes(head.to_vec())).await;
    let response = ok(get(&server.url("/")), &loopback()).await;
    let headers: Vec<(&str, &str)> = response
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    // Names lowercase, the last of several values, and no value that is not visible
    // ASCII: neither Latin-1 nor UTF-8.
    assert_eq!(
        headers,
        [
            ("content-length", "2"),
            ("x-empty", ""),
            ("x-mixed-case", "yes"),
            ("x-twice", "second"),
        ]
    );
    assert_eq!(
        response.headers_json(),
        r#"{"content-length":"2","x-empty":"","x-mixed-case":"yes","x-twice":"second"}"#
    );
    assert_eq!(response.body, b"ok");
}

#[tokio::test]
async fn a_body_over_the_limit_fails_without_reading_it_all() {
    let endless = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
    let mut server = Server::start(move |r| match r.line() {
        l if l.starts_with("GET /endless") => {
            // Chunks of 64 KiB - 1 (0xffff), as many as the client reads.
            let mut head = endless.to_vec();
            head.extend_from_slice(b"ffff\r\n");
            Reply::Endless(head)
        }
        l if l.starts_with("GET /declared") => reply("200 OK", &[], &vec![b'x'; 2000]),
        _ => reply("200 OK", &[], &[b'x'; 1000]),
    })
    .await;
    let limited = policy(&["127.0.0.1"], Some(1000));
    // Exactly the limit is fine.
    assert_eq!(ok(get(&server.url("/")), &limited).await.body.len(), 1000);
    server.request().await;

    // A Content-Length over the limit fails before the body is read.
    let e = err(get(&server.url("/declared")), &limited).await;
    assert!(matches!(e, HttpError::TooLarge { limit: 1000, .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "HTTP response exceeds the configured maximum number of bytes: 1000"
    );
    server.request().await;

    // A body without end (chunked, no length) fails once it passes the limit; the
    // server's writes then fail, so the client stopped reading.
    let e = err(get(&server.url("/endless")), &limited).await;
    assert!(matches!(e, HttpError::TooLarge { limit: 1000, .. }), "{e}");
    // And the next request works.
    assert_eq!(ok(get(&server.url("/")), &limited).await.body.len(), 1000);
}

#[tokio::test]
async fn headers_without_end_fail_within_the_parsers_bound() {
    // A header whose value never ends: hyper stops at its buffer limit (about 400 KiB).
    let server = Server::start(|_| Reply::Endless(b"HTTP/1.1 200 OK\r\nx-long: ".to_vec())).await;
    let e = err(get(&server.url("/")), &loopback()).await;
    assert!(matches!(e, HttpError::Transport { .. }), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_and_is_let_go() {
    let mut server = Server::start(|_| Reply::Never).await;
    let url = server.url("/slow");
    let policy = loopback().for_call(Some(SHORT));
    let e = err(get(&url), &policy).await;
    assert!(
        matches!(&e, HttpError::TimedOut { after, .. } if *after == SHORT),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("HTTP request to {url} timed out"))
    );
    // The connection was closed when the request gave up.
    server.request().await;
    server.closed().await;
}

#[tokio::test]
async fn a_dropped_request_closes_its_connection() {
    let mut server = Server::start(|_| Reply::Never).await;
    let policy = loopback();
    let req = request(get(&server.url("/")), &policy);
    tokio::select! {
        _ = req => unreachable!("the server never answers"),
        _ = server.request() => {}
    }
    // The request future is dropped; the server sees the connection close.
    server.closed().await;
}

#[tokio::test]
async fn a_call_without_a_deadline_keeps_the_default_timeout() {
    assert_eq!(loopback().timeout, HttpPolicy::DEFAULT_TIMEOUT);
    assert_eq!(
        loopback().for_call(None).timeout,
        HttpPolicy::DEFAULT_TIMEOUT
    );
    assert_eq!(loopback().for_call(Some(SHORT)).timeout, SHORT);
    let defaults = HttpPolicy::new(Some(&[]), None);
    assert_eq!(defaults.max_response_bytes, 50 * 1024 * 1024);
}

#[tokio::test]
async fn connection_and_protocol_failures_are_typed() {
    // A port nothing listens on: bound, then closed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let e = err(get(&url), &loopback()).await;
    assert!(matches!(e, HttpError::Connect { .. }), "{e}");
    assert!(std::error::Error::source(&e).is_some());

    // A name that does not resolve (`.invalid` never does).
    let e = err(get("http://no-such-host.invalid/"), &policy(&["*"], None)).await;
    assert!(matches!(e, HttpError::Connect { .. }), "{e}");

    // Not HTTP at all; and a body cut short of its length.
    let server = Server::start(|r| match r.line() {
        l if l.starts_with("GET /garbage") => Reply::Bytes(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()),
        _ => Reply::Bytes(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort".to_vec()),
    })
    .await;
    for path in ["/garbage", "/short"] {
        let e = err(get(&server.url(path)), &loopback()).await;
        assert!(matches!(e, HttpError::Transport { .. }), "{path}: {e}");
    }
}

#[test]
fn requests_run_on_another_executor_within_a_runtimes_context() {
    // A host on another executor (here `futures`' block_on) with a multi-thread tokio
    // runtime entered: the runtime's threads run the sockets and the timer.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(Server::start(|_| reply("200 OK", &[], b"from afar")));
    let _context = runtime.enter();
    let response = futures::executor::block_on(ok(get(&server.url("/")), &loopback()));
    assert_eq!(response.body, b"from afar");
}

#[test]
fn errors_can_cross_threads_and_be_downcast() {
    fn error<E: std::error::Error + Send + Sync + 'static>() {}
    error::<HttpError>();
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(HttpError::NotAllowed {
        url: "http://a/".into(),
    });
    assert!(matches!(
        boxed.downcast_ref(),
        Some(HttpError::NotAllowed { .. })
    ));
}

#[test]
fn requests_run_on_a_multi_thread_runtime_too() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = Server::start(|r| reply("200 OK", &[], r.line().as_bytes())).await;
        let requests = (0..8).map(|i| {
            let url = server.url(&format!("/{i}"));
            tokio::spawn(async move { ok(get(&url), &loopback()).await })
        });
        for (i, task) in requests.enumerate() {
            let response = task.await.unwrap();
            assert_eq!(response.body, format!("GET /{i} HTTP/1.1").as_bytes());
        }
    });
}
