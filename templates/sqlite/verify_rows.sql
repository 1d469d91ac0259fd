{%- import "sqlite/macros.sql" as m -%}
{#- The replica rows of the keys in ?1 (a JSON array of key objects, as staged), every column as
    canonical text (`verify`). -#}
SELECT {% for c in t.columns %}{{ m.as_text(c) }}{% if not loop.last %}, {% endif %}{% endfor %}
FROM {{ t.name | ident }}
WHERE ({% for c in t.key %}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}) IN (
    SELECT {% for c in t.key %}{{ m.extract(c, "k.value") }}{% if not loop.last %}, {% endif %}{% endfor %}
    FROM json_each(?1) AS k)
