{#- The columns of upstream table $1 . $2 (schema, table), in order: each with the type a
    Debezium PostgreSQL stream records for it (the names src/codec/debezium.rs gives Debezium's
    default schema types, so a snapshot and the stream describe a column alike), and its own
    type as format_type writes it (the casts of bound key values). -#}
SELECT a.attname::text AS name,
  CASE
    WHEN t.typtype = 'e' THEN 'enum(' || (
        SELECT string_agg('''' || replace(e.enumlabel, '''', '''''') || '''', ',' ORDER BY e.enumsortorder)
        FROM pg_enum AS e WHERE e.enumtypid = t.oid) || ')'
    WHEN t.typcategory = 'A' THEN 'json'
    WHEN t.typname = 'int2' THEN 'smallint'
    WHEN t.typname = 'int4' THEN 'int'
    WHEN t.typname = 'int8' THEN 'bigint'
    WHEN t.typname = 'float4' THEN 'float'
    WHEN t.typname = 'float8' THEN 'double'
    WHEN t.typname = 'bool' THEN 'boolean'
    WHEN t.typname = 'numeric' AND a.atttypmod >= 4
      THEN format('decimal(%s,%s)', ((a.atttypmod - 4) >> 16) & 65535, (a.atttypmod - 4) & 65535)
    WHEN t.typname = 'numeric' THEN 'decimal'
    WHEN t.typname = 'bytea' THEN 'blob'
    WHEN t.typname = 'date' THEN 'date'
    WHEN t.typname = 'timestamp' AND a.atttypmod BETWEEN 0 AND 3 THEN 'datetime(3)'
    WHEN t.typname = 'timestamp' THEN 'datetime(6)'
    WHEN t.typname = 'timestamptz' THEN 'timestamp(6)'
    WHEN t.typname = 'time' AND a.atttypmod BETWEEN 0 AND 3 THEN 'time(3)'
    WHEN t.typname = 'time' THEN 'time(6)'
    WHEN t.typname IN ('json', 'jsonb') THEN 'json'
    WHEN t.typname = 'bit' AND a.atttypmod = 1 THEN 'boolean'
    WHEN t.typname = 'bit' THEN format('bit(%s)', a.atttypmod)
    ELSE 'text'
  END AS column_type,
  format_type(a.atttypid, a.atttypmod) AS native
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_type AS t ON t.oid = a.atttypid
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
