{%- import "sqlite/macros.sql" as m -%}
{#- Run only for tables whose staged rows may leave columns out (see the PostgreSQL template):
    a column the key's last change lacks comes from the key's latest earlier change within the
    bounds (?1..?3) that carries it, unless the key was deleted after it; what is still missing
    keeps the replica's value (merge_update). -#}
UPDATE temp._tm_src AS d
SET {% for c in t.non_key %}{{ c.name | ident }} = CASE WHEN json_type(f.fill, {{ c.name | json_path }}) IS NOT NULL THEN {{ m.extract(c, "f.fill") }} ELSE d.{{ c.name | ident }} END,
    {% endfor %}_tidemark_fill = f.fill
FROM (
    SELECT {% for k in t.key %}x.{{ k.name | ident }}, {% endfor %}json_group_object(x._tm_col, x._tm_val) AS fill
    FROM (
        SELECT {% for k in t.key %}w.{{ k.name | ident }}, {% endfor %}a.value AS _tm_col, st._tm_op,
               (SELECT q.value FROM json_each(st._tm_row) AS q WHERE q.key = a.value) AS _tm_val,
               row_number() OVER (
                   PARTITION BY {% for k in t.key %}w.{{ k.name | ident }}, {% endfor %}a.value
                   ORDER BY st._tm_commit_ts DESC NULLS LAST, st._tm_topic DESC, st._tm_partition DESC, st._tm_offset DESC, st._tm_sub DESC
               ) AS _tm_rank
        FROM temp._tm_src AS w
        JOIN json_each(json_array({% for c in t.non_key %}{{ c.name | lit }}{% if not loop.last %}, {% endif %}{% endfor %})) AS a
        JOIN {{ t.staging | ident }} AS st ON {% for k in t.key %}{{ m.extract(k, "st._tm_key") }} = w.{{ k.name | ident }} AND {% endfor %}1
        WHERE w._tidemark_op <> 'd'
          AND NOT EXISTS (SELECT 1 FROM json_each(w._tidemark_row) AS p WHERE p.key = a.value)
          AND st._tm_seq <= ?1 AND st._tm_commit_ts > ?2 AND st._tm_commit_ts <= ?3{% if from_seq is defined %} AND st._tm_seq >= ?4{% endif %}
          AND (st._tm_op = 'd' OR EXISTS (SELECT 1 FROM json_each(st._tm_row) AS q WHERE q.key = a.value))
    ) AS x
    WHERE x._tm_rank = 1 AND x._tm_op <> 'd'
    GROUP BY {% for k in t.key %}x.{{ k.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}
) AS f
WHERE {{ m.key_match(t, "d", "f") }}
