//! `[[table_patterns]]`: tables named by their topics. A topic a pattern's `topic` (a regular
//! expression over the whole name) matches is a table named by the pattern's `name` — `{1}`,
//! `{2}`, … and `{group}` are the expression's groups, `{topic}` the whole name — with the
//! pattern's other settings, as if it had its own `[[tables]]` entry. An explicit `[[tables]]`
//! entry for a topic wins over every pattern; the first matching pattern wins over later ones.

use anyhow::{anyhow, bail, Result};
use regex_lite::Regex;

use super::TableConfig;

/// The replica's name when a pattern does not say: the expression's first group.
pub const DEFAULT_NAME: &str = "{1}";

/// A pattern's expression, anchored to the whole topic name.
fn expression(p: &TableConfig) -> Result<Regex> {
    Regex::new(&format!("^(?:{})$", p.topic))
        .map_err(|e| anyhow!("[[table_patterns]] topic = {:?} is not a regular expression: {e}", p.topic))
}

fn name_template(p: &TableConfig) -> &str {
    if p.name.is_empty() {
        DEFAULT_NAME
    } else {
        &p.name
    }
}

/// The replica name `template` gives a topic `re` matched, or why it cannot.
fn render(template: &str, re: &Regex, topic: &str) -> Result<Option<String>> {
    let Some(caps) = re.captures(topic) else { return Ok(None) };
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').ok_or_else(|| anyhow!("name = {template:?}: a `{{` without `}}`"))? + start;
        let group = &rest[start + 1..end];
        let value = match group {
            "topic" => Some(topic),
            g => match g.parse::<usize>() {
                Ok(i) => caps.get(i).map(|m| m.as_str()),
                Err(_) => caps.name(g).map(|m| m.as_str()),
            },
        };
        out.push_str(value.unwrap_or_default());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(Some(out))
}

/// Refuses a pattern that could not work: a bad expression, a name naming a group the expression
/// does not have, settings that belong to one table only.
pub fn check(patterns: &[TableConfig]) -> Result<()> {
    for p in patterns {
        let re = expression(p)?;
        let template = name_template(p);
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| anyhow!("[[table_patterns]] name = {template:?}: a `{{` without `}}`"))?
                + start;
            let group = &rest[start + 1..end];
            let known = group == "topic"
                || group.parse::<usize>().is_ok_and(|i| i < re.captures_len())
                || re.capture_names().flatten().any(|n| n == group);
            if !known {
                bail!(
                    "[[table_patterns]] topic = {:?}, name = {template:?}: the expression has no group `{group}`",
                    p.topic
                );
            }
            rest = &rest[end + 1..];
        }
        for (set, what) in [
            (p.source.is_some(), "source"),
            (p.source_ddl.is_some(), "source_ddl"),
            (p.raw_table.is_some(), "raw_table"),
        ] {
            if set {
                bail!("[[table_patterns]] topic = {:?}: `{what}` describes one table; give that table its own [[tables]] entry", p.topic);
            }
        }
    }
    Ok(())
}

/// The tables `patterns` make of `topics` that `configured` does not already replicate, in
/// topic order.
pub fn tables_for(patterns: &[TableConfig], configured: &[TableConfig], topics: &[String]) -> Result<Vec<TableConfig>> {
    let expressions: Vec<Regex> = patterns.iter().map(expression).collect::<Result<_>>()?;
    let mut topics: Vec<&String> = topics.iter().collect();
    topics.sort();
    topics.dedup();
    let mut out: Vec<TableConfig> = Vec::new();
    for topic in topics {
        if configured.iter().any(|t| &t.topic == topic) {
            continue;
        }
        for (p, re) in patterns.iter().zip(&expressions) {
            let Some(name) = render(name_template(p), re, topic)? else { continue };
            if name.is_empty() {
                bail!("[[table_patterns]] topic = {:?} gives topic {topic} an empty table name", p.topic);
            }
            if let Some(other) = configured.iter().chain(&out).find(|t| t.name == name) {
                bail!(
                    "[[table_patterns]] topic = {:?} names topic {topic}'s table `{name}`, as topic {} is already; \
                     give one of them its own [[tables]] entry",
                    p.topic,
                    other.topic
                );
            }
            out.push(TableConfig { name, topic: topic.clone(), pattern: Some(p.topic.clone()), ..p.clone() });
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn topics(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn topics_matching_a_pattern_become_tables() {
        let c = Config::parse(
            "[[tables]]\nname = \"items\"\ntopic = \"tidb_shop_item\"\n\
             [[table_patterns]]\ntopic = 'tidb_shop_(\\w+)'\nformat = \"debezium\"\n\
             [[table_patterns]]\ntopic = 'cdc\\.(?<db>\\w+)\\.(?<table>\\w+)'\nname = \"{db}_{table}\"\n",
        )
        .unwrap();
        let made = tables_for(
            &c.table_patterns,
            &c.tables,
            &topics(&["tidb_shop_orders", "tidb_shop_item", "other", "cdc.a.b", "tidb_shop_", "xtidb_shop_users"]),
        )
        .unwrap();
        let got: Vec<(&str, &str)> = made.iter().map(|t| (t.name.as_str(), t.topic.as_str())).collect();
        // The explicit entry keeps its topic; the match is over the whole name.
        assert_eq!(got, vec![("a_b", "cdc.a.b"), ("orders", "tidb_shop_orders")]);
        assert_eq!(made[1].format, Some(crate::config::Format::Debezium));
    }

    #[test]
    fn patterns_that_cannot_work_are_refused() {
        for (text, says) in [
            ("topic = 'tidb_('", "not a regular expression"),
            ("topic = 'tidb_(\\w+)'\nname = \"{2}\"", "no group `2`"),
            ("topic = 'tidb_\\w+'", "no group `1`"),
            ("topic = 'tidb_(\\w+)'\nsource_ddl = \"t.sql\"", "describes one table"),
        ] {
            let e = Config::parse(&format!("[[table_patterns]]\n{text}\n")).unwrap_err();
            assert!(format!("{e:#}").contains(says), "{text}: {e:#}");
        }
        // Two topics, one table name.
        let c = Config::parse("[[table_patterns]]\ntopic = '(?:a|b)_(\\w+)'\n").unwrap();
        let e = tables_for(&c.table_patterns, &c.tables, &topics(&["a_t", "b_t"])).unwrap_err();
        assert!(format!("{e:#}").contains("as topic a_t is already"), "{e:#}");
        // A pattern with the whole topic as the name needs no group.
        let c = Config::parse("[[table_patterns]]\ntopic = 'x\\.\\w+'\nname = \"{topic}\"\n").unwrap();
        assert_eq!(tables_for(&c.table_patterns, &c.tables, &topics(&["x.y"])).unwrap()[0].name, "x.y");
    }
}
