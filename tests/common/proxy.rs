//! A TCP proxy the fault tests put between tidemark and a server (PostgreSQL, the Kafka
//! broker) to make the server go away and come back:
//! - `cut`: every open connection is closed and new ones are closed at once (a server down);
//! - `stall`: connections stay open but nothing passes, either way (a network partition:
//!   calls hang instead of failing);
//! - `restore`: traffic flows again.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Open,
    Cut,
    Stall,
}

pub struct Proxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (`port` 0: any) and forwards to `target`.
    pub async fn start(port: u16, target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        let (mode, watcher) = watch::channel(Mode::Open);
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                if *watcher.borrow() == Mode::Cut {
                    drop(client);
                    continue;
                }
                let watcher = watcher.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else { return };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pump(cr, sw, watcher.clone()), pump(sr, cw, watcher));
                });
            }
        });
        Proxy { port, mode }
    }

    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    pub fn stall(&self) {
        self.mode.send_replace(Mode::Stall);
    }

    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }
}

/// Copies one direction while the mode allows: holds the bytes while stalled, closes when cut.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<Mode>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Cut {
                    return;
                }
                continue;
            }
        };
        loop {
            let now = *mode.borrow_and_update();
            match now {
                Mode::Cut => return,
                Mode::Open => break,
                Mode::Stall => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A free port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
