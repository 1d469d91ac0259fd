DELETE FROM {{ b | ident }}
