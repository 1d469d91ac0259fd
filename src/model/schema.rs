//! Upstream column types and table schemas.
//!
//! The stream describes each column with its MySQL/TiDB type text (canal-json `mysqlType`,
//! e.g. `int unsigned`, `decimal(10, 4)`, `enum('a','b')`). [`Kind`] is the logical type
//! every dialect maps from: the replica DDL, the casts in the merge, and value validation
//! at decode time all start here.

use std::sync::Arc;

use serde::Serialize;

/// The logical type of a column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// Integers that fit in i64: TINYINT..BIGINT signed, smaller unsigned ones, YEAR.
    /// `bytes` is the storage width the replica needs (2, 4 or 8).
    Int {
        bytes: u8,
    },
    /// BIGINT UNSIGNED: 0 ..= 2^64-1.
    UInt64,
    Float,
    Double,
    Decimal {
        precision: Option<u8>,
        scale: Option<u8>,
    },
    Text {
        length: Option<u32>,
    },
    Bytes,
    Date,
    /// DATETIME: a wall-clock time with no zone. `fsp`: fractional digits when the type says
    /// (canal-json's default `mysqlType` does not: the replica then keeps 6, MySQL's maximum).
    DateTime {
        fsp: Option<u8>,
    },
    /// TIMESTAMP: an instant; values are normalised to UTC at decode time.
    Timestamp {
        fsp: Option<u8>,
    },
    /// TIME: a duration of up to ±838:59:59.
    Time {
        fsp: Option<u8>,
    },
    Json,
    /// ENUM without its member list: the 1-based index TiCDC sends.
    EnumIndex,
    /// SET without its member list: the bitmask TiCDC sends.
    SetBits,
    /// BIT(n): big-endian bytes, leading zero bytes trimmed (at least one byte).
    Bit,
}

/// A parsed upstream type: the logical kind plus what decoding needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceType {
    pub kind: Kind,
    /// Integer range to validate against (for Int/UInt64 kinds, and BIT(n)'s 0 ..= 2^n - 1).
    pub int_range: Option<(i128, i128)>,
    /// ENUM/SET members when the type text lists them (content-compatible mode or DDL).
    pub members: Option<Vec<String>>,
    pub is_enum: bool,
    pub is_set: bool,
}

impl SourceType {
    fn of(kind: Kind) -> SourceType {
        SourceType { kind, int_range: None, members: None, is_enum: false, is_set: false }
    }

    /// Parses a MySQL type as TiCDC writes it in canal-json `mysqlType`
    /// (`int`, `int unsigned`, `decimal(10, 4)`, `varchar(24)`, `enum('a','b')`, `longblob`, ...).
    /// Unknown types become text: nothing is lost, and the replica can still be typed by hand.
    pub fn parse(mysql_type: &str) -> SourceType {
        let t = mysql_type.trim().to_ascii_lowercase();
        let (base, args, rest) = split_type(&t);
        let unsigned = rest.contains("unsigned");
        let nums: Vec<u32> =
            args.map(|a| a.split(',').filter_map(|p| p.trim().parse().ok()).collect()).unwrap_or_default();
        let fsp = nums.first().map(|&n| n.min(6) as u8);
        let int = |bits: u32, bytes: u8| {
            let (lo, hi): (i128, i128) =
                if unsigned { (0, (1i128 << bits) - 1) } else { (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1) };
            let kind = if bits == 64 && unsigned { Kind::UInt64 } else { Kind::Int { bytes } };
            SourceType { int_range: Some((lo, hi)), ..SourceType::of(kind) }
        };
        match base {
            "tinyint" | "bool" | "boolean" => int(8, 2),
            "smallint" => int(16, if unsigned { 4 } else { 2 }),
            "mediumint" => int(24, 4),
            "int" | "integer" => int(32, if unsigned { 8 } else { 4 }),
            "bigint" => int(64, 8),
            "year" => SourceType { int_range: Some((0, 2155)), ..SourceType::of(Kind::Int { bytes: 2 }) },
            "float" => SourceType::of(Kind::Float),
            "double" | "real" | "double precision" => SourceType::of(Kind::Double),
            "decimal" | "numeric" | "dec" | "fixed" => SourceType::of(Kind::Decimal {
                precision: nums.first().map(|&p| p.min(65) as u8),
                scale: nums.get(1).map(|&s| s.min(30) as u8).or(if nums.is_empty() { None } else { Some(0) }),
            }),
            "char" | "varchar" | "nchar" | "nvarchar" => SourceType::of(Kind::Text { length: nums.first().copied() }),
            "tinytext" | "text" | "mediumtext" | "longtext" => SourceType::of(Kind::Text { length: None }),
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => SourceType::of(Kind::Bytes),
            // BIT(n) holds 0 ..= 2^n - 1; a bare `bit` (canal-json's default mysqlType) says no width.
            "bit" => SourceType {
                int_range: nums.first().map(|&n| (0, (1i128 << n.clamp(1, 64)) - 1)),
                ..SourceType::of(Kind::Bit)
            },
            "date" => SourceType::of(Kind::Date),
            "datetime" => SourceType::of(Kind::DateTime { fsp }),
            "timestamp" => SourceType::of(Kind::Timestamp { fsp }),
            "time" => SourceType::of(Kind::Time { fsp }),
            "json" => SourceType::of(Kind::Json),
            "enum" | "set" => {
                let members = args.map(parse_members);
                let is_enum = base == "enum";
                let kind = match (&members, is_enum) {
                    (Some(_), _) => Kind::Text { length: None },
                    (None, true) => Kind::EnumIndex,
                    (None, false) => Kind::SetBits,
                };
                SourceType { kind, int_range: None, members, is_enum, is_set: !is_enum }
            }
            _ => SourceType::of(Kind::Text { length: None }),
        }
    }

    pub fn is_binary(&self) -> bool {
        matches!(self.kind, Kind::Bytes)
    }
}

/// `decimal(10, 4) unsigned zerofill` → (`decimal`, Some(`10, 4`), ` unsigned zerofill`).
fn split_type(t: &str) -> (&str, Option<&str>, &str) {
    match t.find('(') {
        Some(open) => {
            // The closing paren of the argument list: skip quoted members (they may hold ')').
            let bytes = t.as_bytes();
            let mut i = open + 1;
            let mut quote = false;
            while i < bytes.len() {
                match bytes[i] {
                    b'\'' if quote && bytes.get(i + 1) == Some(&b'\'') => i += 1,
                    b'\'' => quote = !quote,
                    b'\\' if quote => i += 1,
                    b')' if !quote => break,
                    _ => {}
                }
                i += 1;
            }
            let close = i.min(t.len());
            (t[..open].trim(), Some(&t[open + 1..close]), t.get(close + 1..).unwrap_or(""))
        }
        None => match t.find(' ') {
            Some(sp) => (&t[..sp], None, &t[sp..]),
            None => (t, None, ""),
        },
    }
}

/// `'a','b\'c','d''e'` → [a, b'c, d'e].
fn parse_members(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = args.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '\'' if quoted && chars.peek() == Some(&'\'') => {
                chars.next();
                cur.push('\'');
            }
            '\'' => {
                if quoted {
                    out.push(std::mem::take(&mut cur));
                }
                quoted = !quoted;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            _ if quoted => cur.push(c),
            _ => {}
        }
    }
    out
}

/// How a column's type in the stream relates to the type the replica was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeChange {
    /// The replica holds it: the same type, a narrower one, or a less specific spelling
    /// (canal-json's bare `decimal` for a recorded `decimal(5,2)`).
    Fits,
    /// The same kind, wider (int → bigint, varchar(24) → varchar(50), more fractional digits):
    /// the replica column is widened before the next merge.
    Widens,
    /// A different kind (int → varchar): the replica cannot take it in place.
    Incompatible,
}

/// Compares the recorded type of a column with the type the stream now shows.
pub fn compare(recorded: &SourceType, stream: &SourceType) -> TypeChange {
    use Kind::*;
    let wider = |r: Option<u32>, s: Option<u32>| matches!((r, s), (Some(r), Some(s)) if s > r);
    let members = |t: &SourceType| t.members.is_some() && (t.is_enum || t.is_set);
    match (&recorded.kind, &stream.kind) {
        (Int { bytes: r }, Int { bytes: s }) => {
            if s > r {
                TypeChange::Widens
            } else {
                TypeChange::Fits
            }
        }
        (Decimal { precision: rp, scale: rs }, Decimal { precision: sp, scale: ss }) => {
            let int_digits = |p: Option<u8>, s: Option<u8>| p.map(|p| p.saturating_sub(s.unwrap_or(0)) as u32);
            if wider(int_digits(*rp, *rs), int_digits(*sp, *ss)) || wider(rs.map(u32::from), ss.map(u32::from)) {
                TypeChange::Widens
            } else {
                TypeChange::Fits
            }
        }
        (Text { .. }, Text { .. }) if members(recorded) != members(stream) && members(stream) => {
            // Names now, free text before (or the reverse): both are text.
            TypeChange::Fits
        }
        (Text { length: r }, Text { length: s }) => {
            if wider(*r, *s) {
                TypeChange::Widens
            } else {
                TypeChange::Fits
            }
        }
        (DateTime { fsp: r }, DateTime { fsp: s })
        | (Timestamp { fsp: r }, Timestamp { fsp: s })
        | (Time { fsp: r }, Time { fsp: s }) => {
            if wider(r.map(u32::from), s.map(u32::from)) {
                TypeChange::Widens
            } else {
                TypeChange::Fits
            }
        }
        // ENUM/SET sent as index/bitmask for a column recorded with its members (from DDL).
        (Text { .. }, EnumIndex | SetBits) if members(recorded) => TypeChange::Fits,
        (r, s) if std::mem::discriminant(r) == std::mem::discriminant(s) => TypeChange::Fits,
        _ => TypeChange::Incompatible,
    }
}

/// One column of a table as the stream describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// The upstream type text, kept verbatim (what the metadata tables record).
    pub source_type: String,
    pub ty: SourceType,
}

impl Column {
    pub fn new(name: impl Into<String>, source_type: impl Into<String>) -> Column {
        let source_type = source_type.into();
        let ty = SourceType::parse(&source_type);
        Column { name: name.into(), source_type, ty }
    }
}

/// The columns one record carries, in upstream order. Decoders share one `Arc` between all
/// records with the same layout where they can; the [`fingerprint`](RecordSchema::fingerprint)
/// names the layout whatever the allocation (a schema-less Debezium record makes a new one
/// each time), so what landing caches per layout stays one entry per layout.
#[derive(Debug, PartialEq, Eq)]
pub struct RecordSchema {
    pub columns: Vec<Column>,
    /// A hash of the column names and type texts, in order.
    pub fingerprint: u64,
}

impl RecordSchema {
    pub fn new(columns: Vec<Column>) -> Arc<RecordSchema> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for c in &columns {
            c.name.hash(&mut h);
            c.source_type.hash(&mut h);
        }
        Arc::new(RecordSchema { fingerprint: h.finish(), columns })
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// What the warehouse knows about a replicated table: its columns (in the order they were
/// first seen) and its key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableSchema {
    pub columns: Vec<Column>,
    pub key: Vec<String>,
    /// Column → the type the replica column was last made for (absent: not made by tidemark yet).
    pub applied: std::collections::HashMap<String, String>,
    /// Column → an incompatible type seen upstream, awaiting `tidemark resume`.
    pub pending: std::collections::HashMap<String, String>,
    /// Why the table's merges are stopped.
    pub stopped: Option<String>,
    /// Column → the commit ts of the first change that showed it (or its current type).
    pub since: std::collections::HashMap<String, i64>,
}

impl TableSchema {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    pub fn is_key(&self, name: &str) -> bool {
        self.key.iter().any(|k| k == name)
    }

    /// The table as of commit ts `point`: a column first shown by a later change is not there
    /// yet, and one whose type a later change widened keeps the type its replica column has
    /// (key columns always stay).
    pub fn as_of(&self, point: i64) -> TableSchema {
        let mut s = self.clone();
        s.columns = Vec::new();
        for c in &self.columns {
            let later = self.since.get(&c.name).is_some_and(|&since| since > point);
            match (later, self.applied.get(&c.name)) {
                (false, _) => s.columns.push(c.clone()),
                _ if self.is_key(&c.name) => s.columns.push(c.clone()),
                (true, Some(applied)) => s.columns.push(Column::new(c.name.as_str(), applied.as_str())),
                (true, None) => {}
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_widths_and_ranges() {
        let t = SourceType::parse("tinyint");
        assert_eq!(t.kind, Kind::Int { bytes: 2 });
        assert_eq!(t.int_range, Some((-128, 127)));
        assert_eq!(SourceType::parse("int unsigned").kind, Kind::Int { bytes: 8 });
        assert_eq!(SourceType::parse("INT UNSIGNED").int_range, Some((0, 4294967295)));
        let u = SourceType::parse("bigint unsigned");
        assert_eq!(u.kind, Kind::UInt64);
        assert_eq!(u.int_range, Some((0, 18446744073709551615)));
        assert_eq!(SourceType::parse("bigint(20) unsigned zerofill").kind, Kind::UInt64);
        assert_eq!(SourceType::parse("bigint").kind, Kind::Int { bytes: 8 });
        assert_eq!(SourceType::parse("smallint unsigned").kind, Kind::Int { bytes: 4 });
    }

    #[test]
    fn decimals_text_binary_time() {
        assert_eq!(SourceType::parse("decimal(10, 4)").kind, Kind::Decimal { precision: Some(10), scale: Some(4) });
        assert_eq!(SourceType::parse("decimal").kind, Kind::Decimal { precision: None, scale: None });
        assert_eq!(SourceType::parse("decimal(5)").kind, Kind::Decimal { precision: Some(5), scale: Some(0) });
        assert_eq!(SourceType::parse("varchar(24)").kind, Kind::Text { length: Some(24) });
        assert_eq!(SourceType::parse("longtext").kind, Kind::Text { length: None });
        for b in ["binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "varbinary(16)"] {
            assert!(SourceType::parse(b).is_binary(), "{b}");
        }
        assert_eq!(SourceType::parse("datetime(6)").kind, Kind::DateTime { fsp: Some(6) });
        assert_eq!(SourceType::parse("timestamp").kind, Kind::Timestamp { fsp: None });
        assert_eq!(SourceType::parse("time(3)").kind, Kind::Time { fsp: Some(3) });
        assert_eq!(SourceType::parse("json").kind, Kind::Json);
        assert_eq!(SourceType::parse("geometry").kind, Kind::Text { length: None });
    }

    #[test]
    fn type_changes() {
        let c = |a: &str, b: &str| compare(&SourceType::parse(a), &SourceType::parse(b));
        assert_eq!(c("int", "int"), TypeChange::Fits);
        assert_eq!(c("bigint", "int"), TypeChange::Fits);
        assert_eq!(c("int", "bigint"), TypeChange::Widens);
        assert_eq!(c("decimal(5,2)", "decimal"), TypeChange::Fits, "less specific");
        assert_eq!(c("decimal(5,2)", "decimal(10,2)"), TypeChange::Widens);
        assert_eq!(c("decimal(5,2)", "decimal(5,3)"), TypeChange::Widens);
        assert_eq!(c("varchar(24)", "varchar"), TypeChange::Fits);
        assert_eq!(c("varchar(24)", "varchar(50)"), TypeChange::Widens);
        assert_eq!(c("datetime(3)", "datetime(6)"), TypeChange::Widens);
        assert_eq!(c("enum('a','b')", "enum"), TypeChange::Fits);
        assert_eq!(c("int", "varchar(10)"), TypeChange::Incompatible);
        assert_eq!(c("bigint", "bigint unsigned"), TypeChange::Incompatible);
        assert_eq!(c("varchar(5)", "json"), TypeChange::Incompatible);
    }

    #[test]
    fn enums_and_sets() {
        assert_eq!(SourceType::parse("enum").kind, Kind::EnumIndex);
        assert_eq!(SourceType::parse("set").kind, Kind::SetBits);
        let e = SourceType::parse("enum('a','b)c','d''e')");
        assert_eq!(e.kind, Kind::Text { length: None });
        assert_eq!(e.members.unwrap(), vec!["a", "b)c", "d'e"]);
        assert!(e.is_enum);
    }
}
