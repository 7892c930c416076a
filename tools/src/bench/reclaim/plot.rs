//! `--plots DIR`: the study's charts, each as SVG and PNG.
//!
//! The SVG is the chart of record: its text is SVG text and needs no font.
//! plotters draws bitmap text only with a font backend (`ttf`, which links
//! fontconfig and freetype, or `ab_glyph` with a font file we would have to
//! ship), so the PNG is the same chart with lines, shading and grid but no
//! text at all; each PNG sits next to its labelled SVG.

use super::Report;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

type Series = (String, Vec<(f64, f64)>);

/// Which latency of an arm row a chart draws.
type Pick = fn(&super::ArmRow) -> &super::OpLatencyNs;

struct Chart<'a> {
    file: &'a str,
    title: String,
    x_desc: &'a str,
    y_desc: &'a str,
    log_x: bool,
    log_y: bool,
    series: Vec<Series>,
    /// A shaded x range (the stall).
    band: Option<(f64, f64)>,
}

const COLORS: [RGBColor; 12] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(0, 0, 0),
    RGBColor(90, 200, 250),
];

fn color(name: &str) -> RGBColor {
    let order = [
        "smr",
        "smr-lazy",
        "smr-deferred",
        "pserialize",
        "pserialize-coalesced",
        "epoch",
        "rwlock",
        "dashmap",
        "none",
        "epoch-spread",
        "epoch, long reader",
        "epoch-spread, long reader",
    ];
    let i = order.iter().position(|n| *n == name).unwrap_or(8);
    COLORS[i]
}

type Err = Box<dyn std::error::Error>;

fn range(vals: impl Iterator<Item = f64> + Clone, log: bool) -> (f64, f64) {
    let floor = if log { 1e-3 } else { f64::MIN };
    let lo = vals
        .clone()
        .map(|v| v.max(floor))
        .fold(f64::INFINITY, f64::min);
    let hi = vals.fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (if log { 1.0 } else { 0.0 }, 1.0);
    }
    if log {
        (lo / 1.5, (hi * 1.5).max(lo * 2.0))
    } else {
        let lo = lo.min(0.0);
        (lo, if hi > lo { hi * 1.05 } else { lo + 1.0 })
    }
}

fn draw<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, c: &Chart, text: bool) -> Result<(), Err>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let xs = c.series.iter().flat_map(|s| s.1.iter().map(|p| p.0));
    let ys = c.series.iter().flat_map(|s| s.1.iter().map(|p| p.1));
    let (x0, x1) = range(xs, c.log_x);
    let (y0, y1) = range(ys, c.log_y);
    let mut b = ChartBuilder::on(&area);
    b.margin(15);
    if text {
        b.caption(&c.title, ("sans-serif", 18))
            .x_label_area_size(40)
            .y_label_area_size(70);
    } else {
        b.x_label_area_size(5).y_label_area_size(5);
    }
    // One body for the four axis kinds.
    macro_rules! body {
        ($chart:expr, $clampx:expr, $clampy:expr) => {{
            let mut chart = $chart;
            let mut mesh = chart.configure_mesh();
            if text {
                mesh.x_desc(c.x_desc).y_desc(c.y_desc);
            } else {
                // Fully transparent text is skipped before any font is
                // asked to draw it.
                mesh.label_style(("sans-serif", 10).into_font().color(&TRANSPARENT));
            }
            mesh.draw()?;
            if let Some((a, z)) = c.band {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [($clampx(a), $clampy(y0)), ($clampx(z), $clampy(y1))],
                    RGBColor(255, 200, 200).mix(0.5).filled(),
                )))?;
            }
            for (name, pts) in &c.series {
                let col = color(name);
                let pts: Vec<_> = pts.iter().map(|&(x, y)| ($clampx(x), $clampy(y))).collect();
                let s = chart.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))?;
                if text {
                    s.label(name.as_str()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], col.stroke_width(2))
                    });
                }
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, col.filled())))?;
            }
            if text {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()?;
            }
        }};
    }
    let cx = |v: f64| if c.log_x { v.max(x0) } else { v };
    let cy = |v: f64| if c.log_y { v.max(y0) } else { v };
    match (c.log_x, c.log_y) {
        (false, false) => body!(b.build_cartesian_2d(x0..x1, y0..y1)?, cx, cy),
        (true, false) => body!(b.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?, cx, cy),
        (false, true) => body!(b.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?, cx, cy),
        (true, true) => body!(
            b.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?,
            cx,
            cy
        ),
    }
    area.present()?;
    Ok(())
}

fn write(dir: &Path, c: &Chart) -> Result<(), Err> {
    let size = (900, 560);
    let svg = dir.join(format!("{}.svg", c.file));
    draw(SVGBackend::new(&svg, size).into_drawing_area(), c, true)?;
    let png = dir.join(format!("{}.png", c.file));
    draw(BitMapBackend::new(&png, size).into_drawing_area(), c, false)?;
    Ok(())
}

/// Write every chart of `r` into `dir`.
pub(super) fn write_all(dir: &Path, r: &Report) -> Result<(), Err> {
    std::fs::create_dir_all(dir)?;
    let max_readers = *r.plan.readers.last().expect("at least one reader count");
    let names: Vec<&str> = r.schemes.iter().copied().chain(["none"]).collect();

    let per_scheme = |f: &dyn Fn(&str) -> Vec<(f64, f64)>, names: &[&str]| -> Vec<Series> {
        names
            .iter()
            .map(|n| (n.to_string(), f(n)))
            .filter(|s| !s.1.is_empty())
            .collect()
    };

    let entries = r.plan.entries as usize;
    let hot = super::HOT_SET.min(entries);
    let each = "one shared table, each scheme's section";
    for (file, table, set, what) in [
        (
            "reclaim-read-cost",
            "own",
            entries,
            "each scheme's own table",
        ),
        ("reclaim-read-cost-shared", "shared", entries, each),
        ("reclaim-read-cost-hot", "shared", hot, each),
    ] {
        write(
            dir,
            &Chart {
                file,
                title: format!("Read-only lookup, {set} of {entries} connections, {what}"),
                x_desc: "reader threads",
                y_desc: "ns per lookup per thread",
                log_x: false,
                log_y: false,
                series: per_scheme(
                    &|n| {
                        r.read_only
                            .iter()
                            .filter(|x| x.scheme == n && x.table == table && x.working_set == set)
                            .map(|x| (x.readers as f64, x.ns_per_lookup))
                            .collect()
                    },
                    &names,
                ),
                band: None,
            },
        )?;
    }
    write(
        dir,
        &Chart {
            file: "reclaim-section-cost",
            title: "Empty read section (enter+exit)".into(),
            x_desc: "threads",
            y_desc: "ns per section per thread",
            log_x: false,
            log_y: false,
            series: per_scheme(
                &|n| {
                    r.section_cost
                        .iter()
                        .filter(|x| x.scheme == n)
                        .map(|x| (x.threads as f64, x.ns_per_section))
                        .collect()
                },
                &names,
            ),
            band: None,
        },
    )?;
    write(
        dir,
        &Chart {
            file: "reclaim-lookups-vs-churn",
            title: format!("Lookups vs churn, {max_readers} readers + 1 churner"),
            x_desc: "churn ops/s achieved (insert or remove)",
            y_desc: "lookups/s (all readers)",
            log_x: true,
            log_y: false,
            series: per_scheme(
                &|n| {
                    r.churn
                        .iter()
                        .filter(|x| x.scheme == n && x.readers == max_readers)
                        .map(|x| (x.churn_ops_per_s.max(1.0), x.lookups_per_s))
                        .collect()
                },
                &r.schemes,
            ),
            band: None,
        },
    )?;
    write(
        dir,
        &Chart {
            file: "reclaim-reuse-latency",
            title: format!(
                "Retire to reuse (epoch: to free), flat-out churn, {max_readers} readers"
            ),
            x_desc: "latency, ns",
            y_desc: "fraction of sampled retires",
            log_x: true,
            log_y: false,
            series: per_scheme(
                &|n| {
                    r.churn
                        .iter()
                        .find(|x| {
                            x.scheme == n
                                && x.readers == max_readers
                                && x.target_frees_per_s.is_none()
                        })
                        .map(|x| {
                            x.reuse_latency_ns
                                .cdf
                                .iter()
                                .map(|&[q, v]| (v, q))
                                .collect()
                        })
                        .unwrap_or_default()
                },
                &r.schemes,
            ),
            band: None,
        },
    )?;
    let band = r
        .stall
        .iter()
        .find(|s| s.scheme == "smr")
        .map(|s| (s.stall_window_ms[0], s.stall_window_ms[1]));
    write(
        dir,
        &Chart {
            file: "reclaim-pending-stall",
            title: format!(
                "Objects waiting for readers; one reader asleep in a section {} ms (shaded)",
                r.plan.stall_ms
            ),
            x_desc: "ms since start",
            y_desc: "pending objects (log; 0 drawn at the floor)",
            log_x: false,
            log_y: true,
            series: per_scheme(
                &|n| {
                    r.stall
                        .iter()
                        .find(|s| s.scheme == n)
                        .map(|s| s.series.iter().map(|&[t, p]| (t, p.max(1.0))).collect())
                        .unwrap_or_default()
                },
                &r.schemes,
            ),
            band,
        },
    )?;
    write(
        dir,
        &Chart {
            file: "reclaim-grace-periods",
            title: format!("Grace periods per 1,000 frees, {max_readers} readers"),
            x_desc: "frees/s achieved",
            y_desc: "grace periods per 1,000 frees",
            log_x: true,
            log_y: true,
            series: per_scheme(
                &|n| {
                    r.churn
                        .iter()
                        .filter(|x| x.scheme == n && x.readers == max_readers)
                        .filter_map(|x| {
                            let g = x.grace_periods_per_1000_frees?;
                            (g > 0.0).then_some(((x.churn_ops_per_s / 2.0).max(1.0), g))
                        })
                        .collect()
                },
                &r.schemes,
            ),
            band: None,
        },
    )?;
    // Spread vs batch frees: latency quantiles of the churner's steps and
    // of the reader's lookups, epoch with and without spreading, with and
    // without the long reader. x is the quantile in "nines".
    let nines = |q: f64| -(1.0 - q).log10();
    let pickers: [(&str, &str, Pick); 2] = [
        (
            "reclaim-spread-churn-latency",
            "churn step (insert + remove)",
            |a| &a.churn_step_ns,
        ),
        ("reclaim-spread-lookup-latency", "lookup", |a| &a.lookup_ns),
    ];
    for (file, what, pick) in pickers {
        let series = ["epoch", "epoch-spread"]
            .into_iter()
            .flat_map(|n| [(n, false), (n, true)])
            .filter_map(|(n, long)| {
                let a = r
                    .long_reader
                    .iter()
                    .find(|a| a.scheme == n && a.long_reader_ms.is_some() == long)?;
                let l = pick(a);
                let label = if long {
                    format!("{n}, long reader")
                } else {
                    n.to_string()
                };
                let pts = [(0.5, l.p50), (0.99, l.p99), (0.999, l.p999)]
                    .into_iter()
                    .map(|(q, v)| (nines(q), v.max(1) as f64))
                    .chain([(4.0, l.max.max(1) as f64)])
                    .collect();
                Some((label, pts))
            })
            .collect();
        write(
            dir,
            &Chart {
                file,
                title: format!(
                    "epoch: batch vs spread frees, {what} latency ({} ms long sections)",
                    r.plan.long_reader_ms
                ),
                x_desc: "quantile in nines (0.3 = p50, 2 = p99, 3 = p99.9, 4 = max)",
                y_desc: "ns (log)",
                log_x: false,
                log_y: true,
                series,
                band: None,
            },
        )?;
    }
    Ok(())
}
