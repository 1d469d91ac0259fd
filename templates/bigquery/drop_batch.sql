DROP TABLE _tm_batch
