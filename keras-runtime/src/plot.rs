//! Line charts of a [`History`] as SVG, as Keras users plot `history.history['loss']` with
//! matplotlib: epochs (1-based, as the progress bar counts them) along x, values along y, one line
//! per metric, `val_*` lines dashed in the colour of their training metric.
//!
//! ```
//! # use keras_runtime::{History, Logs};
//! # let mut history = History::default();
//! # for (epoch, (loss, val)) in [(0.9, 0.95), (0.5, 0.6), (0.3, 0.45)].into_iter().enumerate() {
//! #     let mut logs = Logs::new();
//! #     logs.set("loss", loss);
//! #     logs.set("val_loss", val);
//! #     history.push(epoch, &logs);
//! # }
//! # let dir = std::env::temp_dir().join(format!("keras-doc-plot-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! // `history` is what `fit` returned.
//! history.plot().title("IrisNet").save(dir.join("history.svg"))?;
//! let svg = history.plot().metrics(&["loss"]).log_y(true).to_svg()?;
//! assert!(svg.starts_with("<svg"));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), keras_runtime::Error>(())
//! ```
//!
//! Non-finite values (a NaN loss after training diverged) are left out: the line has a gap there.
//! A series with no finite value at all is an error, as is a name the history does not hold.

use crate::io::write_atomic;
use crate::{Error, History, Result};
use std::fmt::Write as _;
use std::path::Path;

/// matplotlib's default colours (`tab10`), so the charts look as Keras tutorials' do.
const COLOURS: [&str; 10] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
/// Width of one character of the 12px sans-serif labels, roughly, for layout.
const CHAR_W: f64 = 7.0;
/// Smallest chart that still fits its labels.
const MIN_SIZE: (u32, u32) = (240, 180);

/// Which series to draw.
#[derive(Clone, Debug)]
enum Selection {
    /// `loss` and `val_loss` (if logged).
    Default,
    /// These names, on one chart.
    Names(Vec<String>),
    /// One chart per metric, each with its `val_` twin.
    All,
}

/// A chart of a [`History`], made by [`History::plot`]; render it with [`Plot::to_svg`] or write it
/// with [`Plot::save`].
#[derive(Clone, Debug)]
pub struct Plot<'a> {
    history: &'a History,
    selection: Selection,
    title: Option<String>,
    size: (u32, u32),
    log_y: bool,
}

impl History {
    /// A chart of `loss` and `val_loss` (if logged) per epoch; choose other series with
    /// [`Plot::metrics`] or [`Plot::all`].
    pub fn plot(&self) -> Plot<'_> {
        Plot { history: self, selection: Selection::Default, title: None, size: (640, 420), log_y: false }
    }
}

impl<'a> Plot<'a> {
    /// Draws exactly these series (`["accuracy", "val_accuracy"]`) on one chart.
    pub fn metrics(mut self, names: &[&str]) -> Self {
        self.selection = Selection::Names(names.iter().map(|n| n.to_string()).collect());
        self
    }

    /// Draws every logged metric: one chart per metric with its `val_` twin, `loss` first, stacked
    /// vertically in one SVG.
    pub fn all(mut self) -> Self {
        self.selection = Selection::All;
        self
    }

    /// The title: of the chart, or above the charts when there are several.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The size of each chart in pixels (default 640x420; at least 240x180).
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = (width, height);
        self
    }

    /// A logarithmic y axis (every value drawn must then be positive).
    pub fn log_y(mut self, log: bool) -> Self {
        self.log_y = log;
        self
    }

    /// Writes the SVG to `path`, atomically (see [`write_atomic`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let svg = self.to_svg()?;
        write_atomic(path, |w| w.write_all(svg.as_bytes()).map_err(|source| Error::Io { path: path.display().to_string(), source }))
    }

    /// The SVG document.
    pub fn to_svg(&self) -> Result<String> {
        let (width, height) = self.size;
        if width < MIN_SIZE.0 || height < MIN_SIZE.1 {
            return Err(Error::value("plot size", format!("at least {}x{} pixels", MIN_SIZE.0, MIN_SIZE.1), format!("{width}x{height}")));
        }
        let h = self.history;
        if h.epochs.is_empty() {
            return Err(Error::value("history", "at least one epoch to plot", "no epochs"));
        }
        let charts = self.charts()?;
        let heading = match (&self.title, charts.len()) {
            (Some(t), n) if n > 1 => Some(t.as_str()),
            _ => None,
        };
        let top = if heading.is_some() { 32.0 } else { 0.0 };
        let (w, ch) = (f64::from(width), f64::from(height));
        let total_h = top + ch * charts.len() as f64;
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{total_h}" viewBox="0 0 {width} {total_h}" font-family="sans-serif" font-size="12">"#
        );
        svg.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        if let Some(t) = heading {
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="22" text-anchor="middle" font-size="16" font-weight="bold">{}</text>"#,
                w / 2.0,
                escape(t)
            );
        }
        for (i, names) in charts.iter().enumerate() {
            let title = match (&self.title, charts.len()) {
                (Some(t), 1) => t.clone(),
                _ => names.iter().filter(|n| !n.starts_with("val_")).cloned().collect::<Vec<_>>().join(", "),
            };
            let title = if title.is_empty() { names.join(", ") } else { title };
            let series = names.iter().map(|n| self.series(n)).collect::<Result<Vec<_>>>()?;
            self.chart(&mut svg, &title, &series, top + ch * i as f64);
        }
        svg.push_str("</svg>\n");
        Ok(svg)
    }

    /// The names drawn on each chart, checked against the history.
    fn charts(&self) -> Result<Vec<Vec<String>>> {
        let h = self.history;
        let unknown =
            |name: &str| Error::Unknown { kind: "history key", name: name.to_string(), expected: h.keys().collect::<Vec<_>>().join(", ") };
        let with_val = |base: &str| {
            let mut v = vec![base.to_string()];
            let val = format!("val_{base}");
            if h.get(&val).is_some() {
                v.push(val);
            }
            v
        };
        match &self.selection {
            Selection::Default => match h.get("loss") {
                Some(_) => Ok(vec![with_val("loss")]),
                None => Err(unknown("loss")),
            },
            Selection::Names(names) => {
                if names.is_empty() {
                    return Err(Error::value("plot metrics", "at least one name", "none"));
                }
                for n in names {
                    if h.get(n).is_none() {
                        return Err(unknown(n));
                    }
                }
                Ok(vec![names.clone()])
            }
            Selection::All => {
                let mut bases: Vec<&str> = Vec::new();
                for k in h.keys() {
                    // A `val_x` whose `x` was not logged gets a chart of its own.
                    let base = k.strip_prefix("val_").filter(|b| h.get(b).is_some()).unwrap_or(k);
                    if !bases.contains(&base) {
                        bases.push(base);
                    }
                }
                bases.sort_by_key(|b| (*b != "loss", *b));
                if bases.is_empty() {
                    return Err(Error::value("history", "at least one metric to plot", "none"));
                }
                Ok(bases.into_iter().map(|b| if b.starts_with("val_") { vec![b.to_string()] } else { with_val(b) }).collect())
            }
        }
    }

    /// The points of `name`: (1-based epoch, value), finite values only, split where values are not.
    fn series(&self, name: &str) -> Result<Series> {
        let h = self.history;
        let values = h.get(name).unwrap_or(&[]);
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (&epoch, &v) in h.epochs.iter().zip(values) {
            if v.is_finite() {
                if self.log_y && v <= 0.0 {
                    return Err(Error::value(format!("`{name}` on a log scale"), "positive values", format!("{v} at epoch {}", epoch + 1)));
                }
                runs.last_mut().expect("never empty").push((epoch as f64 + 1.0, f64::from(v)));
            } else if !runs.last().expect("never empty").is_empty() {
                runs.push(Vec::new());
            }
        }
        runs.retain(|r| !r.is_empty());
        if runs.is_empty() {
            return Err(Error::value(format!("`{name}`"), "at least one finite value to plot", format!("none in {} epochs", values.len())));
        }
        Ok(Series { name: name.to_string(), runs })
    }

    /// Draws one chart with its top edge at `y0`.
    fn chart(&self, svg: &mut String, title: &str, series: &[Series], y0: f64) {
        let (w, h) = (f64::from(self.size.0), f64::from(self.size.1));
        let points = || series.iter().flat_map(|s| s.runs.iter().flatten());
        let (mut x_lo, mut x_hi, mut y_lo, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in points() {
            (x_lo, x_hi, y_lo, y_hi) = (x_lo.min(x), x_hi.max(x), y_lo.min(y), y_hi.max(y));
        }
        // Layout: title band above, tick labels left and below.
        let (top, bottom, right) = (y0 + 36.0, y0 + h - 46.0, w - 20.0);
        let y_ticks = if self.log_y { log_ticks(y_lo, y_hi) } else { nice_ticks(y_lo, y_hi, ((bottom - top) / 40.0) as usize, false) };
        let y_labels = tick_labels(&y_ticks, self.log_y);
        let left = 20.0 + CHAR_W * y_labels.iter().map(|l| l.len()).max().unwrap_or(1) as f64;
        let x_chars = format!("{}", x_hi.max(10.0) as u64 + 1).len() as f64;
        let x_ticks = nice_ticks(x_lo, x_hi, ((right - left) / (CHAR_W * x_chars + 24.0)) as usize, true);
        let x_labels = tick_labels(&x_ticks, false);
        let t = |v: f64| if self.log_y { v.log10() } else { v };
        let (xd0, xd1) = (x_ticks[0], x_ticks[x_ticks.len() - 1]);
        let (yd0, yd1) = (t(y_ticks[0]), t(y_ticks[y_ticks.len() - 1]));
        let px = |x: f64| left + (x - xd0) / (xd1 - xd0) * (right - left);
        let py = |y: f64| bottom - (t(y) - yd0) / (yd1 - yd0) * (bottom - top);

        let _ = writeln!(svg, r#"<g class="chart">"#);
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="14">{}</text>"#,
            (left + right) / 2.0,
            y0 + 22.0,
            escape(title)
        );
        // Grid lines and tick labels.
        for (&v, label) in y_ticks.iter().zip(&y_labels) {
            let y = py(v);
            let _ = writeln!(svg, r##"<line x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#e0e0e0"/>"##);
            let _ = writeln!(svg, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#, left - 6.0, y + 4.0, escape(label));
        }
        for (&v, label) in x_ticks.iter().zip(&x_labels) {
            let x = px(v);
            let _ = writeln!(svg, r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#e0e0e0"/>"##);
            let _ = writeln!(svg, r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#, bottom + 16.0, escape(label));
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
            right - left,
            bottom - top
        );
        let _ = writeln!(svg, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">epoch</text>"#, (left + right) / 2.0, bottom + 36.0);

        // The series: one polyline per run of finite values, and a marker per point.
        let colours = colours(series);
        for (s, colour) in series.iter().zip(&colours) {
            let val = s.name.starts_with("val_");
            let dash = if val { r#" stroke-dasharray="6 4""# } else { "" };
            let _ = writeln!(svg, r#"<g class="series" data-name="{}">"#, escape(&s.name));
            for run in &s.runs {
                let pts: Vec<String> = run.iter().map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y))).collect();
                let _ = writeln!(svg, r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#, pts.join(" "));
            }
            for &(x, y) in s.runs.iter().flatten() {
                let _ = writeln!(svg, r#"<circle cx="{:.1}" cy="{:.1}" r="3" {}/>"#, px(x), py(y), marker_style(colour, val));
            }
            svg.push_str("</g>\n");
        }

        // The legend, in the corner of the plot that covers the fewest points.
        let (lw, lh) = (44.0 + CHAR_W * series.iter().map(|s| s.name.len()).max().unwrap_or(0) as f64, 8.0 + 18.0 * series.len() as f64);
        let corners = [
            (right - lw - 8.0, top + 8.0),
            (left + 8.0, top + 8.0),
            (right - lw - 8.0, bottom - lh - 8.0),
            (left + 8.0, bottom - lh - 8.0),
        ];
        let covered = |&(cx, cy): &(f64, f64)| {
            let inside = |(x, y): (f64, f64)| x >= cx - 4.0 && x <= cx + lw + 4.0 && y >= cy - 4.0 && y <= cy + lh + 4.0;
            let mut n = 0;
            for run in series.iter().flat_map(|s| &s.runs) {
                let p: Vec<(f64, f64)> = run.iter().map(|&(x, y)| (px(x), py(y))).collect();
                n += p.iter().filter(|&&q| inside(q)).count() * 4;
                for seg in p.windows(2) {
                    n += (1..8).filter(|&k| inside(lerp(seg[0], seg[1], f64::from(k) / 8.0))).count();
                }
            }
            n
        };
        let (lx, ly) = corners.iter().min_by_key(|c| covered(c)).copied().expect("four corners");
        let _ = writeln!(svg, r#"<g class="legend">"#);
        let _ = writeln!(
            svg,
            r##"<rect x="{lx:.1}" y="{ly:.1}" width="{lw:.1}" height="{lh:.1}" fill="white" fill-opacity="0.85" stroke="#ccc"/>"##
        );
        for (i, (s, colour)) in series.iter().zip(&colours).enumerate() {
            let y = ly + 4.0 + 18.0 * i as f64 + 9.0;
            let val = s.name.starts_with("val_");
            let dash = if val { r#" stroke-dasharray="6 4""# } else { "" };
            let _ = writeln!(
                svg,
                r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="2"{dash}/>"#,
                lx + 6.0,
                lx + 32.0
            );
            let _ = writeln!(svg, r#"<circle cx="{:.1}" cy="{y:.1}" r="3" {}/>"#, lx + 19.0, marker_style(colour, val));
            let _ = writeln!(svg, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, lx + 38.0, y + 4.0, escape(&s.name));
        }
        svg.push_str("</g>\n</g>\n");
    }
}

/// One series' finite points, in runs between non-finite values.
struct Series {
    name: String,
    runs: Vec<Vec<(f64, f64)>>,
}

/// A colour per series: `val_x` takes the colour of `x`.
fn colours(series: &[Series]) -> Vec<&'static str> {
    let mut bases: Vec<&str> = Vec::new();
    series
        .iter()
        .map(|s| {
            let base = s.name.strip_prefix("val_").filter(|b| series.iter().any(|o| o.name == *b)).unwrap_or(&s.name);
            let i = bases.iter().position(|b| *b == base).unwrap_or_else(|| {
                bases.push(base);
                bases.len() - 1
            });
            COLOURS[i % COLOURS.len()]
        })
        .collect()
}

/// Filled markers for training series, hollow ones for validation.
fn marker_style(colour: &str, val: bool) -> String {
    if val { format!(r#"fill="white" stroke="{colour}" stroke-width="1.5""#) } else { format!(r#"fill="{colour}""#) }
}

fn lerp(a: (f64, f64), b: (f64, f64), t: f64) -> (f64, f64) {
    (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
}

/// Round tick values, steps of 1, 2 or 5 times a power of ten, from one at or below `lo` to one at
/// or above `hi`, at most `max_ticks` of them (at least 3 are allowed); integer steps only if
/// `integer`. A single value gets room around it.
fn nice_ticks(lo: f64, hi: f64, max_ticks: usize, integer: bool) -> Vec<f64> {
    let max_ticks = max_ticks.clamp(3, 12);
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else if integer {
        (lo - 1.0, hi + 1.0)
    } else {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo - d, hi + d)
    };
    let span = hi - lo;
    let mut exp = (span / max_ticks as f64).log10().floor() as i32;
    for _ in 0..64 {
        for m in [1i64, 2, 5] {
            // step = m * 10^exp, kept exact by dividing integers by powers of ten.
            let (num, den) = if exp >= 0 { (m as f64 * 10f64.powi(exp), 1.0) } else { (m as f64, 10f64.powi(-exp)) };
            let step = num / den;
            if integer && step < 1.0 {
                continue;
            }
            let first = (lo / step + 1e-9).floor();
            let last = (hi / step - 1e-9).ceil();
            let n = (last - first) as usize + 1;
            if n <= max_ticks {
                return (0..n).map(|i| (first + i as f64) * num / den).collect();
            }
        }
        exp += 1;
    }
    vec![lo, hi]
}

/// Ticks for a log axis: 1-2-5 steps within a decade or two, powers of ten over more.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    // One value (a constant series): a factor of two either side.
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo / 2.0, hi * 2.0) };
    let (k0, k1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let candidates: Vec<f64> = if k1 - k0 <= 2 {
        (k0..=k1).flat_map(|k| [1.0, 2.0, 5.0].map(|m| pow10(m, k))).collect()
    } else {
        let stride = ((k1 - k0) as usize).div_ceil(8).max(1) as i32;
        let k0 = k0.div_euclid(stride) * stride;
        (0..).map(|i| k0 + i * stride).take_while(|&k| k < k1 + stride).map(|k| pow10(1.0, k)).collect()
    };
    let a = candidates.iter().rposition(|&c| c <= lo * (1.0 + 1e-9)).unwrap_or(0);
    let b = candidates.iter().position(|&c| c >= hi * (1.0 - 1e-9)).unwrap_or(candidates.len() - 1);
    let (a, b) = if a == b { (a.saturating_sub(1), (b + 1).min(candidates.len() - 1)) } else { (a, b) };
    candidates[a..=b].to_vec()
}

/// `m * 10^k`, as close to the decimal as an f64 gets.
fn pow10(m: f64, k: i32) -> f64 {
    if k >= 0 { m * 10f64.powi(k) } else { m / 10f64.powi(-k) }
}

/// Labels with as many decimals as the ticks need (all the same for a linear axis), in
/// exponent notation for very large or small values.
fn tick_labels(ticks: &[f64], log: bool) -> Vec<String> {
    let max = ticks.iter().fold(0.0f64, |a, &t| a.max(t.abs()));
    let decimals = |v: f64| {
        // The fewest decimals (up to 10) that show `v` exactly.
        (0..=10usize).find(|&d| {
            let s = 10f64.powi(d as i32);
            ((v * s).round() / s - v).abs() <= v.abs() * 1e-9
        })
    };
    let exponent = max >= 1e6 || ticks.iter().any(|&t| t != 0.0 && t.abs() < 1e-4);
    if exponent {
        return ticks.iter().map(|&t| format!("{t:e}")).collect();
    }
    if log {
        return ticks.iter().map(|&t| format!("{t:.*}", decimals(t).unwrap_or(4))).collect();
    }
    let d = ticks.iter().map(|&t| decimals(t).unwrap_or(4)).max().unwrap_or(0);
    ticks.iter().map(|&t| format!("{t:.d$}")).collect()
}

/// Escapes text for SVG content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Logs;

    fn history(series: &[(&'static str, &[f32])]) -> History {
        let mut h = History::default();
        for e in 0..series[0].1.len() {
            let mut logs = Logs::new();
            for &(n, v) in series {
                logs.set(n, v[e]);
            }
            h.push(e, &logs);
        }
        h
    }

    /// An element of the SVG: its name and attributes.
    #[derive(Debug)]
    struct El {
        name: String,
        attrs: Vec<(String, String)>,
    }

    impl El {
        fn attr(&self, name: &str) -> Option<&str> {
            self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
        }
    }

    /// Parses the SVG's tags, checking that they balance, that attribute values are quoted and
    /// that text holds no raw `<` or stray `&`; returns every element in document order.
    fn parse(svg: &str) -> Vec<El> {
        let mut stack: Vec<String> = Vec::new();
        let mut els = Vec::new();
        let mut rest = svg.trim();
        assert!(rest.starts_with("<svg"), "{svg}");
        while !rest.is_empty() {
            let lt = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..lt];
            assert!(!text.contains('>'), "stray > in {text:?}");
            for (i, _) in text.match_indices('&') {
                let t = &text[i..];
                assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| t.starts_with(e)), "bad entity in {text:?}");
            }
            rest = &rest[lt..];
            if rest.is_empty() {
                break;
            }
            let gt = rest.find('>').expect("unclosed tag");
            let tag = &rest[1..gt];
            rest = &rest[gt + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.trim()), "mismatched </{name}>");
                continue;
            }
            let (body, closed) = match tag.strip_suffix('/') {
                Some(b) => (b, true),
                None => (tag, false),
            };
            let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
            let name = body[..name_end].to_string();
            assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()), "bad tag <{tag}>");
            let mut attrs = Vec::new();
            let mut a = body[name_end..].trim();
            while !a.is_empty() {
                let eq = a.find("=\"").unwrap_or_else(|| panic!("unquoted attribute in <{tag}>"));
                let key = a[..eq].trim().to_string();
                let end = a[eq + 2..].find('"').expect("unterminated attribute") + eq + 2;
                let value = &a[eq + 2..end];
                assert!(!value.contains('<'), "< in attribute of <{tag}>");
                attrs.push((key, value.to_string()));
                a = a[end + 1..].trim();
            }
            if !closed {
                stack.push(name.clone());
            }
            els.push(El { name, attrs });
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        els
    }

    /// The points of every polyline of the series `name`.
    fn polylines(els: &[El], name: &str) -> Vec<Vec<(f64, f64)>> {
        let mut out = Vec::new();
        let mut inside = false;
        for e in els {
            if e.name == "g" {
                inside = e.attr("data-name") == Some(name);
            }
            if inside && e.name == "polyline" {
                let pts = e.attr("points").unwrap().split(' ').map(|p| p.split_once(',').unwrap());
                out.push(pts.map(|(x, y)| (x.parse().unwrap(), y.parse().unwrap())).collect());
            }
        }
        out
    }

    fn series_names(els: &[El]) -> Vec<&str> {
        els.iter().filter(|e| e.name == "g" && e.attr("class") == Some("series")).map(|e| e.attr("data-name").unwrap()).collect()
    }

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        assert_eq!(nice_ticks(0.23, 0.91, 6, false), [0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(nice_ticks(0.0, 1.0, 6, false), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(nice_ticks(1.0, 100.0, 6, true), [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!(nice_ticks(1.0, 10.0, 8, true), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks(1.0, 3.0, 8, true), [1.0, 2.0, 3.0]);
        assert_eq!(nice_ticks(1.0, 1.0, 8, true), [0.0, 1.0, 2.0]);
        assert_eq!(nice_ticks(0.5, 0.5, 6, false), [0.45, 0.5, 0.55]);
        assert_eq!(nice_ticks(-3.2, 7.9, 7, false), [-4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(nice_ticks(1234.0, 98765.0, 6, false), [0.0, 20000.0, 40000.0, 60000.0, 80000.0, 100000.0]);
        for (lo, hi) in [(0.0012, 0.0049), (3.0, 3.5), (-1e30, 1e30), (0.1f32 as f64, 0.7f32 as f64)] {
            let t = nice_ticks(lo, hi, 6, false);
            // Covering the data up to f64 rounding of the ticks (1e30 is not a multiple of 5e29 in f64).
            let slack = 1e-12 * lo.abs().max(hi.abs());
            assert!(t.len() >= 2 && t.len() <= 6 && t[0] <= lo + slack && *t.last().unwrap() >= hi - slack, "{lo}..{hi}: {t:?}");
            let step = t[1] - t[0];
            let m = step / 10f64.powf(step.log10().floor());
            assert!([1.0, 2.0, 5.0].iter().any(|n| (m - n).abs() < 1e-9), "{lo}..{hi}: step {step}");
        }
        assert_eq!(log_ticks(0.23, 0.91), [0.2, 0.5, 1.0]);
        assert_eq!(log_ticks(0.001, 2.0), [0.001, 0.01, 0.1, 1.0, 10.0]);
        assert_eq!(log_ticks(1.0, 1.0), [0.5, 1.0, 2.0]);
        assert_eq!(tick_labels(&[0.2, 0.4, 1.0], false), ["0.2", "0.4", "1.0"]);
        assert_eq!(tick_labels(&[0.0, 20.0, 40.0], false), ["0", "20", "40"]);
        assert_eq!(tick_labels(&[0.001, 0.01, 0.1, 1.0], true), ["0.001", "0.01", "0.1", "1"]);
        assert_eq!(tick_labels(&[0.0, 2e7], false), ["0e0", "2e7"]);
    }

    #[test]
    fn loss_and_val_loss_are_drawn_by_default() {
        let h = history(&[("accuracy", &[0.5, 0.7, 0.8]), ("loss", &[1.0, 0.5, 0.25]), ("val_loss", &[1.2, 0.8, 0.9])]);
        let svg = h.plot().to_svg().unwrap();
        let els = parse(&svg);
        assert_eq!(series_names(&els), ["loss", "val_loss"]);
        let loss = polylines(&els, "loss");
        let val = polylines(&els, "val_loss");
        assert_eq!((loss.len(), loss[0].len(), val.len(), val[0].len()), (1, 3, 1, 3));
        // x grows with the epoch; a larger value is drawn higher (smaller y).
        let p = &loss[0];
        assert!(p[0].0 < p[1].0 && p[1].0 < p[2].0);
        assert!(p[0].1 < p[1].1 && p[1].1 < p[2].1);
        let v = &val[0];
        assert!(v[0].1 < v[2].1 && v[2].1 < v[1].1);
        // The highest value of the chart (val_loss 1.2) is nearest the top.
        assert!(loss.iter().chain(&val).flatten().all(|&(_, y)| y >= v[0].1));
        let lines: Vec<&El> = els.iter().filter(|e| e.name == "polyline").collect();
        assert_eq!(lines[0].attr("stroke"), lines[1].attr("stroke"));
        assert_eq!(lines[0].attr("stroke-dasharray"), None);
        assert_eq!(lines[1].attr("stroke-dasharray"), Some("6 4"));
        assert_eq!(els.iter().filter(|e| e.name == "circle").count(), 3 + 3 + 2, "a marker per point and per legend entry");
        assert!(svg.contains(">loss</text>") && svg.contains(">val_loss</text>") && svg.contains(">epoch</text>"));
        // Epochs are 1-based: the first point sits at x = 1, the last at 3.
        assert!(svg.contains(">1</text>") && svg.contains(">3</text>"), "{svg}");
    }

    #[test]
    fn all_draws_a_chart_per_metric_and_titles_them() {
        let h = history(&[
            ("accuracy", &[0.5, 0.7]),
            ("loss", &[1.0, 0.5]),
            ("val_accuracy", &[0.4, 0.6]),
            ("val_loss", &[1.1, 0.7]),
            ("val_only", &[3.0, 2.0]),
        ]);
        let svg = h.plot().all().title("run <7> & co").size(500, 300).to_svg().unwrap();
        let els = parse(&svg);
        assert_eq!(els.iter().filter(|e| e.name == "g" && e.attr("class") == Some("chart")).count(), 3);
        assert_eq!(series_names(&els), ["loss", "val_loss", "accuracy", "val_accuracy", "val_only"]);
        assert!(svg.contains(">run &lt;7&gt; &amp; co</text>"));
        assert_eq!(els[0].attr("height"), Some("932"));
        let strokes: Vec<_> = els.iter().filter(|e| e.name == "polyline").map(|e| e.attr("stroke").unwrap()).collect();
        assert_eq!(strokes, [COLOURS[0], COLOURS[0], COLOURS[0], COLOURS[0], COLOURS[0]], "each chart's colours start over");

        let svg = h.plot().metrics(&["accuracy", "val_accuracy", "loss"]).title("one").to_svg().unwrap();
        let els = parse(&svg);
        assert_eq!(series_names(&els), ["accuracy", "val_accuracy", "loss"]);
        let strokes: Vec<_> = els.iter().filter(|e| e.name == "polyline").map(|e| e.attr("stroke").unwrap()).collect();
        assert_eq!(strokes, [COLOURS[0], COLOURS[0], COLOURS[1]]);
        assert!(svg.contains(">one</text>"));
    }

    #[test]
    fn a_single_epoch_is_a_point_and_nan_leaves_a_gap() {
        let h = history(&[("loss", &[0.7])]);
        let els = parse(&h.plot().to_svg().unwrap());
        assert_eq!(polylines(&els, "loss"), [vec![polylines(&els, "loss")[0][0]]]);
        assert_eq!(els.iter().filter(|e| e.name == "circle").count(), 2);

        let h = history(&[("loss", &[1.0, 0.8, f32::NAN, f32::INFINITY, 0.5, f32::NAN])]);
        let els = parse(&h.plot().to_svg().unwrap());
        let runs = polylines(&els, "loss");
        assert_eq!(runs.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        assert!(runs[0][1].0 < runs[1][0].0);

        let svg = history(&[("loss", &[10.0, 1.0, 0.01])]).plot().log_y(true).to_svg().unwrap();
        let p = &polylines(&parse(&svg), "loss")[0];
        assert!((p[1].1 - p[0].1 - (p[2].1 - p[1].1) / 2.0).abs() < 0.2, "equal ratios, proportional distances: {p:?}");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = |p: Plot| p.to_svg().unwrap_err().to_string();
        let h = history(&[("accuracy", &[0.5, 0.7]), ("loss", &[1.0, f32::NAN]), ("val_loss", &[f32::NAN, f32::NAN])]);
        assert_eq!(err(h.plot().metrics(&["acc"])), "unknown history key `acc`: expected one of accuracy, loss, val_loss");
        assert_eq!(err(History::default().plot()), "history: expected at least one epoch to plot, found no epochs");
        assert_eq!(err(h.plot()), "`val_loss`: expected at least one finite value to plot, found none in 2 epochs");
        assert_eq!(err(h.plot().metrics(&[])), "plot metrics: expected at least one name, found none");
        assert_eq!(err(h.plot().metrics(&["loss"]).size(100, 50)), "plot size: expected at least 240x180 pixels, found 100x50");
        let h = history(&[("accuracy", &[0.0, 0.7]), ("loss", &[1.0, 0.5])]);
        assert_eq!(err(h.plot().all().log_y(true)), "`accuracy` on a log scale: expected positive values, found 0 at epoch 1");
        let h = history(&[("accuracy", &[0.5])]);
        assert_eq!(err(h.plot()), "unknown history key `loss`: expected one of accuracy");
    }

    #[test]
    fn save_writes_the_file_atomically() {
        let dir = std::env::temp_dir().join(format!("keras-plot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let h = history(&[("loss", &[1.0, 0.5])]);
        let path = dir.join("h.svg");
        h.plot().save(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), h.plot().to_svg().unwrap());
        assert!(h.plot().metrics(&["nope"]).save(&path).is_err());
        assert!(matches!(h.plot().save(dir.join("h.svg/under/a/file.svg")), Err(Error::Io { .. })));
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["h.svg"]);
        // Missing directories are made.
        h.plot().save(dir.join("runs/1/h.svg")).unwrap();
        assert!(dir.join("runs/1/h.svg").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
