//! S3-compatible object storage, as TiCDC's `claim-check-storage-uri` names it:
//! `s3://bucket/prefix?endpoint=http://minio:9000&region=us-east-1&access-key=…&secret-access-key=…`
//! (the keys may come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`
//! instead). One operation: GET an object, signed with AWS Signature Version 4. With an
//! `endpoint` the bucket is in the path (MinIO, Ceph, …); without one, AWS's virtual-hosted
//! `https://{bucket}.s3.{region}.amazonaws.com`.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// Where the objects are, and the keys to read them.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Store {
    /// `scheme://host[:port]` of the service.
    origin: String,
    /// The path of the prefix, bucket included when path-style: `/bucket/prefix`.
    base_path: String,
    host: String,
    region: String,
    access_key: String,
    secret_key: String,
    session_token: Option<String>,
}

// Debug output never shows the secret.
impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S3Store({}{}, region {}, key {})", self.origin, self.base_path, self.region, self.access_key)
    }
}

/// The storage cannot be reached or fails (5xx): worth retrying, and what the service waits for.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StorageUnavailable(pub String);

/// Why an object could not be read: the storage could not be asked (try the batch again), or it
/// answered no (the record is a dead letter).
#[derive(Debug)]
pub enum FetchError {
    Unavailable(String),
    Refused(String),
}

impl S3Store {
    pub fn parse(uri: &str) -> Result<S3Store, String> {
        let url = url::Url::parse(uri).map_err(|_| "not a URL".to_string())?;
        let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or("no bucket")?.to_string();
        let prefix = url.path().trim_matches('/').to_string();
        let param = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
        let region = param("region").unwrap_or_else(|| "us-east-1".into());
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let access_key = param("access-key").or_else(|| env("AWS_ACCESS_KEY_ID")).ok_or(
            "no credentials: give access-key and secret-access-key in the URI, or set AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY",
        )?;
        let secret_key = param("secret-access-key")
            .or_else(|| env("AWS_SECRET_ACCESS_KEY"))
            .ok_or("an access key without its secret-access-key (or AWS_SECRET_ACCESS_KEY)")?;
        let session_token = param("session-token").or_else(|| env("AWS_SESSION_TOKEN"));
        let join = |a: &str, b: &str| if b.is_empty() { a.to_string() } else { format!("{a}/{b}") };
        let (origin, host, base_path) = match param("endpoint") {
            Some(e) => {
                let e = url::Url::parse(&e).map_err(|_| format!("endpoint `{e}` is not a URL"))?;
                let host = match (e.host_str(), e.port()) {
                    (Some(h), Some(p)) => format!("{h}:{p}"),
                    (Some(h), None) => h.to_string(),
                    _ => return Err("endpoint without a host".into()),
                };
                (format!("{}://{host}", e.scheme()), host, join(&format!("/{bucket}"), &prefix))
            }
            None => {
                let host = format!("{bucket}.s3.{region}.amazonaws.com");
                (format!("https://{host}"), host, join("", &prefix))
            }
        };
        Ok(S3Store { origin, base_path, host, region, access_key, secret_key, session_token })
    }

    /// The object `name` under the prefix.
    pub async fn get(&self, client: &reqwest::Client, name: &str) -> Result<Vec<u8>, FetchError> {
        let path = format!("{}/{}", self.base_path, uri_encode(name));
        let headers = self.signed_headers("GET", &path, Utc::now());
        let mut req = client.get(format!("{}{path}", self.origin)).timeout(Duration::from_secs(30));
        for (k, v) in &headers {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        let shown = format!("{}{path}", self.origin);
        let resp = req.send().await.map_err(|e| FetchError::Unavailable(format!("{shown}: {}", e.without_url())))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| FetchError::Unavailable(format!("{shown}: {}", e.without_url())))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let said = String::from_utf8_lossy(&body[..body.len().min(300)]).to_string();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(FetchError::Unavailable(format!("{shown}: {status}: {said}")));
        }
        Err(FetchError::Refused(format!("{shown}: {status}: {said}")))
    }

    /// The headers of a request signed with Signature Version 4 (`host` first, then the rest).
    fn signed_headers(&self, method: &str, path: &str, now: DateTime<Utc>) -> Vec<(String, String)> {
        let mut headers = vec![
            ("host".to_string(), self.host.clone()),
            ("x-amz-content-sha256".to_string(), hex(&Sha256::digest(b""))),
            ("x-amz-date".to_string(), now.format("%Y%m%dT%H%M%SZ").to_string()),
        ];
        if let Some(t) = &self.session_token {
            headers.push(("x-amz-security-token".to_string(), t.clone()));
        }
        let auth = sign(method, path, &headers, &self.region, &self.access_key, &self.secret_key, now);
        headers.push(("authorization".to_string(), auth));
        headers
    }
}

/// The `Authorization` header of AWS Signature Version 4 for an S3 request with no query and an
/// empty body; `headers`: the signed headers, lower-case names, sorted.
fn sign(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    region: &str,
    access_key: &str,
    secret_key: &str,
    now: DateTime<Utc>,
) -> String {
    let mut headers: Vec<&(String, String)> = headers.iter().collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let payload = headers.iter().find(|(k, _)| k == "x-amz-content-sha256").map_or("UNSIGNED-PAYLOAD", |(_, v)| v);
    let canonical = format!("{method}\n{path}\n\n{canonical_headers}\n{signed}\n{payload}");
    let day = now.format("%Y%m%d").to_string();
    let scope = format!("{day}/{region}/s3/aws4_request");
    let to_sign =
        format!("AWS4-HMAC-SHA256\n{}\n{scope}\n{}", now.format("%Y%m%dT%H%M%SZ"), hex(&Sha256::digest(canonical)));
    let mut key = hmac(format!("AWS4{secret_key}").as_bytes(), day.as_bytes());
    for part in [region, "s3", "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    format!("AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// S3's URI encoding of a path segment (RFC 3986 unreserved characters kept).
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// AWS's own example ("Signature Calculations for the Authorization Header", GET Object).
    #[test]
    fn the_signature_of_aws_s_documented_example() {
        let now = Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap();
        let headers: Vec<(String, String)> = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("x-amz-date", "20130524T000000Z"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let auth = sign(
            "GET",
            "/test.txt",
            &headers,
            "us-east-1",
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            now,
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn uris_with_and_without_an_endpoint() {
        let s = S3Store::parse(
            "s3://claims/cdc/large?endpoint=http://127.0.0.1:9000&region=eu-west-1&access-key=AK&secret-access-key=SK",
        )
        .unwrap();
        assert_eq!(
            (s.origin.as_str(), s.host.as_str(), s.base_path.as_str()),
            ("http://127.0.0.1:9000", "127.0.0.1:9000", "/claims/cdc/large")
        );
        assert_eq!(s.region, "eu-west-1");
        assert!(!format!("{s:?}").contains("SK"), "{s:?}");
        let s = S3Store::parse("s3://claims?access-key=AK&secret-access-key=SK").unwrap();
        assert_eq!((s.origin.as_str(), s.base_path.as_str()), ("https://claims.s3.us-east-1.amazonaws.com", ""));
        assert_eq!(uri_encode("a b+c.json"), "a%20b%2Bc.json");
    }
}
