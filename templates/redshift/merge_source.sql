{%- import "redshift/macros.sql" as m -%}
{#- One source row per key: the last change by (order key, topic, partition, offset, index in the
    record) - no ties - typed. -#}
CREATE TEMP TABLE _tm_src AS
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
