{%- import "mssql/macros.sql" as m -%}
{#- The rows this run consumes, fixed once (rows landed meanwhile are neither merged nor
    removed), with each staged value as a column. -#}
SELECT s._tm_topic, s._tm_partition, s._tm_offset, s._tm_sub, s._tm_commit_ts, s._tm_op, k.*, r.*
INTO #tm_batch
FROM {{ t.staging | ident }} AS s
OUTER APPLY (
        {{ m.members(t.key, "s._tm_key", "_tm_k") }}
) AS k
OUTER APPLY (
        {{ m.members(t.columns, "s._tm_row", "_tm_c") }}
) AS r
