//! A Confluent-compatible Schema Registry client: writer schemas by id.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;

use crate::config::SchemaRegistryConfig;

/// The registry cannot be reached or fails (5xx): worth retrying, and what the service waits for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RegistryUnavailable(pub String);

pub struct Registry {
    base: String,
    /// `base` with any password masked, for messages.
    shown: String,
    client: reqwest::Client,
    auth: Option<(String, Option<String>)>,
    /// How long a schema id the registry did not have is remembered as missing.
    pub missing_ttl: Duration,
}

#[derive(Deserialize)]
struct SchemaById {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
}

impl Registry {
    pub fn new(cfg: &SchemaRegistryConfig) -> Result<Registry> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.timeout_ms.min(5_000)))
            .user_agent("tidemark")
            .build()
            .context("building the schema registry client")?;
        let base = cfg.url.trim_end_matches('/').to_string();
        Ok(Registry {
            shown: crate::config::redact::redact_url(&base),
            base,
            client,
            auth: cfg.username.clone().map(|u| (u, cfg.password.clone())),
            missing_ttl: Duration::from_secs(cfg.missing_id_ttl_secs),
        })
    }

    /// The registry's url, password masked.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// The latest schema registered under `subject`, `Ok(None)` when there is none.
    pub async fn latest(&self, subject: &str) -> Result<Option<String>> {
        self.get(&format!("/subjects/{subject}/versions/latest"), &format!("subject {subject}")).await
    }

    /// The writer schema registered under `id`; `Ok(None)` when the registry does not have it.
    /// An unreachable or failing registry is an `Err` ([`RegistryUnavailable`]): the caller
    /// retries, committing nothing.
    pub async fn schema(&self, id: u32) -> Result<Option<String>> {
        self.get(&format!("/schemas/ids/{id}"), &format!("schema id {id}")).await
    }

    /// GET `path`: the schema text of the answer, `None` on 404.
    async fn get(&self, path: &str, what: &str) -> Result<Option<String>> {
        let mut req = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Accept", "application/vnd.schemaregistry.v1+json, application/json");
        if let Some((user, password)) = &self.auth {
            req = req.basic_auth(user, password.as_ref());
        }
        // reqwest's errors name the url, which may carry credentials: shown without it.
        let resp = req.send().await.map_err(|e| {
            RegistryUnavailable(format!("schema registry {} unreachable: {}", self.shown, e.without_url()))
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(anyhow!(
                "schema registry {} refused the credentials ({status}): check [schema_registry] username and password",
                self.shown
            ));
        }
        if status.is_server_error() {
            return Err(
                RegistryUnavailable(format!("schema registry {} answered {status} for {what}", self.shown)).into()
            );
        }
        if !status.is_success() {
            return Err(anyhow!("schema registry {} answered {status} for {what}", self.shown));
        }
        let body = resp
            .bytes()
            .await
            .map_err(|e| RegistryUnavailable(format!("schema registry {}: {}", self.shown, e.without_url())))?;
        let parsed: SchemaById = serde_json::from_slice(&body)
            .with_context(|| format!("schema registry {}: unexpected answer for {what}", self.shown))?;
        if let Some(t) = parsed.schema_type.filter(|t| t != "AVRO") {
            return Err(anyhow!("{what} is a {t} schema, not Avro"));
        }
        Ok(Some(parsed.schema))
    }
}
