{%- import "upstream/postgres/macros.sql" as m -%}
{#- Which of `rows` keys (bound key by key, column by column) upstream holds. -#}
SELECT {{ m.key_columns(t, key_native) }}
FROM {{ db | ident }}.{{ table | ident }}
WHERE {{ m.key_in(t, rows, key_native) }}
