//! A tiny HTTP/1.1 server on 127.0.0.1 for the plugins' `http_get`: `GET /missing` answers
//! 404 "not found", any other path 200 "hello from <path>". One thread, one request per
//! connection, until the process ends.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

/// Starts the server on an ephemeral port of 127.0.0.1 and returns that port.
pub fn serve() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(match stream.try_clone() {
                Ok(s) => s,
                Err(_) => continue,
            });
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = response(path);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    Ok(port)
}

/// The status line's tail and the body the server answers `path` with.
pub fn response(path: &str) -> (&'static str, String) {
    if path == "/missing" {
        ("404 Not Found", "not found".to_string())
    } else {
        ("200 OK", format!("hello from {path}"))
    }
}
