{%- import "postgres/macros.sql" as m -%}
{#- Every replica row, each column as canonical text (for comparisons: the demo, tests). -#}
SELECT {% for c in t.columns %}{{ m.as_text(c) }}{% if not loop.last %}, {% endif %}{% endfor %}
FROM {{ t.name | ident }}
