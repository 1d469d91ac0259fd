INSERT INTO _tidemark_dead_letters (table_name, topic, kafka_partition, kafka_offset, kafka_key, kafka_value, error)
VALUES {% for i in range(rows) %}(?, ?, ?, ?, ?, ?, ?){% if not loop.last %}, {% endif %}{% endfor %}
