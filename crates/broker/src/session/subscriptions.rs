//! SUBSCRIBE and UNSUBSCRIBE on an open session.
//!
//! Owns the connection's subscription ids (unique, at most `[limits]
//! max_subscriptions`) and the `prefetch-count` bound. Does not check the frame's
//! headers, destination or permissions (the rules layer did, before) nor match
//! messages to subscriptions (the router does).

use super::{Effects, Open};
use crate::config::BrokerConfig;
use crate::router::RouterCommand;
use crate::rules::{self, ProtocolError};
use stompkit_frame::AckMode;

impl Open {
    /// SUBSCRIBE `id` to `destination`: a new id within the limit, a valid
    /// `prefetch-count`, then to the router.
    pub(super) fn subscribe(
        &mut self,
        config: &BrokerConfig,
        id: &str,
        destination: &str,
        ack: AckMode,
        prefetch: Option<&str>,
        fx: &mut Effects<'_>,
    ) -> Result<(), ProtocolError> {
        if self.subscriptions.contains(id) {
            return Err(ProtocolError::DuplicateSubscription);
        }
        if self.subscriptions.len() >= config.limits.max_subscriptions {
            return Err(ProtocolError::TooManySubscriptions);
        }
        let prefetch = rules::prefetch(prefetch, config.destinations.max_prefetch)?;
        self.subscriptions.insert(id.to_owned());
        fx.out.push(RouterCommand::Subscribe {
            conn: fx.conn,
            id: id.to_owned(),
            destination: destination.to_owned(),
            ack,
            prefetch,
            receipt: fx.receipt.take(),
        });
        Ok(())
    }

    /// UNSUBSCRIBE `id`, which must be subscribed.
    pub(super) fn unsubscribe(
        &mut self,
        id: &str,
        fx: &mut Effects<'_>,
    ) -> Result<(), ProtocolError> {
        if !self.subscriptions.remove(id) {
            return Err(ProtocolError::UnknownSubscription);
        }
        fx.out.push(RouterCommand::Unsubscribe {
            conn: fx.conn,
            id: id.to_owned(),
            receipt: fx.receipt.take(),
        });
        Ok(())
    }
}
