//! TiCDC's large-message options (seed 002; `reference/anchors-2.md` §2), for canal-json (with
//! the TiDB extension) and the simple protocol:
//! - `large-message-handle-compression = "lz4" | "snappy"`: **every** value of the changefeed is
//!   compressed (LZ4 frame format, snappy's raw block format, as TiCDC's `pkg/compression`);
//! - `large-message-handle-option = "claim-check"`: a message too large for Kafka carries only the
//!   key columns and `claimCheckLocation`; the full message is an object in the storage TiCDC
//!   was given (`claim-check-storage-uri`), named by the location's last segment and read from
//!   the storage *this* side configures (`file://` or S3-compatible, see [`super::s3`]):
//!   `{"key": <base64|null>, "value": <base64>}`, or the raw value with
//!   `claim-check-raw-value = true` — compressed like any value.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use base64::Engine;
use serde::Deserialize;

use super::s3::S3Store;

/// How the changefeed compresses values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    Lz4,
    Snappy,
}

impl Compression {
    /// The value as TiCDC encoded it, before compression.
    pub fn decompress(self, bytes: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Compression::None => Ok(bytes.to_vec()),
            Compression::Lz4 => {
                let mut out = Vec::with_capacity(bytes.len() * 3);
                lz4_flex::frame::FrameDecoder::new(bytes)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("not an LZ4 frame (large-message-handle-compression = \"lz4\"): {e}"))?;
                Ok(out)
            }
            Compression::Snappy => snap::raw::Decoder::new()
                .decompress_vec(bytes)
                .map_err(|e| format!("not snappy-compressed (large-message-handle-compression = \"snappy\"): {e}")),
        }
    }
}

/// Where claim-check objects are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimCheck {
    store: Store,
    /// `claim-check-raw-value = true`: the object is the value itself.
    raw: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Store {
    /// `file:///path`: a directory (TiCDC's `file://` storage, or a mounted or synced bucket).
    Dir(PathBuf),
    /// `s3://bucket/prefix?…`: read over HTTP, fetched for a whole batch before it is decoded.
    S3(S3Store),
}

/// What every claim-check reference holds (canal-json's `_tidb.claimCheckLocation`, the simple
/// protocol's `claimCheckLocation`): records without it need no fetching.
pub const CLAIM_CHECK_MARK: &[u8] = b"claimCheckLocation";

/// Claim-check objects fetched for a batch, by location: the object, or why the storage refused it.
pub type Fetched = HashMap<String, Result<Vec<u8>, String>>;

impl ClaimCheck {
    /// `file:///path`, or `s3://bucket/prefix?endpoint=…&region=…&access-key=…&secret-access-key=…`.
    pub fn new(uri: &str, raw: bool) -> Result<ClaimCheck, String> {
        let shown = crate::config::redact::redact_url(uri);
        let store = if let Some(path) = uri.strip_prefix("file://").filter(|p| !p.is_empty()) {
            Store::Dir(PathBuf::from(path))
        } else if uri.starts_with("s3://") {
            Store::S3(S3Store::parse(uri).map_err(|e| format!("claim_check_storage `{shown}`: {e}"))?)
        } else {
            return Err(format!(
                "claim_check_storage `{shown}`: tidemark reads claim-check objects from file:///path or \
                 s3://bucket/prefix (S3-compatible storage)"
            ));
        };
        Ok(ClaimCheck { store, raw })
    }

    /// The S3 storage objects must be fetched from before decoding, if that is where they are.
    pub fn s3(&self) -> Option<&S3Store> {
        match &self.store {
            Store::S3(s) => Some(s),
            Store::Dir(_) => None,
        }
    }

    /// The message a claim-check location names, still compressed as the changefeed compresses;
    /// `fetched`: the batch's objects from S3.
    pub fn read(&self, location: &str, fetched: &Fetched) -> Result<Vec<u8>, String> {
        let (bytes, shown) = self.object(location, fetched)?;
        if self.raw {
            return Ok(bytes);
        }
        Ok(unwrap_object(&bytes, &shown)?.1)
    }

    /// The key and value a claim-check object of the open protocol holds (it is always
    /// `{"key", "value"}`: TiCDC refuses claim-check-raw-value with the open protocol).
    pub fn read_pair(&self, location: &str, fetched: &Fetched) -> Result<(Vec<u8>, Vec<u8>), String> {
        let (bytes, shown) = self.object(location, fetched)?;
        let (key, value) = unwrap_object(&bytes, &shown)?;
        Ok((key.ok_or_else(|| format!("claim-check object {shown} has no key"))?, value))
    }

    /// The object's bytes, and how to name it in errors.
    fn object(&self, location: &str, fetched: &Fetched) -> Result<(Vec<u8>, String), String> {
        let name = object_name(location)?;
        let (bytes, shown) = match &self.store {
            Store::Dir(dir) => {
                let path = dir.join(name);
                let bytes = std::fs::read(&path)
                    .map_err(|e| format!("claim-check object {} ({location}): {e}", path.display()))?;
                (bytes, path.display().to_string())
            }
            Store::S3(_) => match fetched.get(location) {
                Some(Ok(bytes)) => (bytes.clone(), name.to_string()),
                Some(Err(e)) => return Err(format!("claim-check object {name} ({location}): {e}")),
                None => return Err(format!("claim-check object {name} ({location}) was not fetched")),
            },
        };
        Ok((bytes, shown))
    }
}

/// `{"key": <base64|null>, "value": <base64>}` → (key, value).
fn unwrap_object(bytes: &[u8], shown: &str) -> Result<(Option<Vec<u8>>, Vec<u8>), String> {
    #[derive(Deserialize)]
    struct Wrapped {
        key: Option<String>,
        value: Option<String>,
    }
    let w: Wrapped = serde_json::from_slice(bytes)
        .map_err(|e| format!("claim-check object {shown} is not {{\"key\", \"value\"}} JSON: {e}"))?;
    let b64 = |what: &str, s: String| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("claim-check object {shown}: {what} is not base64: {e}"))
    };
    let value = b64("value", w.value.ok_or_else(|| format!("claim-check object {shown} has no value"))?)?;
    let key = w.key.filter(|k| !k.is_empty()).map(|k| b64("key", k)).transpose()?;
    Ok((key, value))
}

/// The object a location names in the storage this side reads: its last segment (TiCDC's
/// location names its own storage).
pub fn object_name(location: &str) -> Result<&str, String> {
    let name = location.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." || name.contains('\\') {
        return Err(format!("claim-check location `{location}` names no object"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lz4_frames_and_snappy_blocks() {
        let msg = br#"{"id":0,"database":"test","table":"t"}"#;
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(msg).unwrap();
        let lz4 = enc.finish().unwrap();
        assert_eq!(Compression::Lz4.decompress(&lz4).unwrap(), msg);
        let snappy = snap::raw::Encoder::new().compress_vec(msg).unwrap();
        assert_eq!(Compression::Snappy.decompress(&snappy).unwrap(), msg);
        assert!(Compression::Lz4.decompress(msg).is_err());
        assert!(Compression::Snappy.decompress(msg).is_err());
    }

    #[test]
    fn claim_check_objects_by_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let wrapped =
            format!(r#"{{"key":null,"value":"{}"}}"#, base64::engine::general_purpose::STANDARD.encode(b"full"));
        std::fs::write(dir.path().join("a.json"), wrapped).unwrap();
        std::fs::write(dir.path().join("b.json"), b"raw").unwrap();
        let uri = format!("file://{}", dir.path().display());
        // TiCDC's location names its own storage; only the file name is used.
        assert_eq!(
            ClaimCheck::new(&uri, false).unwrap().read("s3://bucket/prefix/a.json", &Fetched::new()).unwrap(),
            b"full"
        );
        assert_eq!(
            ClaimCheck::new(&uri, true).unwrap().read("file:///elsewhere/b.json", &Fetched::new()).unwrap(),
            b"raw"
        );
        assert!(ClaimCheck::new(&uri, false).unwrap().read("s3://bucket/missing.json", &Fetched::new()).is_err());
        assert!(ClaimCheck::new("gs://bucket", false).is_err());
    }
}
