{%- import "postgres/macros.sql" as m -%}
{#- Run only for tables whose staged rows may leave columns out (t.partial_rows: a column
    upstream did not send because it did not change, e.g. Debezium's placeholder for a TOASTed
    value). For a key whose last change lacks a column, the column's value comes from the key's
    latest earlier change within the same bounds as merge_source ($1..$3) that carries it —
    unless the key was deleted after that change. _tidemark_fill records what was filled; a
    column still missing keeps the replica's value (merge_apply). -#}
UPDATE _tm_src AS d
SET {% for c in t.non_key %}{{ c.name | ident }} = CASE WHEN f.fill ? {{ c.name | lit }} THEN {{ m.extract(c, "f.fill") }} ELSE d.{{ c.name | ident }} END,
    {% endfor %}_tidemark_fill = f.fill
FROM (
    SELECT {% for k in t.key %}x.{{ k.name | ident }}, {% endfor %}jsonb_object_agg(x._tm_col, x._tm_val) AS fill
    FROM (
        SELECT {% for k in t.key %}w.{{ k.name | ident }}, {% endfor %}a._tm_col, st._tm_op, st._tm_row -> a._tm_col AS _tm_val,
               row_number() OVER (
                   PARTITION BY {% for k in t.key %}w.{{ k.name | ident }}, {% endfor %}a._tm_col
                   ORDER BY st._tm_commit_ts DESC NULLS LAST, st._tm_topic DESC, st._tm_partition DESC, st._tm_offset DESC, st._tm_sub DESC
               ) AS _tm_rank
        FROM _tm_src AS w
        CROSS JOIN LATERAL unnest(ARRAY[{% for c in t.non_key %}{{ c.name | lit }}{% if not loop.last %}, {% endif %}{% endfor %}]::text[]) AS a(_tm_col)
        JOIN {{ t.staging | ident }} AS st ON {% for k in t.key %}{{ m.extract(k, "st._tm_key") }} = w.{{ k.name | ident }} AND {% endfor %}true
        WHERE w._tidemark_op <> 'd' AND NOT w._tidemark_row ? a._tm_col
          AND st._tm_seq <= $1 AND st._tm_commit_ts > $2 AND st._tm_commit_ts <= $3{% if from_seq is defined %} AND st._tm_seq >= $4{% endif %}
          AND (st._tm_op = 'd' OR st._tm_row ? a._tm_col)
    ) AS x
    WHERE x._tm_rank = 1 AND x._tm_op <> 'd'
    GROUP BY {% for k in t.key %}x.{{ k.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}
) AS f
WHERE {{ m.key_match(t, "d", "f") }}
