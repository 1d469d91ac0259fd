//! A Confluent-compatible Schema Registry client: writer schemas by id.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;

use crate::config::SchemaRegistryConfig;

pub struct Registry {
    base: String,
    client: reqwest::Client,
    auth: Option<(String, Option<String>)>,
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
        Ok(Registry {
            base: cfg.url.trim_end_matches('/').to_string(),
            client,
            auth: cfg.username.clone().map(|u| (u, cfg.password.clone())),
        })
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// The latest schema registered under `subject`, `Ok(None)` when there is none.
    pub async fn latest(&self, subject: &str) -> Result<Option<String>> {
        let url = format!("{}/subjects/{subject}/versions/latest", self.base);
        let mut req = self.client.get(&url);
        if let Some((user, password)) = &self.auth {
            req = req.basic_auth(user, password.as_ref());
        }
        let resp = req.send().await.map_err(|e| anyhow!("schema registry {} unreachable: {e}", self.base))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(anyhow!("schema registry {} answered {} for subject {subject}", self.base, resp.status()));
        }
        let parsed: SchemaById = serde_json::from_slice(&resp.bytes().await?)
            .with_context(|| format!("schema registry {}: unexpected answer for subject {subject}", self.base))?;
        Ok(Some(parsed.schema))
    }

    /// The writer schema registered under `id`; `Ok(None)` when the registry does not have it.
    /// An unreachable or failing registry is an `Err`: the caller retries, committing nothing.
    pub async fn schema(&self, id: u32) -> Result<Option<String>> {
        let url = format!("{}/schemas/ids/{id}", self.base);
        let mut req =
            self.client.get(&url).header("Accept", "application/vnd.schemaregistry.v1+json, application/json");
        if let Some((user, password)) = &self.auth {
            req = req.basic_auth(user, password.as_ref());
        }
        let resp = req.send().await.map_err(|e| anyhow!("schema registry {} unreachable: {e}", self.base))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(anyhow!(
                "schema registry {} refused the credentials ({status}): check [schema_registry] username and password",
                self.base
            ));
        }
        if !status.is_success() {
            return Err(anyhow!("schema registry {} answered {status} for schema id {id}", self.base));
        }
        let body = resp.bytes().await.map_err(|e| anyhow!("schema registry {}: {e}", self.base))?;
        let parsed: SchemaById = serde_json::from_slice(&body)
            .with_context(|| format!("schema registry {}: unexpected answer for schema id {id}", self.base))?;
        if let Some(t) = parsed.schema_type.filter(|t| t != "AVRO") {
            return Err(anyhow!("schema id {id} is a {t} schema, not Avro"));
        }
        Ok(Some(parsed.schema))
    }
}
