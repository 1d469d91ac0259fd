{#- Table $1 is consistent as of point $2 (a watermark-gated merge). -#}
UPDATE _tidemark_tables SET merged_point = $2 WHERE name = $1
