{#- MySQL-protocol upstreams (MySQL, MariaDB, TiDB): how a column is read and how a key value
    is bound. `c` is a column as the replica sees it (c.name, c.kind; see src/model/schema.rs). -#}

{#- The column as text in its canonical form — binary columns as bytes. FLOAT through DOUBLE:
    MySQL prints a FLOAT with 6 digits, its DOUBLE is the float's exact value; BIT as its number. -#}
{%- macro select(c) -%}
{%- if c.kind == "bytes" -%}{{ c.name | ident }}
{%- elif c.kind == "float" -%}CAST(CAST({{ c.name | ident }} AS DOUBLE) AS CHAR)
{%- elif c.kind == "bit" -%}CAST({{ c.name | ident }} + 0 AS CHAR)
{%- else -%}CAST({{ c.name | ident }} AS CHAR)
{%- endif -%}
{%- endmacro %}

{#- A key value bound as text, compared as the column's type (never as a float by accident). -#}
{%- macro param(c) -%}
{%- if c.kind == "int" or c.kind == "enum_index" -%}CAST(? AS SIGNED)
{%- elif c.kind == "u_int64" or c.kind == "set_bits" or c.kind == "bit" -%}CAST(? AS UNSIGNED)
{%- elif c.kind == "decimal" -%}CAST(? AS DECIMAL(65,30))
{%- elif c.kind == "date_time" or c.kind == "timestamp" -%}CAST(? AS DATETIME(6))
{%- elif c.kind == "date" -%}CAST(? AS DATE)
{%- elif c.kind == "time" -%}CAST(? AS TIME(6))
{%- elif c.kind == "float" or c.kind == "double" -%}CAST(? AS DOUBLE)
{%- else -%}?
{%- endif -%}
{%- endmacro %}

{%- macro columns(t) -%}
{%- for c in t.columns %}{{ select(c) }}{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{%- macro key_columns(t) -%}
{%- for c in t.key %}{{ select(c) }}{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{#- The key columns, qualified by `q` (an unqualified name could mean an output column). -#}
{%- macro order(t, q) -%}
{%- for c in t.key %}{{ q }}{{ c.name | ident }}{% if not loop.last %}, {% endif %}{% endfor -%}
{%- endmacro %}

{#- `rows` keys, each bound column by column: (k1 = ? AND k2 = ?) OR … — ranges every MySQL
    flavour's optimizer reads through the key's index. -#}
{%- macro key_in(t, rows) -%}
{%- for _ in range(rows) %}({% for c in t.key %}{{ c.name | ident }} = {{ param(c) }}{% if not loop.last %} AND {% endif %}{% endfor %}){% if not loop.last %} OR {% endif %}{% endfor -%}
{%- endmacro %}
