//! The part of the project's automation that tests may use too: process
//! helpers ([`process`]: CI detection, apt installs, what is missing), a
//! throwaway RabbitMQ ([`rabbitmq`]) and a throwaway NATS server with
//! JetStream ([`nats`]). The `cargo xtask` binary (`main.rs`) builds its tasks
//! on these; integration tests that need a real third-party broker or NATS
//! take this crate as a dev-dependency (never published).

pub mod nats;
pub mod process;
pub mod rabbitmq;
