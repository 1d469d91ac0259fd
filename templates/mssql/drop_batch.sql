DROP TABLE #tm_batch
