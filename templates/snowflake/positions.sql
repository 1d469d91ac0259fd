{%- import "snowflake/macros.sql" as m -%}
{#- After the MERGE (which read the old positions): each partition's last record merged. A
    record re-delivered below it never moves it back. -#}
MERGE INTO {{ positions | ident }} AS p
USING (
    SELECT s._TIDEMARK_TOPIC AS TOPIC, s._TIDEMARK_PARTITION AS KAFKA_PARTITION,
           s._TIDEMARK_OFFSET AS LAST_OFFSET, s._TIDEMARK_ORDER AS LAST_ORDER
    FROM (
        {{ m.ordered(stream, positions) }}
    ) AS s
    QUALIFY ROW_NUMBER() OVER (PARTITION BY s._TIDEMARK_TOPIC, s._TIDEMARK_PARTITION ORDER BY s._TIDEMARK_OFFSET DESC) = 1
) AS s
ON p.TOPIC = s.TOPIC AND p.KAFKA_PARTITION = s.KAFKA_PARTITION
WHEN MATCHED AND s.LAST_OFFSET > p.LAST_OFFSET THEN
    UPDATE SET LAST_OFFSET = s.LAST_OFFSET, LAST_ORDER = s.LAST_ORDER
WHEN NOT MATCHED THEN
    INSERT (TOPIC, KAFKA_PARTITION, LAST_OFFSET, LAST_ORDER)
    VALUES (s.TOPIC, s.KAFKA_PARTITION, s.LAST_OFFSET, s.LAST_ORDER)
