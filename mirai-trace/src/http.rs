//! A small blocking HTTP/1.1 client over std's `TcpStream`, for the OTLP exporter.
//!
//! The exporter runs on the batch span processor's own thread, so blocking there is what we
//! want: no async runtime, no connection pool, one connection per export (a batch every few
//! seconds at most). Plain `http://` only; `https://` endpoints are refused at configuration
//! (see [`crate::config`]). Every wait is bounded by the configured timeout, and a response
//! larger than [`MAX_RESPONSE`] is an error, so a misbehaving collector cannot hang or bloat
//! the process.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// The largest response body accepted (OTLP responses are a few bytes).
pub const MAX_RESPONSE: usize = 4 << 20;

/// Largest response head (status line and headers) accepted.
const MAX_HEAD: usize = 64 << 10;

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpFailure {
    /// The URL cannot be used by this client.
    #[error("cannot send to '{url}': {why}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        why: &'static str,
    },
    /// Connecting, writing or reading failed (including timeouts).
    #[error("OTLP endpoint {authority}: {source}")]
    Io {
        /// `host:port`.
        authority: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The endpoint answered something that is not an HTTP/1.x response.
    #[error("OTLP endpoint {authority} sent a malformed HTTP response: {why}")]
    Malformed {
        /// `host:port`.
        authority: String,
        /// What was wrong.
        why: String,
    },
}

/// The exporter's HTTP client: blocking, one connection per request, bounded by `timeout`.
#[derive(Debug, Clone)]
pub struct BlockingHttp {
    timeout: Duration,
}

impl BlockingHttp {
    /// A client whose every request completes or fails within about `timeout`.
    pub fn new(timeout: Duration) -> Self {
        BlockingHttp { timeout }
    }

    /// Sends one request and reads the whole response, blocking.
    pub fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpFailure> {
        let uri = request.uri().clone();
        let url = uri.to_string();
        if uri.scheme_str() != Some("http") {
            return Err(HttpFailure::Url {
                url,
                why: "only http:// URLs are supported",
            });
        }
        let host = uri.host().ok_or(HttpFailure::Url {
            url: url.clone(),
            why: "no host",
        })?;
        let port = uri.port_u16().unwrap_or(80);
        let authority = uri
            .authority()
            .map_or_else(|| host.to_string(), |a| a.to_string());
        let io = |source: std::io::Error| HttpFailure::Io {
            authority: authority.clone(),
            source,
        };
        let deadline = Instant::now() + self.timeout;

        // `Uri::host` keeps the brackets of an IPv6 literal; the resolver wants them off.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let mut stream = connect(bare, port, self.timeout).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        stream
            .set_write_timeout(Some(remaining(deadline).map_err(io)?))
            .map_err(io)?;

        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut head = format!(
            "{} {path} HTTP/1.1\r\nHost: {authority}\r\n",
            request.method()
        );
        for (name, value) in request.headers() {
            // Framing headers are ours to set.
            if matches!(
                name.as_str(),
                "host" | "content-length" | "connection" | "transfer-encoding"
            ) {
                continue;
            }
            let Ok(value) = value.to_str() else { continue };
            head.push_str(name.as_str());
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        let body = request.body();
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body).map_err(io)?;
        stream.flush().map_err(io)?;

        read_response(&mut stream, deadline).map_err(|e| match e {
            ReadError::Io(source) => HttpFailure::Io {
                authority: authority.clone(),
                source,
            },
            ReadError::Malformed(why) => HttpFailure::Malformed {
                authority: authority.clone(),
                why,
            },
        })
    }
}

#[async_trait]
impl HttpClient for BlockingHttp {
    /// Blocks the calling thread (the batch span processor's): see the module docs.
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        self.send(request).map_err(|e| Box::new(e) as HttpError)
    }
}

fn connect(host: &str, port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    let mut last = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the host name resolves to no address",
        )
    }))
}

fn remaining(deadline: Instant) -> std::io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ))
    } else {
        Ok(left)
    }
}

enum ReadError {
    Io(std::io::Error),
    Malformed(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads from `r` into `buf`, at most `limit` bytes in all, until `done(buf)` or EOF; each
/// read is bounded by what is left of the deadline.
fn fill(
    r: &mut TcpStream,
    buf: &mut Vec<u8>,
    deadline: Instant,
    limit: usize,
    done: impl Fn(&[u8]) -> bool,
) -> Result<bool, ReadError> {
    let mut chunk = [0u8; 8192];
    while !done(buf) {
        if buf.len() >= limit {
            return Err(ReadError::Malformed(format!(
                "response larger than {limit} bytes"
            )));
        }
        r.set_read_timeout(Some(remaining(deadline)?))?;
        let want = chunk.len().min(limit - buf.len());
        let n = match r.read(&mut chunk[..want]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(true)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn read_response(r: &mut TcpStream, deadline: Instant) -> Result<Response<Bytes>, ReadError> {
    let mut buf = Vec::new();
    if !fill(r, &mut buf, deadline, MAX_HEAD, |b| {
        find(b, b"\r\n\r\n").is_some()
    })? {
        return Err(ReadError::Malformed(
            "connection closed before the response head ended".into(),
        ));
    }
    let head_end = find(&buf, b"\r\n\r\n").map_or(buf.len(), |i| i + 4);
    let head = std::str::from_utf8(&buf[..head_end - 4])
        .map_err(|_| ReadError::Malformed("response head is not text".into()))?
        .to_string();
    let mut rest = buf.split_off(head_end);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Malformed(format!(
            "unexpected status line '{}'",
            truncate(status_line)
        )));
    }
    let code: u16 = code.parse().map_err(|_| {
        ReadError::Malformed(format!(
            "unexpected status line '{}'",
            truncate(status_line)
        ))
    })?;
    let mut builder = Response::builder().status(code);
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::Malformed(format!(
                "bad header line '{}'",
                truncate(line)
            )));
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| ReadError::Malformed("bad Content-Length".into()))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
        builder = builder.header(name, value);
    }
    let body = if chunked {
        fill(r, &mut rest, deadline, MAX_RESPONSE, |b| {
            chunked_complete(b).is_some()
        })?;
        chunked_complete(&rest)
            .ok_or_else(|| ReadError::Malformed("connection closed inside a chunked body".into()))?
            .map_err(ReadError::Malformed)?
    } else if let Some(len) = length {
        if len > MAX_RESPONSE {
            return Err(ReadError::Malformed(format!(
                "response body of {len} bytes is too large"
            )));
        }
        if !fill(r, &mut rest, deadline, len, |b| b.len() >= len)? {
            return Err(ReadError::Malformed(
                "connection closed before the body ended".into(),
            ));
        }
        rest.truncate(len);
        rest
    } else {
        // No length: the body runs to the end of the connection (we asked for close).
        fill(r, &mut rest, deadline, MAX_RESPONSE, |_| false)?;
        rest
    };
    builder
        .body(Bytes::from(body))
        .map_err(|e| ReadError::Malformed(format!("bad response header: {e}")))
}

/// Decodes a chunked body: `None` while incomplete, `Some(Err)` if malformed.
fn chunked_complete(b: &[u8]) -> Option<Result<Vec<u8>, String>> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let eol = find(&b[i..], b"\r\n")? + i;
        let size_text = std::str::from_utf8(&b[i..eol]).ok()?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = match usize::from_str_radix(size_text, 16) {
            Ok(s) => s,
            Err(_) => return Some(Err(format!("bad chunk size '{}'", truncate(size_text)))),
        };
        let start = eol + 2;
        if size == 0 {
            // Trailers, then an empty line; we take none of them.
            return find(&b[start..], b"\r\n").map(|_| Ok(out));
        }
        let end = start.checked_add(size)?;
        if b.len() < end + 2 {
            return None;
        }
        out.extend_from_slice(&b[start..end]);
        i = end + 2;
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves one connection: reads the request head and body, answers `reply`, and returns
    /// what it received.
    fn serve_once(reply: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", l.local_addr().unwrap());
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).unwrap();
                got.extend_from_slice(&chunk[..n]);
                if let Some(h) = find(&got, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..h]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map(|v| v.trim().parse().unwrap())
                        .unwrap_or(0);
                    if got.len() >= h + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            s.write_all(reply).unwrap();
            got
        });
        (url, t)
    }

    fn post(url: &str, body: &'static [u8]) -> Request<Bytes> {
        Request::post(url)
            .header("content-type", "application/x-protobuf")
            .header("x-team", "r")
            .body(Bytes::from_static(body))
            .unwrap()
    }

    #[test]
    fn posts_the_body_with_its_headers_and_reads_a_sized_response() {
        let (url, t) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 3\r\n\r\nabc");
        let resp = BlockingHttp::new(Duration::from_secs(10))
            .send(post(&url, b"\x0a\x01z"))
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.body().as_ref(), b"abc");
        let got = t.join().unwrap();
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("POST /v1/traces HTTP/1.1\r\n"), "{text}");
        assert!(
            text.contains("content-type: application/x-protobuf\r\n"),
            "{text}"
        );
        assert!(text.contains("x-team: r\r\n"), "{text}");
        assert!(text.contains("Content-Length: 3\r\n"), "{text}");
        assert!(got.ends_with(b"\r\n\r\n\x0a\x01z"));
    }

    #[test]
    fn reads_chunked_and_unsized_bodies_and_keeps_error_statuses() {
        let (url, t) = serve_once(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x=y\r\nc\r\n0\r\n\r\n");
        let resp = BlockingHttp::new(Duration::from_secs(10))
            .send(post(&url, b"x"))
            .unwrap();
        assert_eq!(resp.body().as_ref(), b"abc");
        t.join().unwrap();
        let (url, t) = serve_once(b"HTTP/1.0 503 Busy\r\nRetry-After: 2\r\n\r\nlater");
        let resp = BlockingHttp::new(Duration::from_secs(10))
            .send(post(&url, b"x"))
            .unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["retry-after"], "2");
        assert_eq!(resp.body().as_ref(), b"later");
        t.join().unwrap();
    }

    #[test]
    fn garbage_refusals_and_silence_are_errors_not_hangs() {
        let (url, t) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n");
        let e = BlockingHttp::new(Duration::from_secs(10))
            .send(post(&url, b"x"))
            .unwrap_err();
        assert!(matches!(e, HttpFailure::Malformed { .. }), "{e}");
        t.join().unwrap();

        // Nobody listens on a port we just released.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = BlockingHttp::new(Duration::from_secs(10))
            .send(post(&format!("http://127.0.0.1:{port}/v1/traces"), b"x"))
            .unwrap_err();
        assert!(matches!(e, HttpFailure::Io { .. }), "{e}");

        // A server that accepts and never answers: the timeout ends the wait.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", l.local_addr().unwrap());
        let e = BlockingHttp::new(Duration::from_millis(200))
            .send(post(&url, b"x"))
            .unwrap_err();
        assert!(matches!(e, HttpFailure::Io { .. }), "{e}");
        drop(l);

        let e = BlockingHttp::new(Duration::from_secs(1))
            .send(post("https://127.0.0.1:1/x", b"x"))
            .unwrap_err();
        assert!(matches!(e, HttpFailure::Url { .. }), "{e}");
    }

    #[test]
    fn chunk_decoding_waits_for_the_end_and_rejects_bad_sizes() {
        assert_eq!(chunked_complete(b"3\r\nab"), None);
        assert_eq!(chunked_complete(b"3\r\nabc\r\n"), None);
        assert_eq!(
            chunked_complete(b"3\r\nabc\r\n0\r\n\r\n"),
            Some(Ok(b"abc".to_vec()))
        );
        assert!(matches!(chunked_complete(b"zz\r\n"), Some(Err(_))));
    }
}
