//! `cargo xtask ci`: every check CI runs, in order, each timed.
//!
//! Owns the list of CI steps ([`steps`]) and the report: each step's name and
//! wall time as it finishes, a summary table at the end, and a non-zero exit at
//! the first failing step. A step that needs a system package this machine lacks
//! (RabbitMQ, nats-server, Node.js, Chromium, python3-venv) ends with a
//! [`cmd::Missing`] error: outside CI it is reported as `SKIPPED: ...` and the
//! run goes on; with `CI=true` a skip is a failure (and packages are installed
//! instead, as they are after `--install`). To add a step, add an entry to
//! [`steps`]; `--skip`/`--only` pick steps by name.

use crate::{cmd, fuzz, modules, paths, tools};
use anyhow::{Context as _, Result, bail};
use std::io::Write;
use std::time::{Duration, Instant};

/// Options of `cargo xtask ci`.
#[derive(clap::Args)]
pub struct CiArgs {
    /// Seconds each fuzz target runs in the fuzz smoke step.
    #[arg(long, default_value_t = 10)]
    fuzz_seconds: u64,
    /// Install missing system packages (RabbitMQ, nats-server, Node.js,
    /// Chromium, python3-venv) with apt-get, as CI=true does, instead of
    /// skipping the steps that need them.
    #[arg(long)]
    install: bool,
    /// Skip these steps (by name; repeatable).
    #[arg(long, value_name = "STEP")]
    skip: Vec<String>,
    /// Run only these steps (by name; repeatable).
    #[arg(long, value_name = "STEP")]
    only: Vec<String>,
    /// List the steps and exit.
    #[arg(long)]
    list: bool,
}

/// What a step gets to work with.
pub struct Context {
    /// Seconds per fuzz target in the smoke run.
    pub fuzz_seconds: u64,
}

/// One CI step: a name, what it does, and how to run it. `run` returns a short
/// note for the summary (e.g. test counts), or an error to stop CI.
pub struct Step {
    /// Short name, used by `--skip`/`--only` and in the summary.
    pub name: &'static str,
    /// What the step checks, for `--list`.
    pub about: &'static str,
    /// Runs the step.
    pub run: fn(&Context) -> Result<String>,
}

/// The crates that have a `tls` feature (on by default), checked with it off.
const NO_TLS_CRATES: [&str; 4] = [
    "stompkit-tokio",
    "stompkit-ws",
    "stompkit-cli",
    "stompkit-broker",
];

/// The CI steps, in order.
pub fn steps() -> Vec<Step> {
    [checks(), tests(), packaging(), interop()]
        .into_iter()
        .flatten()
        .collect()
}

/// Static checks: paths, formatting, lints, docs.
fn checks() -> Vec<Step> {
    vec![
        Step {
            name: "paths",
            about: "no file refers to a path outside the repository (relative or absolute)",
            run: |_| paths::check(),
        },
        Step {
            name: "modules",
            about: "no cycle among the broker's modules (crates/broker/src)",
            run: |_| modules::check(),
        },
        Step {
            name: "fmt",
            about: "cargo fmt --all -- --check (and the fuzz crate, its own workspace)",
            run: |_| {
                cargo_step(&["fmt", "--all", "--", "--check"])?;
                cargo_step(&["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"])
            },
        },
        Step {
            name: "clippy",
            about: "cargo clippy --workspace --all-targets -- -D warnings; non-test code also with clippy::too_many_lines (clippy.toml: 80)",
            run: |_| {
                cargo_step(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])?;
                cargo_step(&[
                    "clippy",
                    "--workspace",
                    "--lib",
                    "--bins",
                    "--",
                    "-D",
                    "warnings",
                    "-W",
                    "clippy::too_many_lines",
                ])
            },
        },
        Step {
            name: "doc",
            about: "cargo doc --workspace --no-deps with RUSTDOCFLAGS=-D warnings (broken links fail)",
            run: |_| {
                let mut doc = cmd::cargo(&["doc", "--workspace", "--no-deps"]);
                doc.env("RUSTDOCFLAGS", "-D warnings");
                cmd::run(&mut doc)?;
                Ok(String::new())
            },
        },
    ]
}

/// The tests: the workspace's, without TLS, those that need RabbitMQ or NATS,
/// and the durable store's long one in release.
fn tests() -> Vec<Step> {
    vec![
        Step {
            name: "test",
            about: "cargo test --workspace (unit, integration and doc tests; not the #[ignore]d ones that need system packages)",
            run: |_| test_step(&["test", "--workspace"]),
        },
        Step {
            name: "no-tls",
            about: "the crates with a `tls` feature, built, linted and unit-tested without it",
            run: |_| no_tls_step(),
        },
        Step {
            name: "relay-tests",
            about: "the broker's #[ignore]d relay tests against a throwaway RabbitMQ (needs rabbitmq-server)",
            run: |_| {
                // Installed (or reported missing) here, so the test itself never skips.
                xtask::rabbitmq::ensure_installed()?;
                test_step(&[
                    "test",
                    "-p",
                    "stompkit-broker",
                    "--test",
                    "relay",
                    "--",
                    "--ignored",
                ])
            },
        },
        Step {
            name: "cluster-tests",
            about: "the broker's #[ignore]d cluster tests: three broker nodes on a throwaway nats-server with JetStream (needs nats-server)",
            run: |_| {
                // Installed (or reported missing) here, so the test itself never skips.
                xtask::nats::ensure_installed()?;
                test_step(&[
                    "test",
                    "-p",
                    "stompkit-broker",
                    "--test",
                    "cluster",
                    "--",
                    "--ignored",
                    "--test-threads",
                    "1",
                ])
            },
        },
        Step {
            name: "durable-release",
            about: "the broker's #[ignore]d durable-store tests, in a release build: 1,000,000 stored messages through a SIGKILL and a restart",
            run: |_| {
                test_step(&[
                    "test",
                    "-p",
                    "stompkit-broker",
                    "--release",
                    "--test",
                    "durable",
                    "--",
                    "--ignored",
                ])
            },
        },
    ]
}

/// Tools, licences, packaging and the fuzz smoke run.
fn packaging() -> Vec<Step> {
    vec![
        Step {
            name: "tools",
            about: "install pinned cargo-deny and cargo-fuzz if missing (cargo install)",
            run: |_| {
                let notes: Result<Vec<String>> =
                    tools::ALL.iter().map(tools::Tool::ensure).collect();
                Ok(notes?.join("; "))
            },
        },
        Step {
            name: "deny",
            about: "cargo deny check licenses bans sources",
            run: |_| {
                tools::CARGO_DENY.ensure()?;
                cargo_step(&["deny", "check", "licenses", "bans", "sources"])
            },
        },
        Step {
            name: "package",
            about: "cargo package --workspace: every published crate packages and builds with its local dependencies",
            run: |_| {
                forget_unpacked_packages()?;
                // A fresh target directory: cargo reuses what it built of a
                // registry crate of the same name and version, even when the
                // packaged crate changed since.
                let target = cmd::root().join("target").join("package-check");
                if target.exists() {
                    std::fs::remove_dir_all(&target)
                        .with_context(|| format!("removing {}", target.display()))?;
                }
                let mut command = cmd::cargo(&[
                    "package",
                    "--workspace",
                    "--exclude",
                    "stompkit-benches",
                    "--exclude",
                    "xtask",
                    "--allow-dirty",
                ]);
                command.env("CARGO_TARGET_DIR", &target);
                cmd::run(&mut command)?;
                Ok(String::new())
            },
        },
        Step {
            name: "fuzz",
            about: "build every fuzz target once, run each for --fuzz-seconds",
            run: |cx| {
                tools::CARGO_FUZZ.ensure()?;
                let targets = fuzz::targets()?;
                fuzz::run_targets(&targets, cx.fuzz_seconds)?;
                Ok(format!("{} targets x {}s", targets.len(), cx.fuzz_seconds))
            },
        },
    ]
}

/// Third-party clients, a real browser, a real broker upstream, the broker benchmark.
fn interop() -> Vec<Step> {
    vec![
        Step {
            name: "interop",
            about: "stomp.py suite in interop/ against a freshly started stompkit-broker (needs python3-venv)",
            run: |_| {
                crate::interop::run()?;
                Ok(String::new())
            },
        },
        Step {
            name: "interop-cluster",
            about: "stomp.py suite with publishers and subscribers on different nodes of a three-node cluster on a throwaway nats-server (needs python3-venv, nats-server)",
            run: |_| crate::interop_cluster::run(),
        },
        Step {
            name: "interop-js",
            about: "@stomp/stompjs on Node in interop/js over WebSocket (needs nodejs, npm)",
            run: |_| crate::interop_js::run(None, crate::interop_js::Suites::Stompjs),
        },
        Step {
            name: "browser",
            about: "the demo page and the admin dashboard in headless Chromium, driven by playwright-core (needs nodejs, npm, chromium)",
            run: |_| crate::interop_js::run(None, crate::interop_js::Suites::Browser),
        },
        Step {
            name: "relay",
            about: "stomp.py portable suite through stompkit-broker --upstream to a throwaway RabbitMQ (needs rabbitmq-server)",
            run: |_| crate::interop_relay::run(),
        },
        Step {
            name: "bench-broker",
            about: "cargo xtask bench-broker --quick: every broker benchmark row runs on stompkit alone, nothing lost",
            run: |_| {
                crate::bench_broker::run_quick()?;
                Ok(String::new())
            },
        },
    ]
}

/// Runs a cargo command as a step.
fn cargo_step(args: &[&str]) -> Result<String> {
    cmd::run(&mut cmd::cargo(args))?;
    Ok(String::new())
}

/// Runs `cargo <args>` (a test command), echoing the runner's output and
/// totalling its `test result:` lines.
fn test_step(args: &[&str]) -> Result<String> {
    let mut totals = TestTotals::default();
    let result = cmd::run_tee(&mut cmd::cargo(args), |line| totals.add_line(line));
    let note = totals.to_string();
    println!("tests: {note}");
    result.map(|()| note)
}

/// The `tls` crates without their default features: no TLS crate in their
/// dependency trees, clippy on every target, then their unit tests (which
/// include the "this build has no TLS" refusals).
fn no_tls_step() -> Result<String> {
    for krate in NO_TLS_CRATES {
        let mut tree = cmd::cargo(&["tree", "-p", krate, "--no-default-features"]);
        tree.args(["-e", "normal", "--prefix", "none", "--format", "{p}"]);
        let listing = cmd::output(&mut tree).context("cargo tree failed")?;
        let tls: Vec<&str> = listing
            .lines()
            .filter(|line| line.starts_with("rustls") || line.starts_with("ring "))
            .collect();
        if !tls.is_empty() {
            bail!("{krate} without `tls` still depends on {}", tls.join(", "));
        }
    }
    let mut args = vec!["clippy", "--no-default-features"];
    for krate in NO_TLS_CRATES {
        args.extend(["-p", krate]);
    }
    let clippy_args = [&args[..], &["--all-targets", "--", "-D", "warnings"]].concat();
    cmd::run(&mut cmd::cargo(&clippy_args))?;
    args[0] = "test";
    test_step(&[&args[..], &["--lib", "--bins"]].concat())
}

/// Sums of the test runner's `test result:` lines.
#[derive(Default)]
struct TestTotals {
    suites: u64,
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl TestTotals {
    /// Adds a line like `test result: ok. 3 passed; 0 failed; 1 ignored; ...`.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        self.suites += 1;
        for part in rest.split(['.', ';']) {
            let mut words = part.split_whitespace();
            let (Some(count), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match kind {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

impl std::fmt::Display for TestTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} passed, {} failed, {} ignored in {} suites",
            self.passed, self.failed, self.ignored, self.suites
        )
    }
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    /// A system package was missing (outside CI only).
    Skipped,
    Failed,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Skipped => "SKIPPED",
            Verdict::Failed => "FAILED",
        }
    }

    /// A step's verdict from its result: a [`cmd::Missing`] error is a skip,
    /// except in CI, where nothing may be skipped.
    fn of(result: Result<String>, in_ci: bool) -> (Verdict, String) {
        match result {
            Ok(note) => (Verdict::Ok, note),
            Err(error) => match cmd::Missing::find(&error) {
                Some(missing) if in_ci => (
                    Verdict::Failed,
                    format!("{missing} (CI=true: a skipped step fails)"),
                ),
                Some(missing) => (Verdict::Skipped, missing.to_string()),
                None => (Verdict::Failed, format!("{error:#}")),
            },
        }
    }
}

/// How one step ended.
struct Outcome {
    name: &'static str,
    time: Duration,
    verdict: Verdict,
    note: String,
}

/// `cargo xtask ci`.
pub fn run(args: &CiArgs) -> Result<()> {
    let all = steps();
    if args.list {
        for step in &all {
            println!("{:<12} {}", step.name, step.about);
        }
        return Ok(());
    }
    for name in args.skip.iter().chain(&args.only) {
        if !all.iter().any(|step| step.name == name) {
            let names: Vec<&str> = all.iter().map(|step| step.name).collect();
            bail!("no CI step named {name:?}; steps: {}", names.join(", "));
        }
    }
    if args.install {
        xtask::process::allow_install();
    }
    let chosen: Vec<Step> = all
        .into_iter()
        .filter(|step| args.only.is_empty() || args.only.iter().any(|n| n == step.name))
        .filter(|step| !args.skip.iter().any(|n| n == step.name))
        .collect();
    let context = Context {
        fuzz_seconds: args.fuzz_seconds,
    };
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for step in &chosen {
        println!("\n==> ci step `{}`: {}", step.name, step.about);
        flush();
        let step_started = Instant::now();
        let (verdict, note) = Verdict::of((step.run)(&context), cmd::in_ci());
        let time = step_started.elapsed();
        if verdict == Verdict::Skipped {
            println!("{note}");
        }
        println!(
            "<== ci step `{}` {} in {}",
            step.name,
            verdict.label(),
            seconds(time)
        );
        outcomes.push(Outcome {
            name: step.name,
            time,
            verdict,
            note,
        });
        if verdict == Verdict::Failed {
            break;
        }
    }
    summary(&outcomes, chosen.len(), started.elapsed());
    match outcomes.iter().find(|o| o.verdict == Verdict::Failed) {
        Some(failed) => bail!("ci step `{}` failed: {}", failed.name, failed.note),
        None => Ok(()),
    }
}

/// Prints the summary table.
fn summary(outcomes: &[Outcome], planned: usize, total: Duration) {
    println!("\nci summary");
    println!("{:<12} {:>9}  {:<7} note", "step", "time", "result");
    for outcome in outcomes {
        println!(
            "{:<12} {:>9}  {:<7} {}",
            outcome.name,
            seconds(outcome.time),
            outcome.verdict.label(),
            outcome.note
        );
    }
    let count = |verdict| outcomes.iter().filter(|o| o.verdict == verdict).count();
    let verdict = if count(Verdict::Failed) > 0 {
        "FAILED"
    } else if count(Verdict::Skipped) > 0 {
        "ok with skipped steps"
    } else {
        "ok"
    };
    println!("{:<12} {:>9}  {verdict}", "total", seconds(total));
    println!(
        "{} steps: {} ok, {} skipped, {} failed, {} not run",
        planned,
        count(Verdict::Ok),
        count(Verdict::Skipped),
        count(Verdict::Failed),
        planned - outcomes.len()
    );
    flush();
}

/// A duration as seconds with one decimal.
fn seconds(time: Duration) -> String {
    format!("{:.1}s", time.as_secs_f64())
}

fn flush() {
    let _ = std::io::stdout().flush();
}

/// Removes the sources cargo unpacked from earlier `cargo package` runs of
/// this workspace's crates. `cargo package --workspace` verifies each crate
/// against the others through a temporary local registry, and cargo unpacks a
/// registry crate only once per name and version (under
/// `$CARGO_HOME/registry/src/<registry>/`): an earlier run from the same
/// directory would otherwise verify against the crates as they were then.
/// (Found when a second clean clone at the same path failed to package.)
fn forget_unpacked_packages() -> Result<()> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        for unpacked in std::fs::read_dir(registry.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = unpacked.file_name();
            if name.to_string_lossy().starts_with("stompkit-") {
                std::fs::remove_dir_all(unpacked.path())
                    .with_context(|| format!("removing {}", unpacked.path().display()))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_test_result_lines() {
        let mut totals = TestTotals::default();
        totals.add_line("test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n");
        totals.add_line("test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s");
        totals.add_line("running 5 tests");
        assert_eq!(
            totals.to_string(),
            "15 passed, 2 failed, 1 ignored in 2 suites"
        );
    }

    #[test]
    fn a_missing_package_is_a_skip_outside_ci_and_a_failure_in_ci() {
        let missing =
            || Err(cmd::Missing::apt("RabbitMQ (rabbitmq-server)", &["rabbitmq-server"]).into());
        let (verdict, note) = Verdict::of(missing(), false);
        assert_eq!(verdict, Verdict::Skipped);
        assert!(note.starts_with("SKIPPED: RabbitMQ"), "{note}");
        let (verdict, note) = Verdict::of(missing(), true);
        assert_eq!(verdict, Verdict::Failed);
        assert!(note.ends_with("(CI=true: a skipped step fails)"), "{note}");
        let (verdict, _) = Verdict::of(Err(anyhow::anyhow!("tests failed")), false);
        assert_eq!(verdict, Verdict::Failed);
        assert_eq!(Verdict::of(Ok("n".into()), true).0, Verdict::Ok);
    }

    #[test]
    fn step_names_are_unique() {
        let steps = steps();
        for (i, step) in steps.iter().enumerate() {
            assert!(steps[i + 1..].iter().all(|other| other.name != step.name));
        }
    }
}
