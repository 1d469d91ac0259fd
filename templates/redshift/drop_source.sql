DROP TABLE _tm_src
