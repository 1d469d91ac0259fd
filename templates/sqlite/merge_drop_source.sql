DROP TABLE IF EXISTS temp._tm_src
