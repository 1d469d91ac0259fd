{#- Amazon Redshift: replica column types, and casts from tidemark's staged values (exact text: hex
    for bytes, UTC for TIMESTAMP) in the JSON text columns `_tm_key` and `_tm_row`. -#}

{%- macro column_type(c) -%}
{%- if c.kind == "int" -%}{% if c.bytes == 2 %}SMALLINT{% elif c.bytes == 4 %}INTEGER{% else %}BIGINT{% endif %}
{%- elif c.kind == "enum_index" -%}INTEGER
{%- elif c.kind == "u_int64" or c.kind == "set_bits" -%}DECIMAL(20,0)
{%- elif c.kind == "float" -%}REAL
{%- elif c.kind == "double" -%}DOUBLE PRECISION
{%- elif c.kind == "decimal" -%}{% if c.precision is none %}DECIMAL(38,10){% elif c.precision <= 38 %}DECIMAL({{ c.precision }},{{ c.scale or 0 }}){% else %}VARCHAR(80){% endif %}
{%- elif c.kind == "text" -%}{#- Redshift counts bytes; a UTF-8 character takes up to 4 -#}{% if c.length is not none and c.length * 4 <= 65535 %}VARCHAR({{ c.length * 4 }}){% else %}VARCHAR(65535){% endif %}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}VARBYTE(1024000)
{%- elif c.kind == "date" -%}DATE
{%- elif c.kind == "date_time" -%}TIMESTAMP
{%- elif c.kind == "timestamp" -%}TIMESTAMPTZ
{%- elif c.kind == "json" -%}SUPER
{%- elif c.kind == "time" -%}VARCHAR(20)
{%- else -%}VARCHAR(65535)
{%- endif -%}
{%- endmacro %}

{#- The staged text of column `c` in the JSON document `doc`: a path element, not a JSON path,
    so nothing to escape but the literal. -#}
{%- macro raw(c, doc) -%}JSON_EXTRACT_PATH_TEXT({{ doc }}, {{ c.name | lit }}){%- endmacro %}

{%- macro value(c, doc) -%}
{%- set v = raw(c, doc) -%}
{%- if column_type(c) is startingwith("VARCHAR") -%}{{ v }}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}FROM_HEX({{ v }})
{%- elif c.kind == "json" -%}JSON_PARSE({{ v }})
{%- elif c.kind == "timestamp" -%}{#- staged in UTC -#}CAST({{ v }} || '+00' AS TIMESTAMPTZ)
{%- else -%}CAST({{ v }} AS {{ column_type(c) }})
{%- endif -%}
{%- endmacro %}
