//! Upstream values that arrive as text (canal-json, Debezium strings) → canonical [`Value`]s.
//!
//! Every value is validated against its column type here, at decode time, so a value the
//! replica could not hold lands in the dead-letter table instead of failing every later merge.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use crate::model::change::Value;
use crate::model::schema::{Kind, SourceType};

/// Settings that change how values are read.
#[derive(Debug, Clone)]
pub struct ValueContext {
    /// The zone TiCDC rendered TIMESTAMP values in, as seconds east of UTC.
    pub source_offset_secs: i32,
    /// What Debezium sends for a column it did not read (`unavailable.value.placeholder`:
    /// an unchanged TOASTed column of PostgreSQL); for binary columns, its UTF-8 bytes.
    pub unavailable_value: std::sync::Arc<str>,
}

/// Debezium's default `unavailable.value.placeholder`.
pub const DEBEZIUM_UNAVAILABLE_VALUE: &str = "__debezium_unavailable_value";

impl Default for ValueContext {
    fn default() -> Self {
        ValueContext { source_offset_secs: 0, unavailable_value: DEBEZIUM_UNAVAILABLE_VALUE.into() }
    }
}

/// Converts one non-null text value of a column of type `ty`.
/// `binary_as_latin1`: the text maps each byte to U+0000..U+00FF (canal-json's encoding).
pub fn from_text(ty: &SourceType, s: &str, ctx: &ValueContext, binary_as_latin1: bool) -> Result<Value, String> {
    match &ty.kind {
        Kind::Int { .. } | Kind::UInt64 => {
            let n = parse_int(s)?;
            if let Some((lo, hi)) = ty.int_range {
                if n < lo || n > hi {
                    return Err(format!("{s} is out of range [{lo}, {hi}]"));
                }
            }
            Ok(Value::Text(n.to_string()))
        }
        Kind::Float | Kind::Double => {
            let t = s.trim();
            let f: f64 = t.parse().map_err(|_| format!("`{}` is not a number", short(s)))?;
            // What the replica's real / double precision holds: finite, and not a non-zero
            // value that rounds to zero (PostgreSQL refuses both as out of range).
            let (finite, zero) = match ty.kind {
                Kind::Float => {
                    let g: f32 = t.parse().map_err(|_| format!("`{}` is not a number", short(s)))?;
                    (g.is_finite(), g == 0.0)
                }
                _ => (f.is_finite(), f == 0.0),
            };
            let what = if ty.kind == Kind::Float { "FLOAT (single precision)" } else { "DOUBLE" };
            if !finite {
                return Err(format!("`{}` is out of range for {what}", short(s)));
            }
            if zero && t.bytes().take_while(|b| !matches!(b, b'e' | b'E')).any(|b| (b'1'..=b'9').contains(&b)) {
                return Err(format!("`{}` is too small for {what} (it would round to zero)", short(s)));
            }
            Ok(Value::Text(t.to_string()))
        }
        Kind::Decimal { precision, scale } => {
            check_decimal(s, *precision, *scale)?;
            Ok(Value::Text(s.to_string()))
        }
        Kind::Text { .. } if ty.members.is_some() && (ty.is_enum || ty.is_set) => members_to_names(ty, s),
        Kind::Text { length } => {
            if let Some(n) = length {
                let chars = s.chars().count();
                if chars > *n as usize {
                    return Err(format!("{chars} characters do not fit in {n}"));
                }
            }
            Ok(Value::Text(s.to_string()))
        }
        Kind::Json => {
            serde_json::from_str::<serde::de::IgnoredAny>(s).map_err(|e| format!("invalid JSON value: {e}"))?;
            Ok(Value::Text(s.to_string()))
        }
        Kind::EnumIndex | Kind::SetBits => Ok(Value::Text(parse_u64(s)?.to_string())),
        Kind::Bytes => {
            if binary_as_latin1 {
                latin1_bytes(s).map(Value::Bytes)
            } else {
                Ok(Value::Bytes(s.as_bytes().to_vec()))
            }
        }
        Kind::Bit => {
            let n = parse_u64(s)?;
            if let Some((_, hi)) = ty.int_range {
                if i128::from(n) > hi {
                    return Err(format!("{n} does not fit in {} bits", (hi + 1).trailing_zeros()));
                }
            }
            Ok(Value::Bytes(bit_bytes(n)))
        }
        Kind::Date => date(s),
        Kind::DateTime { fsp } => datetime(s, None, *fsp),
        Kind::Timestamp { fsp } => datetime(s, Some(ctx.source_offset_secs), *fsp),
        Kind::Time { fsp } => time(s, *fsp),
    }
}

/// Whether values of a column recorded as `ty` are re-checked against it when the stream
/// describes the column less precisely.
pub fn needs_conform(ty: &SourceType) -> bool {
    match &ty.kind {
        Kind::Int { .. } | Kind::UInt64 => true,
        Kind::Decimal { precision, .. } => precision.is_some(),
        Kind::Text { length } => length.is_some() || ty.members.is_some(),
        _ => false,
    }
}

/// A decoded value checked against the column's recorded type (see [`needs_conform`]); an
/// ENUM/SET index or bitmask becomes member names when the recorded type lists them.
pub fn conform(ty: &SourceType, v: &Value) -> Result<Value, String> {
    let Value::Text(s) = v else { return Ok(v.clone()) };
    if ty.members.is_some() && (ty.is_enum || ty.is_set) {
        return if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            members_to_names(ty, s)
        } else {
            Ok(v.clone())
        };
    }
    from_text(ty, s, &ValueContext::default(), false)
}

fn short(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn parse_int(s: &str) -> Result<i128, String> {
    let t = s.trim();
    let digits = t.strip_prefix('-').or_else(|| t.strip_prefix('+')).unwrap_or(t);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{}` is not an integer", short(s)));
    }
    t.parse::<i128>().map_err(|_| format!("`{}` is not an integer", short(s)))
}

fn parse_u64(s: &str) -> Result<u64, String> {
    s.trim().parse::<u64>().map_err(|_| format!("`{}` is not an unsigned integer", short(s)))
}

/// `[-+]digits[.digits]`, within DECIMAL(precision, scale) when those are known.
fn check_decimal(s: &str, precision: Option<u8>, scale: Option<u8>) -> Result<(), String> {
    let body = s.strip_prefix('-').or_else(|| s.strip_prefix('+')).unwrap_or(s);
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let ok = !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(body.contains('.') && frac.is_empty() && int.is_empty())
        && match precision {
            // MySQL's DECIMAL holds 65 digits; 96 leaves room for any scale's zeros.
            Some(_) => int.len() + frac.len() <= 96,
            // Unconstrained (PostgreSQL's `numeric`, via Debezium): what PostgreSQL holds.
            None => int.len() <= 131_072 && frac.len() <= 16_383,
        };
    if !ok {
        return Err(format!("`{}` is not a decimal number", short(s)));
    }
    if let (Some(p), Some(sc)) = (precision, scale) {
        let int_digits = int.trim_start_matches('0').len();
        if frac.len() > sc as usize || int_digits > (p.saturating_sub(sc)) as usize {
            return Err(format!("`{}` does not fit in DECIMAL({p},{sc})", short(s)));
        }
    }
    Ok(())
}

/// canal-json writes each byte of a binary value as the code point U+0000..U+00FF.
pub fn latin1_bytes(s: &str) -> Result<Vec<u8>, String> {
    s.chars()
        .map(|c| {
            u8::try_from(c as u32)
                .map_err(|_| format!("binary value holds U+{:04X}, which is not an ISO-8859-1 byte", c as u32))
        })
        .collect()
}

/// BIT values as big-endian bytes, leading zero bytes trimmed, at least one byte
/// (the same bytes TiCDC's Avro encoder writes).
pub fn bit_bytes(v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let first = b.iter().position(|&x| x != 0).unwrap_or(7);
    b[first..].to_vec()
}

fn members_to_names(ty: &SourceType, s: &str) -> Result<Value, String> {
    let members = ty.members.as_deref().unwrap_or_default();
    let n = parse_u64(s)?;
    if ty.is_enum {
        // 0 is MySQL's "invalid value" enum member, the empty string.
        if n == 0 {
            return Ok(Value::Text(String::new()));
        }
        let name = members.get(n as usize - 1).ok_or_else(|| format!("enum index {n} has no member"))?;
        Ok(Value::Text(name.clone()))
    } else {
        let mut names = Vec::new();
        for (i, m) in members.iter().enumerate().take(64) {
            if n & (1u64 << i) != 0 {
                names.push(m.as_str());
            }
        }
        if members.len() < 64 && n >> members.len() != 0 {
            return Err(format!("set bitmask {n} has bits without members"));
        }
        Ok(Value::Text(names.join(",")))
    }
}

/// MySQL's zero dates (`0000-00-00`, or a zero month/day) have no equivalent in a real
/// calendar type: they become NULL.
fn is_zero_date(s: &str) -> bool {
    let d = s.get(..10).unwrap_or(s);
    d.starts_with("0000-") || d.get(5..7) == Some("00") || d.get(8..10) == Some("00")
}

/// `YYYY-MM-DD` with a four-digit year: MySQL's and TiDB's range (to 9999-12-31).
fn four_digit_year(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let ok = b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-';
    if ok {
        Ok(())
    } else {
        Err(format!("`{}` is not a date of years 0000 to 9999", short(s)))
    }
}

fn date(s: &str) -> Result<Value, String> {
    if is_zero_date(s) {
        return Ok(Value::Null);
    }
    four_digit_year(s)?;
    if s.len() != 10 {
        return Err(format!("`{}` is not a date", short(s)));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("`{}` is not a date: {e}", short(s)))?;
    Ok(Value::Text(s.to_string()))
}

/// DATETIME is kept as written; TIMESTAMP (`offset` = the zone it was rendered in) is
/// converted to UTC so that it keeps its instant. At most `fsp` (else 6) fractional digits:
/// more would be rounded by the replica.
fn datetime(s: &str, offset: Option<i32>, fsp: Option<u8>) -> Result<Value, String> {
    if is_zero_date(s) {
        return Ok(Value::Null);
    }
    four_digit_year(s)?;
    fraction_fits(s, fsp)?;
    let fmt = if s.len() > 10 { "%Y-%m-%d %H:%M:%S%.f" } else { "%Y-%m-%d" };
    let parsed = if s.len() > 10 {
        NaiveDateTime::parse_from_str(s, fmt)
    } else {
        NaiveDate::parse_from_str(s, fmt).map(|d| d.and_time(NaiveTime::MIN))
    }
    .map_err(|e| format!("`{}` is not a date and time: {e}", short(s)))?;
    match offset {
        None | Some(0) => Ok(Value::Text(s.to_string())),
        Some(off) => {
            let utc = parsed - Duration::seconds(off as i64);
            let frac = s.split_once('.').map(|(_, f)| f).unwrap_or("");
            let mut out = utc.format("%Y-%m-%d %H:%M:%S").to_string();
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
            Ok(Value::Text(out))
        }
    }
}

/// No more fractional digits than `fsp` (else 6, the most MySQL and the replicas keep).
fn fraction_fits(s: &str, fsp: Option<u8>) -> Result<(), String> {
    let digits = s.split_once('.').map_or(0, |(_, f)| f.len());
    let most = fsp.unwrap_or(6) as usize;
    if digits > most {
        return Err(format!("`{}` has {digits} fractional digits; the column keeps {most}", short(s)));
    }
    Ok(())
}

/// `[-]H{1,3}:MM:SS[.f]`, up to ±838:59:59, with at most `fsp` (else 6) fractional digits.
fn time(s: &str, fsp: Option<u8>) -> Result<Value, String> {
    fraction_fits(s, fsp)?;
    let body = s.strip_prefix('-').unwrap_or(s);
    let (hms, frac) = body.split_once('.').unwrap_or((body, ""));
    let parts: Vec<&str> = hms.split(':').collect();
    let ok = parts.len() == 3
        && (1..=3).contains(&parts[0].len())
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
        && frac.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 6
        && parts[1] < "60"
        && parts[2] < "60"
        && parts[0].parse::<u32>().map(|h| h <= 838).unwrap_or(false);
    if ok {
        Ok(Value::Text(s.to_string()))
    } else {
        Err(format!("`{}` is not a time", short(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(ty: &str, s: &str) -> Result<Value, String> {
        from_text(&SourceType::parse(ty), s, &ValueContext::default(), true)
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn integers_are_exact_and_range_checked() {
        assert_eq!(conv("bigint unsigned", "18446744073709551615").unwrap(), text("18446744073709551615"));
        assert!(conv("bigint unsigned", "18446744073709551616").is_err());
        assert!(conv("bigint unsigned", "-1").is_err());
        assert_eq!(conv("bigint", "-9223372036854775808").unwrap(), text("-9223372036854775808"));
        assert!(conv("tinyint", "128").is_err());
        assert!(conv("int", "12a").is_err());
        assert!(conv("int", "").is_err());
    }

    #[test]
    fn decimals_keep_every_digit() {
        let d = "-12345678901234567890123456789.123456789";
        assert_eq!(conv("decimal(65,30)", d).unwrap(), text(d));
        assert_eq!(conv("decimal", "123.4560").unwrap(), text("123.4560"));
        assert_eq!(conv("decimal(5,2)", "-999.99").unwrap(), text("-999.99"));
        assert!(conv("decimal(5,2)", "1000.00").is_err());
        assert!(conv("decimal(5,2)", "1.234").is_err());
        assert!(conv("varchar(3)", "abcd").is_err());
        assert_eq!(conv("varchar(3)", "äöü").unwrap(), text("äöü"), "length counts characters");
        for bad in ["", ".", "1e5", "1.2.3", "abc", "--1"] {
            assert!(conv("decimal", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn binary_reverses_iso_8859_1() {
        let s = "\u{5}\u{7}\n\u{f}$2+cx<&ÿþ-7F";
        assert_eq!(
            conv("varbinary", s).unwrap(),
            Value::Bytes(vec![5, 7, 10, 15, 36, 50, 43, 99, 120, 60, 38, 255, 254, 45, 55, 70])
        );
        assert!(conv("blob", "€").is_err());
    }

    #[test]
    fn bits_enums_sets() {
        assert_eq!(conv("bit", "0").unwrap(), Value::Bytes(vec![0]));
        assert_eq!(conv("bit", "258").unwrap(), Value::Bytes(vec![1, 2]));
        assert_eq!(conv("enum", "2").unwrap(), text("2"));
        assert_eq!(conv("enum('a','b','c')", "2").unwrap(), text("b"));
        assert_eq!(conv("enum('a','b','c')", "0").unwrap(), text(""));
        assert_eq!(conv("set('a','b','c')", "5").unwrap(), text("a,c"));
        assert!(conv("set('a','b')", "4").is_err());
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(conv("date", "2024-02-29").unwrap(), text("2024-02-29"));
        assert_eq!(conv("date", "0000-00-00").unwrap(), Value::Null);
        assert!(conv("date", "2023-02-29").is_err());
        assert_eq!(conv("datetime(6)", "2024-01-01 12:00:00.123400").unwrap(), text("2024-01-01 12:00:00.123400"));
        assert_eq!(conv("time", "-838:59:59").unwrap(), text("-838:59:59"));
        assert!(conv("time", "839:00:00").is_err());
        let ctx = ValueContext { source_offset_secs: 8 * 3600, ..Default::default() };
        let ts = from_text(&SourceType::parse("timestamp(3)"), "2024-01-01 07:30:00.500", &ctx, true).unwrap();
        assert_eq!(ts, text("2023-12-31 23:30:00.500"));
    }

    #[test]
    fn json_is_validated() {
        assert_eq!(conv("json", "{\"a\": [1, 2]}").unwrap(), text("{\"a\": [1, 2]}"));
        assert!(conv("json", "{oops").is_err());
    }
}
