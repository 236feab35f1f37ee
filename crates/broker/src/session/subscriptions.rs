//! SUBSCRIBE and UNSUBSCRIBE on an open session.
//!
//! Owns the connection's subscription ids (unique, at most `[limits]
//! max_subscriptions`, none starting `/temp-queue/` or `/temp-topic/`: those
//! are the ids of the router's reply-queue subscriptions) and the
//! `prefetch-count` bound. Does not check the frame's
//! headers, destination or permissions (the rules layer did, before) nor match
//! messages to subscriptions (the router does). A `selector` is parsed here,
//! once per subscription (`stompkit-selector`); one that does not parse, is
//! longer than 4 KiB or nests deeper than 64 gets ERROR `invalid selector`
//! with the position in the body. An empty one is no selector (ActiveMQ).

use super::{Effects, Open};
use crate::config::BrokerConfig;
use crate::router::{RouterCommand, is_reserved_subscription_id};
use crate::rules::{self, Durable, ProtocolError};
use stompkit_frame::AckMode;
use stompkit_selector::Selector;

/// The SUBSCRIBE header holding a JMS message selector (ActiveMQ's).
pub(super) const SELECTOR: &str = "selector";

/// What a SUBSCRIBE asks for, as the rules layer checked it.
pub(super) struct SubscribeRequest<'f> {
    /// Its `id`.
    pub(super) id: &'f str,
    /// Its destination.
    pub(super) destination: &'f str,
    /// Its ack mode.
    pub(super) ack: AckMode,
    /// Its raw `prefetch-count`.
    pub(super) prefetch: Option<&'f str>,
    /// Its durable-subscription headers.
    pub(super) durable: Option<Durable<'f>>,
    /// Its raw `selector`.
    pub(super) selector: Option<&'f str>,
}

impl Open {
    /// SUBSCRIBE `id` to `destination`: a new id within the limit, a valid
    /// `prefetch-count`, the durable subscription's key (topics only), then
    /// to the router.
    pub(super) fn subscribe(
        &mut self,
        config: &BrokerConfig,
        request: SubscribeRequest<'_>,
        scope: &str,
        fx: &mut Effects<'_>,
    ) -> Result<(), ProtocolError> {
        let SubscribeRequest {
            id,
            destination,
            ack,
            prefetch,
            durable,
            selector,
        } = request;
        if self.subscriptions.contains(id) {
            return Err(ProtocolError::DuplicateSubscription);
        }
        if is_reserved_subscription_id(id) {
            return Err(ProtocolError::ReservedSubscriptionId);
        }
        if self.subscriptions.len() >= config.limits.max_subscriptions {
            return Err(ProtocolError::TooManySubscriptions);
        }
        let prefetch = rules::prefetch(prefetch, config.destinations.max_prefetch)?;
        let selector = match selector.filter(|s| !s.trim().is_empty()) {
            Some(text) => Some(Selector::parse(text).map_err(ProtocolError::InvalidSelector)?),
            None => None,
        };
        let durable = match durable {
            Some(d) if destination.starts_with("/topic/") => Some(self.durable_key(d, scope, id)?),
            _ => None,
        };
        self.subscriptions.insert(id.to_owned());
        fx.out.push(RouterCommand::Subscribe {
            conn: fx.conn,
            id: id.to_owned(),
            destination: destination.to_owned(),
            ack,
            prefetch,
            durable,
            selector,
            receipt: fx.receipt.take(),
        });
        Ok(())
    }

    /// The key of a durable subscription: its `scope` (the login, `""` when
    /// anonymous), then ActiveMQ's `client-id` and subscription name, or
    /// RabbitMQ's subscription `id`. Unique per scope and name, never a
    /// destination name (it does not start with `/`).
    fn durable_key(
        &self,
        durable: Durable<'_>,
        scope: &str,
        id: &str,
    ) -> Result<String, ProtocolError> {
        match durable {
            Durable::Named(name) => {
                let client = self
                    .client_id
                    .as_deref()
                    .ok_or(ProtocolError::DurableWithoutClientId)?;
                Ok(format!("durable\0{scope}\0{client}\0{name}"))
            }
            Durable::ById => Ok(format!("durable\0{scope}\0\0{id}")),
        }
    }

    /// UNSUBSCRIBE `id`, which must be subscribed; with a durable
    /// subscription's headers (`durable`) it is removed for good.
    pub(super) fn unsubscribe(
        &mut self,
        id: &str,
        durable: bool,
        fx: &mut Effects<'_>,
    ) -> Result<(), ProtocolError> {
        if !self.subscriptions.remove(id) {
            return Err(ProtocolError::UnknownSubscription);
        }
        fx.out.push(RouterCommand::Unsubscribe {
            conn: fx.conn,
            id: id.to_owned(),
            forget: durable,
            receipt: fx.receipt.take(),
        });
        Ok(())
    }
}
