{#- The state of table ?1 changed (columns, types, key, stopped): caches elsewhere reload it. -#}
UPDATE _tidemark_tables SET version = version + 1 WHERE name = ?1
