//! The part of the project's automation that tests may use too: process
//! helpers ([`process`]: CI detection, apt installs, what is missing) and a
//! throwaway RabbitMQ ([`rabbitmq`]). The `cargo xtask` binary (`main.rs`)
//! builds its tasks on these; integration tests that need a real third-party
//! broker take this crate as a dev-dependency (never published).

pub mod process;
pub mod rabbitmq;
