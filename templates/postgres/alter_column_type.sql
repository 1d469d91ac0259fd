{%- import "postgres/macros.sql" as m -%}
{#- Widen a replica column to the type the stream now shows (or one accepted by `resume`). -#}
ALTER TABLE {{ t.name | ident }} ALTER COLUMN {{ c.name | ident }} TYPE {{ m.column_type(c) }} USING {{ c.name | ident }}::{{ m.column_type(c) }}
