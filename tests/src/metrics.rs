//! Just enough of the Prometheus text format to read back what the daemon
//! exports: `name{labels} value` sample lines; comments are skipped.
//! (Whether the text is valid exposition is promtool's job, not this.)

/// One scrape's samples.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    samples: Vec<Sample>,
}

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: String,
    value: f64,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let value = value.parse().ok()?;
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                Some(Sample {
                    name: name.to_string(),
                    labels: labels.to_string(),
                    value,
                })
            })
            .collect();
        Metrics { samples }
    }

    /// Whether any series of `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|s| s.name == name)
    }

    /// The sum over every series of `name` (e.g. over workers or reasons);
    /// panics naming the metric when there is none, so a renamed metric
    /// fails loudly instead of reading as zero.
    pub fn sum(&self, name: &str) -> f64 {
        assert!(self.has(name), "metric {name} is not exported");
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.value)
            .sum()
    }

    /// The sum over the series of `name` whose labels contain `label`
    /// (`reason="bad_checksum"`); zero when none match.
    pub fn sum_where(&self, name: &str, label: &str) -> f64 {
        assert!(self.has(name), "metric {name} is not exported");
        self.samples
            .iter()
            .filter(|s| s.name == name && s.labels.contains(label))
            .map(|s| s.value)
            .sum()
    }

    /// Every metric name exported, sorted, deduplicated.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.samples.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn sums_series_across_labels_and_skips_comments() {
        let m = Metrics::parse(
            "# HELP smrnet_x_total X.\n# TYPE smrnet_x_total counter\n\
             smrnet_x_total{reason=\"a\"} 2\nsmrnet_x_total{reason=\"b\"} 3\n\
             smrnet_y 1.5\n\n",
        );
        assert_eq!(m.sum("smrnet_x_total"), 5.0);
        assert_eq!(m.sum_where("smrnet_x_total", "reason=\"b\""), 3.0);
        assert_eq!(m.sum("smrnet_y"), 1.5);
        assert_eq!(m.names(), vec!["smrnet_x_total", "smrnet_y"]);
    }

    #[test]
    #[should_panic(expected = "smrnet_missing is not exported")]
    fn a_missing_metric_fails_instead_of_reading_zero() {
        Metrics::parse("smrnet_y 1\n").sum("smrnet_missing");
    }
}
