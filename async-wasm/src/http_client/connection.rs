//! One HTTP/1 connection per request, driven by the request's own future.
//!
//! Extism's host opens a connection per request too (a new agent each time), so nothing
//! is pooled across plugin calls, and no task is spawned: the connection makes progress
//! only while the plugin's call is polled, and is closed when the request is done or its
//! future dropped.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use url::Url;

use super::HttpError;
use super::request::Body;
use super::stream::Stream;

/// hyper's HTTP/1 connection: the protocol over the stream.
type Http1 = http1::Connection<TokioIo<Stream>, Body>;

/// A connection to a URL's host and port, ready for one request.
pub(super) struct Connection {
    /// Reads and writes the socket; the requests and responses wait on it.
    pub(super) driver: Driver,
    /// Where the request goes.
    pub(super) sender: http1::SendRequest<Body>,
}

/// The connection's I/O, which makes progress only while [`Driver::drive`] is awaited.
pub(super) struct Driver {
    /// `None` once the connection has ended; what waits on it then fails on its own.
    connection: Option<Pin<Box<Http1>>>,
}

impl Connection {
    /// Connects to the URL's host (see [`Stream::connect`]) and makes the HTTP/1
    /// handshake.
    pub(super) async fn open(url: &Url) -> Result<Self, HttpError> {
        let stream = Stream::connect(url)
            .await
            .map_err(|source| HttpError::Connect {
                url: url.to_string(),
                source,
            })?;
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| HttpError::Transport {
                url: url.to_string(),
                source: Box::new(e),
            })?;
        Ok(Self {
            driver: Driver {
                connection: Some(Box::pin(driver)),
            },
            sender,
        })
    }
}

impl Driver {
    /// Runs `work` (sending the request, reading the response) while driving the
    /// connection, which does the reading and writing `work` waits for.
    pub(super) async fn drive<F: Future>(&mut self, work: F) -> F::Output {
        let mut work = pin!(work);
        poll_fn(|cx| {
            if let Some(connection) = &mut self.connection {
                // Its outcome reaches `work` as well: a failed or closed connection fails
                // the request waiting on it once it is dropped.
                if connection.as_mut().poll(cx).is_ready() {
                    self.connection = None;
                }
            }
            work.as_mut().poll(cx)
        })
        .await
    }
}
