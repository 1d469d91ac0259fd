{#- PostgreSQL upstreams (the source of a Debezium PostgreSQL stream): how a column is read and
    how a key value is bound. `c` is a column as the replica sees it (c.name, c.kind; see
    src/model/schema.rs), `native` its own type as format_type writes it (table_columns.sql). -#}

{#- The column as text in the form the Debezium decoder stages its value (bytea as bytes):
    booleans and bit(1) as 1/0, bit(n) as its number, timestamps with the digits their type
    keeps (timestamptz in UTC), char(n) with its padding, arrays as JSON, a numeric NaN as NULL
    (Debezium's precise decimals cannot carry it either). -#}
{%- macro select(c, native) -%}
{%- set q = c.name | ident -%}
{%- if c.kind == "bytes" -%}{{ q }}
{%- elif native == "boolean" -%}CASE WHEN {{ q }} THEN '1' WHEN NOT {{ q }} THEN '0' END
{%- elif native == "bit(1)" -%}CASE WHEN {{ q }} = B'1' THEN '1' WHEN {{ q }} = B'0' THEN '0' END
{%- elif c.kind == "bit" -%}{{ q }}::int8::text
{%- elif c.kind == "date_time" -%}CASE WHEN isfinite({{ q }}) THEN to_char({{ q }}, 'YYYY-MM-DD HH24:MI:SS.{% if c.fsp == 3 %}MS{% else %}US{% endif %}') ELSE {{ q }}::text END
{%- elif c.kind == "timestamp" -%}CASE WHEN isfinite({{ q }}) THEN to_char({{ q }} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') ELSE {{ q }}::text END
{%- elif c.kind == "time" -%}to_char({{ q }}::interval, 'HH24:MI:SS.{% if c.fsp == 3 %}MS{% else %}US{% endif %}')
{%- elif c.kind == "decimal" -%}NULLIF({{ q }}, 'NaN')::text
{%- elif native is endingwith("[]") -%}to_json({{ q }})::text
{%- elif native is startingwith("character(") -%}CASE WHEN {{ q }} IS NOT NULL THEN concat({{ q }}) END
{%- else -%}{{ q }}::text
{%- endif -%}
{%- endmacro %}

{#- Bound parameter `n` (1-based), a key value as text, cast to the column's own type. -#}
{%- macro param(n, native) -%}CAST(${{ n }} AS {{ native }}){%- endmacro %}

{%- macro columns(t, native) -%}
{%- for c in t.columns %}{{ select(c, native[loop.index0]) }}{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{%- macro key_columns(t, key_native) -%}
{%- for c in t.key %}{{ select(c, key_native[loop.index0]) }}{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{#- The key columns, qualified by `q` (an unqualified name could mean an output column). -#}
{%- macro order(t, q) -%}
{%- for c in t.key %}{{ q }}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{#- The key as one row value, compared with bound key values from parameter `first` on. -#}
{%- macro key_row(t, key_native, first) -%}
({% for c in t.key %}{{ param(first + loop.index0, key_native[loop.index0]) }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}

{#- `rows` keys, each bound column by column: (k1, k2) IN (($1, $2), …), read through the key's
    index. -#}
{%- macro key_in(t, rows, key_native) -%}
({{ order(t, "") }}) IN ({% for r in range(rows) %}{{ key_row(t, key_native, r * (t.key | length) + 1) }}{% if not loop.last %}, {% endif %}{% endfor %})
{%- endmacro %}
