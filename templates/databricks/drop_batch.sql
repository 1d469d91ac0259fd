DROP TABLE IF EXISTS {{ ("_tidemark_batch_" ~ t.name) | ident }}
