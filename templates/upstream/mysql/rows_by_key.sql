{%- import "upstream/mysql/macros.sql" as m -%}
{#- The upstream rows of `rows` keys (bound key by key, column by column). -#}
SELECT {{ m.columns(t) }}
FROM {{ db | ident }}.{{ table | ident }}
WHERE {{ m.key_in(t, rows) }}
