//! The one renderer of the daemon's pre-bucketed histograms: the pool's
//! retire→reuse latency, the handshake times and the forward splice times
//! all arrive as counts in power-of-two nanosecond buckets (bucket `i` holds
//! `[2^i, 2^(i+1))` ns, the last one everything above), and are exported as
//! Prometheus histograms in seconds: cumulative `_bucket{le=...}` lines, the
//! last bucket as `+Inf`, `_sum` when the source keeps one, `_count`.

use std::fmt::Write as _;

/// Writes `# HELP`, `# TYPE` and the series of histogram `name` from
/// `buckets` (powers of two in nanoseconds, the last one open-ended) and,
/// if kept, the sum of all samples in nanoseconds.
pub(crate) fn render_pow2_ns(
    text: &mut String,
    name: &str,
    help: &str,
    buckets: &[u64],
    sum_ns: Option<u64>,
) {
    let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0u64;
    for (i, n) in buckets.iter().enumerate() {
        cumulative = cumulative.wrapping_add(*n);
        if i + 1 == buckets.len() {
            break;
        }
        let le = (1u64 << (i + 1)) as f64 / 1e9;
        let _ = writeln!(text, "{name}_bucket{{le=\"{le:e}\"}} {cumulative}");
    }
    let _ = writeln!(text, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    if let Some(ns) = sum_ns {
        let _ = writeln!(text, "{name}_sum {}", ns as f64 / 1e9);
    }
    let _ = writeln!(text, "{name}_count {cumulative}");
}

#[cfg(test)]
mod tests {
    use super::render_pow2_ns;

    #[test]
    fn buckets_are_cumulative_in_seconds_with_the_last_as_inf() {
        let mut text = String::new();
        render_pow2_ns(
            &mut text,
            "smrnet_x_seconds",
            "X.",
            &[1, 2, 0, 3],
            Some(3_000_000_000),
        );
        assert_eq!(
            text,
            "# HELP smrnet_x_seconds X.\n# TYPE smrnet_x_seconds histogram\n\
             smrnet_x_seconds_bucket{le=\"2e-9\"} 1\n\
             smrnet_x_seconds_bucket{le=\"4e-9\"} 3\n\
             smrnet_x_seconds_bucket{le=\"8e-9\"} 3\n\
             smrnet_x_seconds_bucket{le=\"+Inf\"} 6\n\
             smrnet_x_seconds_sum 3\n\
             smrnet_x_seconds_count 6\n"
        );
    }

    #[test]
    fn a_histogram_without_a_sum_has_no_sum_line() {
        let mut text = String::new();
        render_pow2_ns(&mut text, "smrnet_y_seconds", "Y.", &[5], None);
        assert!(!text.contains("_sum"), "{text}");
        assert!(
            text.contains("smrnet_y_seconds_bucket{le=\"+Inf\"} 5\n"),
            "{text}"
        );
        assert!(text.ends_with("smrnet_y_seconds_count 5\n"), "{text}");
    }
}
