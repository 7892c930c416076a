//! The operator files in `ops/` (the Grafana dashboard and the Prometheus
//! alerting rules) are checked against what this daemon really exports: a
//! query naming a metric that a rename removed would show an empty panel or
//! an alert that can never fire, and nothing else would notice.
//!
//! The exported names are taken from a real render of [`Metrics`], so they
//! are the daemon's own; the queries are read with a small PromQL scanner
//! that knows functions, aggregation clauses, label matchers and range
//! selectors, and treats every other identifier as a metric name.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Metrics;
use super::tests::shared;

const DASHBOARD: &str = include_str!("../../../../ops/grafana-dashboard.json");
const ALERTS: &str = include_str!("../../../../ops/alerts.yml");

/// PromQL functions and aggregation operators the files may use.
const FUNCTIONS: &[&str] = &[
    "sum",
    "avg",
    "max",
    "min",
    "count",
    "rate",
    "irate",
    "increase",
    "delta",
    "deriv",
    "histogram_quantile",
    "clamp_min",
    "clamp_max",
    "abs",
    "absent",
    "topk",
    "bottomk",
    "max_over_time",
    "min_over_time",
    "avg_over_time",
    "changes",
    "resets",
    "time",
    "vector",
    "scalar",
];
/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Binary-operator keywords.
const OPERATORS: &[&str] = &["and", "or", "unless", "bool", "offset"];
/// Series Prometheus makes itself for every scrape target.
const SYNTHETIC: &[&str] = &["up"];

/// Every sample name of a real exposition (families, `_bucket`, `_sum`,
/// `_count` as they appear), from a render of the daemon's metrics.
fn exported() -> BTreeSet<String> {
    let text = Metrics::new(shared()).render();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_owned())
        .collect()
}

/// The metric names an expression selects, or why it cannot be read.
fn metric_names(expr: &str) -> Result<Vec<String>, String> {
    let b = expr.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    // Set after a keyword that takes a label list: the next `(...)` holds
    // label names, not expressions.
    let mut labels_next = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => {
                i = past_string(b, i).ok_or(format!("unterminated string in {expr}"))?
            }
            // Label matchers and range selectors hold no metric names.
            b'{' | b'[' => {
                let close = if c == b'{' { b'}' } else { b']' };
                i = past_group(b, i, close).ok_or(format!("unclosed {} in {expr}", c as char))?;
            }
            b'(' if labels_next => {
                i = past_group(b, i, b')').ok_or(format!("unclosed label list in {expr}"))?;
                labels_next = false;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                let rest = expr[i..].trim_start();
                if LABEL_LISTS.contains(&word) {
                    labels_next = true;
                } else if OPERATORS.contains(&word) {
                } else if FUNCTIONS.contains(&word) {
                    // `sum by (le) (...)`: the clause may come first.
                } else if rest.starts_with('(') {
                    return Err(format!("unknown function {word} in {expr}"));
                } else if word == "Inf" || word == "NaN" {
                } else {
                    names.push(word.to_owned());
                }
            }
            // Numbers (durations only occur inside [...]), operators, spaces.
            _ => i += 1,
        }
    }
    Ok(names)
}

/// The index just past the string literal that starts at `i`.
fn past_string(b: &[u8], i: usize) -> Option<usize> {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' if quote != b'`' => j += 2,
            q if q == quote => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// The index just past the `close` that ends the group opened at `i`,
/// string literals inside it skipped.
fn past_group(b: &[u8], i: usize, close: u8) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'"' | b'\'' | b'`' => j = past_string(b, j)?,
            c if c == close => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// Every query of the dashboard: its panels' targets and its variables.
fn dashboard_queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default().to_owned();
            out.push((format!("panel {:?}", p["title"]), expr));
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            // Grafana's `label_values(selector, label)`: the selector is PromQL.
            let q = v["query"]["query"].as_str().unwrap_or_default();
            let selector = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map_or(q, |(sel, _)| sel);
            out.push((format!("variable {:?}", v["name"]), selector.to_owned()));
        }
    }
    out
}

/// The `expr:` of every rule in the alerts file, each on one line.
fn alert_exprs(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|l| l.trim_start().strip_prefix("expr:"))
        .map(|e| e.trim().to_owned())
        .collect()
}

fn check_names(what: &str, expr: &str, exported: &BTreeSet<String>) {
    let names = metric_names(expr).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(!names.is_empty(), "{what} selects no metric: {expr}");
    for n in names {
        assert!(
            exported.contains(&n) || SYNTHETIC.contains(&n.as_str()),
            "{what} names {n}, which the daemon does not export: {expr}"
        );
    }
}

#[test]
fn promql_scanner_finds_metrics_and_skips_the_rest() {
    let e = r#"histogram_quantile(0.99, sum by (le, worker) (rate(a_bucket{instance=~"$i",x="y}"}[$__rate_interval]))) / on (worker) b > bool 2"#;
    assert_eq!(metric_names(e).unwrap(), ["a_bucket", "b"]);
    assert_eq!(metric_names("up{job='smrnet'} == 0").unwrap(), ["up"]);
    assert!(metric_names("frobnicate(a)").is_err());
    assert!(metric_names("a{x=\"y\"").is_err());
}

#[test]
fn the_check_catches_a_renamed_metric() {
    let exported = exported();
    let caught = std::panic::catch_unwind(|| {
        check_names("test", "rate(smrnet_tcp_passive_opens[5m])", &exported)
    });
    assert!(caught.is_err(), "a name without _total was accepted");
    check_names(
        "test",
        "rate(smrnet_tcp_passive_opens_total[5m])",
        &exported,
    );
}

#[test]
fn every_dashboard_query_names_an_exported_metric() {
    let exported = exported();
    let d: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let queries = dashboard_queries(&d);
    assert!(queries.len() > 20, "{} queries", queries.len());
    for (what, expr) in queries {
        check_names(&what, &expr, &exported);
    }
}

#[test]
fn every_alert_names_an_exported_metric() {
    let exported = exported();
    let exprs = alert_exprs(ALERTS);
    let rules = ALERTS.matches("- alert:").count();
    assert_eq!(exprs.len(), rules, "one single-line expr per alert");
    for e in exprs {
        assert!(!e.starts_with(['|', '>']), "keep expr on one line: {e}");
        check_names("alert", &e, &exported);
    }
}

/// What Grafana needs to import the file as is: a dashboard object with a
/// title, uid and schema version; a data source variable every query uses
/// (no `__inputs` to fill in); panels with unique ids, a known type and a
/// place on the 24-column grid that no other panel covers; targets with a
/// unique refId and a query.
#[test]
fn dashboard_has_grafana_s_shape() {
    let d: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    for key in ["title", "uid"] {
        assert!(d[key].as_str().is_some_and(|s| !s.is_empty()), "{key}");
    }
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 30));
    assert!(d.get("__inputs").is_none(), "imports without inputs");
    assert!(d.get("id").is_none_or(Value::is_null), "no instance id");
    let vars = d["templating"]["list"].as_array().expect("templating.list");
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a Prometheus data source variable"
    );
    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().expect("panel title");
        let id = p["id"].as_u64().expect("panel id");
        assert!(ids.insert(id), "duplicate panel id {id}");
        let ty = p["type"].as_str().expect("panel type");
        assert!(
            ["row", "timeseries", "stat", "gauge"].contains(&ty),
            "{title}: type {ty}"
        );
        let g = &p["gridPos"];
        let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| {
            g[k].as_u64()
                .unwrap_or_else(|| panic!("{title}: gridPos.{k}"))
        });
        assert!(w > 0 && h > 0 && x + w <= 24, "{title}: gridPos {g}");
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(cells.insert((cx, cy)), "{title} overlaps another panel");
            }
        }
        if ty == "row" {
            continue;
        }
        assert!(titles.insert(title), "duplicate title {title}");
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        assert!(p["fieldConfig"]["defaults"]["unit"].is_string(), "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(refs.insert(t["refId"].as_str().expect("refId")), "{title}");
            assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "{title}");
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
}

/// The panels an operator looks for, by the metric behind each.
#[test]
fn dashboard_covers_tcp_smr_pool_table_and_workers() {
    let d: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let all: Vec<String> = dashboard_queries(&d).into_iter().map(|(_, e)| e).collect();
    for metric in [
        "smrnet_tcp_curr_estab",
        "smrnet_tcp_passive_opens_total",
        "smrnet_tcp_active_opens_total",
        "smrnet_tcp_estab_resets_total",
        "smrnet_tcp_retrans_segs_total",
        "smrnet_syncookies_sent_total",
        "smrnet_syncookies_validated_total",
        "smrnet_syncookies_failed_total",
        "smrnet_listen_queue_overflows_total",
        "smrnet_smr_lag",
        "smrnet_smr_oldest_read_section_seconds",
        "smrnet_pool_live_objects",
        "smrnet_pool_pending_objects",
        "smrnet_pool_exhausted_total",
        "smrnet_pool_frees_per_advance",
        "smrnet_pool_reuse_latency_seconds_bucket",
        "smrnet_table_entries",
        "smrnet_table_max_chain_length",
        "smrnet_worker_busy_seconds_total",
        "smrnet_worker_packets_in_total",
    ] {
        assert!(
            all.iter()
                .any(|e| metric_names(e).unwrap().iter().any(|n| n == metric)),
            "no panel shows {metric}"
        );
    }
}
