//! The echo protocol on loopback TCP, the server (in the parent process) and both kinds of
//! client (tokio's sockets for the async modes, std's for a thread per guest).
//!
//! A message on the wire, either way, is its length (big-endian u16) and its bytes; an
//! empty message from a client means goodbye, and the server then closes first.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use wasmtime::error::Context as _;

/// Bounds every connect, read and write, so that a lost peer fails a guest, not the demo.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest message the protocol carries.
const MAX_MESSAGE: usize = 1024;

pub type AsyncConnection = tokio::net::TcpStream;
pub type BlockingConnection = std::net::TcpStream;

pub async fn connect_async(server: SocketAddr) -> wasmtime::Result<AsyncConnection> {
    with_timeout(AsyncConnection::connect(server)).await
}

/// Sends `message` and returns the server's echo.
pub async fn exchange_async(
    connection: &mut AsyncConnection,
    message: &[u8],
) -> wasmtime::Result<Vec<u8>> {
    with_timeout(async {
        connection.write_all(&frame(message)?).await?;
        let len = checked_len(connection.read_u16().await?)?;
        let mut reply = vec![0; len];
        connection.read_exact(&mut reply).await?;
        Ok(reply)
    })
    .await
}

/// Says goodbye and waits for the server to close first, so that the server keeps the
/// TIME_WAIT and this side's port is free again at once: thousands of guests would
/// otherwise hold thousands of ports for a minute.
pub async fn goodbye_async(mut connection: AsyncConnection) -> wasmtime::Result<()> {
    with_timeout(async {
        connection.write_all(&frame(&[])?).await?;
        expect_eof(connection.read(&mut [0]).await?)
    })
    .await
}

async fn with_timeout<T>(io: impl Future<Output = io::Result<T>>) -> wasmtime::Result<T> {
    let done = tokio::time::timeout(IO_TIMEOUT, io)
        .await
        .context("the echo server did not answer in time")?;
    Ok(done?)
}

pub fn connect_blocking(server: SocketAddr) -> io::Result<BlockingConnection> {
    let connection = std::net::TcpStream::connect_timeout(&server, IO_TIMEOUT)?;
    connection.set_read_timeout(Some(IO_TIMEOUT))?;
    connection.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(connection)
}

/// As [`exchange_async`], blocking the thread.
pub fn exchange_blocking(
    connection: &mut BlockingConnection,
    message: &[u8],
) -> io::Result<Vec<u8>> {
    connection.write_all(&frame(message)?)?;
    let mut len = [0; 2];
    connection.read_exact(&mut len)?;
    let mut reply = vec![0; checked_len(u16::from_be_bytes(len))?];
    connection.read_exact(&mut reply)?;
    Ok(reply)
}

/// As [`goodbye_async`].
pub fn goodbye_blocking(mut connection: BlockingConnection) -> io::Result<()> {
    connection.write_all(&frame(&[])?)?;
    expect_eof(connection.read(&mut [0])?)
}

fn frame(message: &[u8]) -> io::Result<Vec<u8>> {
    let len = u16::try_from(message.len()).map_err(|_| too_long(message.len()))?;
    checked_len(len)?;
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    Ok(framed)
}

fn checked_len(len: u16) -> io::Result<usize> {
    let len = usize::from(len);
    if len > MAX_MESSAGE {
        return Err(too_long(len));
    }
    Ok(len)
}

fn too_long(len: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a message of {len} bytes, more than the {MAX_MESSAGE} the echo protocol takes"),
    )
}

/// Checks that a read found the end of the stream.
fn expect_eof(read: usize) -> io::Result<()> {
    if read != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the echo server sent more than it was asked for",
        ));
    }
    Ok(())
}

/// A TCP echo server on 127.0.0.1, on a runtime of its own in the parent process. Every
/// loop in it is bounded: it accepts at most a given number of connections, serves each
/// at most a given number of messages, and stops early when told to.
pub struct EchoServer {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    runtime: tokio::runtime::Runtime,
}

impl EchoServer {
    pub fn start(
        max_connections: usize,
        messages_per_connection: usize,
    ) -> wasmtime::Result<EchoServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind((Ipv4Addr::LOCALHOST, 0).into())?;
            // Thousands of guests connect at the same moment: a short backlog would drop
            // their SYNs, and each drop costs a guest a one-second retransmit.
            socket.listen(4096)
        })?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel();
        runtime.spawn(accept(
            listener,
            max_connections,
            messages_per_connection,
            stopped,
        ));
        Ok(EchoServer {
            addr,
            stop,
            runtime,
        })
    }

    pub fn stop(self) {
        // The accept loop may already have ended on its own; then no one hears this.
        let _ = self.stop.send(());
        self.runtime.shutdown_timeout(IO_TIMEOUT);
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    max_connections: usize,
    messages_per_connection: usize,
    mut stop: oneshot::Receiver<()>,
) {
    for _ in 0..max_connections {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut stop => return,
        };
        // A failed accept or exchange fails one guest, which reports it.
        if let Ok((connection, _)) = accepted {
            tokio::spawn(serve(connection, messages_per_connection));
        }
    }
}

/// Echoes messages until the client says goodbye, then closes the connection first.
async fn serve(mut connection: tokio::net::TcpStream, max_messages: usize) -> io::Result<()> {
    for _ in 0..=max_messages {
        let header = tokio::time::timeout(IO_TIMEOUT, connection.read_u16()).await??;
        let len = checked_len(header)?;
        if len == 0 {
            break;
        }
        let mut message = vec![0; 2 + len];
        message[..2].copy_from_slice(&header.to_be_bytes());
        connection.read_exact(&mut message[2..]).await?;
        connection.write_all(&message).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_their_length_and_refuse_long_messages() {
        assert_eq!(frame(b"hi").unwrap(), [0, 2, b'h', b'i']);
        assert_eq!(frame(&[]).unwrap(), [0, 0]);
        let err = frame(&[0; MAX_MESSAGE + 1]).unwrap_err();
        assert!(err.to_string().contains("more than the 1024"), "{err}");
        assert!(frame(&vec![0; 70_000]).is_err());
    }

    #[test]
    fn the_server_echoes_and_closes_after_goodbye() -> wasmtime::Result<()> {
        let server = EchoServer::start(2, 3)?;
        let mut blocking = connect_blocking(server.addr)?;
        assert_eq!(exchange_blocking(&mut blocking, b"ping")?, b"ping");
        goodbye_blocking(blocking)?;
        let client = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        client.block_on(async {
            let mut connection = connect_async(server.addr).await?;
            assert_eq!(exchange_async(&mut connection, b"pong").await?, b"pong");
            goodbye_async(connection).await
        })?;
        server.stop();
        Ok(())
    }
}
