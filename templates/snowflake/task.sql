{#- Runs the MERGE, the positions update and the cleanup on the table's schedule, in ONE explicit
    transaction (a Snowflake Scripting block alone is not one; a failure rolls it back), and only
    when the stream has data. A task never overlaps its own previous run. -#}
CREATE OR REPLACE TASK {{ task | ident }}
{%- if warehouse %}
    WAREHOUSE = {{ warehouse | ident }}
{%- else %}
    USER_TASK_MANAGED_INITIAL_WAREHOUSE_SIZE = 'XSMALL'
{%- endif %}
    SCHEDULE = {{ schedule | lit }}
    WHEN SYSTEM$STREAM_HAS_DATA({{ (stream | ident) | lit }})
AS
EXECUTE IMMEDIATE $$
BEGIN
    BEGIN TRANSACTION;
{{ merge_sql }};
{{ positions_sql }};
{{ cleanup_sql }};
    COMMIT;
EXCEPTION
    WHEN OTHER THEN
        ROLLBACK;
        RAISE;
END;
$$
