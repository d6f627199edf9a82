//! Connection hygiene: a cap on open connections (what the file-descriptor limit allows less
//! what the store and journal need), the oldest idle connection closed to make room for a new
//! one, an idle timeout, and a fast 503 when every connection is busy.
//!
//! A connection is *busy* while a request on it is being handled; before its first request's
//! headers have arrived, and between requests, it is *idle*. Slow-header clients are idle by
//! this definition, so holding hundreds of half-open connections cannot lock a real client
//! out: each new connection takes the place of the oldest idle one.

use crate::pipeline::Shared;
use axum_server::accept::Accept;
use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// File descriptors kept for everything but connections: the journal's segments and
/// directory, SQLite's database, WAL and shared-memory files on each connection, the TLS
/// files, the runtime's own (epoll, eventfds), logs. Per store connection, on top of it.
const FD_RESERVE: u64 = 64;
const FDS_PER_STORE_CONNECTION: u64 = 3;
/// Store connections besides the read pool: writer, checkpointer, journal dedup, analysis,
/// backlog, narration cache.
const FIXED_STORE_CONNECTIONS: u64 = 6;

/// Raise the soft file-descriptor limit to the hard one; the soft limit after it.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write the struct passed by pointer.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return None;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim.rlim_cur = lim.rlim_max;
                } else {
                    tracing::warn!(
                        error = %io::Error::last_os_error(),
                        soft = lim.rlim_cur,
                        "could not raise the soft file-descriptor limit"
                    );
                }
            }
        }
        #[allow(clippy::unnecessary_cast)]
        Some(lim.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Connections allowed at once: the configured cap, or what the file limit leaves once the
/// store's descriptors are reserved, whichever is smaller (at least a few).
pub fn connection_budget(configured: usize, fd_limit: Option<u64>, readers: usize) -> usize {
    let reserve =
        FD_RESERVE + FDS_PER_STORE_CONNECTION * (FIXED_STORE_CONNECTIONS + readers as u64);
    match fd_limit {
        Some(limit) => configured.min(limit.saturating_sub(reserve).max(8) as usize),
        None => configured,
    }
}

/// One open connection's state, shared by its stream, its service and the limiter.
pub struct ConnState {
    /// Requests being handled on it.
    busy: AtomicUsize,
    /// Set to close it (evicted for a newer one).
    kill: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl ConnState {
    fn close(&self) {
        self.kill.store(true, Ordering::Release);
        let w = match self.waker.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(w) = w {
            w.wake();
        }
    }
}

pub struct ConnLimiter {
    max: usize,
    next_id: AtomicU64,
    /// Open connections by id; ids grow, so the first idle one is the oldest.
    conns: Mutex<BTreeMap<u64, Arc<ConnState>>>,
    shared: Arc<Shared>,
}

/// A connection's place; freed when its stream is dropped.
pub struct Slot {
    id: u64,
    state: Arc<ConnState>,
    limiter: Arc<ConnLimiter>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.limiter.lock();
        // An evicted connection's place was already given to its successor.
        if m.remove(&self.id).is_some() {
            self.limiter
                .shared
                .metrics
                .open_connections
                .set(m.len() as i64);
        }
    }
}

impl ConnLimiter {
    pub fn new(max: usize, shared: Arc<Shared>) -> Arc<Self> {
        shared.metrics.max_connections.set(max as i64);
        Arc::new(ConnLimiter {
            max: max.max(1),
            next_id: AtomicU64::new(0),
            conns: Mutex::new(BTreeMap::new()),
            shared,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnState>>> {
        match self.conns.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// A place for a new connection: a free one, or the oldest idle connection's (which is
    /// closed). None when every connection is busy.
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut m = self.lock();
        if m.len() >= self.max {
            let oldest_idle = m
                .iter()
                .find(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
                .map(|(id, _)| *id)?;
            if let Some(c) = m.remove(&oldest_idle) {
                c.close();
                self.shared.metrics.limited("max_connections_evicted_idle");
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            busy: AtomicUsize::new(0),
            kill: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        m.insert(id, state.clone());
        self.shared.metrics.open_connections.set(m.len() as i64);
        Some(Slot {
            id,
            state,
            limiter: self.clone(),
        })
    }
}

/// A connection's stream: closed when evicted, or when idle for `idle_timeout`.
pub struct LimitedStream<S> {
    inner: S,
    slot: Slot,
    idle_timeout: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl<S> LimitedStream<S> {
    fn new(inner: S, slot: Slot, idle_timeout: Duration) -> Self {
        LimitedStream {
            inner,
            slot,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
        }
    }

    fn active(&mut self) {
        let at = tokio::time::Instant::now() + self.idle_timeout;
        self.idle.as_mut().reset(at);
    }

    /// Closed (evicted, or idle too long): the error that ends the connection.
    fn check(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let st = &self.slot.state;
        if st.kill.load(Ordering::Acquire) {
            return Some(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed to make room for a new connection",
            ));
        }
        match st.waker.lock() {
            Ok(mut g) => *g = Some(cx.waker().clone()),
            Err(p) => *p.into_inner() = Some(cx.waker().clone()),
        }
        if st.busy.load(Ordering::Acquire) == 0 && self.idle.as_mut().poll(cx).is_ready() {
            self.slot.limiter.shared.metrics.limited("idle_timeout");
            return Some(io::Error::new(io::ErrorKind::TimedOut, "idle connection"));
        }
        None
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LimitedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.check(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.active();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LimitedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.slot.state.kill.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The service of one connection: marks it busy while a request is handled.
#[derive(Clone)]
pub struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

struct Busy(Arc<ConnState>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S, R> tower::Service<R> for Tracked<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.state.busy.fetch_add(1, Ordering::AcqRel);
        let guard = Busy(self.state.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let _busy = guard;
            fut.await
        })
    }
}

/// The answer to a connection over the limit when every connection is busy (plain HTTP; a
/// TLS connection is just closed).
const FULL_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 77\r\n\r\n{\"error\":\"too many connections (server.max_connections); retry in a second\"}\n";

/// Admits connections through the limiter, then hands them to `inner` (plain or TLS).
#[derive(Clone)]
pub struct LimitedAcceptor<A> {
    pub inner: A,
    pub limiter: Arc<ConnLimiter>,
    pub idle_timeout: Duration,
    pub tls: bool,
}

impl LimitedAcceptor<()> {
    /// The same limits around the acceptor that completes the connection (plain or TLS).
    pub fn with_inner<A>(self, inner: A) -> LimitedAcceptor<A> {
        LimitedAcceptor {
            inner,
            limiter: self.limiter,
            idle_timeout: self.idle_timeout,
            tls: self.tls,
        }
    }
}

impl<A, S> Accept<TcpStream, S> for LimitedAcceptor<A>
where
    A: Accept<LimitedStream<TcpStream>, Tracked<S>> + Clone + Send + Sync + 'static,
    A::Future: Send,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn Future<Output = io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, mut stream: TcpStream, service: S) -> Self::Future {
        let me = self.clone();
        Box::pin(async move {
            let Some(slot) = me.limiter.admit() else {
                me.limiter.shared.metrics.limited("max_connections");
                if !me.tls {
                    // Best effort and brief: the point is to answer at once.
                    let _ = tokio::time::timeout(
                        Duration::from_millis(500),
                        stream.write_all(FULL_RESPONSE),
                    )
                    .await;
                }
                return Err(io::Error::other("connection limit reached"));
            };
            let _ = stream.set_nodelay(true);
            let state = slot.state.clone();
            let s = LimitedStream::new(stream, slot, me.idle_timeout);
            me.inner
                .accept(
                    s,
                    Tracked {
                        inner: service,
                        state,
                    },
                )
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fd_limit_caps_connections_after_the_store_reserve() {
        assert_eq!(connection_budget(1024, None, 4), 1024);
        assert_eq!(connection_budget(1024, Some(1 << 20), 4), 1024);
        // 256 less 64 and 3 per store connection (6 + 4 readers).
        assert_eq!(connection_budget(1024, Some(256), 4), 256 - 64 - 30);
        assert_eq!(connection_budget(1024, Some(10), 4), 8);
    }

    #[test]
    fn a_full_limiter_evicts_the_oldest_idle_connection_and_refuses_when_all_are_busy() {
        let l = ConnLimiter::new(2, Arc::new(Shared::new(10)));
        let a = l.admit().unwrap();
        let b = l.admit().unwrap();
        a.state.busy.fetch_add(1, Ordering::AcqRel);
        // `b` is idle: it makes room.
        let c = l.admit().unwrap();
        assert!(b.state.kill.load(Ordering::Acquire));
        assert!(!a.state.kill.load(Ordering::Acquire));
        assert_eq!(l.open(), 2);
        drop(b);
        assert_eq!(l.open(), 2, "an evicted slot is not freed twice");
        c.state.busy.fetch_add(1, Ordering::AcqRel);
        assert!(l.admit().is_none());
        drop(a);
        assert_eq!(l.open(), 1);
        assert!(l.admit().is_some());
    }
}
