//! A replica against its upstream table: [`snapshot`] starts it from the rows upstream holds,
//! with no gap to the stream; [`verify`] proves it equal, or says exactly how it differs (and
//! `--fix` lands what repairs it). Both read upstream through [`crate::upstream`] and land through
//! [`crate::land`], like the stream's records.

pub mod canonical;
pub mod progress;
pub mod snapshot;
pub mod verify;
