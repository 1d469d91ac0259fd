{%- import "sqlite/macros.sql" as m -%}
{#- `tidemark bench`'s limit, 2 of 2: one upsert of the others, from the prepared source. -#}
INSERT INTO {{ t.name | ident }} ({% for c in t.columns %}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %})
SELECT {% for c in t.columns %}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}
FROM bench_src WHERE _tidemark_op <> 'd'
ON CONFLICT ({{ m.key_list(t, "") }}) DO UPDATE SET
{%- for c in t.non_key %} {{ c.name | ident }} = excluded.{{ c.name | ident }}{% if not loop.last %},{% endif %}{% endfor %}
