//! The statements of one merge, in order — what the merge runs and what `tidemark sql` prints.

use crate::sql::dialect::Dialect;
use crate::sql::Stmt;

/// One statement of a merge and what its result means.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// Run it.
    Run(Stmt),
    /// Run it with the watermark bound as parameter 1.
    Bounded(Stmt),
    /// Like `Bounded`, only for tables whose staged rows may leave columns out
    /// ([`crate::sql::TableCtx::partial_rows`]).
    Fill(Stmt),
    /// A query returning cumulative (inserted, updated, deleted) counters, read before ...
    Baseline(Stmt),
    /// ... and after the statements that change the replica: the difference is what they did.
    Counts(Stmt),
    /// Run it; its row count is that many rows inserted / updated / deleted.
    Inserted(Stmt),
    Updated(Stmt),
    Deleted(Stmt),
    /// Remove the consumed staging rows (watermark bound); its row count is what was consumed.
    Cleanup(Stmt),
}

impl Step {
    /// Whether it writes the replica (what a trial of refused rows runs).
    pub fn changes_replica(self) -> bool {
        matches!(self, Step::Run(Stmt::MergeApply) | Step::Inserted(_) | Step::Updated(_) | Step::Deleted(_))
    }

    /// Whether a merge of this table runs it.
    pub fn runs_for(self, t: &crate::sql::TableCtx) -> bool {
        !matches!(self, Step::Fill(_)) || t.partial_rows
    }

    pub fn statement(self) -> Stmt {
        match self {
            Step::Run(s)
            | Step::Bounded(s)
            | Step::Fill(s)
            | Step::Baseline(s)
            | Step::Counts(s)
            | Step::Inserted(s)
            | Step::Updated(s)
            | Step::Deleted(s)
            | Step::Cleanup(s) => s,
        }
    }
}

/// The statements of one merge, in order, after `merge_begin` and `merge_watermark`.
pub fn plan(dialect: Dialect) -> &'static [Step] {
    match dialect {
        Dialect::Postgres => &[
            Step::Bounded(Stmt::MergeSource),
            Step::Fill(Stmt::MergeFill),
            Step::Baseline(Stmt::MergeCounts),
            Step::Run(Stmt::MergeApply),
            Step::Counts(Stmt::MergeCounts),
            Step::Cleanup(Stmt::MergeCleanup),
            Step::Run(Stmt::MergeDropSource),
        ],
        Dialect::Sqlite => &[
            Step::Run(Stmt::MergeDropSource),
            Step::Bounded(Stmt::MergeSource),
            Step::Fill(Stmt::MergeFill),
            Step::Deleted(Stmt::MergeDelete),
            Step::Updated(Stmt::MergeUpdate),
            Step::Inserted(Stmt::MergeInsert),
            Step::Cleanup(Stmt::MergeCleanup),
            Step::Run(Stmt::MergeDropSource),
        ],
        // Warehouses tidemark does not drive have scripts instead (crate::script).
        _ => &[],
    }
}
