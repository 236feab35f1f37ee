//! Benchmarks (`cargo xtask bench`). Placeholder until the bench helper lands.

/// Runs the benchmarks; `quick` for a short run, `peers` to include other brokers.
pub fn run(quick: bool, peers: bool) -> anyhow::Result<()> {
    let _ = (quick, peers);
    anyhow::bail!("bench not yet written")
}
