//! A real Kafka-protocol broker process for the fault and end-to-end tests: `tansu`
//! (crates.io; `./scripts/test.sh` installs it when missing) with in-memory storage.
//!
//! tansu listens on a port the system assigns (read back from the process's sockets), behind a
//! proxy of the test's own whose port — also assigned by the system — is what tansu advertises:
//! no port is ever picked and released before use, and the outage tests cut the proxy.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::proxy::{listening_port, Bound, Proxy};

pub struct Broker {
    child: Child,
    /// Where clients connect (the advertised listener: the proxy).
    pub bootstrap: String,
    pub log: PathBuf,
    /// Between the clients and tansu: `proxy.cut()` makes the broker go away.
    pub proxy: Proxy,
}

/// The tansu binary: `TIDEMARK_TANSU`, else `tansu` on PATH or in ~/.cargo/bin. Missing is a
/// loud failure with the fix, never a skipped test.
pub fn tansu() -> PathBuf {
    if let Some(p) = std::env::var_os("TIDEMARK_TANSU") {
        return PathBuf::from(p);
    }
    let mut candidates: Vec<PathBuf> =
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).map(|d| d.join("tansu")).collect();
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/tansu"));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "the fault tests need the `tansu` Kafka broker and it is not installed.\n\
             Run the tests with ./scripts/test.sh (it installs tansu once, ~10 minutes), or:\n    \
             cargo install --locked tansu --version 0.6.0 --features dynostore\n\
             or point TIDEMARK_TANSU at a tansu binary."
        )
    })
}

impl Broker {
    /// A broker behind its proxy.
    pub async fn start() -> Broker {
        let front = Bound::new().await;
        let log = super::process::log_path(&format!("tansu-{}.log", front.port));
        let file = std::fs::File::create(&log).expect("tansu log");
        let mut child = Command::new(tansu())
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                "tcp://127.0.0.1:0",
                "--advertised-listener-url",
                &format!("tcp://127.0.0.1:{}", front.port),
            ])
            .env("RUST_LOG", std::env::var("TIDEMARK_TANSU_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("starting tansu");
        let deadline = Instant::now() + Duration::from_secs(30);
        let listen = loop {
            if let Some(port) = listening_port(child.id()) {
                break port;
            }
            assert!(
                child.try_wait().expect("tansu").is_none(),
                "tansu exited: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            assert!(Instant::now() < deadline, "tansu did not listen within 30 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let proxy = front.forward(format!("127.0.0.1:{listen}").parse().expect("address"));
        let broker = Broker { child, bootstrap: format!("127.0.0.1:{}", proxy.port), log, proxy };
        tokio::task::block_in_place(|| broker.wait_ready(listen));
        broker
    }

    fn wait_ready(&self, listen: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{listen}"))
            .set("group.id", "probe")
            .create()
            .expect("probe client");
        while probe.fetch_metadata(None, Duration::from_secs(2)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not answer within 30 s: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.bootstrap).create().expect("admin client");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let res = admin
            .create_topics([&topic], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))))
            .await
            .expect("create_topics");
        for r in res {
            r.unwrap_or_else(|(t, e)| panic!("creating topic {t}: {e}"));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
