{%- import "postgres/macros.sql" as m -%}
{#- What the MERGE below will do, counted before it runs (PostgreSQL 15's MERGE reports
    only a total). -#}
SELECT count(*) FILTER (WHERE s._tidemark_op <> 'd' AND t.{{ t.key[0].name | ident }} IS NULL) AS inserted,
       count(*) FILTER (WHERE s._tidemark_op <> 'd' AND t.{{ t.key[0].name | ident }} IS NOT NULL) AS updated,
       count(*) FILTER (WHERE s._tidemark_op = 'd' AND t.{{ t.key[0].name | ident }} IS NOT NULL) AS deleted
FROM _tm_src AS s
LEFT JOIN {{ t.name | ident }} AS t ON {{ m.key_match(t, "t", "s") }}
