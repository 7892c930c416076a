//! The study's report as text tables (without `--json`): one table per
//! part of the study, in the order the JSON lists them.

use super::Report;
use std::io::{self, Write};

pub(super) fn write_tables(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    let p = &r.plan;
    writeln!(
        out,
        "reclamation study: {} entries, median of {} runs x {} ms, {} cpus, pool cap {}, smr modes {:?}",
        p.entries,
        p.runs,
        p.millis_per_run,
        r.machine.cpus(),
        p.pool_cap,
        r.smr_modes
    )?;
    writeln!(out, "\nread section alone (ns per enter+exit, per thread)")?;
    for s in &r.section_cost {
        writeln!(
            out,
            "{:<22} {:>3} thr {:>8.2}",
            s.scheme, s.threads, s.ns_per_section
        )?;
    }
    writeln!(out, "\nread-only lookups (set = distinct tuples looked up)")?;
    writeln!(
        out,
        "{:<22} {:>6} {:>7} {:>7} {:>12} {:>10} {:>8}",
        "scheme", "table", "set", "readers", "lookups/s", "ns/lookup", "vs none"
    )?;
    for x in &r.read_only {
        writeln!(
            out,
            "{:<22} {:>6} {:>7} {:>7} {:>12.0} {:>10.2} {:>8.3}",
            x.scheme,
            x.table,
            x.working_set,
            x.readers,
            x.lookups_per_s,
            x.ns_per_lookup,
            x.vs_unprotected
        )?;
    }
    writeln!(out, "\nunder churn (rate = target frees/s, max = flat out)")?;
    writeln!(
        out,
        "{:<22} {:>3} {:>8} {:>11} {:>10} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>8}",
        "scheme",
        "rd",
        "rate",
        "lookups/s",
        "churn/s",
        "reuse-p50",
        "reuse-p99",
        "peak-pend",
        "gp/1kfr",
        "xc/1kfr",
        "cpu/fr",
        "exhaust"
    )?;
    let opt = |x: Option<u64>| x.map_or("-".to_string(), |v| format!("{:.1}us", v as f64 / 1e3));
    for c in &r.churn {
        writeln!(
            out,
            "{:<22} {:>3} {:>8} {:>11.0} {:>10.0} {:>9} {:>9} {:>9} {:>8} {:>7.2} {:>7.0} {:>8}",
            c.scheme,
            c.readers,
            c.target_frees_per_s
                .map_or("max".to_string(), |x| format!("{x:.0}")),
            c.lookups_per_s,
            c.churn_ops_per_s,
            opt(c.reuse_latency_ns.p50),
            opt(c.reuse_latency_ns.p99),
            c.peak_pending,
            c.grace_periods_per_1000_frees
                .map_or("-".to_string(), |g| format!("{g:.2}")),
            c.xcalls_per_1000_frees,
            c.write_cpu_ns_per_free,
            c.exhausted
        )?;
    }
    writeln!(
        out,
        "\nstalled reader ({} ms inside one section)",
        p.stall_ms
    )?;
    for s in &r.stall {
        writeln!(
            out,
            "{:<22} peak pending {:>8} (cap {:>8}) churn/s before {:>9.0} during {:>9.0} step max {:>10.1}us exhausted {:>6} intact {:?}",
            s.scheme,
            s.peak_pending,
            s.pool_cap.map_or("-".to_string(), |c| c.to_string()),
            s.churn_ops_per_s_before,
            s.churn_ops_per_s_during,
            s.writer_step_max_us,
            s.exhausted,
            s.held_node_intact
        )?;
    }
    writeln!(
        out,
        "\nlong-running reader ({} ms sections) and spread frees; 1 reader + churner flat out",
        p.long_reader_ms
    )?;
    writeln!(
        out,
        "{:<22} {:>5} {:>10} {:>11} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9} {:>10}",
        "scheme",
        "long",
        "churn/s",
        "lookups/s",
        "peak-pend",
        "avg-pend",
        "step-p99",
        "step-p999",
        "step-max",
        "look-p99",
        "look-p999"
    )?;
    let us = |ns: u64| format!("{:.1}us", ns as f64 / 1e3);
    for a in &r.long_reader {
        writeln!(
            out,
            "{:<22} {:>5} {:>10.0} {:>11.0} {:>9} {:>9.0} {:>9} {:>10} {:>10} {:>9} {:>10}",
            a.scheme,
            a.long_reader_ms
                .map_or("-".to_string(), |m| format!("{m}ms")),
            a.churn_ops_per_s,
            a.lookups_per_s,
            a.peak_pending,
            a.avg_pending,
            us(a.churn_step_ns.p99),
            us(a.churn_step_ns.p999),
            us(a.churn_step_ns.max),
            us(a.lookup_ns.p99),
            us(a.lookup_ns.p999)
        )?;
    }
    writeln!(
        out,
        "\n{}",
        serde_json::to_string(&r.targets).map_err(io::Error::other)?
    )
}
