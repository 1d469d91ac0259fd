{#- The replica column $2 of table $1 now has the type $3 (the recorded one, as of the merge). -#}
UPDATE _tidemark_columns SET applied_type = $3 WHERE table_name = $1 AND name = $2
