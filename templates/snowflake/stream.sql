{#- Append-only: the connector only inserts, and the cleanup's deletes must not show up here. -#}
CREATE STREAM IF NOT EXISTS {{ stream | ident }} ON TABLE {{ raw | ident }} APPEND_ONLY = TRUE
