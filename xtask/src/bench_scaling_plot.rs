//! The PNG of one store's scaling sweep (`docs/bench/<store>.png`): four panels — throughput
//! and p99 latency against the number of concurrent tasks (1 KiB values), and against the
//! value size (16 tasks) — each with a get and a put line, on log scales.
//!
//! Text is drawn with plotters' `ab_glyph` backend from DejaVu Sans, compiled into xtask from
//! `docs/bench/DejaVuSans.ttf` (its license is next to it): no system font, fontconfig or
//! freetype is needed, so the plots render the same on a fresh machine.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::bench_scaling::data::{Sample, StoreRun, latency_text, rate_text, size_text};

/// The font every text of the plots is drawn with.
const FONT: &[u8] = include_bytes!("../../docs/bench/DejaVuSans.ttf");

const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1000;

/// Colors of the two operation kinds (colour-blind safe blue and orange).
const GET: RGBColor = RGBColor(0, 114, 178);
const PUT: RGBColor = RGBColor(230, 159, 0);

/// One panel: which axis varies, which number is plotted.
struct Panel<'a> {
    title: String,
    /// The x positions' labels; point `i` is drawn at x = i.
    labels: Vec<String>,
    /// `(concurrency, value_size)` of point `i`.
    points: Vec<(u64, u64)>,
    y_desc: &'a str,
    value: fn(&Sample) -> f64,
    format: fn(f64) -> String,
}

/// Registers the font under plotters' `sans-serif` family, once.
fn register_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| "docs/bench/DejaVuSans.ttf is not a font plotters can read".to_owned())
    })
    .clone()
}

/// Draws `run` into `path` (PNG). `concurrency` and `sizes` are the sweep's points; `size`
/// is the value size of the concurrency sweep and `tasks` the concurrency of the size sweep.
pub fn render(
    run: &StoreRun,
    path: &Path,
    concurrency: &[u64],
    sizes: &[u64],
    size: u64,
    tasks: u64,
) -> Result<(), String> {
    register_font()?;
    let fail = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let (head, body) = root.split_vertically(56);
    let title = format!(
        "kv scaling: {} — {} ({}, load {})",
        run.store,
        run.date,
        run.mode,
        run.load.split(" -> ").next().unwrap_or("?")
    );
    head.draw(&Text::new(
        title,
        (24, 16),
        ("sans-serif", 26).into_font().color(&BLACK),
    ))
    .map_err(|e| fail(&e))?;
    // One legend for the four panels, top right, where it hides no point.
    for (i, (op, color)) in [("get", GET), ("put", PUT)].into_iter().enumerate() {
        let x = WIDTH as i32 - 190 + 90 * i as i32;
        head.draw(&PathElement::new(
            [(x, 30), (x + 28, 30)],
            color.stroke_width(4),
        ))
        .map_err(|e| fail(&e))?;
        head.draw(&Text::new(
            op,
            (x + 36, 19),
            ("sans-serif", 22).into_font().color(&BLACK),
        ))
        .map_err(|e| fail(&e))?;
    }
    let by_tasks = |y_desc, value, format, what: &str| Panel {
        title: format!("{what} vs concurrent tasks ({} values)", size_text(size)),
        labels: concurrency.iter().map(u64::to_string).collect(),
        points: concurrency.iter().map(|&c| (c, size)).collect(),
        y_desc,
        value,
        format,
    };
    let by_size = |y_desc, value, format, what: &str| Panel {
        title: format!("{what} vs value size ({tasks} tasks)"),
        labels: sizes.iter().map(|&s| size_text(s)).collect(),
        points: sizes.iter().map(|&s| (tasks, s)).collect(),
        y_desc,
        value,
        format,
    };
    let throughput = |s: &Sample| s.ops_per_sec;
    let p99 = |s: &Sample| s.p99_us;
    let panels = [
        by_tasks("ops/s", throughput, rate_text, "Throughput"),
        by_tasks("p99 latency", p99, latency_text, "p99 latency"),
        by_size("ops/s", throughput, rate_text, "Throughput"),
        by_size("p99 latency", p99, latency_text, "p99 latency"),
    ];
    for (area, panel) in body.split_evenly((2, 2)).iter().zip(&panels) {
        draw_panel(area, run, panel).map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}

/// One line of a panel: operation kind, colour, (x, y) points.
type Series = (&'static str, RGBColor, Vec<(f64, f64)>);
type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult =
    Result<(), DrawingAreaErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

fn draw_panel(area: &Area<'_>, run: &StoreRun, panel: &Panel<'_>) -> DrawResult {
    let series: Vec<Series> = [("get", GET), ("put", PUT)]
        .into_iter()
        .map(|(op, color)| {
            let pts = panel
                .points
                .iter()
                .enumerate()
                .filter_map(|(i, &(c, s))| {
                    let v = (panel.value)(run.sample(op, c, s)?);
                    (v > 0.0).then_some((i as f64, v))
                })
                .collect();
            (op, color, pts)
        })
        .collect();
    let (lo, hi) = decades(
        series
            .iter()
            .flat_map(|(_, _, p)| p.iter().map(|&(_, y)| y)),
    );
    let last = panel.labels.len().saturating_sub(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.3..last + 0.3, (lo..hi).log_scale())?;
    let labels = panel.labels.clone();
    let x_label = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 {
            labels.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let y_label = |y: &f64| trim_zeros(&(panel.format)(*y));
    chart
        .configure_mesh()
        .x_labels(panel.labels.len() + 1)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .y_desc(panel.y_desc)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let mut any = false;
    for (_, color, pts) in series {
        if pts.is_empty() {
            continue;
        }
        any = true;
        chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))?;
    }
    if !any {
        let (w, h) = area.dim_in_pixel();
        area.draw(&Text::new(
            "no results",
            (w as i32 / 2 - 40, h as i32 / 2),
            ("sans-serif", 18).into_font().color(&RED),
        ))?;
    }
    Ok(())
}

/// An axis label without the zeros that only matter in a table: `100.0 k` → `100 k`,
/// `1.00 M` → `1 M`, `2.5 ms` stays.
fn trim_zeros(label: &str) -> String {
    let (number, unit) = label.split_once(' ').unwrap_or((label, ""));
    let number = if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    };
    if unit.is_empty() {
        number.to_owned()
    } else {
        format!("{number} {unit}")
    }
}

/// A log axis range of whole decades around the values (plotters labels a log axis at
/// powers of ten: a range inside one decade would have no label at all).
fn decades(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi <= 0.0 {
        return (1.0, 10.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    // A hair wider, so rounding cannot drop the labels at both ends.
    (lo * 0.999, hi * 1.001)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_drop_useless_zeros() {
        assert_eq!(trim_zeros("100.0 k"), "100 k");
        assert_eq!(trim_zeros("1.00 M"), "1 M");
        assert_eq!(trim_zeros("2.5 ms"), "2.5 ms");
        assert_eq!(trim_zeros("100"), "100");
        assert_eq!(trim_zeros("10 µs"), "10 µs");
    }

    #[test]
    fn ranges_cover_whole_decades() {
        let close = |(a, b): (f64, f64), (x, y): (f64, f64)| {
            assert!(
                (a / x - 1.0).abs() < 0.01 && (b / y - 1.0).abs() < 0.01,
                "{a} {b}"
            );
            assert!(a < x && b > y, "{a} {b}");
        };
        close(
            decades([30_000.0, 90_000.0].into_iter()),
            (10_000.0, 100_000.0),
        );
        close(decades([100.0].into_iter()), (100.0, 1_000.0));
        close(decades([0.5, 2_000.0].into_iter()), (0.1, 10_000.0));
        assert_eq!(decades([0.0, f64::NAN].into_iter()), (1.0, 10.0));
    }

    #[test]
    fn renders_a_png_with_and_without_results() {
        let dir = std::env::temp_dir().join(format!("kv-scaling-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut run = StoreRun {
            store: "memory".to_owned(),
            date: "2026-11-30 08:40 UTC".to_owned(),
            machine: "test".to_owned(),
            load: "1.00 0.50 0.20 -> 1.00 0.50 0.20".to_owned(),
            mode: "quick".to_owned(),
            samples: Vec::new(),
        };
        for (i, c) in [1u64, 4, 16].into_iter().enumerate() {
            for op in ["get", "put"] {
                run.samples.push(Sample {
                    op: op.to_owned(),
                    concurrency: c,
                    value_size: 1024,
                    ops: 1000,
                    ops_per_sec: 1000.0 * (i + 1) as f64,
                    p50_us: 10.0,
                    p99_us: 50.0 * (i + 1) as f64,
                    error: String::new(),
                });
            }
        }
        let png = dir.join("memory.png");
        render(&run, &png, &[1, 4, 16], &[100, 1024], 1024, 16).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        run.samples.clear();
        render(&run, &png, &[1, 4, 16], &[100, 1024], 1024, 16).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
