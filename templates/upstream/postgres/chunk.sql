{%- import "upstream/postgres/macros.sql" as m -%}
{#- The next `rows` rows of the upstream table in key order, after a key when `after` is set
    (the key bound once, compared as one row value: an index range). -#}
SELECT {{ m.columns(t, native) }}
FROM {{ db | ident }}.{{ table | ident }} AS u
{%- if after %}
WHERE ({{ m.order(t, "u.") }}) > {{ m.key_row(t, key_native, 1) }}
{%- endif %}
ORDER BY {{ m.order(t, "u.") }}
LIMIT {{ rows }}
