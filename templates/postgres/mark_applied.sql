{#- The replica column now has the recorded type. -#}
UPDATE _tidemark_columns SET applied_type = source_type WHERE table_name = $1 AND name = $2
