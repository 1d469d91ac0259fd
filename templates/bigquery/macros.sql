{#- BigQuery: replica column types, and casts from tidemark's staged values (exact text: hex for
    bytes, UTC for TIMESTAMP) in the JSON columns `_tm_key` and `_tm_row`. -#}

{#- NUMERIC holds 29 integer and 9 fractional digits; BIGNUMERIC 38 and 38, so every MySQL
    DECIMAL (65 digits, scale up to 30) fits one or the other exactly. -#}
{%- macro decimal_type(c) -%}
{%- if c.precision is none -%}BIGNUMERIC
{%- elif (c.scale or 0) <= 9 and c.precision - (c.scale or 0) <= 29 -%}NUMERIC({{ c.precision }}, {{ c.scale or 0 }})
{%- else -%}BIGNUMERIC({{ c.precision }}, {{ c.scale or 0 }})
{%- endif -%}
{%- endmacro %}

{%- macro column_type(c) -%}
{%- if c.kind == "int" or c.kind == "enum_index" -%}INT64
{%- elif c.kind == "u_int64" or c.kind == "set_bits" -%}NUMERIC(20)
{%- elif c.kind == "float" or c.kind == "double" -%}FLOAT64
{%- elif c.kind == "decimal" -%}{{ decimal_type(c) }}
{%- elif c.kind == "text" -%}{% if c.length is not none %}STRING({{ c.length }}){% else %}STRING{% endif %}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}BYTES
{%- elif c.kind == "date" -%}DATE
{%- elif c.kind == "date_time" -%}DATETIME
{%- elif c.kind == "timestamp" -%}TIMESTAMP
{%- elif c.kind == "json" -%}JSON
{%- else -%}STRING
{%- endif -%}
{%- endmacro %}

{#- The staged text of column `c` in the JSON document `doc` (member access by a string literal:
    no JSONPath to escape). -#}
{%- macro raw(c, doc) -%}JSON_VALUE({{ doc }}[{{ c.name | lit }}]){%- endmacro %}

{%- macro value(c, doc) -%}
{%- set v = raw(c, doc) -%}
{%- if c.kind == "text" or c.kind == "time" -%}{{ v }}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}FROM_HEX({{ v }})
{%- elif c.kind == "json" -%}PARSE_JSON({{ v }})
{%- elif c.kind == "timestamp" -%}{#- staged in UTC, which BigQuery assumes for a zoneless text -#}CAST({{ v }} AS TIMESTAMP)
{%- else -%}CAST({{ v }} AS {{ column_type(c) }})
{%- endif -%}
{%- endmacro %}
