//! Secrets never shown: URLs with their password masked, for logs, errors and `status`.

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs and errors; a
/// `password=` query parameter is masked too (and S3's `secret-access-key=`, `session-token=`). The URL is parsed by the `url` crate (the parser
/// sqlx and reqwest use). A URL it cannot parse — typically a password with an unencoded `/`,
/// `?` or `#`, which no client could use either — is shown as `scheme://***@` and what follows
/// the last `@`, or as `scheme://***` when it has none: masking too much, never too little.
pub fn redact_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut u) if u.has_host() || u.password().is_some() => {
            if u.password().is_some() {
                // Cannot fail: the URL has a host.
                let _ = u.set_password(Some("***"));
            }
            // Databases' passwords; TiCDC's storage URIs' S3 keys.
            let secret = |k: &str| {
                ["password", "sslpassword", "secret-access-key", "session-token"]
                    .iter()
                    .any(|s| k.eq_ignore_ascii_case(s))
            };
            if u.query_pairs().any(|(k, _)| secret(&k)) {
                let masked: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if secret(&k) { "***".to_string() } else { v.into_owned() };
                        (k.into_owned(), v)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(masked);
            }
            u.to_string().replace("%2A%2A%2A", "***")
        }
        // No authority (`sqlite://x.db` parses with the file as host; `sqlite:x.db` has none).
        Ok(_) => text.to_string(),
        Err(_) => fallback(text),
    }
}

/// A setting that is a URI which may hold a secret: shown (Debug) with its secrets masked.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretUri(pub String);

impl std::fmt::Debug for SecretUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", redact_url(&self.0))
    }
}

fn fallback(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return if text.contains('@') { "***".to_string() } else { text.to_string() };
    };
    let rest = &text[scheme_end + 3..];
    match rest.rfind('@') {
        Some(at) => format!("{}://***@{}", &text[..scheme_end], &rest[at + 1..]),
        None if rest.contains(':') => format!("{}://***", &text[..scheme_end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_encode(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("s3://b/p?endpoint=http://m:9000&access-key=AK&secret-access-key=S%2Fx"),
            "s3://b/p?endpoint=http%3A%2F%2Fm%3A9000&access-key=AK&secret-access-key=***"
        );
        assert_eq!(format!("{:?}", SecretUri("s3://b?secret-access-key=S".into())), "\"s3://b?secret-access-key=***\"");
        assert_eq!(redact_url("postgres://u:p%40ss@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(redact_url("postgres://u:a@b@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://h/db?user=u&password=s3&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        // Each character that ends a URL part, unencoded in the password: never shown.
        for c in ["/", "?", "#", "@", ":", "%", " ", "/?#"] {
            let url = format!("postgres://u:pa{c}S3cret@h:5432/db");
            let shown = redact_url(&url);
            assert!(!shown.contains("S3cret") && !shown.contains("pa"), "{url} → {shown}");
            let encoded = format!("postgres://u:pa{}S3cret@h:5432/db", url_encode(c));
            let shown = redact_url(&encoded);
            assert_eq!(shown, "postgres://u:***@h:5432/db", "{encoded}");
        }
        assert_eq!(redact_url("http://k:s@reg:8081/x"), "http://k:***@reg:8081/x");
        assert_eq!(redact_url("postgres://h/db?password=a%26b%3Dc&x=1"), "postgres://h/db?password=***&x=1");
    }
}
