{%- import "upstream/mysql/macros.sql" as m -%}
{#- The next `rows` rows of the upstream table in key order, after a key when `after` is set:
    bound first the first key column (for the index range), then for each key column i the
    columns 1..i (k1 = ? AND … AND ki > ?). -#}
SELECT {{ m.columns(t) }}
FROM {{ db | ident }}.{{ table | ident }} AS u
{%- if after %}
WHERE u.{{ t.key[0].name | ident }} >= {{ m.param(t.key[0]) }}
  AND ({% for c in t.key %}({% for p in t.key[:loop.index0] %}u.{{ p.name | ident }} = {{ m.param(p) }} AND {% endfor %}u.{{ c.name | ident }} > {{ m.param(c) }}){% if not loop.last %} OR {% endif %}{% endfor %})
{%- endif %}
ORDER BY {{ m.order(t, "u.") }}
LIMIT {{ rows }}
