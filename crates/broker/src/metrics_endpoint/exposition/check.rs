//! A strict reader of the Prometheus text format (version 0.0.4), for tests of
//! `/metrics`: it refuses what Prometheus would refuse and what our naming
//! rules forbid, and hands back the families to look values up in.
//!
//! Checked: `# HELP`/`# TYPE` lines (at most one each per family, TYPE before
//! the family's samples), every sample belonging to a declared family by its
//! type's suffixes (`_bucket`/`_sum`/`_count` for histograms, none for
//! counters and gauges), a family's lines all together, metric and label
//! names, label value escapes, no duplicate label or series, values that
//! parse, counters at least 0, histograms cumulative with `+Inf` equal to
//! `_count`, `_total` on counters and only on counters, and a final newline.
//! A test-only module of `metrics_endpoint/exposition.rs`, and included by the
//! integration test `tests/metrics.rs` against the binary.
#![allow(dead_code)] // Each user reads its own part.

use std::collections::{BTreeMap, BTreeSet};

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Its metric name (the family's, or with a histogram suffix).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// One metric family.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Family {
    /// `counter`, `gauge`, `histogram`, `summary` or `untyped`.
    pub kind: String,
    /// Its help text (unescaped).
    pub help: Option<String>,
    /// Its samples, in order.
    pub samples: Vec<Sample>,
}

/// A whole exposition, by family name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    /// The families.
    pub families: BTreeMap<String, Family>,
}

impl Exposition {
    /// The value of the sample `name` with exactly `labels`, if present.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.families
            .values()
            .flat_map(|f| &f.samples)
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// The family `name`'s type, if declared.
    pub fn kind(&self, name: &str) -> Option<&str> {
        self.families.get(name).map(|f| f.kind.as_str())
    }
}

/// Parses `text`, or says which line breaks which rule.
pub fn parse(text: &str) -> Result<Exposition, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the text does not end with a newline".into());
    }
    let mut reader = Reader::default();
    for (i, line) in text.lines().enumerate() {
        reader
            .line(line)
            .map_err(|e| format!("line {}: {e}: {line:?}", i + 1))?;
    }
    for (name, family) in &reader.out.families {
        check_family(name, family).map_err(|e| format!("family {name}: {e}"))?;
    }
    Ok(reader.out)
}

#[derive(Default)]
struct Reader {
    out: Exposition,
    /// The family whose lines are being read.
    current: Option<String>,
    /// Families whose lines are over.
    done: BTreeSet<String>,
    /// Series seen (name and labels).
    series: BTreeSet<(String, Vec<(String, String)>)>,
}

impl Reader {
    fn line(&mut self, line: &str) -> Result<(), String> {
        if line.is_empty() {
            return Err("empty line".into());
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let family = self.enter(name)?;
            if family.help.replace(unescape(help, false)?).is_some() {
                return Err("a second HELP".into());
            }
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest
                .split_once(' ')
                .ok_or_else(|| "TYPE without a type".to_owned())?;
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(format!("unknown type {kind}"));
            }
            let family = self.enter(name)?;
            if !family.kind.is_empty() {
                return Err("a second TYPE".into());
            }
            if !family.samples.is_empty() {
                return Err("TYPE after samples".into());
            }
            family.kind = kind.to_owned();
            return Ok(());
        }
        if line.starts_with('#') {
            return Ok(());
        }
        self.sample(line)
    }

    /// Makes `name` the current family (a family may not come back later).
    fn enter(&mut self, name: &str) -> Result<&mut Family, String> {
        check_name(name, true)?;
        if self.current.as_deref() != Some(name) {
            if self.done.contains(name) {
                return Err(format!("family {name} is split"));
            }
            if let Some(previous) = self.current.replace(name.to_owned()) {
                self.done.insert(previous);
            }
        }
        Ok(self.out.families.entry(name.to_owned()).or_default())
    }

    fn sample(&mut self, line: &str) -> Result<(), String> {
        let (name, labels, rest) = split_sample(line)?;
        let family_name = self
            .family_of(&name)
            .ok_or_else(|| format!("{name} belongs to no declared family"))?;
        let mut values = rest.split(' ');
        let value = parse_value(values.next().unwrap_or(""))?;
        if let Some(ts) = values.next() {
            ts.parse::<i64>()
                .map_err(|_| format!("bad timestamp {ts}"))?;
        }
        if values.next().is_some() {
            return Err("text after the timestamp".into());
        }
        let key = (name.clone(), labels.clone().into_iter().collect());
        if !self.series.insert(key) {
            return Err("a duplicate series".into());
        }
        let family = self.enter(&family_name)?;
        family.samples.push(Sample {
            name,
            labels,
            value,
        });
        Ok(())
    }

    /// The declared family a sample named `name` belongs to.
    fn family_of(&self, name: &str) -> Option<String> {
        let declared = |f: &str| self.out.families.get(f).filter(|f| !f.kind.is_empty());
        if let Some(f) = declared(name)
            && f.kind != "histogram"
        {
            return Some(name.to_owned());
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix)
                && let Some(f) = declared(base)
                && (f.kind == "histogram" || (f.kind == "summary" && suffix != "_bucket"))
            {
                return Some(base.to_owned());
            }
        }
        None
    }
}

/// A sample line's name, labels and what follows them.
fn split_sample(line: &str) -> Result<(String, BTreeMap<String, String>, &str), String> {
    let end = line
        .find(['{', ' '])
        .ok_or_else(|| "a sample without a value".to_owned())?;
    let name = &line[..end];
    check_name(name, true)?;
    let mut labels = BTreeMap::new();
    let mut rest = &line[end..];
    if let Some(inner) = rest.strip_prefix('{') {
        rest = read_labels(inner, &mut labels)?;
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| "no space before the value".to_owned())?;
    Ok((name.to_owned(), labels, rest))
}

/// Reads `name="value",…}`; returns what follows the `}`.
fn read_labels<'a>(
    mut text: &'a str,
    labels: &mut BTreeMap<String, String>,
) -> Result<&'a str, String> {
    loop {
        if let Some(rest) = text.strip_prefix('}') {
            return Ok(rest);
        }
        let (name, rest) = text
            .split_once("=\"")
            .ok_or_else(|| "a label without =\"".to_owned())?;
        check_name(name, false)?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err("an unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err("a bad escape in a label value".into()),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        text = &rest[close + 1..];
        if let Some(more) = text.strip_prefix(',') {
            text = more;
        } else if !text.starts_with('}') {
            return Err("labels not separated by ,".into());
        }
    }
}

/// A metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or a label name (no `:`, not `__…`).
fn check_name(name: &str, metric: bool) -> Result<(), String> {
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (metric && c == ':');
    let ok = |c: char| ok_first(c) || c.is_ascii_digit();
    let mut chars = name.chars();
    let good = chars.next().is_some_and(ok_first) && chars.all(ok);
    if !good || (!metric && name.starts_with("__")) {
        return Err(format!("bad name {name:?}"));
    }
    Ok(())
}

/// A sample value: a float, `+Inf`, `-Inf` or `NaN`.
fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text.parse().map_err(|_| format!("bad value {text:?}")),
    }
}

/// A HELP text's escapes (`\\`, `\n`).
fn unescape(text: &str, quotes: bool) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quotes => out.push('"'),
            _ => return Err("a bad escape in HELP".into()),
        }
    }
    Ok(out)
}

/// The rules on a whole family: its type, naming and values.
fn check_family(name: &str, family: &Family) -> Result<(), String> {
    if family.kind.is_empty() {
        return Err("no TYPE".into());
    }
    if (family.kind == "counter") != name.ends_with("_total") {
        return Err("_total is for counters, and counters only".into());
    }
    if family.kind == "counter"
        && family
            .samples
            .iter()
            .any(|s| s.value < 0.0 || s.value.is_nan())
    {
        return Err("a counter below 0".into());
    }
    if family.kind == "histogram" {
        check_histogram(name, family)?;
    }
    Ok(())
}

/// Buckets cumulative, ending with `+Inf` equal to `_count`.
fn check_histogram(name: &str, family: &Family) -> Result<(), String> {
    let bucket = format!("{name}_bucket");
    let mut last = (f64::NEG_INFINITY, 0.0);
    for s in family.samples.iter().filter(|s| s.name == bucket) {
        let le = s
            .labels
            .get("le")
            .ok_or_else(|| "a bucket without le".to_owned())
            .and_then(|le| parse_value(le))?;
        if le <= last.0 || s.value < last.1 {
            return Err("buckets not cumulative".into());
        }
        last = (le, s.value);
    }
    let count = family
        .samples
        .iter()
        .find(|s| s.name == format!("{name}_count"))
        .ok_or_else(|| "no _count".to_owned())?;
    if last.0 != f64::INFINITY || last.1 != count.value {
        return Err("the +Inf bucket is missing or differs from _count".into());
    }
    Ok(())
}

/// The checks refuse what they should (run by every test file that includes
/// this one, and by the unit tests).
pub fn self_check() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{reason=\"x\\\"y\"} 1\n\
                # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
    let parsed = parse(good).unwrap();
    assert_eq!(parsed.value("a_total", &[("reason", "x\"y")]), Some(1.0));
    assert_eq!(parsed.kind("h"), Some("histogram"));
    for bad in [
        "a_total 1\n",                                           // no family
        "# TYPE a counter\na 1\n",                               // counter without _total
        "# TYPE a_total gauge\na_total 1\n",                     // _total on a gauge
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",       // split family
        "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n",                // label twice
        "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",          // duplicate series
        "# TYPE a gauge\na one\n",                               // bad value
        "# TYPE a gauge\na{x=\"\\t\"} 1\n",                      // bad escape
        "# TYPE a gauge\na 1",                                   // no final newline
        "# TYPE a gauge\n# TYPE a counter\n",                    // two types
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n", // no +Inf
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# TYPE a_total counter\na_total -1\n", // negative counter
        "# TYPE 1a gauge\n",                    // bad name
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
