{#- SQLite: replica column types and casts from the staged JSON text.
    Decimals and BIGINT UNSIGNED are TEXT: SQLite's numeric types would round them
    (REAL) or saturate them (INTEGER is 64-bit signed). -#}

{%- macro column_type(c) -%}
{%- if c.kind == "int" or c.kind == "enum_index" -%}INTEGER
{%- elif c.kind == "float" or c.kind == "double" -%}REAL
{%- elif c.kind == "bytes" or c.kind == "bit" -%}BLOB
{%- else -%}TEXT
{%- endif -%}
{%- endmacro %}

{%- macro extract(c, doc) -%}
{%- set v = "json_extract(" ~ doc ~ ", " ~ (c.name | json_path) ~ ")" -%}
{%- if c.kind == "int" or c.kind == "enum_index" -%}CAST({{ v }} AS INTEGER)
{%- elif c.kind == "float" or c.kind == "double" -%}
{#- Not CAST(… AS REAL): SQLite's text-to-REAL is not correctly rounded. tidemark_real() is
    tidemark's (src/warehouse/sqlite_real.rs): exact; ±Infinity; NaN, which REAL cannot hold, NULL. -#}
tidemark_real({{ v }}, {{ 32 if c.kind == "float" else 64 }})
{%- elif c.kind == "bytes" or c.kind == "bit" -%}unhex({{ v }})
{%- else -%}{{ v }}
{%- endif -%}
{%- endmacro %}

{#- The merged value of column c (see the PostgreSQL macro): the source's, or for a partial
    table the replica's where the change left c out and merge_fill found it nowhere. -#}
{%- macro merged(c, partial, s, r) -%}
{%- if partial -%}CASE WHEN json_type({{ s }}._tidemark_row, {{ c.name | json_path }}) IS NOT NULL OR json_type({{ s }}._tidemark_fill, {{ c.name | json_path }}) IS NOT NULL THEN {{ s }}.{{ c.name | ident }} ELSE {{ r }}.{{ c.name | ident }} END
{%- else -%}{{ s }}.{{ c.name | ident }}
{%- endif -%}
{%- endmacro %}

{%- macro key_match(t, left, right) -%}
{%- for c in t.key %}{{ left }}.{{ c.name | ident }} = {{ right }}.{{ c.name | ident }}{% if not loop.last %} AND {% endif %}{% endfor -%}
{%- endmacro %}

{%- macro key_list(t, prefix) -%}
{%- for c in t.key %}{{ prefix }}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{#- A replica value as text in the canonical form tidemark stages it (hex bytes; hex(NULL)
    is '' in SQLite, so NULL is kept apart from an empty blob explicitly). -#}
{%- macro as_text(c) -%}
{%- if c.kind == "bytes" or c.kind == "bit" -%}CASE WHEN {{ c.name | ident }} IS NULL THEN NULL ELSE lower(hex({{ c.name | ident }})) END
{%- elif c.kind == "float" or c.kind == "double" -%}{{ c.name | ident }}
{%- else -%}CAST({{ c.name | ident }} AS TEXT)
{%- endif -%}
{%- endmacro %}
