{%- import "snowflake/macros.sql" as m -%}
{#- One source row per key - the last change, by TiCDC's commit ts, or for records without one
    (TiCDC's Avro deletes, tombstones) the commit ts of the record before it in its partition,
    then the Kafka position: no ties, so no nondeterministic MERGE. A tombstone is `{}` (what
    the connector writes for a null value), JSON null or SQL NULL: it deletes, and a delete of a
    key the replica lacks matches nothing, so it never inserts a row of NULLs. -#}
MERGE INTO {{ t.name | ident }} AS t
USING (
    SELECT
{%- for c in t.columns %}
        {{ m.key_value(c, offset) if c.is_key else m.value(c, "s.RECORD_CONTENT", offset) }} AS {{ c.name | ident }},
{%- endfor %}
        s._TIDEMARK_IS_DELETE
    FROM (
        SELECT r.*,
               (r.RECORD_CONTENT IS NULL OR IS_NULL_VALUE(r.RECORD_CONTENT)
                OR (IS_OBJECT(r.RECORD_CONTENT) AND ARRAY_SIZE(OBJECT_KEYS(r.RECORD_CONTENT)) = 0)) AS _TIDEMARK_IS_DELETE,
               r.RECORD_METADATA['topic']::VARCHAR AS _TIDEMARK_TOPIC,
               r.RECORD_METADATA['partition']::NUMBER(38,0) AS _TIDEMARK_PARTITION,
               r.RECORD_METADATA['offset']::NUMBER(38,0) AS _TIDEMARK_OFFSET,
               COALESCE(
                   NULLIF(r.RECORD_CONTENT['_tidb_commit_ts']::NUMBER(38,0), 0),
                   LAST_VALUE(NULLIF(r.RECORD_CONTENT['_tidb_commit_ts']::NUMBER(38,0), 0)) IGNORE NULLS OVER (
                       PARTITION BY r.RECORD_METADATA['topic'], r.RECORD_METADATA['partition']
                       ORDER BY r.RECORD_METADATA['offset']::NUMBER(38,0)
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                   0) AS _TIDEMARK_ORDER
        FROM {{ stream | ident }} AS r
    ) AS s
    QUALIFY ROW_NUMBER() OVER (
        PARTITION BY {% for c in t.key %}{{ m.key_value(c, offset) }}{% if not loop.last %}, {% endif %}{% endfor %}
        ORDER BY s._TIDEMARK_ORDER DESC, s._TIDEMARK_TOPIC DESC, s._TIDEMARK_PARTITION DESC, s._TIDEMARK_OFFSET DESC) = 1
) AS s
ON {% for c in t.key %}t.{{ c.name | ident }} = s.{{ c.name | ident }}{% if not loop.last %} AND {% endif %}{% endfor %}
WHEN MATCHED AND s._TIDEMARK_IS_DELETE THEN
    DELETE
{%- if t.non_key %}
WHEN MATCHED THEN
    UPDATE SET {% for c in t.non_key %}{{ c.name | ident }} = s.{{ c.name | ident }}{% if not loop.last %},
               {% endif %}{% endfor %}
{%- endif %}
WHEN NOT MATCHED AND NOT s._TIDEMARK_IS_DELETE THEN
    INSERT ({% for c in t.columns %}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %})
    VALUES ({% for c in t.columns %}s.{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %})
