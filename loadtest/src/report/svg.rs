//! Hand-written SVG line and scatter charts with axes, ticks, a legend and threshold lines:
//! enough for the report, with no dependency and no external resource.

use std::fmt::Write as _;

const WIDTH: f64 = 940.0;
const HEIGHT: f64 = 330.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 52.0;
const BOTTOM: f64 = 48.0;

/// Colours that stay apart for the usual colour-vision deficiencies.
pub const PALETTE: [&str; 8] = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000", "#999999"];

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: String,
    pub points: Vec<(f64, f64)>,
    /// Draw a line through the points.
    pub line: bool,
    /// Draw a dot on each point.
    pub markers: bool,
    pub dashed: bool,
}

impl Series {
    pub fn line(name: impl Into<String>, color: &str, points: Vec<(f64, f64)>) -> Self {
        Self { name: name.into(), color: color.to_owned(), points, line: true, markers: false, dashed: false }
    }

    pub fn dashed(mut self) -> Self {
        self.dashed = true;
        self
    }

    pub fn with_markers(mut self) -> Self {
        self.markers = true;
        self
    }

    pub fn markers_only(mut self) -> Self {
        self.line = false;
        self.markers = true;
        self
    }
}

#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Horizontal threshold lines: value and label.
    pub thresholds: Vec<(f64, String)>,
    /// Vertical marks on the x axis (phase starts): value and label.
    pub marks: Vec<(f64, String)>,
}

impl Chart {
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>) -> Self {
        Self { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), ..Self::default() }
    }

    pub fn render(&self) -> String {
        let points = || {
            self.series.iter().flat_map(|s| s.points.iter().copied()).filter(|(x, y)| x.is_finite() && y.is_finite())
        };
        let xs: Vec<f64> = points().map(|(x, _)| x).collect();
        let mut ys: Vec<f64> = points().map(|(_, y)| y).collect();
        ys.extend(self.thresholds.iter().map(|(v, _)| *v));
        if self.log_y {
            ys.retain(|y| *y > 0.0);
        }
        let legend = legend_layout(&self.series);
        let top = TOP + LEGEND_ROW * legend.last().map_or(0.0, |(_, row)| *row as f64);
        let height = HEIGHT + top - TOP;
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(svg, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
        let _ =
            write!(svg, r#"<text x="{LEFT}" y="18" font-size="15" font-weight="bold">{}</text>"#, escape(&self.title));
        if xs.is_empty() || ys.is_empty() {
            let _ = write!(svg, r#"<text x="{LEFT}" y="{}">no data</text></svg>"#, height / 2.0);
            return svg;
        }
        let x_axis = Axis::linear(min(&xs), max(&xs), false);
        let y_axis = if self.log_y {
            Axis::log(min(&ys), max(&ys))
        } else {
            Axis::linear(0.0_f64.min(min(&ys)), max(&ys), true)
        };
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = height - top - BOTTOM;
        let px = |x: f64| LEFT + x_axis.fraction(x) * plot_w;
        let py = |y: f64| top + (1.0 - y_axis.fraction(y)) * plot_h;

        for tick in &y_axis.ticks {
            let y = py(*tick);
            let _ =
                write!(svg, r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/>"##, WIDTH - RIGHT);
            let _ =
                write!(svg, r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#, LEFT - 6.0, y + 4.0, label(*tick));
        }
        for tick in &x_axis.ticks {
            let x = px(*tick);
            let _ =
                write!(svg, r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{}" stroke="#f0f0f0"/>"##, top + plot_h);
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                top + plot_h + 16.0,
                label(*tick)
            );
        }
        let _ = write!(
            svg,
            r##"<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>"##
        );
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            height - 8.0,
            escape(&self.x_label)
        );
        let _ = write!(
            svg,
            r#"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            top + plot_h / 2.0,
            escape(&self.y_label)
        );
        for (value, name) in &self.thresholds {
            let y = py(*value);
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#d00" stroke-dasharray="6 4" stroke-width="1.5"/><text x="{}" y="{:.1}" fill="#d00" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                WIDTH - RIGHT - 4.0,
                y - 4.0,
                escape(name)
            );
        }
        for (value, name) in &self.marks {
            let x = px(*value);
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{top}" y2="{:.1}" stroke="#666" stroke-dasharray="3 3"/><text x="{:.1}" y="{:.1}" fill="#666">{}</text>"##,
                top + plot_h,
                x + 3.0,
                top + 12.0,
                escape(name)
            );
        }
        for (series, (legend_x, row)) in self.series.iter().zip(&legend) {
            let visible: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || *y > 0.0))
                .collect();
            if series.line && visible.len() > 1 {
                let path: Vec<String> = visible.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
                let dash = if series.dashed { r#" stroke-dasharray="5 4""# } else { "" };
                let _ = write!(
                    svg,
                    r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.8"{dash}/>"#,
                    path.join(" "),
                    series.color
                );
            }
            if series.markers || visible.len() == 1 {
                for (x, y) in &visible {
                    let _ = write!(
                        svg,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{}"/>"#,
                        px(*x),
                        py(*y),
                        series.color
                    );
                }
            }
            let y = 30.0 + LEGEND_ROW * *row as f64;
            let _ = write!(
                svg,
                r#"<rect x="{legend_x:.1}" y="{y}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{}">{}</text>"#,
                series.color,
                legend_x + 16.0,
                y + 10.0,
                escape(&series.name)
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

const LEGEND_ROW: f64 = 18.0;

/// Where each legend entry goes: its x and its row, wrapping at the chart's width.
fn legend_layout(series: &[Series]) -> Vec<(f64, usize)> {
    let mut x = LEFT;
    let mut row = 0;
    series
        .iter()
        .map(|s| {
            let width = 28.0 + 7.0 * s.name.chars().count() as f64;
            if x + width > WIDTH - RIGHT && x > LEFT {
                x = LEFT;
                row += 1;
            }
            let at = (x, row);
            x += width;
            at
        })
        .collect()
}

/// An axis: its range and where the ticks go.
#[derive(Debug)]
struct Axis {
    low: f64,
    high: f64,
    log: bool,
    ticks: Vec<f64>,
}

impl Axis {
    fn linear(low: f64, high: f64, from_zero: bool) -> Self {
        let (low, high) = if (high - low).abs() < 1e-12 { (low - 1.0, high + 1.0) } else { (low, high) };
        let step = nice_step((high - low) / 6.0);
        let low = if from_zero { low.min(0.0) } else { (low / step).floor() * step };
        let high = (high / step).ceil() * step;
        let ticks = (0..).map(|i| low + step * f64::from(i)).take_while(|t| *t <= high + step * 1e-9).collect();
        Self { low, high, log: false, ticks }
    }

    fn log(low: f64, high: f64) -> Self {
        let low_exp = low.max(1e-6).log10().floor() as i32;
        let high_exp = (high.max(low * 1.0001).log10().ceil() as i32).max(low_exp + 1);
        let mut ticks = Vec::new();
        for exp in low_exp..=high_exp {
            for mantissa in [1.0, 2.0, 5.0] {
                let tick = mantissa * 10f64.powi(exp);
                if tick <= 10f64.powi(high_exp) * 1.0001 {
                    ticks.push(tick);
                }
            }
        }
        Self { low: 10f64.powi(low_exp), high: 10f64.powi(high_exp), log: true, ticks }
    }

    fn fraction(&self, value: f64) -> f64 {
        let f = if self.log {
            (value.max(self.low).log10() - self.low.log10()) / (self.high.log10() - self.low.log10())
        } else {
            (value - self.low) / (self.high - self.low)
        };
        f.clamp(0.0, 1.0)
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-9);
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|s| *s >= raw).unwrap_or(10.0 * power)
}

fn label(value: f64) -> String {
    let abs = value.abs();
    if abs >= 1_000_000.0 {
        format!("{}M", trim(value / 1_000_000.0))
    } else if abs >= 10_000.0 {
        format!("{}k", trim(value / 1000.0))
    } else {
        trim(value)
    }
}

fn trim(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(13.0), 20.0);
        assert_eq!(nice_step(4200.0), 5000.0);
        let axis = Axis::log(0.3, 1200.0);
        assert_eq!(axis.low, 0.1);
        assert_eq!(axis.high, 10_000.0);
        assert!(axis.ticks.contains(&1.0) && axis.ticks.contains(&500.0));
        assert_eq!(label(25_000.0), "25k");
        assert_eq!(label(2.5), "2.5");
    }

    #[test]
    fn charts_draw_every_series_and_threshold() {
        let mut chart = Chart::new("Latency <over> time", "seconds", "ms");
        chart.log_y = true;
        chart.series.push(Series::line("p50", PALETTE[0], vec![(0.0, 1.0), (1.0, 2.0), (2.0, 1.5)]));
        chart.series.push(Series::line("p99", PALETTE[1], vec![(0.0, 5.0), (1.0, 900.0), (2.0, 7.0)]).with_markers());
        chart.thresholds.push((10.0, "SLO p99 10 ms".into()));
        let svg = chart.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("Latency &lt;over&gt; time") && svg.contains("SLO p99 10 ms"));
        assert!(Chart::new("empty", "x", "y").render().contains("no data"));
        // A long legend wraps onto a second row, and the chart grows to make room.
        let mut wide = Chart::new("wide", "x", "y");
        for (i, color) in PALETTE.iter().take(6).enumerate() {
            wide.series.push(Series::line(format!("a rather long series name {i}"), color, vec![(0.0, 1.0)]));
        }
        let svg = wide.render();
        assert!(svg.contains(&format!(r#"height="{}""#, HEIGHT + LEGEND_ROW)), "{}", &svg[..200]);
    }
}
