//! One text per value for comparing a replica with upstream: both sides' texts of a column's
//! value reduced to the same form by the column's kind, so that only a real difference differs
//! (`1.50` and `1.5` of an unconstrained DECIMAL, a REAL's shortest text and the FLOAT's exact
//! double, jsonb's key order, a timestamp's trailing zeros) — and every real one does: a
//! decimal's last digit, one byte, NULL against an empty string.

use crate::model::schema::Kind;

/// The canonical text of a non-NULL value of a column of `kind`.
pub fn canonical(kind: &Kind, text: &str) -> String {
    let t = text.trim();
    match kind {
        Kind::Int { .. } | Kind::UInt64 | Kind::EnumIndex | Kind::SetBits => {
            t.trim_start_matches('+').parse::<i128>().map(|n| n.to_string()).unwrap_or_else(|_| t.to_string())
        }
        Kind::Decimal { .. } => decimal(t),
        Kind::Float => t.parse::<f32>().map(|f| format!("{f:?}")).unwrap_or_else(|_| t.to_string()),
        Kind::Double => t.parse::<f64>().map(|f| format!("{f:?}")).unwrap_or_else(|_| t.to_string()),
        Kind::DateTime { .. } | Kind::Timestamp { .. } => date_time(t),
        Kind::Time { .. } => time(t),
        Kind::Json => match serde_json::from_str::<serde_json::Value>(t) {
            Ok(v) => sorted(&v),
            Err(_) => t.to_string(),
        },
        Kind::Bytes | Kind::Bit => t.to_ascii_lowercase(),
        Kind::Text { .. } | Kind::Date => text.to_string(),
    }
}

/// `-001.500` → `-1.5`; `0.00` → `0`.
fn decimal(t: &str) -> String {
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.trim_start_matches('+')),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return t.to_string();
    }
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let body = if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") };
    if neg && body != "0" {
        format!("-{body}")
    } else {
        body
    }
}

/// `2024-01-02T03:04:05.120000` → `2024-01-02 03:04:05.12`.
fn date_time(t: &str) -> String {
    let t = t.replacen('T', " ", 1);
    let t = t.trim_end_matches('Z').trim_end_matches("+00").trim_end_matches("+00:00");
    match t.split_once('.') {
        Some((whole, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                whole.to_string()
            } else {
                format!("{whole}.{frac}")
            }
        }
        None => t.to_string(),
    }
}

/// `-838:59:59.000000` → microseconds; PostgreSQL's interval text (`838:59:59`, `-00:00:01.5`)
/// and MySQL's TIME text alike.
fn time(t: &str) -> String {
    let (neg, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let (hms, frac) = rest.split_once('.').unwrap_or((rest, ""));
    let parts: Vec<&str> = hms.split(':').collect();
    let nums: Option<Vec<i128>> = parts.iter().map(|p| p.parse::<i128>().ok()).collect();
    let Some(nums) = nums.filter(|n| n.len() == 3) else { return t.to_string() };
    let mut micros = (nums[0] * 3600 + nums[1] * 60 + nums[2]) * 1_000_000;
    let frac = format!("{:0<6}", frac);
    micros += frac.get(..6).and_then(|f| f.parse::<i128>().ok()).unwrap_or(0);
    if neg {
        micros = -micros;
    }
    micros.to_string()
}

/// JSON with every object's keys sorted, numbers as parsed.
fn sorted(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", serde_json::Value::String(k.clone()), sorted(&m[k])))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        serde_json::Value::Array(a) => format!("[{}]", a.iter().map(sorted).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_meet_and_different_ones_do_not() {
        let dec = Kind::Decimal { precision: None, scale: None };
        assert_eq!(canonical(&dec, "1.50"), canonical(&dec, "1.5"));
        assert_ne!(canonical(&dec, "1.51"), canonical(&dec, "1.50"));
        assert_eq!(canonical(&dec, "-0.00"), "0");
        assert_eq!(canonical(&dec, "0012.300"), "12.3");
        // PostgreSQL's REAL prints the shortest text; MySQL's DOUBLE of the FLOAT its exact value.
        assert_eq!(canonical(&Kind::Float, "3.1415927"), canonical(&Kind::Float, "3.1415927410125732"));
        assert_ne!(canonical(&Kind::Double, "0.30000000000000004"), canonical(&Kind::Double, "0.3"));
        let ts = Kind::Timestamp { fsp: Some(3) };
        assert_eq!(canonical(&ts, "2024-01-02 03:04:05.120000"), canonical(&ts, "2024-01-02 03:04:05.12"));
        assert_eq!(canonical(&ts, "2024-01-02 03:04:05.000000"), "2024-01-02 03:04:05");
        let time_kind = Kind::Time { fsp: None };
        assert_eq!(canonical(&time_kind, "838:59:59"), canonical(&time_kind, "838:59:59.000000"));
        assert_eq!(canonical(&time_kind, "-00:00:01.5"), "-1500000");
        assert_eq!(
            canonical(&Kind::Json, r#"{"b": 1, "a": [1, {"d": 2, "c": 3}]}"#),
            r#"{"a":[1,{"c":3,"d":2}],"b":1}"#
        );
        assert_eq!(canonical(&Kind::Bytes, "0A"), "0a");
        let text = Kind::Text { length: None };
        assert_eq!(canonical(&text, " a "), " a ");
    }
}
