//! A TCP proxy the fault tests put between tidemark and a server (PostgreSQL, the Kafka
//! broker) to make the server go away and come back:
//! - `cut`: every open connection is closed and new ones are closed at once (a server down);
//! - `stall`: connections stay open but nothing passes, either way (a network partition:
//!   calls hang instead of failing);
//! - `restore`: traffic flows again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    /// Bytes that arrived while stalled and are held: something is waiting on the server.
    held: Arc<AtomicU64>,
}

/// A proxy's listening socket, bound before its target is known (a broker must be told the
/// proxy's port before it starts).
pub struct Bound {
    listener: TcpListener,
    pub port: u16,
}

impl Bound {
    /// Listens on a port of 127.0.0.1 the system assigns.
    pub async fn new() -> Bound {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        Bound { listener, port }
    }

    /// Forwards every connection to `target`.
    pub fn forward(self, target: SocketAddr) -> Proxy {
        let Bound { listener, port } = self;
        let (mode, watcher) = watch::channel(Mode::Open);
        let held = Arc::new(AtomicU64::new(0));
        let counter = held.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                if *watcher.borrow() == Mode::Cut {
                    drop(client);
                    continue;
                }
                let (watcher, counter) = (watcher.clone(), counter.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else { return };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pump(cr, sw, watcher.clone(), counter.clone()), pump(sr, cw, watcher, counter));
                });
            }
        });
        Proxy { port, mode, held }
    }
}

impl Proxy {
    /// Listens on a port of 127.0.0.1 the system assigns and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        Bound::new().await.forward(target)
    }

    /// Bytes held since the last stall began.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    pub fn stall(&self) {
        self.held.store(0, Ordering::Relaxed);
        self.mode.send_replace(Mode::Stall);
    }

    pub fn restore(&self) {
        self.mode.send_replace(Mode::Open);
    }
}

/// Copies one direction while the mode allows: holds the bytes while stalled, closes when cut.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<Mode>, held: Arc<AtomicU64>) {
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
                    held.fetch_add(n as u64, Ordering::Relaxed);
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

/// The TCP port a process listens on (the system assigned it: `127.0.0.1:0`), from the
/// process's socket inodes and the kernel's table of listening sockets.
pub fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(str::to_string))
        .collect();
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // local_address is `IP:PORT` in hex; state 0A is LISTEN; the inode is field 9.
        if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
            u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()
        } else {
            None
        }
    })
}
