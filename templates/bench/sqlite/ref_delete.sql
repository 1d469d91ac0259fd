{%- import "sqlite/macros.sql" as m -%}
{#- `tidemark bench`'s limit, 1 of 2: the keys whose last change is a delete. -#}
DELETE FROM {{ t.name | ident }}
WHERE ({{ m.key_list(t, "") }}) IN (SELECT {{ m.key_list(t, "") }} FROM bench_src WHERE _tidemark_op = 'd')
