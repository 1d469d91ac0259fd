{%- import "upstream/postgres/macros.sql" as m -%}
{#- The upstream rows of `rows` keys (bound key by key, column by column). -#}
SELECT {{ m.columns(t, native) }}
FROM {{ db | ident }}.{{ table | ident }}
WHERE {{ m.key_in(t, rows, key_native) }}
