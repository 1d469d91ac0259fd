//! The vocabulary every stage shares: change records ([`change`]), upstream column types and
//! table schemas ([`schema`]), and the upstream `CREATE TABLE` a table may be given
//! ([`source_ddl`]).

pub mod change;
pub mod schema;
pub mod source_ddl;
pub mod tso;
