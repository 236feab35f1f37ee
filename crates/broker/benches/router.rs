//! Router benches (being written).
fn main() {}
