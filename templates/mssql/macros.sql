{#- SQL Server: replica column types, and casts from tidemark's staged values (exact text: hex for
    bytes, UTC for TIMESTAMP). The batch holds each column's staged text as NVARCHAR(MAX) in a
    positional column (`_tm_k0`.. for the key, `_tm_c0`.. for the row). -#}

{%- macro column_type(c) -%}
{%- if c.kind == "int" -%}{% if c.bytes == 2 %}SMALLINT{% elif c.bytes == 4 %}INT{% else %}BIGINT{% endif %}
{%- elif c.kind == "enum_index" -%}INT
{%- elif c.kind == "u_int64" or c.kind == "set_bits" -%}DECIMAL(20,0)
{%- elif c.kind == "float" -%}REAL
{%- elif c.kind == "double" -%}FLOAT
{%- elif c.kind == "decimal" -%}{% if c.precision is none %}DECIMAL(38,10){% elif c.precision <= 38 %}DECIMAL({{ c.precision }},{{ c.scale or 0 }}){% else %}NVARCHAR(80){% endif %}
{%- elif c.kind == "text" -%}{% if c.length is not none and c.length <= 4000 %}NVARCHAR({{ c.length }}){% elif c.is_key %}NVARCHAR(450){% else %}NVARCHAR(MAX){% endif %}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}{% if c.is_key %}VARBINARY(900){% else %}VARBINARY(MAX){% endif %}
{%- elif c.kind == "date" -%}DATE
{%- elif c.kind == "date_time" -%}DATETIME2({{ 6 if c.fsp is none else c.fsp }})
{%- elif c.kind == "timestamp" -%}DATETIMEOFFSET({{ 6 if c.fsp is none else c.fsp }})
{%- elif c.kind == "time" -%}NVARCHAR(20)
{%- else -%}NVARCHAR(MAX)
{%- endif -%}
{%- endmacro %}

{%- macro value(c, v) -%}
{%- if column_type(c) is startingwith("NVARCHAR") -%}{{ v }}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}CONVERT(VARBINARY(MAX), {{ v }}, 2)
{%- else -%}{#- TIMESTAMP: a zoneless text becomes +00:00, the zone it was staged in -#}CAST({{ v }} AS {{ column_type(c) }})
{%- endif -%}
{%- endmacro %}

{#- Each member of the JSON document `doc` as a column, by exact name comparison (no JSON path to
    escape; NVARCHAR(MAX), so long text is never cut). -#}
{%- macro members(columns, doc, prefix) -%}
SELECT {% for c in columns %}MAX(CASE WHEN j.[key] = {{ c.name | lit }} THEN j.[value] END) AS {{ prefix }}{{ loop.index0 }}{% if not loop.last %},
               {% endif %}{% endfor %}
        FROM OPENJSON({{ doc }}) AS j
{%- endmacro %}

{#- The batch column holding column `c`'s staged text: the key's for a key column (a delete has no
    row image), the row's otherwise. -#}
{%- macro staged(t, c, alias) -%}
{%- if c.is_key -%}{% for k in t.key %}{% if k.name == c.name %}{{ alias }}._tm_k{{ loop.index0 }}{% endif %}{% endfor %}
{%- else -%}{% for k in t.columns %}{% if k.name == c.name %}{{ alias }}._tm_c{{ loop.index0 }}{% endif %}{% endfor %}
{%- endif -%}
{%- endmacro %}
