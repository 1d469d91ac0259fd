//! What a failed warehouse statement means for what to do next: wait for the warehouse (an
//! outage), set the records responsible aside (the database refused a value), or neither.

use sqlx::error::DatabaseError;

/// The kinds of failure, by what they call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The connection, the server's availability, a lock or a serialization conflict: the
    /// same statement can succeed later. Retried with backoff.
    Transient,
    /// The database refused the data (a value out of range, a constraint, a trigger): the
    /// same rows fail again, other rows do not. Find the rows responsible, set them aside.
    Data,
    /// Anything else (a statement the database rejects, a permission, our own error): not
    /// the rows' fault, and not going to pass by itself; retried with backoff, reported as a
    /// refusal rather than as an outage.
    Other,
}

impl Failure {
    /// Classifies an error by the first database error in its chain.
    pub fn of(error: &anyhow::Error) -> Failure {
        for cause in error.chain() {
            if let Some(e) = cause.downcast_ref::<sqlx::Error>() {
                return Failure::of_sqlx(e);
            }
            if cause.downcast_ref::<std::io::Error>().is_some() {
                return Failure::Transient;
            }
        }
        Failure::Other
    }

    fn of_sqlx(e: &sqlx::Error) -> Failure {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => Failure::Transient,
            sqlx::Error::Database(db) => Failure::of_database(db.as_ref()),
            _ => Failure::Other,
        }
    }

    fn of_database(db: &dyn DatabaseError) -> Failure {
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
            return Failure::of_sqlstate(&code);
        }
        // SQLite: the extended result code; its low byte is the primary code.
        match code.parse::<i32>().map(|c| c & 0xff) {
            // BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL
            Ok(5 | 6 | 10 | 13 | 14 | 15) => Failure::Transient,
            // TOOBIG, CONSTRAINT (NOT NULL, CHECK, UNIQUE, triggers), MISMATCH, RANGE
            Ok(18 | 19 | 20 | 25) => Failure::Data,
            _ => Failure::Other,
        }
    }

    /// PostgreSQL's SQLSTATE classes.
    fn of_sqlstate(code: &str) -> Failure {
        match code.get(..2).unwrap_or_default() {
            // connection exception, insufficient resources, operator intervention, system error
            "08" | "53" | "57" | "58" => Failure::Transient,
            // serialization failure, deadlock; lock not available
            "40" => Failure::Transient,
            "55" if code == "55P03" => Failure::Transient,
            // data exception, integrity constraint violation
            "22" | "23" => Failure::Data,
            // raise_exception (P0001) from a user's trigger: a refusal of the row
            "P0" => Failure::Data,
            _ => Failure::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstate_classes() {
        assert_eq!(Failure::of_sqlstate("08006"), Failure::Transient);
        assert_eq!(Failure::of_sqlstate("57P01"), Failure::Transient);
        assert_eq!(Failure::of_sqlstate("40P01"), Failure::Transient);
        assert_eq!(Failure::of_sqlstate("55P03"), Failure::Transient);
        assert_eq!(Failure::of_sqlstate("22003"), Failure::Data);
        assert_eq!(Failure::of_sqlstate("23514"), Failure::Data);
        assert_eq!(Failure::of_sqlstate("P0001"), Failure::Data);
        assert_eq!(Failure::of_sqlstate("42P01"), Failure::Other);
        assert_eq!(Failure::of_sqlstate("42501"), Failure::Other);
    }

    #[test]
    fn io_errors_are_transient_and_plain_errors_are_not() {
        let io = anyhow::Error::from(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"));
        assert_eq!(Failure::of(&io.context("landing")), Failure::Transient);
        assert_eq!(Failure::of(&anyhow::anyhow!("a bug")), Failure::Other);
    }
}
