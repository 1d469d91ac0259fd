{#- Snowflake: replica column types, and casts from the VARIANT columns the Snowflake Kafka
    connector writes (RECORD_CONTENT: the value; RECORD_METADATA['key']: the key), as its Avro
    converter produces them: Avro bytes arrive as ISO-8859-1 text, decimals as numbers or
    (with TiCDC's avro-decimal-handling-mode=string, advised) as text. Nothing goes through a
    float but FLOAT/DOUBLE columns. -#}

{%- macro column_type(c) -%}
{%- if c.kind == "int" or c.kind == "enum_index" -%}NUMBER(38,0)
{%- elif c.kind == "u_int64" or c.kind == "set_bits" -%}NUMBER(20,0)
{%- elif c.kind == "float" or c.kind == "double" -%}FLOAT
{%- elif c.kind == "decimal" -%}{% if c.precision is not none and c.precision <= 38 %}NUMBER({{ c.precision }},{{ c.scale or 0 }}){% else %}VARCHAR{% endif %}
{%- elif c.kind == "text" -%}{% if c.length is not none %}VARCHAR({{ c.length }}){% else %}VARCHAR{% endif %}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}BINARY
{%- elif c.kind == "date" -%}DATE
{%- elif c.kind == "date_time" -%}TIMESTAMP_NTZ{% if c.fsp is not none %}({{ c.fsp }}){% endif %}
{%- elif c.kind == "timestamp" -%}TIMESTAMP_TZ{% if c.fsp is not none %}({{ c.fsp }}){% endif %}
{%- elif c.kind == "json" -%}VARIANT
{%- else -%}VARCHAR
{%- endif -%}
{%- endmacro %}

{#- ISO-8859-1 text (one character per byte, as the connector writes Avro bytes) back to the
    bytes: the UTF-8 hex of U+0080..U+00FF is C2 xy / C3 xy; each pair is turned back into the
    byte, on space-separated tokens so matches stay aligned, converted digits in lower case so
    no later pattern matches them again. -#}
{%- macro latin1_to_binary(v) -%}
TO_BINARY(REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(HEX_ENCODE({{ v }}), '(..)', '\\1 '), 'C2 ([89AB].) ', '\\1 '), 'C3 8(.) ', 'c\\1 '), 'C3 9(.) ', 'd\\1 '), 'C3 A(.) ', 'e\\1 '), 'C3 B(.) ', 'f\\1 '), ' ', ''), 'HEX')
{%- endmacro %}

{%- macro value(c, doc, offset) -%}
{%- set v = doc ~ "[" ~ (c.name | lit) ~ "]" -%}
{%- if c.kind == "int" or c.kind == "enum_index" -%}{{ v }}::NUMBER(38,0)
{%- elif c.kind == "u_int64" -%}{#- TiCDC's `long` mode wraps values above 2^63-1 negative. -#}IFF({{ v }}::NUMBER(38,0) < 0, {{ v }}::NUMBER(38,0) + 18446744073709551616, {{ v }}::NUMBER(38,0))::NUMBER(20,0)
{%- elif c.kind == "set_bits" -%}{{ v }}::NUMBER(20,0)
{%- elif c.kind == "float" or c.kind == "double" -%}{{ v }}::FLOAT
{%- elif c.kind == "decimal" -%}{% if c.precision is not none and c.precision <= 38 %}TO_DECIMAL({{ v }}::VARCHAR, {{ c.precision }}, {{ c.scale or 0 }}){% else %}{{ v }}::VARCHAR{% endif %}
{%- elif c.kind == "bytes" or c.kind == "bit" -%}{{ latin1_to_binary(v ~ "::VARCHAR") }}
{%- elif c.kind == "date" -%}TO_DATE({{ v }}::VARCHAR)
{%- elif c.kind == "date_time" -%}TO_TIMESTAMP_NTZ({{ v }}::VARCHAR)
{%- elif c.kind == "timestamp" -%}{#- TiCDC renders TIMESTAMP in its own time zone, without it. -#}TO_TIMESTAMP_TZ(REPLACE({{ v }}::VARCHAR, ' ', 'T') || {{ offset | lit }})
{%- elif c.kind == "json" -%}PARSE_JSON({{ v }}::VARCHAR)
{%- else -%}{{ v }}::VARCHAR
{%- endif -%}
{%- endmacro %}

{%- macro key_value(c, offset) -%}{{ value(c, "s.RECORD_METADATA['key']", offset) }}{%- endmacro %}

{#- The stream's rows with what the merge orders and deletes by. The order key is TiCDC's commit
    ts; a record without one (TiCDC's Avro deletes) takes the one of the record before it in its
    partition - in this batch, or else the one `positions` kept from earlier runs - so that offset
    order decides within a partition, and a re-sent older record never beats a newer one. A
    tombstone is `{}` (what the connector writes for a null value), JSON null or SQL NULL. -#}
{%- macro ordered(stream, positions) -%}
SELECT r.*,
               (r.RECORD_CONTENT IS NULL OR IS_NULL_VALUE(r.RECORD_CONTENT)
                OR (IS_OBJECT(r.RECORD_CONTENT) AND ARRAY_SIZE(OBJECT_KEYS(r.RECORD_CONTENT)) = 0)) AS _TIDEMARK_IS_DELETE,
               r.RECORD_METADATA['topic']::VARCHAR AS _TIDEMARK_TOPIC,
               r.RECORD_METADATA['partition']::NUMBER(38,0) AS _TIDEMARK_PARTITION,
               r.RECORD_METADATA['offset']::NUMBER(38,0) AS _TIDEMARK_OFFSET,
               COALESCE(
                   NULLIF(r.RECORD_CONTENT['_tidb_commit_ts']::NUMBER(38,0), 0),
                   LAST_VALUE(NULLIF(r.RECORD_CONTENT['_tidb_commit_ts']::NUMBER(38,0), 0)) IGNORE NULLS OVER (
                       PARTITION BY r.RECORD_METADATA['topic'], r.RECORD_METADATA['partition']
                       ORDER BY r.RECORD_METADATA['offset']::NUMBER(38,0)
                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                   IFF(p.LAST_OFFSET < r.RECORD_METADATA['offset']::NUMBER(38,0), p.LAST_ORDER, NULL),
                   0) AS _TIDEMARK_ORDER
        FROM {{ stream | ident }} AS r
        LEFT JOIN {{ positions | ident }} AS p
          ON p.TOPIC = r.RECORD_METADATA['topic']::VARCHAR
         AND p.KAFKA_PARTITION = r.RECORD_METADATA['partition']::NUMBER(38,0)
{%- endmacro %}
