{#- The stream shows a wider type of the same kind: record it; the merge widens the replica. -#}
UPDATE _tidemark_columns SET source_type = $3, since_ts = $4 WHERE table_name = $1 AND name = $2
