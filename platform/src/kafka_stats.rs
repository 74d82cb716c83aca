//! librdkafka statistics (`statistics.interval.ms`) as metrics: a context stores the latest
//! snapshot, and observable gauges read it at each scrape or OTLP export.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use opentelemetry::metrics::{Meter, ObservableGauge};
use opentelemetry::KeyValue;
use rdkafka::Statistics;

/// How often librdkafka emits statistics unless configured otherwise, in milliseconds.
pub const DEFAULT_STATISTICS_INTERVAL_MS: u64 = 5_000;

/// The numbers kept from one statistics report; labels are broker names and topic/partition
/// numbers, which identify infrastructure, never users.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaStatsSnapshot {
    /// Messages in the client's queues, waiting to be sent or acknowledged.
    pub queue_messages: u64,
    /// Bytes in the client's queues.
    pub queue_bytes: u64,
    /// Per broker: name, whether its connection is up, its round-trip time (avg, p99) and how
    /// long produced records waited inside the client before being sent (p99), in seconds.
    pub brokers: Vec<BrokerStats>,
    /// Per consumed partition with a known lag: topic, partition, messages behind the high watermark.
    pub consumer_lag: Vec<(String, i32, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrokerStats {
    pub name: String,
    pub up: bool,
    pub rtt_avg_secs: f64,
    pub rtt_p99_secs: f64,
    /// librdkafka `int_latency` p99: from the produce call until the record's batch is written
    /// to a request (linger and waiting for an in-flight slot included).
    pub queue_p99_secs: f64,
    /// librdkafka `outbuf_latency` p99: a request waiting to be sent on the connection.
    pub outbuf_p99_secs: f64,
}

impl KafkaStatsSnapshot {
    pub fn from_statistics(stats: &Statistics) -> Self {
        let mut brokers: Vec<BrokerStats> = stats
            .brokers
            .values()
            // librdkafka's internal pseudo-broker has no connection to report on.
            .filter(|b| b.nodeid >= 0 && b.source != "internal")
            .map(|b| BrokerStats {
                name: b.name.clone(),
                up: b.state == "UP",
                rtt_avg_secs: b.rtt.as_ref().map_or(0.0, |w| w.avg as f64 / 1e6),
                rtt_p99_secs: p99_secs(b.rtt.as_ref()),
                queue_p99_secs: p99_secs(b.int_latency.as_ref()),
                outbuf_p99_secs: p99_secs(b.outbuf_latency.as_ref()),
            })
            .collect();
        brokers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut consumer_lag: Vec<(String, i32, i64)> = stats
            .topics
            .values()
            .flat_map(|t| {
                t.partitions
                    .values()
                    .filter(|p| p.partition >= 0 && p.consumer_lag >= 0)
                    .map(|p| (t.topic.clone(), p.partition, p.consumer_lag))
            })
            .collect();
        consumer_lag.sort();
        Self { queue_messages: stats.msg_cnt, queue_bytes: stats.msg_size, brokers, consumer_lag }
    }
}

/// A librdkafka window's p99, given in microseconds, in seconds; 0 when it is absent.
fn p99_secs(window: Option<&rdkafka::statistics::Window>) -> f64 {
    window.map_or(0.0, |w| w.p99 as f64 / 1e6)
}

/// The latest snapshot of each client in a slot, written by a client context's `stats`
/// callback. A service that runs several clients of one kind (the enricher's pipeline
/// threads) gives each its own slot, and reads them merged.
#[derive(Debug, Default)]
pub struct KafkaStatsCell {
    latest: RwLock<BTreeMap<usize, KafkaStatsSnapshot>>,
}

impl KafkaStatsCell {
    /// Call from `ClientContext::stats` of a service's only client of its kind.
    pub fn record(&self, stats: &Statistics) {
        self.record_slot(0, stats);
    }

    /// Call from `ClientContext::stats`; a client replaces the snapshot of its slot.
    pub fn record_slot(&self, slot: usize, stats: &Statistics) {
        self.put(slot, KafkaStatsSnapshot::from_statistics(stats));
    }

    fn put(&self, slot: usize, snapshot: KafkaStatsSnapshot) {
        self.latest.write().unwrap_or_else(|p| p.into_inner()).insert(slot, snapshot);
    }

    /// Every slot's latest snapshot merged: queues summed, a broker up only if it is up for
    /// every client (with the worst round trip), and every client's partitions.
    pub fn latest(&self) -> Option<KafkaStatsSnapshot> {
        let slots = self.latest.read().unwrap_or_else(|p| p.into_inner());
        let mut snapshots = slots.values();
        let mut merged = snapshots.next()?.clone();
        for other in snapshots {
            merged.queue_messages += other.queue_messages;
            merged.queue_bytes += other.queue_bytes;
            for broker in &other.brokers {
                match merged.brokers.iter_mut().find(|b| b.name == broker.name) {
                    Some(known) => {
                        known.up &= broker.up;
                        known.rtt_avg_secs = known.rtt_avg_secs.max(broker.rtt_avg_secs);
                        known.rtt_p99_secs = known.rtt_p99_secs.max(broker.rtt_p99_secs);
                        known.queue_p99_secs = known.queue_p99_secs.max(broker.queue_p99_secs);
                        known.outbuf_p99_secs = known.outbuf_p99_secs.max(broker.outbuf_p99_secs);
                    }
                    None => merged.brokers.push(broker.clone()),
                }
            }
            merged.consumer_lag.extend(other.consumer_lag.iter().cloned());
        }
        merged.brokers.sort_by(|a, b| a.name.cmp(&b.name));
        merged.consumer_lag.sort();
        // Right after a rebalance, two clients can both report a partition for one interval.
        merged.consumer_lag.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        Some(merged)
    }
}

/// Reads the labelled values of one gauge from a snapshot, given the client label.
type ReadSeries = fn(&KafkaStatsSnapshot, &str) -> Vec<(f64, Vec<KeyValue>)>;

/// Gauges over the cell, kept alive by the returned handles. `client` ("producer",
/// "consumer") labels every series, so one service can register several clients.
pub fn register_kafka_stats(
    meter: &Meter,
    client: &'static str,
    cell: &Arc<KafkaStatsCell>,
) -> Vec<ObservableGauge<f64>> {
    let gauge = |name: &'static str, help: &'static str, read: ReadSeries| {
        let weak = Arc::downgrade(cell);
        meter
            .f64_observable_gauge(name)
            .with_description(help)
            .with_callback(move |observer| {
                if let Some(snapshot) = weak.upgrade().and_then(|c| c.latest()) {
                    for (value, labels) in read(&snapshot, client) {
                        observer.observe(value, &labels);
                    }
                }
            })
            .build()
    };
    vec![
        gauge(
            "clickstream.kafka.queue.messages",
            "Messages in the Kafka client's queues (librdkafka msg_cnt).",
            |s, c| vec![(s.queue_messages as f64, vec![KeyValue::new("client", c.to_owned())])],
        ),
        gauge("clickstream.kafka.queue.bytes", "Bytes in the Kafka client's queues (librdkafka msg_size).", |s, c| {
            vec![(s.queue_bytes as f64, vec![KeyValue::new("client", c.to_owned())])]
        }),
        gauge("clickstream.kafka.broker.up", "1 while the client's connection to the broker is up.", |s, c| {
            s.brokers.iter().map(|b| (f64::from(u8::from(b.up)), broker_labels(c, &b.name))).collect()
        }),
        gauge(
            "clickstream.kafka.broker.rtt.avg.seconds",
            "Average broker round-trip time over the last statistics window.",
            |s, c| s.brokers.iter().map(|b| (b.rtt_avg_secs, broker_labels(c, &b.name))).collect(),
        ),
        gauge(
            "clickstream.kafka.broker.rtt.p99.seconds",
            "p99 broker round-trip time over the last statistics window.",
            |s, c| s.brokers.iter().map(|b| (b.rtt_p99_secs, broker_labels(c, &b.name))).collect(),
        ),
        gauge(
            "clickstream.kafka.broker.queue.p99.seconds",
            "p99 time produced records waited in the client before their request was built (librdkafka int_latency: linger and in-flight limits).",
            |s, c| s.brokers.iter().map(|b| (b.queue_p99_secs, broker_labels(c, &b.name))).collect(),
        ),
        gauge(
            "clickstream.kafka.broker.outbuf.p99.seconds",
            "p99 time a request waited to be sent on the broker connection (librdkafka outbuf_latency).",
            |s, c| s.brokers.iter().map(|b| (b.outbuf_p99_secs, broker_labels(c, &b.name))).collect(),
        ),
        gauge(
            "clickstream.kafka.consumer.lag",
            "Messages between the consumer's position and the partition's high watermark.",
            |s, c| {
                s.consumer_lag
                    .iter()
                    .map(|(topic, partition, lag)| {
                        let labels = vec![
                            KeyValue::new("client", c.to_owned()),
                            KeyValue::new("topic", topic.clone()),
                            KeyValue::new("partition", i64::from(*partition)),
                        ];
                        (*lag as f64, labels)
                    })
                    .collect()
            },
        ),
    ]
}

fn broker_labels(client: &str, broker: &str) -> Vec<KeyValue> {
    vec![KeyValue::new("client", client.to_owned()), KeyValue::new("broker", broker.to_owned())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(name: &str, up: bool, rtt: f64) -> BrokerStats {
        BrokerStats { name: name.to_owned(), up, rtt_avg_secs: rtt, rtt_p99_secs: rtt, ..BrokerStats::default() }
    }

    #[test]
    fn slots_merge_into_one_view_of_every_client() {
        let cell = KafkaStatsCell::default();
        assert_eq!(cell.latest(), None);
        let first = KafkaStatsSnapshot {
            queue_messages: 2,
            queue_bytes: 20,
            brokers: vec![broker("b1", true, 0.001)],
            consumer_lag: vec![("raw".to_owned(), 0, 5), ("raw".to_owned(), 2, 1)],
        };
        let second = KafkaStatsSnapshot {
            queue_messages: 3,
            queue_bytes: 30,
            brokers: vec![broker("b1", false, 0.004), broker("b2", true, 0.002)],
            consumer_lag: vec![("raw".to_owned(), 1, 7), ("raw".to_owned(), 2, 1)],
        };
        cell.put(0, first.clone());
        assert_eq!(cell.latest(), Some(first));
        cell.put(1, second);
        let merged = cell.latest().expect("two slots");
        assert_eq!((merged.queue_messages, merged.queue_bytes), (5, 50));
        assert_eq!(merged.brokers, vec![broker("b1", false, 0.004), broker("b2", true, 0.002)]);
        let lags: Vec<(i32, i64)> = merged.consumer_lag.iter().map(|(_, p, lag)| (*p, *lag)).collect();
        assert_eq!(lags, vec![(0, 5), (1, 7), (2, 1)]);
    }
}
