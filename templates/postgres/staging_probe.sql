{#- Is there anything to merge? One cheap query, outside any transaction. -#}
SELECT EXISTS (SELECT 1 FROM {{ t.staging | ident }}) AS staged
