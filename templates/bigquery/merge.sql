{%- import "bigquery/macros.sql" as m -%}
{#- One source row per key: the last change by (order key, topic, partition, offset, index in the
    record) - no ties. Delete when it is a delete (a delete of an absent key matches nothing: no
    row of NULLs), update when matched, insert otherwise. -#}
MERGE INTO {{ t.name | ident }} AS t
USING (
    SELECT x._tm_op AS _tidemark_op,
{%- for c in t.columns %}
        {{ m.value(c, "x._tm_key" if c.is_key else "x._tm_row") }} AS {{ c.name | ident }}{% if not loop.last %},{% endif %}
{%- endfor %}
    FROM (
        SELECT b.*, ROW_NUMBER() OVER (
            PARTITION BY {% for c in t.key %}{{ m.raw(c, "b._tm_key") }}{% if not loop.last %}, {% endif %}{% endfor %}
            ORDER BY COALESCE(b._tm_commit_ts, 0) DESC, b._tm_topic DESC, b._tm_partition DESC, b._tm_offset DESC, b._tm_sub DESC
        ) AS _tm_rank
        FROM _tm_batch AS b
    ) AS x
    WHERE x._tm_rank = 1
) AS s
ON {% for c in t.key %}t.{{ c.name | ident }} = s.{{ c.name | ident }}{% if not loop.last %} AND {% endif %}{% endfor %}
WHEN MATCHED AND s._tidemark_op = 'd' THEN
    DELETE
{%- if t.non_key %}
WHEN MATCHED THEN
    UPDATE SET {% for c in t.non_key %}{{ c.name | ident }} = s.{{ c.name | ident }}{% if not loop.last %},
               {% endif %}{% endfor %}
{%- endif %}
WHEN NOT MATCHED AND s._tidemark_op <> 'd' THEN
    INSERT ({% for c in t.columns %}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %})
    VALUES ({% for c in t.columns %}s.{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %})
