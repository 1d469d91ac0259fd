//! An S3-compatible object store for the claim-check tests: PyPI's moto server, one per test,
//! on a port the OS picks (read back from what it prints). Objects are put while it is open;
//! then it authenticates every request (Signature Version 4) against one user's keys.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct S3Server {
    child: Child,
    pub endpoint: String,
}

fn python() -> String {
    std::env::var("TIDEMARK_MOTO_PYTHON").unwrap_or_else(|_| {
        panic!(
            "TIDEMARK_MOTO_PYTHON is not set: the claim-check tests need an S3 server (moto). Run the tests with \
             ./scripts/test.sh, which installs it, or: python3 -m venv ~/.cache/tidemark/moto && \
             ~/.cache/tidemark/moto/bin/pip install 'moto[server]==5.1.22' && \
             export TIDEMARK_MOTO_PYTHON=~/.cache/tidemark/moto/bin/python"
        )
    })
}

impl S3Server {
    pub fn start() -> S3Server {
        let mut child = Command::new(python())
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto's server");
        // Werkzeug says where it listens on stderr (older versions: stdout).
        let err = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Some(at) = line.find("Running on http://") {
                    let _ = tx.send(line[at + "Running on ".len()..].trim().to_string());
                }
            }
        });
        let endpoint =
            rx.recv_timeout(std::time::Duration::from_secs(60)).expect("moto's server did not say where it listens");
        S3Server { child, endpoint }
    }

    /// A bucket holding every file of `dir` under `prefix`, and a user who may read them; from
    /// then on every request must be signed with that user's keys: (access key, secret key).
    pub fn prepare(&self, bucket: &str, prefix: &str, dir: &Path) -> (String, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/setup.py");
        let out = Command::new(python())
            .arg(script)
            .args(["--endpoint", &self.endpoint, "--bucket", bucket, "--prefix", prefix])
            .arg("--dir")
            .arg(dir)
            .output()
            .expect("run tests/s3/setup.py");
        assert!(out.status.success(), "setup.py: {}", String::from_utf8_lossy(&out.stderr));
        let keys: serde_json::Value = serde_json::from_slice(&out.stdout).expect("setup.py prints JSON");
        (keys["access_key"].as_str().unwrap().to_string(), keys["secret_key"].as_str().unwrap().to_string())
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
