//! Keras 3's progress bar (`keras.utils.Progbar`), byte for byte: the redrawn bar of `verbose=1`
//! and the one line per epoch of `verbose=2`.

use std::io::Write;

/// Draws a Keras progress bar for one epoch (or one evaluation) to a writer.
pub struct Progbar<W: Write> {
    out: W,
    target: usize,
    verbose: u8,
    width: usize,
    interval: f64,
    /// (name, sum of value * steps, steps), in first-seen order.
    values: Vec<(String, f64, f64)>,
    seen: usize,
    start: f64,
    last_update: f64,
    time_after_first_step: Option<f64>,
    prev_total_width: usize,
}

impl<W: Write> Progbar<W> {
    /// A bar for `target` steps, started at time `now` (seconds).
    pub fn new(out: W, target: usize, verbose: u8, now: f64) -> Self {
        Progbar {
            out,
            target,
            verbose,
            width: 20,
            interval: 0.05,
            values: Vec::new(),
            seen: 0,
            start: now,
            last_update: 0.0,
            time_after_first_step: None,
            prev_total_width: 0,
        }
    }

    /// Records step `current` with its logs and redraws if due; `finalize` ends the bar.
    /// Values are averaged over steps as Keras's bar does, except on the final update, which
    /// shows the values given.
    pub fn update(&mut self, current: usize, logs: &[(&str, f32)], finalize: bool, now: f64) -> std::io::Result<()> {
        for &(k, v) in logs {
            let v = v as f64;
            let i = match self.values.iter().position(|(n, _, _)| n == k) {
                Some(i) => i,
                None => {
                    self.values.push((k.to_string(), 0.0, 0.0));
                    self.values.len() - 1
                }
            };
            let entry = &mut self.values[i];
            if finalize {
                (entry.1, entry.2) = (v, 1.0);
            } else {
                let base = current.saturating_sub(self.seen).max(1) as f64;
                entry.1 += v * base;
                entry.2 += base;
            }
        }
        self.seen = current;
        let time_per_unit = self.estimate_step_duration(current, now);
        match self.verbose {
            1 => {
                if now - self.last_update < self.interval && !finalize {
                    return Ok(());
                }
                let mut message = String::new();
                message.push_str(&"\u{8}".repeat(self.prev_total_width));
                message.push('\r');
                let digits = self.target.max(1).ilog10() as usize + 1;
                let count = format!("{current:>digits$}/{}", self.target);
                let prog_width = (self.width as f64 * current as f64 / self.target.max(1) as f64) as usize;
                let prog_width = prog_width.min(self.width);
                let mut bar = format!("\x1b[1m{count}\x1b[0m ");
                if prog_width > 0 {
                    bar.push_str(&format!("\x1b[32m{}\x1b[0m", "━".repeat(prog_width)));
                }
                bar.push_str(&format!("\x1b[37m{}\x1b[0m", "━".repeat(self.width - prog_width)));
                let mut info = if !finalize {
                    let eta = time_per_unit * (self.target - current.min(self.target)) as f64;
                    format!(" \x1b[1m{}\x1b[0m", format_eta(eta))
                } else {
                    format!(" \x1b[1m{:.0}s\x1b[0m", round_half_even(now - self.start))
                };
                info.push_str(&format_time(time_per_unit));
                for (k, sum, count) in &self.values {
                    let avg = sum / count.max(1.0);
                    if avg.abs() > 1e-3 {
                        info.push_str(&format!(" - {k}: {}", fmt_fixed4(avg)));
                    } else {
                        info.push_str(&format!(" - {k}: {}", fmt_exp4(avg)));
                    }
                }
                let total_width = visible_width(&bar) + visible_width(&info);
                message.push_str(&bar);
                message.push_str(&info);
                if self.prev_total_width > total_width {
                    message.push_str(&" ".repeat(self.prev_total_width - total_width));
                }
                if finalize {
                    message.push('\n');
                }
                self.out.write_all(message.as_bytes())?;
                self.out.flush()?;
                self.prev_total_width = total_width;
            }
            2 if finalize => {
                let digits = self.target.max(1).ilog10() as usize + 1;
                let mut info = format!(
                    "{current:>digits$}/{} - {:.0}s -{}",
                    self.target,
                    round_half_even(now - self.start),
                    format_time(time_per_unit)
                );
                for (k, sum, count) in &self.values {
                    let avg = sum / count.max(1.0);
                    if avg > 1e-3 {
                        info.push_str(&format!(" - {k}: {}", fmt_fixed4(avg)));
                    } else {
                        info.push_str(&format!(" - {k}: {}", fmt_exp4(avg)));
                    }
                }
                info.push('\n');
                self.out.write_all(info.as_bytes())?;
                self.out.flush()?;
            }
            _ => {}
        }
        self.last_update = now;
        Ok(())
    }

    fn estimate_step_duration(&mut self, current: usize, now: f64) -> f64 {
        if current == 0 {
            return 0.0;
        }
        let per = match self.time_after_first_step {
            Some(t) if current > 1 => (now - t) / (current - 1) as f64,
            _ => (now - self.start) / current as f64,
        };
        if current == 1 {
            self.time_after_first_step = Some(now);
        }
        per
    }
}

/// Characters on screen: ANSI escape sequences take no width.
fn visible_width(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (false, _) => n += 1,
            (true, 'm') => in_escape = false,
            (true, _) => {}
        }
    }
    n
}

/// Python's `%d` of a float truncates toward zero.
fn format_eta(eta: f64) -> String {
    if eta > 3600.0 {
        format!("{}:{:02}:{:02}", (eta / 3600.0).floor() as i64, ((eta % 3600.0) / 60.0).floor() as i64, (eta % 60.0).floor() as i64)
    } else if eta > 60.0 {
        format!("{}:{:02}", (eta / 60.0).floor() as i64, (eta % 60.0).floor() as i64)
    } else {
        format!("{}s", eta.trunc() as i64)
    }
}

/// Keras's `_format_time`: ` 12ms/step`.
fn format_time(t: f64) -> String {
    if t >= 1.0 || t == 0.0 {
        format!(" {:.0}s/step", round_half_even(t))
    } else if t >= 1e-3 {
        format!(" {:.0}ms/step", round_half_even(t * 1000.0))
    } else {
        format!(" {:.0}us/step", round_half_even(t * 1e6))
    }
}

/// Python's `{:.0f}` rounds halves to even; Rust's `{:.0}` rounds them away from zero.
fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

/// `{:.4f}` as Python prints it.
fn fmt_fixed4(v: f64) -> String {
    format!("{v:.4}")
}

/// `{:.4e}` as Python prints it (`1.2346e-04`).
fn fmt_exp4(v: f64) -> String {
    let s = format!("{v:.4e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn verbose_one_final_frame_is_keras_bytes() {
        let mut buf = Vec::new();
        let mut bar = Progbar::new(&mut buf, 1875, 1, 0.0);
        bar.update(1, &[("accuracy", 0.0625), ("loss", 2.5562)], false, 0.359).unwrap();
        bar.update(1850, &[("accuracy", 0.8237), ("loss", 0.5008)], false, 2.27).unwrap();
        bar.update(1875, &[("accuracy", 0.8242), ("loss", 0.4991)], true, 2.3).unwrap();
        let s = String::from_utf8(buf).unwrap();
        let last = s.rsplit('\r').next().unwrap();
        assert_eq!(
            last,
            "\x1b[1m1875/1875\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m \x1b[1m2s\x1b[0m 1ms/step - accuracy: 0.8242 - loss: 0.4991\n"
        );
        let first = s.split('\r').nth(1).unwrap().trim_end_matches('\u{8}');
        assert_eq!(
            first,
            "\x1b[1m   1/1875\x1b[0m \x1b[37m━━━━━━━━━━━━━━━━━━━━\x1b[0m \x1b[1m11:12\x1b[0m 359ms/step - accuracy: 0.0625 - loss: 2.5562"
        );
    }

    #[test]
    fn redraw_erases_the_previous_frame() {
        let mut buf = Vec::new();
        let mut bar = Progbar::new(&mut buf, 10, 1, 0.0);
        bar.update(1, &[("loss", 1.23456)], false, 0.1).unwrap();
        bar.update(2, &[("loss", 1.0)], false, 0.2).unwrap();
        let s = String::from_utf8(buf).unwrap();
        // Each frame is `\u{8}` x (previous width), `\r`, the text.
        let frames: Vec<&str> = s.split('\r').collect();
        assert_eq!(frames[0], "");
        let first = frames[1].trim_end_matches('\u{8}');
        assert_eq!(frames[1].len() - first.len(), strip_ansi(first).chars().count());
        assert_eq!(frames[2].matches('\u{8}').count(), 0);
        // The displayed loss is the step-weighted mean of the values seen: (1.23456 + 1.0) / 2.
        assert!(strip_ansi(frames[2]).contains("loss: 1.1173"));
    }

    #[test]
    fn verbose_two_prints_one_line() {
        let mut buf = Vec::new();
        let mut bar = Progbar::new(&mut buf, 1875, 2, 0.0);
        for i in 1..1875 {
            bar.update(i, &[("accuracy", 0.5), ("loss", 0.7)], false, i as f64 * 0.0014).unwrap();
        }
        bar.update(1875, &[("accuracy", 0.8242), ("loss", 0.4991)], true, 2.6).unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), "1875/1875 - 3s - 1ms/step - accuracy: 0.8242 - loss: 0.4991\n");
    }

    #[test]
    fn number_formats_follow_python() {
        assert_eq!(fmt_exp4(0.000123456), "1.2346e-04");
        assert_eq!(fmt_exp4(0.0), "0.0000e+00");
        assert_eq!(format_eta(672.0), "11:12");
        assert_eq!(format_eta(3725.0), "1:02:05");
        assert_eq!(format_eta(2.9), "2s");
        assert_eq!(format_time(0.0025), " 2ms/step");
        assert_eq!(format_time(0.0000125), " 12us/step");
    }
}
