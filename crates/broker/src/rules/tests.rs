//! Rules-layer unit tests: frames in, requests or protocol errors out.
#![allow(clippy::unwrap_used)]

use super::*;
use std::collections::HashSet;
use stompkit_frame::{AckMode, Command, Frame, Version};

fn open(_: Command, _: &str) -> Result<(), ProtocolError> {
    Ok(())
}

fn checked(version: Version, frame: &Frame) -> Result<Request<'_>, ProtocolError> {
    check(version, frame, open)
}

#[test]
fn send_needs_a_destination_and_asks_the_destination_rule() {
    let send = Frame::send("/queue/a").header("transaction", "t");
    assert_eq!(
        checked(Version::V1_2, &send),
        Ok(Request::Send {
            destination: "/queue/a",
            transaction: Some("t")
        })
    );
    let no_destination = Frame::new(Command::Send);
    assert_eq!(
        checked(Version::V1_2, &no_destination),
        Err(ProtocolError::MissingDestination)
    );
    let refused = check(Version::V1_2, &send, |command, destination| {
        assert_eq!((command, destination), (Command::Send, "/queue/a"));
        Err(ProtocolError::Forbidden)
    });
    assert_eq!(refused, Err(ProtocolError::Forbidden));
}

#[test]
fn subscribe_ids_ack_modes_and_the_destination_rule_come_in_order() {
    let bare = Frame::new(Command::Subscribe).header("destination", "/topic/a");
    assert_eq!(
        checked(Version::V1_0, &bare),
        Ok(Request::Subscribe {
            id: "/topic/a",
            destination: "/topic/a",
            ack: AckMode::Auto,
            prefetch: None,
            durable: None,
        }),
        "C2: 1.0 names a subscription by its destination"
    );
    assert_eq!(checked(Version::V1_1, &bare), Err(ProtocolError::MissingId));
    // The destination rule is asked before the id is.
    let unsupported = check(Version::V1_1, &bare, |_, _| {
        Err(ProtocolError::UnsupportedDestination)
    });
    assert_eq!(unsupported, Err(ProtocolError::UnsupportedDestination));
    let bad_ack = bare.clone().header("id", "0").header("ack", "sometimes");
    assert_eq!(
        checked(Version::V1_2, &bad_ack),
        Err(ProtocolError::InvalidAckMode)
    );
    let full = bare.header("id", "0").header(PREFETCH_COUNT, "5");
    assert!(matches!(
        checked(Version::V1_2, &full),
        Ok(Request::Subscribe {
            id: "0",
            prefetch: Some("5"),
            ..
        })
    ));
}

#[test]
fn unsubscribe_ack_and_nack_follow_each_version() {
    let by_destination = Frame::new(Command::Unsubscribe).header("destination", "/topic/a");
    assert_eq!(
        checked(Version::V1_0, &by_destination),
        Ok(Request::Unsubscribe {
            id: "/topic/a",
            durable: false
        })
    );
    assert_eq!(
        checked(Version::V1_1, &by_destination),
        Err(ProtocolError::MissingId)
    );
    let nack = Frame::new(Command::Nack).header("message-id", "m");
    assert_eq!(checked(Version::V1_0, &nack), Err(ProtocolError::NackIn1_0));
    assert_eq!(
        checked(Version::V1_1, &nack),
        Err(ProtocolError::MissingSubscription)
    );
    assert_eq!(checked(Version::V1_2, &nack), Err(ProtocolError::MissingId));
    let ack = Frame::new(Command::Ack)
        .header("id", "a")
        .header("subscription", "s");
    assert_eq!(
        checked(Version::V1_2, &ack),
        Ok(Request::Ack {
            target: AckTarget {
                id: "a",
                subscription: None
            },
            transaction: None
        })
    );
    assert_eq!(
        checked(Version::V1_0, &ack),
        Err(ProtocolError::MissingMessageId)
    );
}

#[test]
fn transactions_disconnect_and_frames_a_client_may_not_send() {
    for command in [Command::Begin, Command::Commit, Command::Abort] {
        assert_eq!(
            checked(Version::V1_2, &Frame::new(command)),
            Err(ProtocolError::MissingTransaction)
        );
    }
    let begin = Frame::new(Command::Begin).header("transaction", "t");
    assert_eq!(
        checked(Version::V1_2, &begin),
        Ok(Request::Begin { transaction: "t" })
    );
    assert_eq!(
        checked(Version::V1_2, &Frame::disconnect()),
        Ok(Request::Disconnect)
    );
    assert_eq!(
        checked(Version::V1_2, &Frame::new(Command::Stomp)),
        Err(ProtocolError::AlreadyConnected)
    );
    assert_eq!(
        checked(Version::V1_2, &Frame::new(Command::Message)),
        Err(ProtocolError::ServerFrame)
    );
}

#[test]
fn prefetch_count_is_positive_and_bounded() {
    assert_eq!(prefetch(None, 10), Ok(0));
    assert_eq!(prefetch(Some("3"), 10), Ok(3));
    assert_eq!(prefetch(Some("300"), 10), Ok(10));
    for bad in ["0", "-1", "x", ""] {
        assert_eq!(prefetch(Some(bad), 10), Err(ProtocolError::InvalidPrefetch));
    }
}

#[test]
fn error_frames_carry_message_receipt_versions_and_body() {
    let frame = error_frame("m", Some("r"), Some("1.2"), "b");
    assert_eq!(frame.message(), Some("m"));
    assert_eq!(frame.receipt_id(), Some("r"));
    assert_eq!(frame.version(), Some("1.2"));
    assert_eq!(frame.body(), b"b\n");
    assert_eq!(refusal("full").body(), b"full\n");
    let body = ProtocolError::UnsupportedDestination.body();
    assert_eq!(
        body,
        Some("destinations are /topic/<name> and /queue/<name>")
    );
}

#[test]
fn every_rule_has_its_own_message() {
    use ProtocolError::*;
    let all = [
        ExpectedConnect,
        NoCommonVersion,
        MalformedAcceptVersion,
        MalformedHeartBeat,
        AccessRefused,
        FrameBeforeLogin,
        LoginTimeout,
        LoginNotVerified,
        FrameTimeout,
        HeartBeatTimeout,
        ShuttingDown,
        UserRemoved,
        AnonymousRemoved,
        AlreadyConnected,
        ServerFrame,
        MissingDestination,
        UnsupportedDestination,
        Forbidden,
        MissingId,
        InvalidAckMode,
        InvalidPrefetch,
        InvalidSelector(stompkit_selector::Selector::parse("(").unwrap_err()),
        DuplicateSubscription,
        TooManySubscriptions,
        DurableWithoutClientId,
        UnknownSubscription,
        NackIn1_0,
        MissingMessageId,
        MissingSubscription,
        MissingTransaction,
        TransactionAlreadyOpen,
        TooManyTransactions,
        UnknownTransaction,
        TransactionTooLarge,
    ];
    let messages: HashSet<&str> = all.iter().map(ProtocolError::message).collect();
    assert_eq!(messages.len(), all.len());
    assert_eq!(
        ProtocolError::Parse(stompkit_wire::ParseError::UnknownCommand).to_string(),
        "unknown command"
    );
}
