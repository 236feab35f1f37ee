//! `cargo xtask ci` step `paths`: nothing in the repository may refer to a
//! path outside it, so a clone with nothing beside it is complete.
//!
//! Owns the rule and its scan: every file git tracks (text files only) is read,
//! and each relative path made of `../` steps is resolved from the directory of
//! the file that names it (for Rust code, from its package's directory, which
//! is what `CARGO_MANIFEST_DIR` and a test's working directory are); one that
//! climbs above the repository root is reported, as is an absolute path into a build machine's home or work
//! directories (`/work/`, `/home/`, `/root/`, `/Users/`). System paths such as
//! `/usr/bin/chromium` or `/etc/ssl/certs` are fine. This file itself is not
//! scanned: its tests must spell out what they look for.

use crate::cmd;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// Absolute path prefixes that name a machine's home or work directories.
const MACHINE_DIRS: [&str; 4] = ["/work/", "/home/", "/root/", "/Users/"];
/// This file, relative to the root (skipped: its tests contain the patterns).
const SELF: &str = "xtask/src/paths.rs";

/// One reference to a path outside the repository.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    /// The file, relative to the repository root.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// The offending path as written.
    pub path: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}` is outside the repository",
            self.file, self.line, self.path
        )
    }
}

/// Runs the check over the files git tracks; fails listing every finding.
pub fn check() -> Result<String> {
    let root = cmd::root();
    let listing = cmd::output(Command::new("git").arg("ls-files").current_dir(&root))
        .context("`git ls-files` failed: the paths check needs a git checkout")?;
    let mut files = 0;
    let mut findings = Vec::new();
    for file in listing.lines().filter(|file| *file != SELF) {
        let Ok(bytes) = std::fs::read(root.join(file)) else {
            continue; // listed but deleted in the work tree
        };
        let Ok(text) = String::from_utf8(bytes) else {
            continue; // binary data (captures, images)
        };
        files += 1;
        findings.extend(scan(file, base_depth(&root, file), &text));
    }
    if !findings.is_empty() {
        for finding in &findings {
            println!("{finding}");
        }
        bail!(
            "{} reference(s) to paths outside the repository",
            findings.len()
        );
    }
    Ok(format!("{files} files, no path outside the repository"))
}

/// How many directories below the root relative paths in `file` start from:
/// its package's directory for Rust code, its own directory otherwise.
fn base_depth(root: &Path, file: &str) -> usize {
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let base = if file.ends_with(".rs") {
        dir.ancestors()
            .find(|dir| root.join(dir).join("Cargo.toml").exists())
            .unwrap_or(dir)
    } else {
        dir
    };
    base.components().count()
}

/// The references to paths outside the repository in `text`, the contents of
/// `file`, whose relative paths start `depth` directories below the root.
pub fn scan(file: &str, depth: usize, text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut found = |path: &str| {
            findings.push(Finding {
                file: file.to_owned(),
                line: index + 1,
                path: path.to_owned(),
            });
        };
        for (at, _) in line.match_indices("../") {
            let before = line[..at].chars().next_back();
            if before.is_some_and(|c| c == '.' || c == '/') {
                continue; // inside a longer run, counted from its start
            }
            let path = path_at(&line[at..]);
            let ups = path.matches("../").count();
            let climbs = path.starts_with(&"../".repeat(ups)) && ups > depth;
            if climbs {
                found(path);
            }
        }
        for dir in MACHINE_DIRS {
            for (at, _) in line.match_indices(dir) {
                let before = line[..at].chars().next_back();
                if before.is_none_or(|c| !(c.is_alphanumeric() || "_.~-/".contains(c))) {
                    found(path_at(&line[at..]));
                }
            }
        }
    }
    findings
}

/// The path that starts `text`: up to the first character that cannot be in one.
fn path_at(text: &str) -> &str {
    let end = text
        .find(|c: char| c.is_whitespace() || "\"'`()<>[]{},;|*".contains(c))
        .unwrap_or(text.len());
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Findings in `text` of `file`, relative paths taken from the file's directory.
    fn paths(file: &str, text: &str) -> Vec<String> {
        let depth = file.matches('/').count();
        scan(file, depth, text)
            .into_iter()
            .map(|f| f.path)
            .collect()
    }

    #[test]
    fn a_climb_above_the_root_is_found() {
        // Built at run time, so this file names no such path itself.
        let outside = format!("{}beside/spec/captures", "../".repeat(3));
        let text = format!("let dir = manifest.join(\"{outside}\");");
        let found = scan("crates/wire/tests/captures.rs", 2, &text);
        assert_eq!(found[0].path, outside);
        assert!(scan("crates/wire/tests/captures.rs", 3, &text).is_empty());
        let rules = format!("{}beside/spec/RULES.md", "../");
        assert_eq!(paths("README.md", &format!("see `{rules}`")), [rules]);
    }

    #[test]
    fn rust_code_counts_from_its_package() -> Result<()> {
        let root = cmd::root();
        assert_eq!(base_depth(&root, "crates/wire/tests/captures.rs"), 2);
        assert_eq!(base_depth(&root, "xtask/src/ci.rs"), 1);
        assert_eq!(base_depth(&root, "crates/wire/tests/captures/README.md"), 4);
        Ok(())
    }

    #[test]
    fn paths_inside_the_repository_are_fine() {
        assert!(
            paths(
                "crates/broker/tests/relay.rs",
                r#"#[path = "../../../xtask/src/a.rs"]"#
            )
            .is_empty()
        );
        assert!(
            paths(
                "crates/broker/src/http.rs",
                r#"include_bytes!("../assets/chat.js")"#
            )
            .is_empty()
        );
        assert!(paths("fuzz/Cargo.toml", r#"path = "../crates/wire""#).is_empty());
        assert!(paths("a/b/c.md", "…/x and ./y and a../b").is_empty());
    }

    #[test]
    fn machine_directories_are_found_system_paths_are_not() {
        assert_eq!(
            paths(
                "fuzz/README.md",
                "Seeds from `/work/shared/spec/captures/`."
            ),
            ["/work/shared/spec/captures/"]
        );
        assert_eq!(paths("x.sh", "cd /home/me/src"), ["/home/me/src"]);
        assert!(
            paths(
                "x.rs",
                r#"const C: &str = "/usr/bin/chromium"; // /etc/ssl/certs"#
            )
            .is_empty()
        );
        assert!(paths("x.md", "~/work/ and crates/work/x and https://h/root/x").is_empty());
    }

    #[test]
    fn findings_name_file_and_line() {
        let found = scan("docs/a.md", 1, "fine\nsee ../../out\n");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].to_string(),
            "docs/a.md:2: `../../out` is outside the repository"
        );
    }
}
