//! The Prometheus `/metrics` endpoint: a small HTTP/1.x server on one thread serving the
//! counters of every worker, summed ([`crate::stats::StatsHub`]), in the text exposition
//! format. It only reads the workers' atomics; it never touches the packet path.
//!
//! Requests are handled one at a time with short timeouts and a bounded request size, so a
//! slow or hostile client cannot hold more than one connection's worth of resources.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::stats::StatsHub;

/// Errors starting the endpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    #[error("metrics address {addr:?}: {msg}")]
    Addr { addr: String, msg: String },
    #[error("metrics: listening on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Most bytes read of one request (request line and headers).
const MAX_REQUEST: usize = 8 * 1024;

/// Parses `ADDR`: `host:port`, `[v6]:port` or a bare port (loopback).
pub fn parse_addr(s: &str) -> Result<SocketAddr, MetricsError> {
    let bad = |msg: &str| MetricsError::Addr {
        addr: s.into(),
        msg: msg.into(),
    };
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    let s2 = s
        .strip_prefix("localhost:")
        .map(|p| format!("127.0.0.1:{p}"));
    s2.as_deref()
        .unwrap_or(s)
        .parse()
        .map_err(|_| bad("expected HOST:PORT (e.g. 127.0.0.1:9110) or a port"))
}

/// A running endpoint; stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` and serves `hub`'s counters at `/metrics`.
    pub fn start(addr: SocketAddr, hub: Arc<StatsHub>) -> Result<Self, MetricsError> {
        let berr = |source| MetricsError::Bind { addr, source };
        let listener = TcpListener::bind(addr).map_err(berr)?;
        let addr = listener.local_addr().map_err(berr)?;
        listener.set_nonblocking(true).map_err(berr)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("khien-metrics".into())
            .spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            if let Err(e) = handle(conn, &hub) {
                                tracing::debug!(error = %e, "metrics request");
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "metrics accept");
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            })
            .map_err(berr)?;
        Ok(MetricsServer {
            addr,
            stop,
            handle: Some(handle),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Serves one request on `conn`.
fn handle(mut conn: TcpStream, hub: &StatsHub) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; MAX_REQUEST];
    let mut len = 0;
    while len < buf.len() {
        let n = match buf.get_mut(len..).map(|rest| conn.read(rest)) {
            Some(Ok(n)) => n,
            // A client that stops sending gets an answer to what it sent.
            Some(Err(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Some(Err(e)) => return Err(e),
            None => break,
        };
        if n == 0 {
            break;
        }
        len += n;
        if buf
            .get(..len)
            .is_some_and(|b| b.windows(4).any(|w| w == b"\r\n\r\n"))
        {
            break;
        }
    }
    let req = buf.get(..len).unwrap_or(&[]);
    let line = req.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut parts = line.split(|&b| b == b' ');
    let method = parts.next().unwrap_or(&[]);
    let target = parts.next().unwrap_or(&[]);
    let path = target.split(|&b| b == b'?').next().unwrap_or(&[]);
    let (status, ctype, body) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            hub.snapshot().prometheus(),
        ),
        (b"GET" | b"HEAD", _) => ("404 Not Found", "text/plain", "not found\n".into()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".into(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    if method != b"HEAD" {
        conn.write_all(body.as_bytes())?;
    }
    conn.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, req: &[u8]) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(req).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_metrics_and_rejects_the_rest() {
        let hub = Arc::new(StatsHub::new());
        let slot = hub.register();
        let mut v = vec![0u64; crate::stats::len()];
        v[crate::stats::C::Pkts as usize] = 42;
        slot.publish(&v);
        let srv = MetricsServer::start(parse_addr("127.0.0.1:0").unwrap(), hub).unwrap();
        let a = srv.local_addr();
        let r = get(a, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("\nkhien_decoder_packets_total 42\n"), "{r}");
        assert!(get(a, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(get(a, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        // Oversized and truncated requests get an answer, not a hang or a panic: the
        // server stops reading at MAX_REQUEST bytes (the client sends exactly that much
        // and keeps its side open).
        let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_REQUEST, b'a');
        let mut c = TcpStream::connect(a).unwrap();
        c.write_all(&big).unwrap();
        let mut out = Vec::new();
        c.read_to_end(&mut out).unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&out)
        );
        let r = get(a, b"GE");
        assert!(r.starts_with("HTTP/1.1 405"), "{r}");
        srv.shutdown();
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("9110").unwrap().to_string(), "127.0.0.1:9110");
        assert_eq!(
            parse_addr("localhost:1").unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert_eq!(parse_addr("[::1]:9").unwrap().to_string(), "[::1]:9");
        assert!(parse_addr("nowhere").is_err());
    }
}
