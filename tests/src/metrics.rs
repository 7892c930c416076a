//! The end-to-end tests' view of a scrape: the load tools' parser
//! ([`tools::load::scrape::Samples`]) with sums that fail loudly, naming the metric,
//! when a metric is not exported, so a renamed metric fails a test instead
//! of reading as zero.

use tools::load::scrape::Samples;

/// One scrape's samples.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Samples);

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        Metrics(Samples::parse(text))
    }

    /// Whether any series of `name` exists.
    pub fn has(&self, name: &str) -> bool {
        self.0.has(name)
    }

    /// The sum over every series of `name` (e.g. over workers or reasons);
    /// panics naming the metric when there is none.
    pub fn sum(&self, name: &str) -> f64 {
        self.0
            .sum(name)
            .unwrap_or_else(|| panic!("metric {name} is not exported"))
    }

    /// The sum over the series of `name` whose labels contain `label`
    /// (`reason="bad_checksum"`); zero when none match.
    pub fn sum_where(&self, name: &str, label: &str) -> f64 {
        self.0
            .sum_where(name, label)
            .unwrap_or_else(|| panic!("metric {name} is not exported"))
    }

    /// Every metric name exported, sorted, deduplicated.
    pub fn names(&self) -> Vec<&str> {
        self.0.names()
    }
}

#[cfg(test)]
mod tests {
    use super::Metrics;

    #[test]
    fn sums_series_across_labels() {
        let m = Metrics::parse("smrnet_x_total{reason=\"a\"} 2\nsmrnet_x_total{reason=\"b\"} 3\n");
        assert_eq!(m.sum("smrnet_x_total"), 5.0);
        assert_eq!(m.sum_where("smrnet_x_total", "reason=\"b\""), 3.0);
    }

    #[test]
    #[should_panic(expected = "smrnet_missing is not exported")]
    fn a_missing_metric_fails_instead_of_reading_zero() {
        Metrics::parse("smrnet_y 1\n").sum("smrnet_missing");
    }
}
