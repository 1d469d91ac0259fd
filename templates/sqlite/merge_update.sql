{%- import "sqlite/macros.sql" as m -%}
{#- Matched keys whose last change is an upsert. -#}
UPDATE {{ t.name | ident }} AS t
SET {% for c in (t.non_key or t.key) %}{{ c.name | ident }} = {{ m.merged(c, t.partial_rows and not c.is_key, "s", "t") }}{% if not loop.last %},
    {% endif %}{% endfor %}
FROM temp._tm_src AS s
WHERE {{ m.key_match(t, "t", "s") }} AND s._tidemark_op <> 'd'
