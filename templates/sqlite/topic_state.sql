{#- What is known of topic ?1: its partitions and whether it carries watermarks. -#}
SELECT partitions, watermarked FROM _tidemark_topics WHERE topic = ?1
