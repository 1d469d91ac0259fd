{%- import "sqlite/macros.sql" as m -%}
{#- The replica type of column `c` (used to tell whether a recorded type change needs DDL). -#}
{{ m.column_type(c) }}
