{%- import "postgres/macros.sql" as m -%}
{#- The replica's next `rows` keys in its key order, after the key $1 (a JSON key object, as
    staged) when `after` is set, as canonical text (`verify`: keys upstream may not hold). -#}
SELECT {% for c in t.key %}{{ m.as_text(c) }}{% if not loop.last %}, {% endif %}{% endfor %}
FROM {{ t.name | ident }} AS r
{%- if after %}
WHERE ({% for c in t.key %}r.{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}) >
      (SELECT {% for c in t.key %}{{ m.extract(c, "a.v") }}{% if not loop.last %}, {% endif %}{% endfor %} FROM (SELECT $1::jsonb AS v) AS a)
{%- endif %}
ORDER BY {% for c in t.key %}r.{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}
LIMIT {{ rows }}
