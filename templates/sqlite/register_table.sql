INSERT INTO _tidemark_tables (name, topic, staging) VALUES (?1, ?2, ?3)
ON CONFLICT (name) DO UPDATE SET topic = excluded.topic
