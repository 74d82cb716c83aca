//! The console's figures: events per minute by source and event name, top products from the
//! one-minute product activity windows, and the gateway's own counters read from its metrics.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{json, Value};

/// Minutes of history the rates and products keep.
pub const MINUTES: i64 = 15;
/// Distinct (source, name) pairs counted per minute; more go under `(other)`, so a client
/// sending a new event name each time cannot grow the table without bound.
const MAX_KEYS_PER_MINUTE: usize = 500;
const MINUTE_MS: i64 = 60_000;

/// Events per minute by (source, event name or type), for the last `MINUTES` minutes.
#[derive(Debug, Default)]
pub struct Rates {
    minutes: BTreeMap<i64, HashMap<(String, String), u64>>,
}

impl Rates {
    /// Counts one event at `time_ms`; events older than the window are ignored.
    pub fn count(&mut self, time_ms: i64, now_ms: i64, source: &str, name: &str) {
        let minute = time_ms.div_euclid(MINUTE_MS);
        let oldest = now_ms.div_euclid(MINUTE_MS) - MINUTES + 1;
        if minute < oldest {
            return;
        }
        let counts = self.minutes.entry(minute).or_default();
        let key = (source.to_owned(), name.to_owned());
        let key = if counts.len() >= MAX_KEYS_PER_MINUTE && !counts.contains_key(&key) {
            (source.to_owned(), "(other)".to_owned())
        } else {
            key
        };
        *counts.entry(key).or_default() += 1;
        while self.minutes.first_key_value().is_some_and(|(m, _)| *m < oldest) {
            self.minutes.pop_first();
        }
    }

    /// `[{source, name, perMinute: [oldest .. this minute]}]`, busiest first, and the first
    /// minute's start in ms.
    pub fn to_json(&self, now_ms: i64) -> Value {
        let this_minute = now_ms.div_euclid(MINUTE_MS);
        let first = this_minute - MINUTES + 1;
        let mut series: HashMap<&(String, String), Vec<u64>> = HashMap::new();
        for (minute, counts) in self.minutes.range(first..=this_minute) {
            for (key, count) in counts {
                series.entry(key).or_insert_with(|| vec![0; MINUTES as usize])[(minute - first) as usize] += count;
            }
        }
        let mut rows: Vec<_> = series.into_iter().collect();
        rows.sort_by(|a, b| b.1.iter().sum::<u64>().cmp(&a.1.iter().sum::<u64>()).then(a.0.cmp(b.0)));
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|((source, name), per_minute)| json!({"source": source, "name": name, "perMinute": per_minute}))
            .collect();
        json!({"firstMinuteMs": first * MINUTE_MS, "series": rows})
    }
}

/// A window row of the enricher's product activity topic (`enricher::window::WindowRow`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WindowRow {
    product_id: String,
    event: String,
    window_start: String,
    count: u64,
    #[serde(default)]
    revenue: f64,
}

/// Product activity of the last `MINUTES` minutes, from the enricher's window rows.
#[derive(Debug, Default)]
pub struct Products {
    /// (window start ms, product, event) → (count, revenue); a row emitted again replaces the old.
    windows: BTreeMap<(i64, String, String), (u64, f64)>,
}

impl Products {
    pub fn add(&mut self, payload: &[u8], now_ms: i64) {
        let Ok(row) = serde_json::from_slice::<WindowRow>(payload) else { return };
        let Some(start) = clickstream_schema::parse_timestamp(&row.window_start).map(|t| t.timestamp_millis()) else {
            return;
        };
        self.windows.insert((start, row.product_id, row.event), (row.count, row.revenue));
        let oldest = now_ms - MINUTES * MINUTE_MS;
        while self.windows.first_key_value().is_some_and(|((start, _, _), _)| *start < oldest) {
            self.windows.pop_first();
        }
    }

    /// The `limit` busiest products: `[{productId, events: {name: count}, total, revenue}]`.
    pub fn top(&self, limit: usize) -> Value {
        let mut products: HashMap<&str, (BTreeMap<&str, u64>, u64, f64)> = HashMap::new();
        for ((_, product, event), (count, revenue)) in &self.windows {
            let entry = products.entry(product).or_default();
            *entry.0.entry(event).or_default() += count;
            entry.1 += count;
            entry.2 += revenue;
        }
        let mut rows: Vec<_> = products.into_iter().collect();
        rows.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
        rows.truncate(limit);
        let rows: Vec<Value> = rows
            .into_iter()
            .map(|(id, (events, total, revenue))| {
                json!({"productId": id, "events": events, "total": total, "revenue": (revenue * 100.0).round() / 100.0})
            })
            .collect();
        Value::Array(rows)
    }
}

/// The gateway counters the console shows, summed over their labels, from its Prometheus text,
/// and the tracking-plan violations per event name (the plan's file names, or `other`).
pub fn gateway_counters(prometheus: &str) -> Value {
    let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
    let mut violations: BTreeMap<&str, f64> = BTreeMap::new();
    for line in prometheus.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let (name, labels) = series.split_once('{').unwrap_or((series, ""));
        if name == "clickstream_tracking_plan_violations_total" {
            *violations.entry(label(labels, "event").unwrap_or("other")).or_default() += value;
            continue;
        }
        let shown = match name {
            "clickstream_events_accepted_total" => "accepted",
            "clickstream_events_rejected_total" => "rejected",
            "clickstream_events_suppressed_total" => "suppressed",
            "clickstream_shed_total" => "shed",
            "clickstream_rate_limited_total" => "rateLimited",
            "clickstream_http_requests_total" if labels.contains("status=\"503\"") => "unavailable503",
            "clickstream_spool_events" => "spoolEvents",
            "clickstream_spool_bytes" => "spoolBytes",
            _ => continue,
        };
        *sums.entry(shown).or_default() += value;
    }
    let mut counters = json!({
        "accepted": 0, "rejected": 0, "suppressed": 0, "shed": 0, "rateLimited": 0,
        "unavailable503": 0, "spoolEvents": 0, "spoolBytes": 0,
    });
    for (name, value) in sums {
        counters[name] = json!(value as u64);
    }
    counters["planViolations"] = violations.into_iter().map(|(event, n)| (event.to_owned(), json!(n as u64))).collect();
    counters
}

/// The value of label `name` in a Prometheus series' label text (`a="x",b="y"}`).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    rest.find('"').map(|end| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn rates_keep_fifteen_minutes_per_source_and_name() {
        let mut rates = Rates::default();
        rates.count(NOW, NOW, "web", "Product Viewed");
        rates.count(NOW - 1000, NOW, "web", "Product Viewed");
        rates.count(NOW - 5 * MINUTE_MS, NOW, "app", "page");
        rates.count(NOW - 20 * MINUTE_MS, NOW, "web", "too old");
        let json = rates.to_json(NOW);
        let series = json["series"].as_array().expect("series");
        assert_eq!(series.len(), 2, "{json}");
        assert_eq!(series[0]["name"], "Product Viewed");
        assert_eq!(
            series[0]["perMinute"][14].as_u64().expect("present")
                + series[0]["perMinute"][13].as_u64().expect("present"),
            2
        );
        assert_eq!(
            series[1]["perMinute"].as_array().expect("present").iter().filter_map(Value::as_u64).sum::<u64>(),
            1
        );
    }

    #[test]
    fn products_add_up_windows_and_replace_a_reemitted_row() {
        let mut products = Products::default();
        let row = |product: &str, event: &str, start: &str, count: u64| {
            format!(
                r#"{{"productId":"{product}","event":"{event}","windowStart":"{start}","windowEnd":"x","count":{count},"quantity":0,"revenue":1.5}}"#
            )
        };
        let now = clickstream_schema::parse_timestamp("2026-01-01T12:10:30Z").expect("present").timestamp_millis();
        products.add(row("p1", "Product Viewed", "2026-01-01T12:09:00Z", 3).as_bytes(), now);
        products.add(row("p1", "Product Viewed", "2026-01-01T12:09:00Z", 4).as_bytes(), now);
        products.add(row("p1", "Product Added", "2026-01-01T12:10:00Z", 1).as_bytes(), now);
        products.add(row("p2", "Product Viewed", "2026-01-01T12:10:00Z", 2).as_bytes(), now);
        products.add(row("p3", "Product Viewed", "2026-01-01T11:00:00Z", 9).as_bytes(), now);
        let top = products.top(5);
        assert_eq!(top[0]["productId"], "p1");
        assert_eq!(top[0]["total"], 5);
        assert_eq!(top[0]["events"]["Product Viewed"], 4);
        assert_eq!(top.as_array().expect("present").len(), 2, "p3 is too old: {top}");
    }

    #[test]
    fn plan_violations_are_summed_per_event_name() {
        let text = "clickstream_tracking_plan_violations_total{action=\"allow\",event=\"Order Completed\",source=\"web\"} 2\n\
                    clickstream_tracking_plan_violations_total{action=\"dlq\",event=\"Order Completed\",source=\"app\"} 3\n\
                    clickstream_tracking_plan_violations_total{action=\"drop\",event=\"other\",source=\"web\"} 1\n";
        let counters = gateway_counters(text);
        assert_eq!(counters["planViolations"], json!({"Order Completed": 5, "other": 1}));
        assert_eq!(gateway_counters("")["planViolations"], json!({}));
    }

    #[test]
    fn counters_are_summed_over_labels() {
        let text = "# HELP x\nclickstream_shed_total{error=\"overloaded\"} 2\nclickstream_shed_total{error=\"kafka_behind\"} 3\n\
                    clickstream_http_requests_total{route=\"/v1/batch\",status=\"503\"} 4\n\
                    clickstream_http_requests_total{route=\"/v1/batch\",status=\"200\"} 9\nclickstream_spool_events 7\n";
        let counters = gateway_counters(text);
        assert_eq!((counters["shed"].as_u64(), counters["unavailable503"].as_u64()), (Some(5), Some(4)));
        assert_eq!((counters["spoolEvents"].as_u64(), counters["accepted"].as_u64()), (Some(7), Some(0)));
    }
}
