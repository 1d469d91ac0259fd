{%- import "sqlite/macros.sql" as m -%}
{#- The replica's next `rows` keys in its key order, after the key ?1 when `after` is set
    (see postgres/verify_keys.sql). -#}
SELECT {% for c in t.key %}{{ m.as_text(c) }}{% if not loop.last %}, {% endif %}{% endfor %}
FROM {{ t.name | ident }} AS r
{%- if after %}
WHERE ({% for c in t.key %}r.{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}) >
      (SELECT {% for c in t.key %}{{ m.extract(c, "?1") }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endif %}
ORDER BY {% for c in t.key %}r.{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}
LIMIT {{ rows }}
