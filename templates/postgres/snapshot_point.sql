{#- Snapshot generation $2 of table $1 (re)opened upstream at position $4: its rows from now on
    are ordered at $3. -#}
UPDATE _tidemark_snapshots SET order_key = $3, point = $4, updated_at = now()
WHERE name = $1 AND generation = $2
