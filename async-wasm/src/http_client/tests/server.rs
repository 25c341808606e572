//! A scripted HTTP/1 server on 127.0.0.1: it records each request and answers with bytes
//! written by hand, so that tests can send what a well-behaved server never would.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// A request as it arrived.
#[derive(Debug)]
pub(super) struct Recorded {
    /// The request line and headers, without the blank line.
    pub(super) head: String,
    /// The body, as long as its `Content-Length` said.
    pub(super) body: Vec<u8>,
}

impl Recorded {
    /// The request line, `GET /path HTTP/1.1`.
    pub(super) fn line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    /// The value of header `name` (lowercase), if it was sent.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// How the server answers a request.
pub(super) enum Reply {
    /// These bytes, then it closes the connection.
    Bytes(Vec<u8>),
    /// This head, then body bytes without end, until the client goes away.
    Endless(Vec<u8>),
    /// Nothing: it waits for the client to close the connection, then reports it.
    Never,
}

/// A response with `status`, extra header lines and `body`, framed by `Content-Length`.
pub(super) fn reply(status: &str, headers: &[&str], body: &[u8]) -> Reply {
    let mut bytes = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for header in headers {
        bytes.push_str(header);
        bytes.push_str("\r\n");
    }
    bytes.push_str("\r\n");
    let mut bytes = bytes.into_bytes();
    bytes.extend_from_slice(body);
    Reply::Bytes(bytes)
}

pub(super) struct Server {
    pub(super) addr: SocketAddr,
    requests: mpsc::UnboundedReceiver<Recorded>,
    closed: mpsc::UnboundedReceiver<()>,
}

impl Server {
    /// Listens on a free port of 127.0.0.1 and answers each request with `answer(request)`.
    pub(super) async fn start(answer: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (requests_tx, requests) = mpsc::unbounded_channel();
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, requests, closed) =
                    (answer.clone(), requests_tx.clone(), closed_tx.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, &*answer, requests, closed).await;
                });
            }
        });
        Self {
            addr,
            requests,
            closed,
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request the server got.
    pub(super) async fn request(&mut self) -> Recorded {
        self.requests.recv().await.unwrap()
    }

    /// Whether no request has arrived yet.
    pub(super) fn untouched(&mut self) -> bool {
        self.requests.try_recv().is_err()
    }

    /// Waits until a client closed a connection the server was not answering.
    pub(super) async fn closed(&mut self) {
        self.closed.recv().await.unwrap()
    }
}

async fn serve(
    mut stream: TcpStream,
    answer: &(dyn Fn(&Recorded) -> Reply + Send + Sync),
    requests: mpsc::UnboundedSender<Recorded>,
    closed: mpsc::UnboundedSender<()>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let mut chunk = [0; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() > 1 << 16 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut body = buf[end + 4..].to_vec();
    let mut recorded = Recorded {
        head,
        body: Vec::new(),
    };
    let length: usize = recorded
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    while body.len() < length {
        let mut chunk = [0; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    recorded.body = body;
    let reply = answer(&recorded);
    let _ = requests.send(recorded);
    match reply {
        Reply::Bytes(bytes) => stream.write_all(&bytes).await?,
        Reply::Endless(head) => {
            stream.write_all(&head).await?;
            let chunk = vec![b'x'; 1 << 16];
            loop {
                stream.write_all(&chunk).await?;
            }
        }
        Reply::Never => {
            let mut chunk = [0; 4096];
            while let Ok(1..) = stream.read(&mut chunk).await {}
            let _ = closed.send(());
            return Ok(());
        }
    }
    stream.shutdown().await
}
