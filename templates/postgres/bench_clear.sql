TRUNCATE {{ b | ident }}
