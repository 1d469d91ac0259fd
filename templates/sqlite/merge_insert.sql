{%- import "sqlite/macros.sql" as m -%}
{#- Keys the replica lacks whose last change is an upsert. -#}
INSERT INTO {{ t.name | ident }} ({% for c in t.columns %}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %})
SELECT {% for c in t.columns %}s.{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}
FROM temp._tm_src AS s
WHERE s._tidemark_op <> 'd'
  AND NOT EXISTS (SELECT 1 FROM {{ t.name | ident }} AS t WHERE {{ m.key_match(t, "t", "s") }})
