//! Generated blocks of `README.md`: the text between `<!-- NAME:start -->` and
//! `<!-- NAME:end -->` belongs to the tool that measured it and is replaced whole
//! on every run; the rest of the README is the lead's and is never touched.

use anyhow::{Context, Result, bail};
use std::path::Path;

/// Replaces the block `name` of the README at `root` with `text`.
pub fn fill(root: &Path, name: &str, text: &str) -> Result<()> {
    let path = root.join("README.md");
    let readme =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let filled = replace_block(&readme, name, text)?;
    std::fs::write(&path, filled).with_context(|| format!("writing {}", path.display()))
}

/// `readme` with the lines between the `name` markers replaced by `text`.
fn replace_block(readme: &str, name: &str, text: &str) -> Result<String> {
    let start = format!("<!-- {name}:start -->");
    let end = format!("<!-- {name}:end -->");
    replace_between(readme, &start, &end, text)
}

/// `readme` with the text between the marker lines `start` and `end` replaced by `text`.
pub fn replace_between(readme: &str, start: &str, end: &str, text: &str) -> Result<String> {
    let (Some(open), Some(close)) = (readme.find(start), readme.find(end)) else {
        bail!("README.md has no {start} ... {end} block");
    };
    if close < open {
        bail!("README.md: {end} comes before {start}");
    }
    let before = &readme[..open + start.len()];
    let after = &readme[close..];
    Ok(format!("{before}\n{}\n{after}", text.trim_end()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_the_block_is_replaced() {
        let readme = "# T\n<!-- x:start -->\nold\n<!-- x:end -->\ntail\n";
        let filled = replace_block(readme, "x", "new\ntable\n").unwrap();
        assert_eq!(
            filled,
            "# T\n<!-- x:start -->\nnew\ntable\n<!-- x:end -->\ntail\n"
        );
        // Filling again gives the same text.
        assert_eq!(replace_block(&filled, "x", "new\ntable").unwrap(), filled);
    }

    #[test]
    fn missing_or_swapped_markers_are_errors() {
        assert!(replace_block("no markers", "x", "t").is_err());
        assert!(replace_block("<!-- x:end --><!-- x:start -->", "x", "t").is_err());
    }
}
