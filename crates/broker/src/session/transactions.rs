//! Transactions on an open session: BEGIN, COMMIT, ABORT, and the frames held
//! in a transaction until COMMIT.
//!
//! Owns the open transactions and their limits (`[limits] max_transactions`,
//! `max_transaction_frames`, `max_transaction_bytes`). A COMMIT goes to the
//! router as one command. Does not check the frame's headers (the rules layer
//! did) nor apply the held frames (the router does).

use super::{Effects, Open};
use crate::config::LimitsConfig;
use crate::router::{RouterCommand, TxOp};
use crate::rules::ProtocolError;

/// One open transaction: its frames, and their size.
#[derive(Debug, Default)]
pub(super) struct Transaction {
    ops: Vec<TxOp>,
    bytes: usize,
}

impl Open {
    /// BEGIN `tx`: a new name, within the limit.
    pub(super) fn begin(
        &mut self,
        tx: &str,
        limits: &LimitsConfig,
        fx: &mut Effects<'_>,
    ) -> Result<(), ProtocolError> {
        if self.transactions.contains_key(tx) {
            return Err(ProtocolError::TransactionAlreadyOpen);
        }
        if self.transactions.len() >= limits.max_transactions {
            return Err(ProtocolError::TooManyTransactions);
        }
        self.transactions
            .insert(tx.to_owned(), Transaction::default());
        fx.receipt();
        Ok(())
    }

    /// COMMIT `tx`: its frames go to the router as one command.
    pub(super) fn commit(&mut self, tx: &str, fx: &mut Effects<'_>) -> Result<(), ProtocolError> {
        let t = self
            .transactions
            .remove(tx)
            .ok_or(ProtocolError::UnknownTransaction)?;
        fx.out.push(RouterCommand::Commit {
            conn: fx.conn,
            ops: t.ops,
            receipt: fx.receipt.take(),
        });
        Ok(())
    }

    /// ABORT `tx`: its frames are dropped.
    pub(super) fn abort(&mut self, tx: &str, fx: &mut Effects<'_>) -> Result<(), ProtocolError> {
        self.transactions
            .remove(tx)
            .ok_or(ProtocolError::UnknownTransaction)?;
        fx.receipt();
        Ok(())
    }

    /// Holds `op` (of `bytes`) in transaction `tx` until COMMIT.
    pub(super) fn buffer(
        &mut self,
        tx: &str,
        op: TxOp,
        bytes: usize,
        limits: &LimitsConfig,
        fx: &mut Effects<'_>,
    ) -> Result<(), ProtocolError> {
        let (max_frames, max_bytes) = (limits.max_transaction_frames, limits.max_transaction_bytes);
        let t = self
            .transactions
            .get_mut(tx)
            .ok_or(ProtocolError::UnknownTransaction)?;
        if t.ops.len() >= max_frames || t.bytes + bytes > max_bytes {
            return Err(ProtocolError::TransactionTooLarge);
        }
        t.ops.push(op);
        t.bytes += bytes;
        fx.receipt();
        Ok(())
    }
}
