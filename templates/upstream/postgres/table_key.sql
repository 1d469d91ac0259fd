{#- The primary key of upstream table $1 . $2 (schema, table), else its first unique index of
    NOT NULL columns without expressions or predicate, in key order. -#}
SELECT a.attname::text AS name, ic.relname::text AS index_name
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indrelid
JOIN pg_class AS ic ON ic.oid = i.indexrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = $1 AND c.relname = $2 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
  AND k.ord <= i.indnkeyatts
  AND NOT EXISTS (
      SELECT 1 FROM unnest(i.indkey::int2[]) AS z(attnum)
      JOIN pg_attribute AS a2 ON a2.attrelid = c.oid AND a2.attnum = z.attnum
      WHERE NOT a2.attnotnull)
ORDER BY NOT i.indisprimary, ic.relname, k.ord
