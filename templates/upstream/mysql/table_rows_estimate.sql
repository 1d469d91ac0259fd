{#- The server's estimate of the rows of upstream table ? . ? (for progress; never exact). -#}
SELECT CAST(COALESCE(TABLE_ROWS, 0) AS CHAR) AS estimate
FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
