{#- Exactly the staged rows merged, by source position. -#}
DELETE FROM {{ t.staging | ident }}
USING _tm_batch AS b
WHERE b._tm_topic = {{ t.staging | ident }}._tm_topic AND b._tm_partition = {{ t.staging | ident }}._tm_partition
  AND b._tm_offset = {{ t.staging | ident }}._tm_offset AND b._tm_sub = {{ t.staging | ident }}._tm_sub
