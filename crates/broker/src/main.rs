//! `stompkit-broker` binary (being written).
fn main() {}
