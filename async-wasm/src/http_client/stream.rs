//! The byte stream under a request: TCP, or TLS over TCP for `https` (feature `https`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use url::{Host, Url};

/// A connected stream to a URL's host.
pub(super) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "https")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    /// Resolves the URL's host (a domain on tokio's blocking pool, as `getaddrinfo`
    /// blocks), connects to its addresses in turn, and for `https` makes the TLS handshake.
    pub(super) async fn connect(url: &Url) -> io::Result<Self> {
        // Every http(s) URL has a host and a known default port.
        let port = url.port_or_known_default().unwrap_or(80);
        let tcp = match url.host() {
            Some(Host::Domain(domain)) => TcpStream::connect((domain, port)).await?,
            Some(Host::Ipv4(ip)) => TcpStream::connect((ip, port)).await?,
            Some(Host::Ipv6(ip)) => TcpStream::connect((ip, port)).await?,
            None => return Err(io::Error::new(io::ErrorKind::InvalidInput, "no host")),
        };
        // Requests are written whole and answered at once: Nagle's delay only adds latency.
        tcp.set_nodelay(true)?;
        match url.scheme() {
            #[cfg(feature = "https")]
            "https" => Ok(Self::Tls(Box::new(tls::handshake(url, tcp).await?))),
            _ => Ok(Self::Plain(tcp)),
        }
    }
}

#[cfg(feature = "https")]
mod tls {
    use std::io;
    use std::sync::{Arc, OnceLock};

    use tokio::net::TcpStream;
    use tokio_rustls::TlsConnector;
    use tokio_rustls::client::TlsStream;
    use tokio_rustls::rustls::pki_types::ServerName;
    use tokio_rustls::rustls::{ClientConfig, RootCertStore, crypto};
    use url::{Host, Url};

    /// The TLS handshake with the URL's host, its certificate checked against the webpki
    /// roots (Mozilla's), as Extism's client checks it.
    pub(super) async fn handshake(url: &Url, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let name = match url.host() {
            Some(Host::Domain(domain)) => ServerName::try_from(domain.to_owned())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            Some(Host::Ipv4(ip)) => ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
            Some(Host::Ipv6(ip)) => ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
            None => return Err(io::Error::new(io::ErrorKind::InvalidInput, "no host")),
        };
        TlsConnector::from(config()?).connect(name, tcp).await
    }

    /// One configuration for every request: building the root store takes longer than a
    /// handshake on loopback.
    fn config() -> io::Result<Arc<ClientConfig>> {
        static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        if let Some(config) = CONFIG.get() {
            return Ok(config.clone());
        }
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(io::Error::other)?
                .with_root_certificates(roots)
                .with_no_client_auth();
        // The client speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
    }
}

// Each variant is `Unpin`, so the enum is, and each call goes to the variant's own.
macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self.get_mut() {
            Stream::Plain($s) => $call,
            #[cfg(feature = "https")]
            Stream::Tls($s) => $call,
        }
    };
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self, s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            #[cfg(feature = "https")]
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self, s => Pin::new(s).poll_shutdown(cx))
    }
}
