{%- import "sqlite/macros.sql" as m -%}
ALTER TABLE {{ t.name | ident }} ADD COLUMN {{ c.name | ident }} {{ m.column_type(c) }}
