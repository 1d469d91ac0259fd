{#- `tidemark bench`: the merge's typed last-change-per-key, kept as a table. -#}
CREATE TABLE bench_src AS SELECT * FROM temp._tm_src
