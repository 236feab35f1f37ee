//! `cargo xtask ci`: every check CI runs, in order, each timed.
//!
//! Owns the list of CI steps ([`steps`]) and the report: each step's name and
//! wall time as it finishes, a summary table at the end, and a non-zero exit at
//! the first failing step. To add a step (interop tests, browser tests, ...),
//! add an entry to [`steps`]; `--skip`/`--only` pick steps by name.

use crate::{cmd, fuzz, tools};
use anyhow::{Result, bail};
use std::io::Write;
use std::time::{Duration, Instant};

/// Options of `cargo xtask ci`.
#[derive(clap::Args)]
pub struct CiArgs {
    /// Seconds each fuzz target runs in the fuzz smoke step.
    #[arg(long, default_value_t = 10)]
    fuzz_seconds: u64,
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

/// The CI steps, in order.
pub fn steps() -> Vec<Step> {
    vec![
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
            about: "cargo clippy --workspace --all-targets -- -D warnings",
            run: |_| {
                cargo_step(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
            },
        },
        Step {
            name: "test",
            about: "cargo test --workspace (unit, integration and doc tests)",
            run: |_| test_step(),
        },
        Step {
            name: "tools",
            about: "install pinned cargo-deny and cargo-fuzz if missing",
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
            name: "fuzz",
            about: "build every fuzz target once, run each for --fuzz-seconds",
            run: |cx| {
                tools::CARGO_FUZZ.ensure()?;
                let targets = fuzz::targets()?;
                fuzz::run_targets(&targets, cx.fuzz_seconds)?;
                Ok(format!("{} targets x {}s", targets.len(), cx.fuzz_seconds))
            },
        },
        Step {
            name: "interop",
            about: "stomp.py suite in interop/ against a freshly started stompkit-broker",
            run: |_| {
                crate::interop::run()?;
                Ok(String::new())
            },
        },
        Step {
            name: "interop-js",
            about: "stompjs (Node) and the demo page (headless chromium) in interop/js over WebSocket",
            run: |_| crate::interop_js::run(None),
        },
        Step {
            name: "relay",
            about: "stomp.py portable suite through stompkit-broker --upstream to a throwaway RabbitMQ",
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

/// Runs the tests, echoing the runner's output and totalling its `test result:` lines.
fn test_step() -> Result<String> {
    let mut totals = TestTotals::default();
    let result = cmd::run_tee(&mut cmd::cargo(&["test", "--workspace"]), |line| {
        totals.add_line(line)
    });
    let note = totals.to_string();
    println!("tests: {note}");
    result.map(|()| note)
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
struct Outcome {
    name: &'static str,
    time: Duration,
    ok: bool,
    note: String,
}

/// `cargo xtask ci`.
pub fn run(args: &CiArgs) -> Result<()> {
    let all = steps();
    if args.list {
        for step in &all {
            println!("{:<8} {}", step.name, step.about);
        }
        return Ok(());
    }
    for name in args.skip.iter().chain(&args.only) {
        if !all.iter().any(|step| step.name == name) {
            let names: Vec<&str> = all.iter().map(|step| step.name).collect();
            bail!("no CI step named {name:?}; steps: {}", names.join(", "));
        }
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
        let result = (step.run)(&context);
        let time = step_started.elapsed();
        let (ok, note) = match result {
            Ok(note) => (true, note),
            Err(error) => (false, format!("{error:#}")),
        };
        println!(
            "<== ci step `{}` {} in {}",
            step.name,
            if ok { "ok" } else { "FAILED" },
            seconds(time)
        );
        outcomes.push(Outcome {
            name: step.name,
            time,
            ok,
            note,
        });
        if !ok {
            break;
        }
    }
    summary(&outcomes, chosen.len(), started.elapsed());
    match outcomes.iter().find(|outcome| !outcome.ok) {
        Some(failed) => bail!("ci step `{}` failed: {}", failed.name, failed.note),
        None => Ok(()),
    }
}

/// Prints the summary table.
fn summary(outcomes: &[Outcome], planned: usize, total: Duration) {
    println!("\nci summary");
    println!("{:<8} {:>9}  {:<6} note", "step", "time", "result");
    for outcome in outcomes {
        println!(
            "{:<8} {:>9}  {:<6} {}",
            outcome.name,
            seconds(outcome.time),
            if outcome.ok { "ok" } else { "FAILED" },
            outcome.note
        );
    }
    let skipped = planned - outcomes.len();
    let verdict = if outcomes.iter().all(|outcome| outcome.ok) {
        "ok"
    } else {
        "FAILED"
    };
    println!("{:<8} {:>9}  {verdict:<6}", "total", seconds(total));
    if skipped > 0 {
        println!("({skipped} later steps not run)");
    }
    flush();
}

/// A duration as seconds with one decimal.
fn seconds(time: Duration) -> String {
    format!("{:.1}s", time.as_secs_f64())
}

fn flush() {
    let _ = std::io::stdout().flush();
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
    fn step_names_are_unique() {
        let steps = steps();
        for (i, step) in steps.iter().enumerate() {
            assert!(steps[i + 1..].iter().all(|other| other.name != step.name));
        }
    }
}
