//! ACK and NACK on an open session.
//!
//! Owns turning the message an ACK/NACK names into the router's [`AckRef`], and
//! sending it now or holding it in its transaction. Does not check the frame's
//! headers (the rules layer did) nor know which messages are pending (the
//! router does).

use super::{Effects, Open};
use crate::config::LimitsConfig;
use crate::router::{AckRef, RouterCommand, TxOp};
use crate::rules::{AckTarget, ProtocolError};

impl Open {
    /// ACK (or NACK, `nack` = `Some(requeue)`) of `target`, to the router or
    /// into `transaction`.
    pub(super) fn ack(
        &mut self,
        target: AckTarget<'_>,
        transaction: Option<&str>,
        nack: Option<bool>,
        limits: &LimitsConfig,
        fx: &mut Effects<'_>,
    ) -> Result<(), ProtocolError> {
        let ack = AckRef {
            id: target.id.to_owned(),
            subscription: target.subscription.map(str::to_owned),
            requeue: nack.unwrap_or(true),
        };
        match transaction {
            Some(tx) => {
                let op = match nack {
                    Some(_) => TxOp::Nack(ack),
                    None => TxOp::Ack(ack),
                };
                return self.buffer(tx, op, 0, limits, fx);
            }
            None if nack.is_some() => fx.out.push(RouterCommand::Nack {
                conn: fx.conn,
                ack,
                receipt: fx.receipt.take(),
            }),
            None => fx.out.push(RouterCommand::Ack {
                conn: fx.conn,
                ack,
                receipt: fx.receipt.take(),
            }),
        }
        Ok(())
    }
}
