{%- import "snowflake/macros.sql" as m -%}
{#- One source row per key - the last change by order key (see `ordered`), then Kafka position:
    no ties, so no nondeterministic MERGE. A tombstone deletes, and a delete of a key the replica
    lacks matches nothing, so it never inserts a row of NULLs. -#}
MERGE INTO {{ t.name | ident }} AS t
USING (
    SELECT
{%- for c in t.columns %}
        {{ m.key_value(c, offset) if c.is_key else m.value(c, "s.RECORD_CONTENT", offset) }} AS {{ c.name | ident }},
{%- endfor %}
        s._TIDEMARK_IS_DELETE
    FROM (
        {{ m.ordered(stream, positions) }}
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
