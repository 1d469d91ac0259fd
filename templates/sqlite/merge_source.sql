{%- import "sqlite/macros.sql" as m -%}
{#- The last change per key among staged rows up to the watermark (?1) with a commit ts above the
    last consistent point (?2) up to the consistent point (?3), typed (see the PostgreSQL
    template). Order: upstream commit ts, then Kafka position; never an arbitrary tie. -#}
CREATE TEMP TABLE _tm_src AS
SELECT s._tm_op AS _tidemark_op,
{%- if t.partial_rows %}
       s._tm_row AS _tidemark_row, NULL AS _tidemark_fill,
{%- endif %}
{%- for c in t.columns %}
       {{ m.extract(c, "s._tm_key" if c.is_key else "s._tm_row") }} AS {{ c.name | ident }}{% if not loop.last %},{% endif %}
{%- endfor %}
FROM (
    SELECT st.*, row_number() OVER (
        PARTITION BY st._tm_key
        ORDER BY st._tm_commit_ts DESC NULLS LAST, st._tm_topic DESC, st._tm_partition DESC, st._tm_offset DESC, st._tm_sub DESC
    ) AS _tm_rank
    FROM {{ t.staging | ident }} AS st
    WHERE st._tm_seq <= ?1 AND st._tm_commit_ts > ?2 AND st._tm_commit_ts <= ?3{% if from_seq is defined %} AND st._tm_seq >= ?4{% endif %}
) AS s
WHERE s._tm_rank = 1
