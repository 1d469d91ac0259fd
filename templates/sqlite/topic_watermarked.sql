{#- Topic ?1's stream carries watermarks: from now on its tables' merges are gated by them
    (unless configured `watermarks = "off"`). -#}
INSERT INTO _tidemark_topics (topic, watermarked) VALUES (?1, 1)
ON CONFLICT (topic) DO UPDATE SET watermarked = excluded.watermarked
