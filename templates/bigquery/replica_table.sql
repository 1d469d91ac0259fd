{%- import "bigquery/macros.sql" as m -%}
{#- Replica: same columns and key as upstream. -#}
CREATE TABLE IF NOT EXISTS {{ t.name | ident }} (
{%- for c in t.columns %}
    {{ c.name | ident }} {{ m.column_type(c) }}{% if c.is_key %} NOT NULL{% endif %},
{%- endfor %}
    PRIMARY KEY ({% for c in t.key %}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %}) NOT ENFORCED
)
