{#- Snapshot generation ?2 of table ?1 (re)opened upstream at position ?4, rows ordered at ?3. -#}
UPDATE _tidemark_snapshots SET order_key = ?3, point = ?4, updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now')
WHERE name = ?1 AND generation = ?2
