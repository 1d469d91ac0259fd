//! What only Snowflake scripts need: the task schedule from tidemark's cron, and the names of
//! the objects the Snowflake Kafka connector and tidemark's script create.

/// A Snowflake task `SCHEDULE` value for a cron expression with seconds, and a note when the
/// schedule had to change (Snowflake's CRON has no seconds; a task runs at most every 10 s).
pub fn task_schedule(cron: &str) -> Result<(String, Option<String>), String> {
    let f: Vec<&str> = cron.split_whitespace().collect();
    if !(6..=7).contains(&f.len()) {
        return Err(format!("schedule `{cron}` is not a cron expression with seconds"));
    }
    if f.len() == 7 && f[6] != "*" {
        return Err(format!("schedule `{cron}` restricts the year, which a Snowflake task cannot"));
    }
    let (sec, rest) = (f[0], &f[1..6]);
    let every_second_field = rest.iter().all(|x| *x == "*");
    if every_second_field && (sec == "*" || sec.starts_with("*/")) {
        let n: u32 = if sec == "*" { 1 } else { sec[2..].parse().map_err(|_| format!("bad seconds field `{sec}`"))? };
        return Ok(if n < 10 {
            ("10 SECONDS".into(), Some(format!("`{cron}` runs every {n} s; a Snowflake task runs at most every 10 s")))
        } else {
            (format!("{n} SECONDS"), None)
        });
    }
    // Snowflake numbers weekdays 0-6 from Sunday; tidemark's cron 1-7.
    let dow: String = {
        let mut out = String::new();
        let mut num = String::new();
        for c in rest[4].chars().chain(std::iter::once('\0')) {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            if !num.is_empty() {
                let n: u32 = num.parse().map_err(|_| format!("bad weekday `{num}`"))?;
                out.push_str(&(n.saturating_sub(1)).to_string());
                num.clear();
            }
            if c != '\0' {
                out.push(c);
            }
        }
        out
    };
    let clause = format!("USING CRON {} {} {} {} {dow} UTC", rest[0], rest[1], rest[2], rest[3]);
    let note = (sec.parse::<u32>().is_err())
        .then(|| format!("`{cron}` fires within minutes; Snowflake's CRON runs once a minute at most"));
    Ok((clause, note))
}

/// The table the Snowflake Kafka connector creates for a topic: an unquoted (upper-cased) name
/// when the topic is a valid identifier. Other topics need the connector's `topic2table.map`
/// and `raw_table` set to match.
pub fn connector_table(topic: &str) -> String {
    topic.to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(task_schedule("0 * * * * *").unwrap(), ("USING CRON * * * * * UTC".into(), None));
        assert_eq!(task_schedule("0 */5 * * * *").unwrap().0, "USING CRON */5 * * * * UTC");
        assert_eq!(task_schedule("*/30 * * * * *").unwrap(), ("30 SECONDS".into(), None));
        let (every, note) = task_schedule("*/5 * * * * *").unwrap();
        assert_eq!(every, "10 SECONDS");
        assert!(note.unwrap().contains("10 s"));
        assert_eq!(task_schedule("0 0 2 * * 2-6").unwrap().0, "USING CRON 0 2 * * 1-5 UTC");
        assert_eq!(task_schedule("0 0 2 * * MON").unwrap().0, "USING CRON 0 2 * * MON UTC");
        assert!(task_schedule("0 0 0 1 1 * 2030").is_err());
        assert_eq!(connector_table("tidb_tpcc_item"), "TIDB_TPCC_ITEM");
    }
}
