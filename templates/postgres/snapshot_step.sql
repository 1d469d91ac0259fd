{#- A chunk of snapshot generation $2 of table $1 landed, in the transaction that staged its
    $4 rows: the last key landed moves from $3 to $5. Updates nothing (and the landing fails)
    when another process moved it meanwhile: no chunk lands twice. -#}
UPDATE _tidemark_snapshots SET last_key = $5, rows_landed = rows_landed + $4, chunks = chunks + 1, updated_at = now()
WHERE name = $1 AND generation = $2 AND last_key IS NOT DISTINCT FROM $3
