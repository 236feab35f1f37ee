//! `cargo xtask fuzz`: build and run the cargo-fuzz targets on the stable toolchain.
//!
//! Owns how fuzz targets are found (the `[[bin]]` entries of `fuzz/Cargo.toml`),
//! seeded (`fuzz/seeds/<target>/` copied into the run's corpus `fuzz/corpus/<target>/`,
//! which git ignores) and run (`cargo fuzz run` with `RUSTC_BOOTSTRAP=1`, since
//! cargo-fuzz passes unstable `-Z` flags). All targets are built once, into the
//! workspace's target directory, before any runs. A crash fails the run;
//! libFuzzer leaves the input in `fuzz/artifacts/<target>/`.

use crate::cmd;
use anyhow::{Context, Result, bail};
use std::fs::File;
use std::path::PathBuf;
use std::process::Command;

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct FuzzArgs {
    /// The target to run (see fuzz/Cargo.toml); omit with --all.
    target: Option<String>,
    /// Run every target, one after another.
    #[arg(long, conflicts_with = "target")]
    all: bool,
    /// Seconds each target runs (libFuzzer's -max_total_time).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

/// Build flags shared by `cargo fuzz build` and `cargo fuzz run`, so the run
/// reuses the build: optimized, with debug assertions (overflow checks catch
/// arithmetic bugs), no sanitizer (the code under test has no `unsafe`).
const BUILD_FLAGS: [&str; 5] = [
    "--release",
    "--debug-assertions",
    "--sanitizer",
    "none",
    "--fuzz-dir",
];

/// Longest a single input may take, in seconds, before libFuzzer calls it a hang.
const INPUT_TIMEOUT_SECS: u64 = 10;

/// `cargo xtask fuzz`.
pub fn run(args: &FuzzArgs) -> Result<()> {
    crate::tools::CARGO_FUZZ.ensure()?;
    let all = targets()?;
    let chosen = match (&args.target, args.all) {
        (Some(target), _) => {
            if !all.contains(target) {
                bail!("no fuzz target {target:?}; targets: {}", all.join(", "));
            }
            vec![target.clone()]
        }
        (None, true) => all,
        (None, false) => bail!("name a target or pass --all; targets: {}", all.join(", ")),
    };
    run_targets(&chosen, args.seconds)
}

/// The fuzz crate's directory.
fn fuzz_dir() -> PathBuf {
    cmd::root().join("fuzz")
}

/// The fuzz targets: names of the `[[bin]]` entries in `fuzz/Cargo.toml`.
pub fn targets() -> Result<Vec<String>> {
    let path = fuzz_dir().join("Cargo.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let manifest: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    let bins = manifest
        .get("bin")
        .and_then(toml::Value::as_array)
        .with_context(|| format!("{} has no [[bin]] entries", path.display()))?;
    let names: Vec<String> = bins
        .iter()
        .filter_map(|bin| bin.get("name").and_then(toml::Value::as_str))
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        bail!("{} names no fuzz targets", path.display());
    }
    Ok(names)
}

/// A `cargo fuzz <subcommand>` with the shared build flags and environment.
fn cargo_fuzz(subcommand: &str) -> Command {
    let fuzz_dir = fuzz_dir();
    let mut command = cmd::cargo(&["fuzz", subcommand]);
    command
        .args(BUILD_FLAGS)
        .arg(&fuzz_dir)
        // cargo-fuzz passes -Z flags; this lets the stable compiler accept them.
        .env("RUSTC_BOOTSTRAP", "1")
        // One target dir for everything; fuzz builds land in its <triple>/ subdirectory.
        .env("CARGO_TARGET_DIR", cmd::target_dir());
    command
}

/// Builds all targets once, then runs each of `targets` for `seconds`, as many
/// at a time as there are cores. Each run's output goes to
/// `fuzz/artifacts/<target>/run.log`; its closing lines are echoed, and the last
/// part of the log is printed when a target fails.
pub fn run_targets(targets: &[String], seconds: u64) -> Result<()> {
    cmd::run(&mut cargo_fuzz("build")).context("building the fuzz targets")?;
    let jobs = std::thread::available_parallelism().map_or(1, usize::from);
    let mut failed = Vec::new();
    for batch in targets.chunks(jobs) {
        let mut running = Vec::new();
        for target in batch {
            let corpus = seed_corpus(target)?;
            let artifacts = fuzz_dir().join("artifacts").join(target);
            std::fs::create_dir_all(&artifacts)
                .with_context(|| format!("creating {}", artifacts.display()))?;
            let log_path = artifacts.join("run.log");
            let log = File::create(&log_path)
                .with_context(|| format!("creating {}", log_path.display()))?;
            let mut command = cargo_fuzz("run");
            command
                .arg(target)
                .arg(&corpus)
                .arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
                .stdout(log.try_clone()?)
                .stderr(log);
            println!(
                "--> fuzz target `{target}` for {seconds}s, log in {}",
                log_path.display()
            );
            cmd::echo(&command);
            let child = command.spawn().context("could not start cargo fuzz")?;
            running.push((target, log_path, child));
        }
        for (target, log_path, mut child) in running {
            let status = child.wait()?;
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            if status.success() {
                let done = lines.iter().rev().find(|line| line.starts_with("Done "));
                let corpus = lines
                    .iter()
                    .rev()
                    .find(|line| line.contains(" DONE ") || line.contains(" cov: "));
                println!(
                    "<-- fuzz target `{target}` ok: {} {}",
                    done.unwrap_or(&"(no summary)"),
                    corpus.map_or("", |line| line.trim())
                );
            } else {
                println!(
                    "<-- fuzz target `{target}` FAILED ({status}); last lines of {}:",
                    log_path.display()
                );
                for line in &lines[lines.len().saturating_sub(80)..] {
                    println!("    {line}");
                }
                failed.push(target.as_str());
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "fuzz targets failed: {} (crashing inputs in {})",
            failed.join(", "),
            fuzz_dir().join("artifacts").display()
        );
    }
    Ok(())
}

/// Copies `fuzz/seeds/<target>/*` into `fuzz/corpus/<target>/` (keeping what is
/// already there) and returns the corpus directory.
fn seed_corpus(target: &str) -> Result<PathBuf> {
    let corpus = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    let seeds = fuzz_dir().join("seeds").join(target);
    if !seeds.is_dir() {
        println!("note: no seeds in {}", seeds.display());
        return Ok(corpus);
    }
    for entry in
        std::fs::read_dir(&seeds).with_context(|| format!("reading {}", seeds.display()))?
    {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let to = corpus.join(entry.file_name());
        if !to.exists() {
            std::fs::copy(entry.path(), &to).with_context(|| {
                format!("copying {} to {}", entry.path().display(), to.display())
            })?;
        }
    }
    Ok(corpus)
}
