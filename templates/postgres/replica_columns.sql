{#- The replica's existing columns ($1 = table name), to add the ones the stream gained. -#}
SELECT a.attname::text AS name
FROM pg_attribute a
WHERE a.attrelid = to_regclass(quote_ident($1)) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
