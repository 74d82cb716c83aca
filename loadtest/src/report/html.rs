//! The HTML report: one self-contained page (inline CSS and SVG, nothing fetched) with the
//! comparison, the capacity summary, and per run the phase table and three charts: latency
//! percentiles over time, latency against offered rate, and throughput over time.

use std::fmt::Write as _;

use super::svg::{escape, Chart, Series, PALETTE};
use super::{Report, TargetRun};
use crate::runner::PhaseResult;

const STYLE: &str = "body{font-family:sans-serif;margin:24px auto;max-width:980px;color:#222}\
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}\
td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f3f3f3}\
td.l,th.l{text-align:left}.pass{color:#080}.fail{color:#c00}section{margin-bottom:36px}\
code{background:#f5f5f5;padding:1px 4px}svg{display:block;margin:8px 0}";

pub fn render(report: &Report) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(&report.title)
    );
    let _ = write!(page, "<h1>{}</h1>", escape(&report.title));
    let _ = write!(
        page,
        "<p>Generated {} on a {}-CPU machine; load generator on CPU(s) {}.<br>Command: <code>{}</code></p>",
        escape(&report.generated_at),
        report.machine.cpus,
        escape(&report.machine.loadgen_cpus),
        escape(&report.command)
    );
    if !report.comparison.is_empty() {
        page.push_str("<h2>Ratios</h2><table><tr><th class=l>comparison</th><th>subject</th><th>baseline</th><th>ratio</th><th>goal</th></tr>");
        for r in &report.comparison {
            let class = if r.ratio >= r.goal { "pass" } else { "fail" };
            let _ = write!(
                page,
                "<tr><td class=l>{}<br><small>{} vs {}{}</small></td><td>{:.0} {}</td><td>{:.0} {}</td><td class={class}>{:.2}</td><td>&ge; {:.1}</td></tr>",
                escape(&r.name),
                escape(&r.subject),
                escape(&r.baseline),
                escape(&rounds_of(&r.rounds)),
                r.subject_value,
                escape(&r.unit),
                r.baseline_value,
                escape(&r.unit),
                r.ratio,
                r.goal
            );
        }
        page.push_str("</table>");
    }
    if report.runs.iter().filter(|r| !probe_points(r).is_empty()).count() > 1 {
        page.push_str(&rate_comparison_chart(report));
    }
    if let Some(overload) = &report.overload {
        page.push_str("<h2>Overload and recovery</h2><ul>");
        for line in overload.describe() {
            let _ = write!(page, "<li>{}</li>", escape(&line));
        }
        page.push_str("</ul><p><small>Recovery: the first second after the overload from which p99 stays within 1.5× the baseline's (or 2 ms above it) and acknowledged requests within 10% of the baseline's, for 3 seconds. The charts below mark each phase.</small></p>");
    }
    if !report.idle_connections.is_empty() {
        page.push_str("<h2>Idle connections</h2><table><tr><th class=l>target</th><th>connections</th><th>answered</th><th>still open</th><th>RSS before MiB</th><th>RSS after MiB</th><th>KiB per connection</th></tr>");
        let mib = |b: u64| b as f64 / 1_048_576.0;
        for r in &report.idle_connections {
            let _ = write!(
                page,
                "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
                r.target.as_str(), r.requested, r.answered, r.still_open, mib(r.rss_before_bytes), mib(r.rss_after_bytes), r.bytes_per_connection / 1024.0
            );
        }
        page.push_str("</table>");
    }
    for run in &report.runs {
        page.push_str(&render_run(run));
    }
    page.push_str("</body></html>");
    page
}

fn render_run(run: &TargetRun) -> String {
    let mut html = String::new();
    let _ = write!(html, "<section><h2>{}</h2>", escape(&run.label));
    let _ = write!(
        html,
        "<p>{} &middot; {} &middot; {} connections{}{}</p>",
        escape(&run.target_label()),
        escape(&run.mode.label()),
        run.connections,
        run.target.cpus.as_deref().map_or(String::new(), |c| format!(" &middot; server pinned to CPU {}", escape(c))),
        run.target.kafka.as_ref().map_or(String::new(), |k| format!(
            " &middot; Kafka {} topic <code>{}</code>, compression {}, idempotence {}",
            escape(&k.bootstrap_servers),
            escape(&k.topic),
            escape(&k.compression),
            k.idempotence
        ))
    );
    if let Some(search) = &run.find_max {
        let _ = write!(
            html,
            "<p><b>Max rate at p99 &le; {} ms (error rate &le; {}):</b> {}. Search stopped: {}.</p>",
            search.slo.p99_ms,
            search.slo.max_error_rate,
            match (search.max_rps, search.max_events_per_sec) {
                (Some(rps), Some(eps)) => format!("{rps:.0} req/s = {eps:.0} events/s"),
                _ => "no probed rate met the SLO".to_owned(),
            },
            escape(&search.stopped_because)
        );
    }
    if let Some(capacity) = &run.capacity {
        html.push_str("<ul>");
        for line in capacity.describe() {
            let _ = write!(html, "<li>{}</li>", escape(&line));
        }
        html.push_str("</ul>");
    }
    html.push_str(&phase_table(run));
    if let Some(e2e) = &run.e2e {
        let _ = write!(
            html,
            "<h3>End to end</h3><p>{} events sent, {} acknowledged.</p><table><tr><th class=l>path</th><th class=l>topic</th><th>seen</th><th>lost</th><th>seen unacked</th><th>duplicates</th><th>re-read</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>",
            e2e.sent_events, e2e.acknowledged_events
        );
        for t in &e2e.topics {
            if t.present {
                let _ = write!(
                    html,
                    "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
                    escape(&t.path), escape(&t.topic), t.seen, t.lost, t.seen_unacknowledged, t.duplicates, t.redelivered, t.latency.p50_ms, t.latency.p99_ms, t.latency.max_ms
                );
            } else {
                let _ = write!(
                    html,
                    "<tr><td class=l>{}</td><td class=l>{}</td><td colspan=8 class=l>topic not present</td></tr>",
                    escape(&t.path),
                    escape(&t.topic)
                );
            }
        }
        html.push_str("</table>");
    }
    let slo = run.find_max.as_ref().map(|s| s.slo.p99_ms);
    html.push_str(&latency_over_time(run, slo));
    html.push_str(&latency_vs_rate(run, slo));
    html.push_str(&throughput_over_time(run));
    html.push_str("</section>");
    html
}

fn phase_table(run: &TargetRun) -> String {
    let phases: Vec<(&PhaseResult, Option<bool>)> = match &run.find_max {
        Some(search) => search.probes.iter().map(|p| (&p.phase, Some(p.verdict.passed))).collect(),
        None => run.phases.iter().map(|p| (p, None)).collect(),
    };
    let mut html = String::from(
        "<table><tr><th>offered req/s</th><th>ok req/s</th><th>events/s</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th><th>service p99</th><th>errors</th><th>late</th><th>dropped</th><th>CPU gen/server</th><th class=l>statuses</th><th>SLO</th></tr>",
    );
    for (p, passed) in phases {
        let cpu = |c: Option<f64>| c.map_or("-".to_owned(), |c| format!("{c:.2}"));
        let statuses: Vec<String> = p.statuses.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let verdict = match passed {
            Some(true) => "<td class=pass>pass</td>",
            Some(false) => "<td class=fail>fail</td>",
            None => "<td>-</td>",
        };
        let _ = write!(
            html,
            "<tr><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td class=l>{}</td>{verdict}</tr>",
            p.offered_rps, p.achieved_rps, p.achieved_events_per_sec, p.latency.p50_ms, p.latency.p90_ms, p.latency.p99_ms,
            p.latency.p999_ms, p.latency.max_ms, p.service_time.p99_ms, p.completed - p.ok_requests, p.late,
            p.dropped + p.abandoned, cpu(p.loadgen_cpu_cores), cpu(p.server_cpu_cores), escape(&statuses.join(", "))
        );
    }
    html.push_str("</table><p><small>Latency in ms from the intended send time (coordinated-omission corrected); service time from the actual send.</small></p>");
    html
}

type PercentileOf = fn(&crate::stats::Percentiles) -> f64;

fn latency_over_time(run: &TargetRun, slo: Option<f64>) -> String {
    let mut chart = Chart::new("Latency percentiles over time", "seconds since start", "latency (ms, log scale)");
    chart.log_y = true;
    let pick: [(&str, PercentileOf); 4] =
        [("p50", |p| p.p50_ms), ("p90", |p| p.p90_ms), ("p99", |p| p.p99_ms), ("max", |p| p.max_ms)];
    for (i, (name, value)) in pick.into_iter().enumerate() {
        let points =
            run.timeline.iter().filter(|t| t.latency.count > 0).map(|t| (t.second as f64, value(&t.latency))).collect();
        chart.series.push(Series::line(name, PALETTE[i], points));
    }
    if let Some(slo) = slo {
        chart.thresholds.push((slo, format!("SLO p99 {slo} ms")));
    }
    chart.marks = phase_marks(run);
    chart.render()
}

/// Where each phase of a multi-phase run (step profile, overload scenario) began.
fn phase_marks(run: &TargetRun) -> Vec<(f64, String)> {
    if run.find_max.is_some() || !(2..=12).contains(&run.phases.len()) {
        return Vec::new();
    }
    run.phases.iter().map(|p| (p.started_s, format!("{:.0}/s", p.offered_rps))).collect()
}

fn probe_points(run: &TargetRun) -> Vec<(f64, f64, Option<bool>)> {
    match &run.find_max {
        Some(search) => search
            .probes
            .iter()
            .map(|p| (p.phase.offered_events_per_sec, p.phase.latency.p99_ms, Some(p.verdict.passed)))
            .collect(),
        None => run.phases.iter().map(|p| (p.offered_events_per_sec, p.latency.p99_ms, None)).collect(),
    }
}

fn latency_vs_rate(run: &TargetRun, slo: Option<f64>) -> String {
    let mut chart = Chart::new("Latency against offered rate", "offered events/s", "latency (ms, log scale)");
    chart.log_y = true;
    let mut phases: Vec<&PhaseResult> = match &run.find_max {
        Some(search) => search.probes.iter().map(|p| &p.phase).collect(),
        None => run.phases.iter().collect(),
    };
    phases.sort_by(|a, b| a.offered_rps.total_cmp(&b.offered_rps));
    let series = |name: &str, color: &str, f: fn(&PhaseResult) -> f64| {
        Series::line(name, color, phases.iter().map(|p| (p.offered_events_per_sec, f(p))).collect()).with_markers()
    };
    chart.series.push(series("p50", PALETTE[0], |p| p.latency.p50_ms));
    chart.series.push(series("p99", PALETTE[2], |p| p.latency.p99_ms));
    let failed: Vec<(f64, f64)> =
        probe_points(run).into_iter().filter(|p| p.2 == Some(false)).map(|p| (p.0, p.1)).collect();
    if !failed.is_empty() {
        chart.series.push(Series::line("p99, failed SLO", "#d00", failed).markers_only());
    }
    if let Some(slo) = slo {
        chart.thresholds.push((slo, format!("SLO p99 {slo} ms")));
    }
    chart.render()
}

fn throughput_over_time(run: &TargetRun) -> String {
    let events = run.mode.events_per_request() as f64;
    let mut chart = Chart::new("Throughput over time", "seconds since start", "events per second");
    let points =
        |f: fn(&crate::stats::TimelinePoint) -> f64| run.timeline.iter().map(|t| (t.second as f64, f(t))).collect();
    let offered = run.timeline.iter().map(|t| (t.second as f64, t.offered_rps as f64 * events)).collect();
    chart.series.push(Series::line("acknowledged events/s", PALETTE[2], points(|t| t.ok_events_per_sec as f64)));
    chart.series.push(Series::line("errors/s", "#d00", points(|t| t.errors as f64)));
    chart.series.push(Series::line("offered events/s", PALETTE[6], offered).dashed());
    chart.marks = phase_marks(run);
    chart.render()
}

/// "; median of the rounds (0.31 0.45 0.38)" under a ratio taken over rounds; nothing for one run.
fn rounds_of(rounds: &[f64]) -> String {
    let note = super::rounds_note(rounds);
    if note.is_empty() {
        note
    } else {
        format!("; median of the rounds{note}")
    }
}

fn rate_comparison_chart(report: &Report) -> String {
    let mut chart =
        Chart::new("p99 latency against offered rate, every target", "offered events/s", "p99 latency (ms, log scale)");
    chart.log_y = true;
    for (i, run) in report.runs.iter().enumerate() {
        let mut points: Vec<(f64, f64)> = probe_points(run).into_iter().map(|p| (p.0, p.1)).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.series.push(Series::line(run.label.clone(), PALETTE[i % PALETTE.len()], points).with_markers());
        if let Some(slo) = run.find_max.as_ref().map(|s| s.slo.p99_ms) {
            if !chart.thresholds.iter().any(|(v, _)| *v == slo) {
                chart.thresholds.push((slo, format!("SLO p99 {slo} ms")));
            }
        }
    }
    chart.render()
}
