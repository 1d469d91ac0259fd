{#- PostgreSQL: replica column types and casts from the staged JSON text.
    `c` is a column: c.name, c.kind (see src/schema.rs Kind) and its parameters. -#}

{%- macro column_type(c) -%}
{%- if c.kind == "int" -%}{% if c.bytes == 2 %}smallint{% elif c.bytes == 4 %}integer{% else %}bigint{% endif %}
{%- elif c.kind == "u_int64" or c.kind == "set_bits" -%}numeric(20,0)
{%- elif c.kind == "float" -%}real
{%- elif c.kind == "double" -%}double precision
{%- elif c.kind == "decimal" -%}{% if c.precision is not none %}numeric({{ c.precision }},{{ c.scale or 0 }}){% else %}numeric{% endif %}
{%- elif c.kind == "text" -%}{% if c.length is not none %}varchar({{ c.length }}){% else %}text{% endif %}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}bytea
{%- elif c.kind == "date" -%}date
{%- elif c.kind == "date_time" -%}timestamp{% if c.fsp is not none %}({{ c.fsp }}){% endif %}
{%- elif c.kind == "timestamp" -%}timestamptz{% if c.fsp is not none %}({{ c.fsp }}){% endif %}
{%- elif c.kind == "time" -%}interval
{%- elif c.kind == "json" -%}jsonb
{%- elif c.kind == "enum_index" -%}integer
{%- else -%}text
{%- endif -%}
{%- endmacro %}

{#- The column's value from a staged JSON document `doc`: staged values are exact text
    (hex for bytes, UTC for TIMESTAMP), cast here to the replica type. -#}
{%- macro extract(c, doc) -%}
{%- set v = "(" ~ doc ~ " ->> " ~ (c.name | lit) ~ ")" -%}
{%- if c.kind == "bytes" or c.kind == "bit" -%}decode({{ v }}, 'hex')
{%- elif c.kind == "timestamp" -%}({{ v }}::timestamp AT TIME ZONE 'UTC')
{%- elif c.kind == "text" -%}{{ v }}
{%- else -%}{{ v }}::{{ column_type(c) }}
{%- endif -%}
{%- endmacro %}

{#- The merged value of column c from the source row `s` over the replica row `r`: the
    source's; for a table whose changes may leave columns out (partial), the replica's where the
    change left c out and merge_fill found it nowhere. -#}
{%- macro merged(c, partial, s, r) -%}
{%- if partial -%}CASE WHEN {{ s }}._tidemark_row ? {{ c.name | lit }} OR {{ s }}._tidemark_fill ? {{ c.name | lit }} THEN {{ s }}.{{ c.name | ident }} ELSE {{ r }}.{{ c.name | ident }} END
{%- else -%}{{ s }}.{{ c.name | ident }}
{%- endif -%}
{%- endmacro %}

{%- macro key_match(t, left, right) -%}
{%- for c in t.key %}{{ left }}.{{ c.name | ident }} = {{ right }}.{{ c.name | ident }}{% if not loop.last %} AND {% endif %}{% endfor -%}
{%- endmacro %}

{#- A replica value as text in the canonical form tidemark stages it (hex bytes, UTC times;
    an infinite timestamp as PostgreSQL spells it). -#}
{%- macro as_text(c) -%}
{%- if c.kind == "bytes" or c.kind == "bit" -%}encode({{ c.name | ident }}, 'hex')
{%- elif c.kind == "timestamp" -%}CASE WHEN isfinite({{ c.name | ident }}) THEN to_char({{ c.name | ident }} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') ELSE CAST({{ c.name | ident }} AS text) END
{%- else -%}CAST({{ c.name | ident }} AS text)
{%- endif -%}
{%- endmacro %}
