{#- A chunk of snapshot generation ?2 of table ?1 landed: see postgres/snapshot_step.sql. -#}
UPDATE _tidemark_snapshots SET last_key = ?5, rows_landed = rows_landed + ?4, chunks = chunks + 1,
    updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE name = ?1 AND generation = ?2 AND last_key IS ?3
