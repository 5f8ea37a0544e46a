//! The accept loop. hyper serves each connection (HTTP/1.1, or HTTP/2 when the client opens with
//! its preface: h2c, gRPC), with what a server facing untrusted clients needs and `axum::serve`
//! does not offer: a client that opens a connection and sends nothing, or sends a request's
//! headers slower than the read timeout, is cut off instead of holding the connection for good.
//! (A body sent too slowly is bounded where it is read, `api::read_body`.)

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower::ServiceExt;

/// Raises the soft open-file limit to the hard one (each client connection is a file; Linux
/// starts processes at 1024 unless told otherwise), and answers the limit the process now has.
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::debug!(error = %e, "the open-file limit was not raised");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024)
        }
    }
}

/// How many client connections are open, in all and per client address: a connection past
/// either bound is closed as soon as it is accepted, so that one client (or a flood of idle
/// connections, which HTTP/2 may keep open) cannot use up the process's files and take the
/// database, the sandbox workers and every other client with them.
struct Connections {
    total: usize,
    per_ip: usize,
    open: std::sync::Mutex<(usize, std::collections::HashMap<std::net::IpAddr, usize>)>,
    last_warned: std::sync::Mutex<Option<std::time::Instant>>,
}

/// One admitted connection; gives its place back when dropped (when the connection ends).
struct Admitted {
    connections: std::sync::Arc<Connections>,
    ip: std::net::IpAddr,
}

impl Connections {
    fn admit(self: &std::sync::Arc<Self>, ip: std::net::IpAddr) -> Option<Admitted> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (all, by_ip) = &mut *open;
        let from_ip = by_ip.get(&ip).copied().unwrap_or(0);
        if *all >= self.total || from_ip >= self.per_ip {
            let (all, from_ip) = (*all, from_ip);
            drop(open);
            self.warn(ip, all, from_ip);
            return None;
        }
        *all += 1;
        by_ip.insert(ip, from_ip + 1);
        Some(Admitted { connections: self.clone(), ip })
    }

    /// At most one warning a second, however fast refused connections come.
    fn warn(&self, ip: std::net::IpAddr, open: usize, from_ip: usize) {
        let mut last = self.last_warned.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *last = Some(std::time::Instant::now());
        tracing::warn!(
            %ip, open, from_ip, max = self.total, max_per_ip = self.per_ip,
            "connection refused: too many open (ACTIONSD_MAX_CONNECTIONS, ACTIONSD_MAX_CONNECTIONS_PER_IP)"
        );
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self.connections.open.lock().unwrap_or_else(|e| e.into_inner());
        let (all, by_ip) = &mut *open;
        *all = all.saturating_sub(1);
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

/// What the per-address bound counts a connection under: its IPv4 address, or the /64 network of
/// an IPv6 one (a single IPv6 host commonly holds a whole /64; an IPv4-mapped address is IPv4).
fn client_key(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None => std::net::IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
        v4 => v4,
    }
}

/// Serves `app` on the connections `listener` hands out until `shutdown` resolves; then stops
/// accepting, lets every connection finish the requests it has in flight (idle ones close at
/// once) and returns when all have closed. The caller bounds that drain. `limits` bounds the
/// connections open at once (in all, per client address).
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    read_timeout: Duration,
    limits: (usize, usize),
    shutdown: impl Future<Output = ()>,
) where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let connections = std::sync::Arc::new(Connections {
        total: limits.0,
        per_ip: limits.1,
        open: Default::default(),
        last_warned: Default::default(),
    });
    let mut builder = Builder::new(TokioExecutor::new());
    // HTTP/1: the request line and headers must arrive within the read timeout (counted from
    // when the connection waits for a request, so an idle keep-alive connection closes after it).
    builder.http1().timer(TokioTimer::new()).header_read_timeout(read_timeout);
    // HTTP/2 (gRPC) connections may stay idle, but not silent: one that has sent nothing for the
    // read timeout is pinged, and closed if the ping is not answered within the read timeout
    // (every HTTP/2 client answers pings by itself; a peer that is gone or never reads does not).
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(read_timeout).keep_alive_timeout(read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (io, remote) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let Some(admitted) = connections.admit(client_key(remote.ip())) else {
            drop(io);
            continue;
        };
        let service = app.clone().map_request(move |mut req: axum::http::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(remote));
            req.map(axum::body::Body::new)
        });
        let (give_back, given_back) = tokio::sync::oneshot::channel();
        let io = TokioIo::new(ProtocolDeadline::new(io, read_timeout, give_back));
        let connection = graceful.watch(builder.serve_connection(io, TowerToHyperService::new(service)).into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, %remote, "connection ended with an error");
            }
            // The connection still counts while its rest is drained.
            if let Ok(io) = given_back.await {
                linger(io).await;
            }
            drop(admitted);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// How long and how much of a closed connection's incoming bytes are still read (see [`linger`]).
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 16 << 20;

/// A connection the server closed while the client may still be sending (an answer before the
/// request's body was read: 413 for a body announced over the limit, 401): its write side is
/// already shut, and what still arrives is read and dropped for a moment, at most
/// [`LINGER_BYTES`] within [`LINGER_TIME`], before the socket is closed. Closing a socket with
/// unread bytes makes the kernel answer with a reset, which discards the answer the client has not
/// read yet: a client that writes its whole body before reading (Python's http.client) saw a broken
/// pipe instead of the 413.
async fn linger<I: AsyncRead + Unpin>(mut io: I) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 16 << 10];
    let drain = async {
        let mut left = LINGER_BYTES;
        while left > 0 {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// HTTP/2's connection preface, which a client opens an HTTP/2 connection with.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection whose protocol must be known before a deadline: its first bytes either leave
/// HTTP/2's preface (HTTP/1, whose request head hyper then bounds) or complete it (HTTP/2, whose
/// silence hyper's pings bound). Until then hyper only waits to tell the two apart, and that wait
/// has no bound of its own (a client that sent `P` and nothing more held its connection).
///
/// It also hands the connection back when hyper is done with it after shutting it down while the
/// client had not closed its side: the accept loop then drains it ([`linger`]).
struct ProtocolDeadline<I> {
    /// Always there until dropped.
    io: Option<I>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// How many bytes of the preface the connection has sent so far.
    preface_seen: usize,
    /// hyper shut the connection's write side.
    shut: bool,
    /// The client closed its side, or reading failed: nothing to drain.
    read_done: bool,
    give_back: Option<tokio::sync::oneshot::Sender<I>>,
}

impl<I> ProtocolDeadline<I> {
    fn new(io: I, timeout: Duration, give_back: tokio::sync::oneshot::Sender<I>) -> Self {
        ProtocolDeadline {
            io: Some(io),
            deadline: Some(Box::pin(tokio::time::sleep(timeout))),
            preface_seen: 0,
            shut: false,
            read_done: false,
            give_back: Some(give_back),
        }
    }

    fn io(&mut self) -> Pin<&mut I>
    where
        I: Unpin,
    {
        Pin::new(self.io.as_mut().expect("the connection is there until dropped"))
    }

    /// Disarms the deadline once `read` (the latest bytes) tells the protocol.
    fn saw(&mut self, read: &[u8]) {
        let rest = &H2_PREFACE[self.preface_seen..];
        let n = read.len().min(rest.len());
        if read[..n] != rest[..n] || self.preface_seen + n == H2_PREFACE.len() {
            self.deadline = None;
        } else {
            self.preface_seen += n;
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for ProtocolDeadline<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match this.io().poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                if read == 0 && buf.remaining() > 0 {
                    this.read_done = true;
                }
                if this.deadline.is_some() && read > 0 {
                    this.saw(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                this.read_done = true;
                Poll::Ready(Err(e))
            }
            Poll::Pending => {
                let expired = this.deadline.as_mut().is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready());
                if expired {
                    return Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no request arrived within the read timeout",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for ProtocolDeadline<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.io().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.io().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(I::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let done = self.io().poll_shutdown(cx);
        if matches!(done, Poll::Ready(Ok(()))) {
            self.shut = true;
        }
        done
    }
}

impl<I> Drop for ProtocolDeadline<I> {
    fn drop(&mut self) {
        if self.shut && !self.read_done {
            if let (Some(io), Some(give_back)) = (self.io.take(), self.give_back.take()) {
                let _ = give_back.send(io);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::client_key;
    use std::net::IpAddr;

    #[test]
    fn clients_are_counted_by_address_or_ipv6_network() {
        let key = |a: &str| client_key(a.parse::<IpAddr>().unwrap()).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), key("2001:db8:1:2::9"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }
}
