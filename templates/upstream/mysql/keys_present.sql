{%- import "upstream/mysql/macros.sql" as m -%}
{#- Which of `rows` keys (bound key by key, column by column) upstream holds. -#}
SELECT {{ m.key_columns(t) }}
FROM {{ db | ident }}.{{ table | ident }}
WHERE {{ m.key_in(t, rows) }}
