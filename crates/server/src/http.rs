//! A minimal HTTP/1.1 server on `--http-addr`, written by hand on tokio:
//! one request per connection, then the connection is closed.
//!
//! - `GET /health`: 200 `{"status":"ok","node_id":N,"cluster_id":"..."}`
//!   once the node serves (belongs to a cluster), 503
//!   `{"status":"starting"}` before.
//! - Any other path: 404. A malformed or oversized request: 400.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::node::Shared;

/// Largest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("HTTP accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let health = shared.running().map(|r| (r.node_id, r.cluster_id.clone()));
        tokio::spawn(handle(stream, health));
    }
}

async fn handle(mut stream: TcpStream, health: Option<(u64, String)>) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => Some(head),
        Ok(Ok(None)) => None, // too large or not HTTP
        Ok(Err(_)) | Err(_) => return,
    };
    let response = match head {
        Some(head) => respond(&head, health.as_ref()),
        None => render(400, "Bad Request", "{\"error\":\"bad request\"}", false),
    };
    let _ = tokio::time::timeout(READ_TIMEOUT, async {
        let _ = stream.write_all(&response).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Reads up to the blank line that ends the head. `Ok(None)`: the head is
/// too large or the peer closed before finishing it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf) {
            buf.truncate(end);
            return Ok(Some(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n"))
}

/// The response to a request head, given the node's identity if it serves.
pub(crate) fn respond(head: &[u8], health: Option<&(u64, String)>) -> Vec<u8> {
    let Some((method, path)) = request_line(head) else {
        return render(400, "Bad Request", "{\"error\":\"bad request\"}", false);
    };
    let head_only = method == "HEAD";
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/health" => {
            if method != "GET" && !head_only {
                return render(
                    405,
                    "Method Not Allowed",
                    "{\"error\":\"method not allowed\"}",
                    false,
                );
            }
            match health {
                Some((node_id, cluster_id)) => render(
                    200,
                    "OK",
                    &format!(
                        "{{\"status\":\"ok\",\"node_id\":{node_id},\"cluster_id\":\"{}\"}}",
                        json_escape(cluster_id)
                    ),
                    head_only,
                ),
                None => render(
                    503,
                    "Service Unavailable",
                    "{\"status\":\"starting\"}",
                    head_only,
                ),
            }
        }
        _ => render(404, "Not Found", "{\"error\":\"not found\"}", head_only),
    }
}

/// `METHOD SP PATH SP HTTP/1.x` from the first line of the head.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let text = std::str::from_utf8(head).ok()?;
    let line = text.lines().next()?;
    let mut parts = line.split(' ');
    let (method, path, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || method.is_empty()
        || !method.bytes().all(|b| b.is_ascii_uppercase())
        || !path.starts_with('/')
        || !version.starts_with("HTTP/1.")
    {
        return None;
    }
    Some((method, path))
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn render(code: u16, reason: &str, body: &str, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if code == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(body);
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(resp: &[u8]) -> u16 {
        let s = String::from_utf8_lossy(resp);
        s.split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    fn body_of(resp: &[u8]) -> String {
        let s = String::from_utf8_lossy(resp).to_string();
        s.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
    }

    #[test]
    fn health_reports_starting_then_ok() {
        let req = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        let r = respond(req, None);
        assert_eq!(status_of(&r), 503);
        assert_eq!(body_of(&r), "{\"status\":\"starting\"}");
        let id = (2, "abc".to_string());
        let r = respond(req, Some(&id));
        assert_eq!(status_of(&r), 200);
        assert_eq!(
            body_of(&r),
            "{\"status\":\"ok\",\"node_id\":2,\"cluster_id\":\"abc\"}"
        );
        let len = format!("Content-Length: {}\r\n", body_of(&r).len());
        assert!(String::from_utf8_lossy(&r).contains(&len));
    }

    #[test]
    fn unknown_paths_are_404_and_garbage_is_400() {
        let id = (1, "c".to_string());
        assert_eq!(
            status_of(&respond(b"GET /nope HTTP/1.1\r\n\r\n", Some(&id))),
            404
        );
        assert_eq!(
            status_of(&respond(b"GET /health?x=1 HTTP/1.0\r\n\r\n", Some(&id))),
            200
        );
        assert_eq!(
            status_of(&respond(b"POST /health HTTP/1.1\r\n\r\n", Some(&id))),
            405
        );
        for bad in [
            &b""[..],
            b"\xff\xfe\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /health\r\n\r\n",
            b"GET health HTTP/1.1\r\n\r\n",
            b"get /health HTTP/1.1\r\n\r\n",
            b"GET /health SPDY/3\r\n\r\n",
            b"GET /health HTTP/1.1 extra\r\n\r\n",
        ] {
            assert_eq!(status_of(&respond(bad, Some(&id))), 400, "{bad:?}");
        }
    }

    #[test]
    fn head_end_accepts_crlf_and_bare_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }
}
