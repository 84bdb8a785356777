//! Turns criterion's results (`target/criterion/<group>/<bench>/new/estimates.json`) into the
//! tables of BENCHMARKS.md: per group, the median time of each benchmark and its ratio to the
//! group's `baseline_*` benchmark, all from the same run.

use std::fs;
use std::path::Path;

const START: &str = "<!-- bench-tables:start -->";
const END: &str = "<!-- bench-tables:end -->";

pub fn update(criterion_dir: &str, doc: &str) -> Result<(), String> {
    let tables = render(Path::new(criterion_dir))?;
    let text = fs::read_to_string(doc).map_err(|e| format!("cannot read {doc}: {e}"))?;
    let (Some(a), Some(b)) = (text.find(START), text.find(END)) else {
        return Err(format!("{doc} has no {START} … {END} section"));
    };
    let updated = format!("{}{START}\n{tables}{}", &text[..a], &text[b..]);
    fs::write(doc, updated).map_err(|e| format!("cannot write {doc}: {e}"))?;
    eprintln!("xtask: bench: tables of {doc} updated");
    print!("{tables}");
    Ok(())
}

fn render(dir: &Path) -> Result<String, String> {
    let mut groups: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("no benchmark results in {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir() && e.file_name() != "report")
        .collect();
    groups.sort_by_key(|e| e.file_name());
    let mut out = String::new();
    for group in groups {
        let mut rows: Vec<(String, f64)> = fs::read_dir(group.path())
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .filter_map(|b| {
                let est = fs::read_to_string(b.path().join("new/estimates.json")).ok()?;
                Some((
                    b.file_name().to_string_lossy().into_owned(),
                    median_ns(&est)?,
                ))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        rows.sort_by(|a, b| {
            (!a.0.starts_with("baseline"), &a.0).cmp(&(!b.0.starts_with("baseline"), &b.0))
        });
        let base = rows
            .iter()
            .find(|(n, _)| n.starts_with("baseline"))
            .map(|(_, t)| *t);
        out.push_str(&format!(
            "\n**{}**\n\n| benchmark | median | ratio to baseline | overhead |\n|---|---:|---:|---:|\n",
            group.file_name().to_string_lossy()
        ));
        for (name, t) in rows {
            let (ratio, over) = match base {
                Some(b) if b > 0.0 => (format!("{:.2}×", t / b), signed(t - b)),
                _ => ("–".into(), "–".into()),
            };
            out.push_str(&format!("| {name} | {} | {ratio} | {over} |\n", human(t)));
        }
    }
    out.push('\n');
    Ok(out)
}

/// The median point estimate, in nanoseconds, from criterion's estimates.json (parsed by
/// hand: xtask has no dependencies).
fn median_ns(json: &str) -> Option<f64> {
    let after = &json[json.find("\"median\"")?..];
    let after = &after[after.find("\"point_estimate\"")? + "\"point_estimate\"".len()..];
    let after = after.trim_start().strip_prefix(':')?.trim_start();
    let end = after.find([',', '}'])?;
    after[..end].trim().parse().ok()
}

/// A difference with its sign: `+83.0 ns`, `-16.02 µs`.
fn signed(ns: f64) -> String {
    let sign = if ns < 0.0 { '-' } else { '+' };
    format!("{sign}{}", human(ns.abs()))
}

fn human(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_criterion_estimates() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,"upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":40.1,"upper_bound":41.0},"point_estimate":40.5,"standard_error":0.2}}"#;
        assert_eq!(median_ns(json), Some(40.5));
        assert_eq!(median_ns("{}"), None);
    }

    #[test]
    fn human_units() {
        assert_eq!(human(12.34), "12.3 ns");
        assert_eq!(human(1_500.0), "1.50 µs");
        assert_eq!(human(2_500_000.0), "2.50 ms");
        assert_eq!(signed(-16_021.0), "-16.02 µs");
        assert_eq!(signed(83.0), "+83.0 ns");
    }
}
