{#- `tidemark bench`'s limit: tidemark's own MERGE statement, from the prepared source. -#}
{% include "postgres/merge_apply.sql" %}
