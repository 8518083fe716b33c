//! Accepting and serving connections with deadlines, so that a client
//! cannot hold the server's resources by being slow or silent: request
//! headers must arrive within [`HEADER_DEADLINE`], which also closes a
//! keep-alive connection that sends no new request for that long (bodies
//! have theirs in [`crate::request_limits`]).
//!
//! `axum::serve` offers no deadline at all (hyper's header timeout needs a
//! timer it does not set, and its HTTP/1-or-2 detection waits for a first
//! byte forever), so this is its accept loop with hyper's HTTP/1.1
//! connection configured. HTTP/2 is left to the TLS-terminating proxy in
//! front, which is where browsers negotiate it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::client_address::TrustedProxies;

/// The longest a client may take to send a request's headers, or stay
/// silent on a kept-alive connection.
pub const HEADER_DEADLINE: Duration = Duration::from_secs(10);
/// The most a connection buffers while reading (headers, or body frames).
pub const READ_BUFFER_BYTES: usize = 64 * 1024;
/// How long a graceful shutdown waits for connections to finish.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and lets requests in flight finish (at most [`DRAIN_DEADLINE`]).
/// Each request carries its client's address as `ConnectInfo<SocketAddr>`:
/// its peer's, or behind `trusted_proxies` the one they forward.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    trusted_proxies: TrustedProxies,
    shutdown: impl Future<Output = ()> + Send,
) {
    let trusted_proxies = Arc::new(trusted_proxies);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_DEADLINE)
        // A connection's read buffer, and so the largest header block:
        // hyper's default (about 400 KiB) for 10 s is room to hold memory.
        .max_buf_size(READ_BUFFER_BYTES)
        .keep_alive(true);
    // Connections watch `stopping` to shut down gracefully, and each holds
    // a clone of `open` until it ends: `open_tx.closed()` is all of them gone.
    let (stopping_tx, stopping) = watch::channel(false);
    let (open_tx, open) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let proxies = trusted_proxies.clone();
        let service = router.clone().map_request(move |mut request: axum::extract::Request| {
            let client = proxies.client(peer.ip(), request.headers());
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(client, peer.port())));
            request
        });
        let service = TowerToHyperService::new(
            service.map_request(|request: hyper::Request<hyper::body::Incoming>| request.map(axum::body::Body::new)),
        );
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        let (mut stopping, open) = (stopping.clone(), open.clone());
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let outcome = tokio::select! {
                outcome = connection.as_mut() => outcome,
                _ = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = outcome {
                tracing::trace!(error = %error, %peer, "connection ended with an error");
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    drop(open);
    if tokio::time::timeout(DRAIN_DEADLINE, open_tx.closed()).await.is_err() {
        // Their tasks end with the runtime, which the caller shuts down next.
        tracing::warn!("connections still open after the drain deadline are left to close with the process");
    }
}
