{%- import "sqlite/macros.sql" as m -%}
{#- Keys whose last change is a delete. A delete of an absent key matches nothing. -#}
DELETE FROM {{ t.name | ident }}
WHERE ({{ m.key_list(t, "") }}) IN (SELECT {{ m.key_list(t, "") }} FROM temp._tm_src WHERE _tidemark_op = 'd')
