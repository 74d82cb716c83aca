//! A minimal HTTP/1.1 keep-alive client for the load generator: one request at a time per
//! connection, the head and body written with one call, and the response read into a buffer
//! the connection keeps. Profiles showed hyper's client costing the generator several
//! microseconds a request (a task per connection, a channel hop each way, a header map), more
//! than the server under test spent; this does only what a load generator needs.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Why an exchange failed, and whether any of the response had arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Connect,
    /// The connection broke; `answered` when part of a response had arrived.
    Io {
        answered: bool,
    },
    /// The server sent something that is not an HTTP/1.1 response.
    Protocol,
}

/// A parsed response head: the status, where the body starts, and how it is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    status: u16,
    body_start: usize,
    framing: Framing,
    close: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    /// No length and not chunked: the body runs until the server closes.
    UntilClose,
}

/// One keep-alive connection; it reconnects on the next request after a failure.
#[derive(Debug)]
pub struct Http1 {
    addr: SocketAddr,
    host: String,
    stream: Option<TcpStream>,
    out: Vec<u8>,
    input: Vec<u8>,
}

impl Http1 {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, host: addr.to_string(), stream: None, out: Vec::with_capacity(4096), input: Vec::new() }
    }

    pub async fn connect(&mut self) -> Result<(), Failure> {
        let stream = TcpStream::connect(self.addr).await.map_err(|_| Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        self.stream = Some(stream);
        Ok(())
    }

    /// Forgets the connection, so the next request opens a new one.
    pub fn reset(&mut self) {
        self.stream = None;
    }

    /// Whether the connection is up: not yet closed by the server, as far as the socket says.
    pub fn is_open(&self) -> bool {
        match &self.stream {
            None => false,
            Some(stream) => match stream.try_read(&mut [0u8; 1]) {
                Ok(0) => false,
                Ok(_) => true,
                Err(error) => error.kind() == std::io::ErrorKind::WouldBlock,
            },
        }
    }

    /// Sends a request (`POST` with `body`, or a body-less `GET`) and reads the whole
    /// response; returns its status.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        content_type: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<u16, Failure> {
        // Pieces are copied rather than formatted: `write!` showed up in profiles.
        let out = &mut self.out;
        out.clear();
        for piece in [method.as_bytes(), b" ", path.as_bytes(), b" HTTP/1.1\r\nhost: ", self.host.as_bytes()] {
            out.extend_from_slice(piece);
        }
        if !content_type.is_empty() {
            out.extend_from_slice(b"\r\ncontent-type: ");
            out.extend_from_slice(content_type.as_bytes());
        }
        out.extend_from_slice(b"\r\nuser-agent: clickstream-loadtest\r\n");
        if let Some(authorization) = authorization {
            out.extend_from_slice(b"authorization: ");
            out.extend_from_slice(authorization.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);
        let reused = self.stream.is_some();
        match self.exchange().await {
            // A server may close an idle keep-alive connection just before the request; it has
            // read nothing, so the request goes again on a fresh connection.
            Err(Failure::Io { answered: false }) if reused => {
                self.connect().await?;
                self.exchange().await
            }
            other => other,
        }
    }

    async fn exchange(&mut self) -> Result<u16, Failure> {
        if self.stream.is_none() {
            self.connect().await?;
        }
        let result = self.write_and_read().await;
        if !matches!(result, Ok((_, false))) {
            self.stream = None;
        }
        result.map(|(status, _)| status)
    }

    /// The status, and whether the connection must close after this response.
    async fn write_and_read(&mut self) -> Result<(u16, bool), Failure> {
        let stream = self.stream.as_mut().ok_or(Failure::Connect)?;
        stream.write_all(&self.out).await.map_err(|_| Failure::Io { answered: false })?;
        self.input.clear();
        let head = loop {
            if let Some(head) = parse_head(&self.input)? {
                break head;
            }
            read_more(stream, &mut self.input).await?;
        };
        loop {
            let body = &self.input[head.body_start..];
            let complete = match head.framing {
                Framing::Length(length) => body.len() >= length,
                Framing::Chunked => chunked_end(body)?.is_some(),
                Framing::UntilClose => false,
            };
            if complete {
                return Ok((head.status, head.close));
            }
            match read_more(stream, &mut self.input).await {
                Err(_) if head.framing == Framing::UntilClose => return Ok((head.status, true)),
                other => other?,
            }
        }
    }
}

async fn read_more(stream: &mut TcpStream, input: &mut Vec<u8>) -> Result<(), Failure> {
    let answered = !input.is_empty();
    input.reserve(4096);
    match stream.read_buf(input).await {
        Ok(0) | Err(_) => Err(Failure::Io { answered }),
        Ok(_) => Ok(()),
    }
}

/// The response head in `input`, once all of it has arrived.
fn parse_head(input: &[u8]) -> Result<Option<Head>, Failure> {
    let Some(end) = memchr::memmem::find(input, b"\r\n\r\n") else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&input[..end]).map_err(|_| Failure::Protocol)?;
    // A char pattern searches with memchr; a "\r\n" one with the slower two-way searcher.
    let mut lines = text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line));
    let status_line = lines.next().ok_or(Failure::Protocol)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or(Failure::Protocol)?;
    if !version.starts_with("HTTP/1.") {
        return Err(Failure::Protocol);
    }
    let (mut length, mut chunked, mut close) = (None, false, version == "HTTP/1.0");
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| Failure::Protocol)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let framing = if chunked {
        Framing::Chunked
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::Length(0)
    } else {
        length.map_or(Framing::UntilClose, Framing::Length)
    };
    Ok(Some(Head { status, body_start: end + 4, framing, close: close || framing == Framing::UntilClose }))
}

/// Where a chunked body ends, once it has all arrived (trailers included).
fn chunked_end(body: &[u8]) -> Result<Option<usize>, Failure> {
    let mut at = 0;
    loop {
        let Some(line_end) = memchr::memmem::find(&body[at..], b"\r\n").map(|i| at + i) else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&body[at..line_end]).map_err(|_| Failure::Protocol)?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| Failure::Protocol)?;
        at = line_end + 2;
        if size == 0 {
            // Trailers, if any, end with an empty line.
            return Ok(memchr::memmem::find(&body[at - 2..], b"\r\n\r\n").map(|i| at - 2 + i + 4));
        }
        if body.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_parsed_with_their_framing() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 16\r\nContent-Type: a\r\n\r\n{\"success\":true}")
            .expect("valid")
            .expect("complete");
        assert_eq!((head.status, head.framing, head.close), (200, Framing::Length(16), false));
        assert_eq!(head.body_start, 56);
        assert_eq!(parse_head(b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\n"), Ok(None));
        let chunked = parse_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert_eq!((chunked.framing, chunked.close), (Framing::Chunked, true));
        let until_close = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").expect("valid").expect("complete");
        assert_eq!((until_close.framing, until_close.close), (Framing::UntilClose, true));
        assert_eq!(parse_head(b"SSH-2.0 hello\r\n\r\n"), Err(Failure::Protocol));
    }

    #[test]
    fn chunked_bodies_end_after_the_last_chunk() {
        assert_eq!(chunked_end(b"5\r\nhello\r\n"), Ok(None));
        assert_eq!(chunked_end(b"5\r\nhello\r\n0\r\n"), Ok(None));
        assert_eq!(chunked_end(b"5\r\nhello\r\n0\r\n\r\n"), Ok(Some(15)));
        assert_eq!(chunked_end(b"5;x=y\r\nhello\r\n0\r\nx-trailer: 1\r\n\r\n"), Ok(Some(33)));
        assert_eq!(chunked_end(b"zz\r\n"), Err(Failure::Protocol));
    }
}
