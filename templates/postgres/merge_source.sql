{%- import "postgres/macros.sql" as m -%}
{#- The last change per key among staged rows up to the watermark ($1) and with a commit ts
    above the table's last consistent point ($2: anything at or below it was merged, so what
    arrives there now is a re-send) up to the consistent point ($3), typed. Streams without
    watermarks bind the widest bounds. Order: upstream commit ts, then Kafka position (offset
    order is commit order within a partition); never an arbitrary tie. -#}
CREATE TEMP TABLE _tm_src ON COMMIT DROP AS
SELECT DISTINCT ON ({% for c in t.key %}{{ m.extract(c, "s._tm_key") }}{% if not loop.last %}, {% endif %}{% endfor %})
    s._tm_op AS _tidemark_op,
{%- if t.partial_rows %}
    s._tm_row AS _tidemark_row, NULL::jsonb AS _tidemark_fill,
{%- endif %}
{%- for c in t.columns %}
    {{ m.extract(c, "s._tm_key" if c.is_key else "s._tm_row") }} AS {{ c.name | ident }}{% if not loop.last %},{% endif %}
{%- endfor %}
FROM {{ t.staging | ident }} AS s
WHERE s._tm_seq <= $1 AND s._tm_commit_ts > $2 AND s._tm_commit_ts <= $3{% if from_seq is defined %} AND s._tm_seq >= $4{% endif %}
ORDER BY {% for c in t.key %}{{ m.extract(c, "s._tm_key") }}, {% endfor %}s._tm_commit_ts DESC NULLS LAST, s._tm_topic DESC, s._tm_partition DESC, s._tm_offset DESC, s._tm_sub DESC
