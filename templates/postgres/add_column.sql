{%- import "postgres/macros.sql" as m -%}
ALTER TABLE {{ t.name | ident }} ADD COLUMN IF NOT EXISTS {{ c.name | ident }} {{ m.column_type(c) }}
