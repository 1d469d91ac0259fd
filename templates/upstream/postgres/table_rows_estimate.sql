{#- The server's estimate of the rows of upstream table $1 . $2 (for progress; never exact). -#}
SELECT GREATEST(c.reltuples, 0)::int8::text AS estimate
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2
