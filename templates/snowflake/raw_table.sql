{#- The table the Snowflake Kafka connector appends to (its own shape; it creates it too). -#}
CREATE TABLE IF NOT EXISTS {{ raw | ident }} (
    RECORD_METADATA VARIANT,
    RECORD_CONTENT VARIANT
)
