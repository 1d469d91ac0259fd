//! tidemark keeps a warehouse replica of every table in a CDC stream:
//! Kafka → decode → land (staging) → scheduled MERGE → replica. See `../README.md`.

pub mod bench;
pub mod change;
pub mod check;
pub mod cli;
pub mod codec;
pub mod config;
pub mod db;
pub mod ddl;
pub mod dead_letters;
pub mod demo;
pub mod dialect;
pub mod failpoint;
pub mod health;
pub mod http;
pub mod merge;
pub mod produce;
pub mod scheduler;
pub mod schema;
pub mod script;
pub mod service;
pub mod snowflake;
pub mod source;
pub mod sql;
pub mod staging;
pub mod status;
pub mod telemetry;
pub mod warehouse;
