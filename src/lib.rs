//! tidemark keeps a warehouse replica of every table in a CDC stream:
//! Kafka → decode → land (staging) → scheduled MERGE → replica. See `../README.md`.
//!
//! The folders follow a record's path:
//! [`source`] reads Kafka, [`codec`] decodes each wire format into [`model`] change records,
//! [`land`] writes them to staging, [`merge`] applies staging to the replica, on the
//! [`warehouse`] (connections, metadata) with the statements [`sql`] renders from
//! `templates/<dialect>/`. [`upstream`] reads the database the stream comes from, for
//! [`reconcile`] (`snapshot`, `verify`) and for key-only records. [`script`] writes the same
//! job as SQL for warehouses tidemark does not drive. [`service`] is `tidemark run`, [`commands`] the command line; [`observe`] is
//! what every stage reports (health, metrics); [`demo`] and [`bench`] stand apart from the
//! product's path.

pub mod bench;
pub mod codec;
pub mod commands;
pub mod config;
pub mod demo;
pub mod failpoint;
pub mod land;
pub mod merge;
pub mod model;
pub mod observe;
pub mod reconcile;
pub mod script;
pub mod service;
pub mod source;
pub mod sql;
pub mod upstream;
pub mod warehouse;
