//! Cargo plugins CI needs, pinned, and installed on first use.
//!
//! Owns the pinned versions of `cargo-deny` and `cargo-fuzz`. A missing tool is
//! installed with `cargo install --locked --version <pin>`; an installed tool of
//! another version is used as it is, with a note (a developer's own install is
//! not replaced behind their back).

use crate::cmd;
use anyhow::{Context, Result};

/// A cargo plugin at a pinned version.
pub struct Tool {
    /// The crate and binary name, e.g. `cargo-deny`.
    pub name: &'static str,
    /// The subcommand as typed after `cargo`, e.g. `deny`.
    pub subcommand: &'static str,
    /// The version CI installs.
    pub version: &'static str,
}

/// cargo-deny: licenses, bans, sources (0.20.2 needs rustc 1.88+).
pub const CARGO_DENY: Tool = Tool {
    name: "cargo-deny",
    subcommand: "deny",
    version: "0.20.2",
};

/// cargo-fuzz: builds and runs the libFuzzer targets in `fuzz/`.
pub const CARGO_FUZZ: Tool = Tool {
    name: "cargo-fuzz",
    subcommand: "fuzz",
    version: "0.13.2",
};

/// Every tool `cargo xtask ci` needs.
pub const ALL: [Tool; 2] = [CARGO_DENY, CARGO_FUZZ];

impl Tool {
    /// The installed version's `--version` line, if the tool is installed.
    fn installed(&self) -> Option<String> {
        let out = cmd::output(&mut cmd::cargo(&[self.subcommand, "--version"]))?;
        Some(out.trim().to_string())
    }

    /// Installs the pinned version if the tool is missing. Returns what was done.
    pub fn ensure(&self) -> Result<String> {
        if let Some(line) = self.installed() {
            if line.split_whitespace().any(|word| word == self.version) {
                return Ok(format!("{} {} present", self.name, self.version));
            }
            println!(
                "note: using installed {line:?}; CI pins {} {}",
                self.name, self.version
            );
            return Ok(format!("{line} present (pin {})", self.version));
        }
        println!("{} not found: installing {}", self.name, self.version);
        cmd::run(&mut cmd::cargo(&[
            "install",
            "--locked",
            "--version",
            self.version,
            self.name,
        ]))
        .with_context(|| format!("installing {} {}", self.name, self.version))?;
        Ok(format!("installed {} {}", self.name, self.version))
    }
}
