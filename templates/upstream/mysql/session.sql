{#- Every session reads TIMESTAMP values in UTC, as tidemark stages them. -#}
SET SESSION time_zone = '+00:00'
