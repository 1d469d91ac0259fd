{#- Databricks (Delta Lake): replica column types, and casts from tidemark's staged values
    (exact text: hex for bytes, UTC for TIMESTAMP) held in the MAP<STRING, STRING> columns
    `_tm_key` and `_tm_row`. -#}

{%- macro column_type(c) -%}
{%- if c.kind == "int" -%}{% if c.bytes == 2 %}SMALLINT{% elif c.bytes == 4 %}INT{% else %}BIGINT{% endif %}
{%- elif c.kind == "enum_index" -%}INT
{%- elif c.kind == "u_int64" or c.kind == "set_bits" -%}DECIMAL(20,0)
{%- elif c.kind == "float" -%}FLOAT
{%- elif c.kind == "double" -%}DOUBLE
{%- elif c.kind == "decimal" -%}{% if c.precision is none %}DECIMAL(38,10){% elif c.precision <= 38 %}DECIMAL({{ c.precision }},{{ c.scale or 0 }}){% else %}STRING{% endif %}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}BINARY
{%- elif c.kind == "date" -%}DATE
{%- elif c.kind == "date_time" -%}TIMESTAMP_NTZ
{%- elif c.kind == "timestamp" -%}TIMESTAMP
{%- else -%}STRING
{%- endif -%}
{%- endmacro %}

{%- macro raw(c, doc) -%}{{ doc }}[{{ c.name | lit }}]{%- endmacro %}

{%- macro value(c, doc) -%}
{%- set v = raw(c, doc) -%}
{%- if column_type(c) == "STRING" -%}{{ v }}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}UNHEX({{ v }})
{%- elif c.kind == "timestamp" -%}{#- staged in UTC: say so, whatever the session's zone -#}CAST(CONCAT({{ v }}, 'Z') AS TIMESTAMP)
{%- else -%}CAST({{ v }} AS {{ column_type(c) }})
{%- endif -%}
{%- endmacro %}
