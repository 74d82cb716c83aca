//! `clickstream loadtest compare`: the gateway against its baselines, back to back, with
//! ratios. In rounds, each running every target again, so that a shared machine's drift over
//! minutes shows as the spread of the rounds' ratios rather than as one run's result.

use std::time::Duration;

use crate::command::{peak_target, search_target, warm_up, write_report, Settings, BATCH_GOAL, SINGLE_EVENT_GOAL};
use crate::headroom;
use crate::payload::Mode;
use crate::pool::Pool;
use crate::report::{print_comparison, print_run, ratio, Ratio, Report, TargetRun};
use crate::runner::{RunOptions, Session};
use crate::search::SearchOptions;
use crate::split;
use crate::target::{Target, TargetKind, TargetSpec};

/// What `compare` runs.
#[derive(Debug, Clone, Copy)]
pub struct CompareOptions {
    /// The single-event searches.
    pub search: SearchOptions,
    /// Events per `/v1/batch` request in the batched comparison.
    pub batch: usize,
    /// The batched searches.
    pub batch_search: SearchOptions,
    /// Closed-loop peaks of this length instead of searches.
    pub peak: Option<Duration>,
    /// Times the whole comparison runs; each ratio reported is its median round's.
    pub rounds: usize,
}

/// hyper-baseline and the gateway with single events, then the gateway and raw-kafka with
/// batches, each searched for its max rate at its SLO, or with `peak` driven to closed-loop
/// peaks (gateway-null's among them), `rounds` times over.
pub async fn compare_command(settings: &Settings, options: &CompareOptions) -> anyhow::Result<Report> {
    let session = Session::new(settings.progress);
    let mut report = Report::new("clickstream load test: gateway against its baselines", settings.command_line.clone());
    let single = RunOptions { mode: Mode::Single, ..settings.run.clone() };
    let batched = RunOptions { mode: Mode::Batch { events: options.batch }, ..settings.run.clone() };
    let mut plan: Vec<(TargetKind, Vec<&RunOptions>)> = vec![
        (TargetKind::HyperBaseline, vec![&single]),
        (TargetKind::Gateway, vec![&single, &batched]),
        (TargetKind::RawKafka, vec![&batched]),
    ];
    if options.peak.is_some() {
        // Peaks are cheap: the gateway with a null sink splits the gap to each baseline into
        // the handler's part and Kafka's part (`split`).
        plan.insert(1, (TargetKind::GatewayNull, vec![&single, &batched]));
    }
    let rounds = options.rounds.max(1);
    let mut per_round = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let first = report.runs.len();
        let prefix = if rounds > 1 { format!("round {round}: ") } else { String::new() };
        for (kind, modes) in &plan {
            let target = Target::start(&TargetSpec { kind: *kind, url: None, ..settings.target.clone() }).await?;
            for run_options in modes {
                let runs = run_target(settings, options, &target, run_options, &session, &prefix).await?;
                report.runs.extend(runs);
            }
        }
        let runs = &report.runs[first..];
        let ratios = ratios(runs);
        print_comparison(
            &ratios,
            &if rounds > 1 { format!("ratios, round {round} of {rounds}") } else { "ratios".to_owned() },
        );
        for line in [split::single_line(runs), split::batch_line(runs)].into_iter().flatten() {
            println!("   {line}");
        }
        per_round.push(ratios);
        report.comparison = if rounds > 1 { medians(&per_round) } else { per_round.concat() };
        // Each round's report overwrites the last, so a failure in a later round keeps the
        // minutes of runs before it.
        if round < rounds {
            report.write(&settings.report_dir)?;
        }
    }
    if rounds > 1 {
        print_comparison(&report.comparison, &format!("ratios, medians of {rounds} rounds"));
    }
    write_report(&report, settings)?;
    Ok(report)
}

/// One target in one mode: its search or peak and, after the gateway's single-event peak, the
/// latency goal at a share of it beside raw-kafka at the same rate (the producer's and the
/// broker's p99 alone). Printed as they finish.
async fn run_target(
    settings: &Settings,
    options: &CompareOptions,
    target: &Target,
    run_options: &RunOptions,
    session: &Session,
    prefix: &str,
) -> anyhow::Result<Vec<TargetRun>> {
    let label = format!("{prefix}{} / {}", target.info.kind.as_str(), run_options.mode.label());
    let search = match run_options.mode {
        Mode::Single => options.search,
        Mode::Batch { .. } => options.batch_search,
    };
    let target_run = match options.peak {
        Some(duration) => {
            let settings = Settings { run: run_options.clone(), ..settings.clone() };
            peak_target(&settings, target, session, duration, label).await?
        }
        None => {
            let pool = Pool::open(target, run_options, session).await;
            warm_up(settings, &pool, session, search.start_rate, &label).await?;
            search_target(settings, target, &pool, &search, session, label).await?
        }
    };
    print_run(&target_run);
    let at_share = match (options.peak, target.info.kind, run_options.mode) {
        (Some(duration), TargetKind::Gateway, Mode::Single) => {
            Some(headroom::run_with_floor(settings, run_options, target, session, &target_run, prefix, duration).await?)
        }
        _ => None,
    };
    let Some((at_share, floor)) = at_share else { return Ok(vec![target_run]) };
    print_run(&at_share);
    print_run(&floor);
    let lines = [headroom::goal_line(&at_share, &floor), headroom::cost_line(&at_share, &target_run)];
    for line in lines.into_iter().flatten() {
        println!("   {line}");
    }
    Ok(vec![target_run, at_share, floor])
}

/// The ratios of one round's runs.
fn ratios(runs: &[TargetRun]) -> Vec<Ratio> {
    let find = |kind: TargetKind, batched: bool| runs.iter().find(|r| r.is(kind, batched));
    // A search's maximum, or what a peak run reached.
    let max = |run: &TargetRun, events: bool| {
        let searched = run.find_max.as_ref().and_then(|f| if events { f.max_events_per_sec } else { f.max_rps });
        let peaked = run.phases.first().filter(|_| run.peak).map(|p| {
            if events {
                p.achieved_events_per_sec
            } else {
                p.achieved_rps
            }
        });
        searched.or(peaked).unwrap_or(0.0)
    };
    let mut out = Vec::new();
    let pairs = [
        ("single-event POST vs hyper-baseline", false, TargetKind::HyperBaseline, false, "req/s", SINGLE_EVENT_GOAL),
        ("batched events vs raw-kafka", true, TargetKind::RawKafka, true, "events/s", BATCH_GOAL),
    ];
    for (name, subject_batched, baseline_kind, events, unit, goal) in pairs {
        if let (Some(subject), Some(baseline)) =
            (find(TargetKind::Gateway, subject_batched), find(baseline_kind, subject_batched))
        {
            let (s, b) = (max(subject, events), max(baseline, events));
            out.push(Ratio {
                name: if subject.peak { format!("{name}, closed-loop peak") } else { name.to_owned() },
                subject: format!("{} ({})", subject.target_label(), subject.mode.label()),
                subject_value: s,
                baseline: format!("{} ({})", baseline.target_label(), baseline.mode.label()),
                baseline_value: b,
                unit: unit.to_owned(),
                ratio: ratio(s, b),
                goal,
                rounds: Vec::new(),
            });
        }
    }
    out
}

/// Each comparison's median round, with every round's ratio kept beside it. For an even count
/// the lower of the two middle rounds stands: a ratio some round measured, whose two figures
/// were measured together and divide to it.
fn medians(per_round: &[Vec<Ratio>]) -> Vec<Ratio> {
    let Some(first) = per_round.first() else { return Vec::new() };
    first
        .iter()
        .filter_map(|shape| {
            let mut same: Vec<&Ratio> = per_round.iter().flatten().filter(|r| r.name == shape.name).collect();
            let rounds = same.iter().map(|r| r.ratio).collect();
            same.sort_by(|a, b| a.ratio.total_cmp(&b.ratio));
            let middle = same.get(same.len().saturating_sub(1) / 2)?;
            Some(Ratio { rounds, ..(*middle).clone() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio_of(name: &str, subject: f64, baseline: f64) -> Ratio {
        Ratio {
            name: name.to_owned(),
            subject: "gateway".to_owned(),
            subject_value: subject,
            baseline: "baseline".to_owned(),
            baseline_value: baseline,
            unit: "req/s".to_owned(),
            ratio: ratio(subject, baseline),
            goal: 0.6,
            rounds: Vec::new(),
        }
    }

    #[test]
    fn the_median_round_stands_for_each_comparison_apart_and_every_round_is_kept() {
        let rounds = vec![
            vec![ratio_of("single", 30.0, 100.0), ratio_of("batch", 80.0, 100.0)],
            vec![ratio_of("single", 50.0, 100.0), ratio_of("batch", 70.0, 100.0)],
            vec![ratio_of("single", 36.0, 80.0), ratio_of("batch", 90.0, 100.0)],
        ];
        let combined = medians(&rounds);
        assert_eq!(combined.len(), 2);
        let (single, batch) = (&combined[0], &combined[1]);
        assert_eq!(single.name, "single");
        assert_eq!(single.rounds, vec![0.3, 0.5, 0.45]);
        // The middle of 0.3, 0.45, 0.5, with the figures its round measured.
        assert_eq!((single.ratio, single.subject_value, single.baseline_value), (0.45, 36.0, 80.0));
        assert_eq!(batch.rounds, vec![0.8, 0.7, 0.9]);
        assert_eq!((batch.ratio, batch.subject_value, batch.baseline_value), (0.8, 80.0, 100.0));
        // An even count: the lower middle round, so the figures still divide to the ratio.
        let even = medians(&rounds[..2]);
        assert_eq!(even[0].rounds, vec![0.3, 0.5]);
        assert_eq!((even[0].ratio, even[0].subject_value, even[0].baseline_value), (0.3, 30.0, 100.0));
        assert_eq!((even[1].ratio, even[1].subject_value), (0.7, 70.0));
        assert!(medians(&[]).is_empty());
    }
}
