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
use tokio::net::TcpStream;
use url::{Host, Url};

use super::HttpError;
use super::request::Body;

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
    connection: Option<Pin<Box<http1::Connection<TokioIo<TcpStream>, Body>>>>,
}

impl Connection {
    /// Resolves the URL's host (a domain on tokio's blocking pool, as `getaddrinfo` is
    /// blocking), connects to the addresses in turn, and makes the HTTP/1 handshake.
    pub(super) async fn open(url: &Url) -> Result<Self, HttpError> {
        let connect_error = |source| HttpError::Connect {
            url: url.to_string(),
            source,
        };
        // Every http URL has a host and a known default port.
        let port = url.port_or_known_default().unwrap_or(80);
        let tcp = match url.host() {
            Some(Host::Domain(domain)) => TcpStream::connect((domain, port)).await,
            Some(Host::Ipv4(ip)) => TcpStream::connect((ip, port)).await,
            Some(Host::Ipv6(ip)) => TcpStream::connect((ip, port)).await,
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the URL has no host",
            )),
        }
        .map_err(connect_error)?;
        // Requests are small and answered at once: Nagle's delay would only add latency.
        tcp.set_nodelay(true).map_err(connect_error)?;
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(tcp))
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
