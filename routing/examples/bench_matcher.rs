//! What routing costs per event, beside what the gateway already pays per event (serializing
//! it for Kafka), measured in the same run: `cargo run --release -p clickstream-routing --example bench_matcher`.

use std::hint::black_box;
use std::time::Instant;

use chrono::Utc;
use clickstream_routing::{EventFacts, Router, RoutingConfig};
use clickstream_schema::Event;
use serde_json::json;

const ROUNDS: u32 = 200_000;

fn router(rules: &serde_json::Value) -> Router {
    let config: RoutingConfig = serde_json::from_value(json!({ "rules": rules })).expect("config");
    Router::new(&config, "events.raw").expect("valid")
}

/// Nanoseconds per call of `f`, best of three runs.
fn time(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ROUNDS {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let mut event = Event::from_value(
        json!({"type": "track", "event": "Product Viewed", "anonymousId": "a-1234567890",
               "properties": {"product_id": "p-42", "price": 18.29, "plan": "free"},
               "context": {"page": {"path": "/products/42", "url": "https://shop.example/products/42"}}}),
        None,
    )
    .expect("event");
    let now = Utc::now();
    event.stamp(now, None);
    let baseline = time(|| {
        black_box(black_box(&event).to_json());
    });
    let no_rules = router(&json!([]));
    let payments = router(&json!([
        {"name": "payments", "event": ["Order Completed", "Payment *"], "topics": ["events.payments", "events.raw"]},
        {"name": "rest", "topics": ["events.raw"]}
    ]));
    let twenty: Vec<serde_json::Value> = (0..20)
        .map(|i| json!({"event": format!("Checkout Step {i} *"), "source": "web*", "property": "coupon", "topics": [format!("t{i}")]}))
        .collect();
    let twenty = router(&serde_json::Value::Array(twenty));
    println!("serializing the event for Kafka (baseline): {baseline:.0} ns/event");
    for (name, router) in [("no rules", &no_rules), ("payments, 2 rules", &payments), ("20 rules, none match", &twenty)]
    {
        let cost = time(|| {
            let facts = EventFacts::new(black_box(&event), "web", now);
            black_box(router.route(&facts, &()));
        });
        println!("route, {name}: {cost:.0} ns/event = {:.2} x the baseline", cost / baseline);
    }
}
