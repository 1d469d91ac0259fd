//! The service's HTTP endpoint (`[http] listen`): `/metrics` (Prometheus text, rendered by the
//! exporter), `/healthz` (the process answers) and `/readyz` (it can do its job: Kafka and the
//! warehouse reached, migrations applied, no table stopped), both with a JSON body saying what
//! is wrong. Three GET routes need no web framework: one request per connection, then close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::observe::health::Health;

/// Binds `listen` (a failure is an error at startup, not a silent absence of metrics).
pub async fn bind(listen: &str) -> Result<TcpListener> {
    let listener =
        TcpListener::bind(listen).await.with_context(|| format!("[http] listen = {listen:?}: cannot bind"))?;
    info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "serving /metrics, /healthz, /readyz");
    Ok(listener)
}

/// Serves until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: PrometheusHandle,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((sock, peer)) = accepted else { continue };
                let (metrics, health) = (metrics.clone(), health.clone());
                tokio::spawn(async move {
                    if let Err(e) = answer(sock, &metrics, &health).await {
                        debug!(%peer, error = %e, "http request");
                    }
                });
            }
            _ = stop.changed() => return,
        }
    }
}

async fn answer(mut sock: TcpStream, metrics: &PrometheusHandle, health: &Health) -> Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // The request line and headers (a body is not expected); bounded in size and time.
    let read = async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.context("reading the request")??;
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = path.split('?').next().unwrap_or_default();
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", metrics.render()),
        ("GET", "/healthz") => {
            ("200 OK", "application/json", json!({"alive": true, "version": env!("CARGO_PKG_VERSION")}).to_string())
        }
        ("GET", "/readyz") => {
            let problems = health.readiness_problems();
            let status = if problems.is_empty() { "200 OK" } else { "503 Service Unavailable" };
            (status, "application/json", json!({"ready": problems.is_empty(), "problems": problems}).to_string())
        }
        ("GET", _) => ("404 Not Found", "application/json", json!({"error": "not found"}).to_string()),
        _ => ("405 Method Not Allowed", "application/json", json!({"error": "GET only"}).to_string()),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    sock.write_all(reply.as_bytes()).await?;
    sock.shutdown().await?;
    Ok(())
}

/// The address a listener ended up on (for `127.0.0.1:0`).
pub fn local(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}
