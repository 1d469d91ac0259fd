{#- Per Kafka partition, the offset and order key of the last record merged, for the records
    without a commit ts that open the next batch. -#}
CREATE TABLE IF NOT EXISTS {{ positions | ident }} (
    TOPIC VARCHAR NOT NULL,
    KAFKA_PARTITION NUMBER(38,0) NOT NULL,
    LAST_OFFSET NUMBER(38,0) NOT NULL,
    LAST_ORDER NUMBER(38,0) NOT NULL,
    PRIMARY KEY (TOPIC, KAFKA_PARTITION)
)
