{#- Exactly the staged rows merged, by source position. -#}
DELETE FROM {{ t.staging | ident }} AS s
WHERE EXISTS (
    SELECT 1 FROM _tm_batch AS b
    WHERE b._tm_topic = s._tm_topic AND b._tm_partition = s._tm_partition
      AND b._tm_offset = s._tm_offset AND b._tm_sub = s._tm_sub
)
