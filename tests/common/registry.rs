//! A Schema Registry for tests: an HTTP server speaking the calls of Confluent's REST API that
//! TiCDC, Kafka Connect's AvroConverter (real Debezium's) and tidemark use (`POST /subjects/{subject}/versions`, `GET /schemas/ids/{id}`,
//! `GET /subjects/{subject}/versions/latest`), with optional basic auth, a switch that makes
//! it unavailable and one that makes it miss the next lookups.

use std::sync::{Arc, Mutex};

use base64::Engine;
use serde_json::{json, Value as Json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct State {
    schemas: Vec<String>,
    /// (subject, id) in registration order.
    subjects: Vec<(String, usize)>,
    auth: Option<String>,
    down: bool,
    /// The next this-many schema-id lookups answer 404 whatever is registered.
    missing: usize,
    /// Every request, answered or refused.
    requests: usize,
    gets: usize,
}

#[derive(Clone)]
pub struct RegistryServer {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl RegistryServer {
    /// Starts on 127.0.0.1; `auth`: (user, password) required on every request.
    pub async fn start(auth: Option<(&str, &str)>) -> RegistryServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State {
            auth: auth.map(|(u, p)| base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))),
            ..Default::default()
        }));
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                let st = st.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    // Headers, then Content-Length bytes of body.
                    let (head, mut body) = loop {
                        let n = match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&tmp[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break (String::from_utf8_lossy(&buf[..i]).to_string(), buf[i + 4..].to_vec());
                        }
                    };
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    while body.len() < len {
                        match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => body.extend_from_slice(&tmp[..n]),
                        }
                    }
                    let (status, reply) = respond(&st, &head, &body);
                    let text = reply.to_string();
                    let msg = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = sock.write_all(msg.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        RegistryServer { url, state }
    }

    pub fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// The next `n` schema-id lookups answer 404 (a registry replica that lags, a schema
    /// registered a moment after its first record).
    pub fn miss_next(&self, n: usize) {
        self.state.lock().unwrap().missing = n;
    }

    /// Schema lookups served so far.
    pub fn gets(&self) -> usize {
        self.state.lock().unwrap().gets
    }

    /// Requests received so far, answered or refused (while down).
    pub fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }

    /// Registers a schema the way TiCDC does (over HTTP) and returns its id.
    pub async fn register(&self, subject: &str, schema: &str, auth: Option<(&str, &str)>) -> u32 {
        let mut req = reqwest::Client::new()
            .post(format!("{}/subjects/{subject}/versions", self.url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(json!({ "schema": schema }).to_string());
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        let resp = req.send().await.expect("register");
        assert!(resp.status().is_success(), "register: {}", resp.status());
        let v: Json = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        v["id"].as_u64().expect("id") as u32
    }
}

fn respond(state: &Mutex<State>, head: &str, body: &[u8]) -> (&'static str, Json) {
    let mut st = state.lock().unwrap();
    st.requests += 1;
    if st.down {
        return ("503 Service Unavailable", json!({"error_code": 50302, "message": "unavailable"}));
    }
    if let Some(auth) = &st.auth {
        let given = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("authorization").then(|| v.trim().to_string())
        });
        if given.as_deref() != Some(&format!("Basic {auth}")) {
            return ("401 Unauthorized", json!({"error_code": 401, "message": "Unauthorized"}));
        }
    }
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    // Kafka Connect's AvroConverter asks `POST /subjects/{subject}/versions?normalize=false`.
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if method == "GET" {
        if let Some(id) = path.strip_prefix("/schemas/ids/").and_then(|i| i.parse::<usize>().ok()) {
            st.gets += 1;
            if st.missing > 0 {
                st.missing -= 1;
                return ("404 Not Found", json!({"error_code": 40403, "message": format!("Schema {id} not found")}));
            }
            return match st.schemas.get(id.wrapping_sub(1)) {
                Some(s) => ("200 OK", json!({ "schema": s })),
                None => ("404 Not Found", json!({"error_code": 40403, "message": format!("Schema {id} not found")})),
            };
        }
    }
    if method == "GET" {
        if let Some(subject) = path.strip_prefix("/subjects/").and_then(|p| p.strip_suffix("/versions/latest")) {
            let latest = st.subjects.iter().rev().find(|(s, _)| s == subject).map(|(_, id)| *id);
            return match latest {
                Some(id) => {
                    ("200 OK", json!({ "subject": subject, "id": id, "version": 1, "schema": st.schemas[id - 1] }))
                }
                None => (
                    "404 Not Found",
                    json!({"error_code": 40401, "message": format!("Subject '{subject}' not found.")}),
                ),
            };
        }
    }
    if method == "POST" && path.starts_with("/subjects/") && path.ends_with("/versions") {
        let req: Json = serde_json::from_slice(body).unwrap_or(Json::Null);
        let schema = req["schema"].as_str().unwrap_or_default().to_string();
        let id = match st.schemas.iter().position(|s| *s == schema) {
            Some(i) => i + 1,
            None => {
                st.schemas.push(schema);
                st.schemas.len()
            }
        };
        let subject = path.trim_start_matches("/subjects/").trim_end_matches("/versions").to_string();
        st.subjects.push((subject, id));
        return ("200 OK", json!({ "id": id }));
    }
    ("404 Not Found", json!({"error_code": 404, "message": "not found"}))
}
