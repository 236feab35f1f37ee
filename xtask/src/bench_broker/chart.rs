//! The throughput rows as an SVG bar chart (plotters, SVG backend only).
//!
//! One horizontal bar per broker and row, on a logarithmic axis of delivered
//! messages per second (the brokers differ by orders of magnitude), the value
//! written at the end of each bar. Rows a broker did not run have no bar.

use super::rows::Sample;
use super::table::{Results, figure, si};
use anyhow::{Result, anyhow};
use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::RangedCoordusize;
use plotters::prelude::*;

/// Bar colours, one per broker column (stompkit first).
const COLOURS: [RGBColor; 4] = [
    RGBColor(0xd9, 0x4f, 0x1c),
    RGBColor(0x3b, 0x6e, 0xa8),
    RGBColor(0x6a, 0x9a, 0x3a),
    RGBColor(0x88, 0x88, 0x88),
];

/// The chart's coordinates: rows, slots per row and the log-scale x range.
type Coords = Cartesian2d<LogCoord<f64>, SegmentedCoord<RangedCoordusize>>;

/// What the chart shows: which rows, how many slots each, the x range.
struct Layout {
    /// Indexes of the throughput rows.
    rows: Vec<usize>,
    /// Broker columns (at least one).
    brokers: usize,
    /// One slot per broker and a gap slot per row.
    slots: usize,
    x_min: f64,
    x_max: f64,
}

impl Layout {
    fn of(results: &Results) -> Layout {
        let rows: Vec<usize> = (0..results.rows.len())
            .filter(|&i| results.rows[i].is_throughput())
            .collect();
        let brokers = results.columns.len().max(1);
        let values: Vec<f64> = rows
            .iter()
            .flat_map(|&r| (0..brokers).filter_map(move |c| bar_value(results, r, c)))
            .collect();
        let top = values.iter().copied().fold(1e4, f64::max);
        let low = values.iter().copied().fold(top, f64::min);
        Layout {
            rows,
            brokers,
            slots: brokers + 1,
            x_max: 10f64.powf(top.log10().ceil() + 0.3),
            x_min: 10f64.powf(low.log10().floor().min(3.0)),
        }
    }
}

/// The figure of row `row` for broker `col`, if it ran and delivered anything.
fn bar_value(results: &Results, row: usize, col: usize) -> Option<f64> {
    let samples: &[Sample] = results.samples[row].get(col)?;
    figure(samples, results.rows[row].kind).filter(|v| *v > 0.0)
}

/// The chart as SVG text.
pub fn svg(results: &Results) -> Result<String> {
    let layout = Layout::of(results);
    let (rows, brokers, slots) = (&layout.rows, layout.brokers, layout.slots);
    let height = 60 + rows.len() as u32 * (brokers as u32 * 14 + 10);
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, (900, height)).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&area)
            .caption(
                "Delivered messages per second (log scale)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(230)
            .build_cartesian_2d(
                (layout.x_min..layout.x_max).log_scale(),
                (0..rows.len() * slots).into_segmented(),
            )
            .map_err(err)?;
        let labels: Vec<&str> = rows
            .iter()
            .map(|&r| results.rows[r].label.as_str())
            .collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows.len() * slots + 1)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(slot) if slot % slots == brokers / 2 => labels
                    .get(slot / slots)
                    .map_or_else(String::new, |l| (*l).to_string()),
                _ => String::new(),
            })
            .x_label_formatter(&|v| si(*v))
            .x_desc("msg/s")
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        for col in 0..results.columns.len() {
            draw_column(&mut chart, results, &layout, col)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(err)?;
        area.present().map_err(err)?;
    }
    Ok(text)
}

/// Broker `col`'s bars, their values and its legend entry.
fn draw_column<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Coords>,
    results: &Results,
    layout: &Layout,
    col: usize,
) -> Result<()> {
    let column = &results.columns[col];
    let colour = COLOURS[col % COLOURS.len()];
    let bars: Vec<(f64, usize)> = layout
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, &r)| Some((bar_value(results, r, col)?, i * layout.slots + col)))
        .collect();
    let x_min = layout.x_min;
    chart
        .draw_series(bars.iter().map(|&(v, slot)| {
            Rectangle::new(
                [
                    (x_min, SegmentValue::Exact(slot)),
                    (v, SegmentValue::Exact(slot + 1)),
                ],
                colour.filled(),
            )
        }))
        .map_err(err)?
        .label(format!("{} {}", column.name, column.version))
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    chart
        .draw_series(bars.iter().map(|&(v, slot)| {
            Text::new(
                format!(" {}", si(v)),
                (v, SegmentValue::Exact(slot)),
                ("sans-serif", 11).into_font(),
            )
        }))
        .map_err(err)?;
    Ok(())
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the chart: {e}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::rows::rows;
    use super::super::table::Column;
    use super::*;

    #[test]
    fn one_bar_per_broker_and_throughput_row() {
        let all = rows(100);
        let n = all.len();
        let load = |per_sec| Sample::Load {
            per_sec,
            published: 1,
            delivered: 1,
            expected: 1,
            p50_us: 1.0,
            p99_us: 1.0,
            publish_per_sec: 1.0,
        };
        let samples = (0..n)
            .map(|i| vec![vec![load(1e6 + i as f64)], vec![load(2e4)]])
            .collect();
        let results = Results {
            columns: vec![
                Column {
                    name: "stompkit".into(),
                    version: "0.1.0".into(),
                },
                Column {
                    name: "RabbitMQ".into(),
                    version: "3.10".into(),
                },
            ],
            rows: all,
            samples,
            preamble: vec![],
            durable_preamble: vec![],
            fsync: None,
        };
        let svg = svg(&results).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        // 16 throughput rows x 2 brokers, plus the legend's two swatches.
        assert!(svg.matches("<rect").count() >= 32 + 2);
        assert!(svg.contains("topic 1→100, 20 B"));
        assert!(svg.contains("RabbitMQ 3.10"));
        assert!(svg.contains(" 20.0k"));
    }
}
