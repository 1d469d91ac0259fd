{%- import "mssql/macros.sql" as m -%}
{#- Replica: same columns and key as upstream. -#}
IF OBJECT_ID({{ t.name | ident | lit }}, 'U') IS NULL
CREATE TABLE {{ t.name | ident }} (
{%- for c in t.columns %}
    {{ c.name | ident }} {{ m.column_type(c) }}{% if c.is_key %} NOT NULL{% endif %},
{%- endfor %}
    PRIMARY KEY ({% for c in t.key %}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor %})
)
