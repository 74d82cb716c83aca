//! `clickstream cdc` against a real PostgreSQL (a throwaway cluster) and Tansu: the snapshot
//! and every kind of change come out in Debezium's shape (the fixture of real Debezium output
//! in enricher/tests/fixtures/debezium-postgres), the enricher's decoder builds the database's
//! table from them, and bad setups fail with a message that says what to do and create nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use clickstream_tests::cdc::{read_records, table_from, write_config, CdcProcess, Record};
use clickstream_tests::kafka::create_topics;
use clickstream_tests::postgres::Postgres;
use clickstream_tests::tansu::Tansu;
use serde_json::{json, Value};

const FIXTURE: &str = include_str!("../../enricher/tests/fixtures/debezium-postgres/products.jsonl");
const CDC_PASSWORD: &str = "cdc-secret";

fn binary() -> &'static std::path::Path {
    env!("CARGO_BIN_EXE_clickstream").as_ref()
}

/// The products table of the fixture, owned by a replication user `cdc` (so it may create
/// the publication), with two rows.
fn products_database() -> Postgres {
    let postgres = Postgres::start();
    postgres.sql(&format!(
        "CREATE ROLE cdc LOGIN REPLICATION PASSWORD '{CDC_PASSWORD}';
         CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL,
           discount numeric(10,2), weight_kg numeric, launched_on date, created_at timestamp,
           updated_at timestamptz);
         ALTER TABLE products OWNER TO cdc;
         GRANT CREATE ON DATABASE postgres TO cdc;
         INSERT INTO products VALUES
           (1, 'Desk lamp', 19.99, -1.50, 1.250, '2026-01-15', '2026-01-02 10:00:00.123456', '2026-01-02 10:00:00.123456+00'),
           (2, 'Office chair', 1200.00, NULL, 12.5, '2025-11-03', '2025-11-03 08:30:00', '2025-11-03 08:30:00+00');"
    ));
    postgres
}

/// Key paths of a JSON object tree (objects only), to compare shapes.
fn shape(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    if let Value::Object(map) = value {
        for (key, inner) in map {
            let path = format!("{prefix}/{key}");
            out.insert(path.clone());
            if !matches!(key.as_str(), "after" | "before" | "payload" | "schema" | "fields") {
                shape(inner, &path, out);
            }
        }
    }
}

fn fixture(what: &str) -> Value {
    FIXTURE
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("fixture line"))
        .find(|line| line["what"].as_str().is_some_and(|w| w.starts_with(what)))
        .unwrap_or_else(|| panic!("no fixture record {what}"))
}

/// The database's rows as the enricher shows them: id → (name, price).
fn database_rows(postgres: &Postgres) -> Vec<(String, String, f64)> {
    let text = postgres.sql("SELECT id || '|' || name || '|' || price FROM products ORDER BY id");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let parts: Vec<&str> = line.split('|').collect();
            (parts[0].to_owned(), parts[1].to_owned(), parts[2].parse().expect("price"))
        })
        .collect()
}

fn topic_rows(records: &[Record]) -> Vec<(String, String, f64)> {
    table_from(records)
        .into_iter()
        .map(|(id, row)| {
            (id, row["name"].as_str().unwrap_or_default().to_owned(), row["price"].as_f64().unwrap_or(-1.0))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_changes_match_debezium_and_the_table() {
    let tansu = Tansu::start();
    let postgres = products_database();
    let topic = clickstream_tests::unique("cdc-products");
    create_topics(&tansu.bootstrap(), &[(&topic, 1)]).await;
    let dir = tempfile::tempdir().expect("dir");
    // Truncates too, which Debezium (and cdc) skip by default.
    let extra = "skipped_operations = []\n";
    let config = write_config(
        dir.path(),
        &tansu.bootstrap(),
        &postgres.connection("cdc", CDC_PASSWORD),
        "products",
        &topic,
        extra,
    );
    let mut cdc = CdcProcess::start(binary(), &config, &dir.path().join("cdc.log"));
    let quiet = Duration::from_millis(1500);
    let bootstrap = tansu.bootstrap();
    let read = |count: usize| read_records(&bootstrap, &topic, Duration::from_secs(60), quiet, |r| r.len() >= count);

    let snapshot = read(2);
    assert_eq!(snapshot.len(), 2, "two snapshot reads: {snapshot:?}\n{}", cdc.log_text());
    assert_eq!(snapshot.iter().map(|r| r.op()).collect::<Vec<_>>(), [Some("r"), Some("r")]);
    assert_eq!(snapshot[0].payload().expect("payload")["source"]["snapshot"], "first");
    assert_eq!(snapshot[1].payload().expect("payload")["source"]["snapshot"], "last");

    postgres.sql(
        "INSERT INTO products VALUES (3, 'Standing desk', 499.00, NULL, NULL, '2026-02-01', '2026-02-01 09:00:00', '2026-02-01 09:00:00+00');
         UPDATE products SET price = 24.50, updated_at = '2026-02-01 09:15:00.5+00' WHERE id = 1;
         DELETE FROM products WHERE id = 2;",
    );
    let records = read(6);
    let ops: Vec<Option<&str>> = records.iter().map(Record::op).collect();
    assert_eq!(ops, [Some("r"), Some("r"), Some("c"), Some("u"), Some("d"), None], "{records:?}\n{}", cdc.log_text());
    assert!(records[5].raw_value.is_none() && records[5].key == records[4].key, "a tombstone follows the delete");

    // Field for field where the values are determined by the data; the same shape everywhere.
    let update = records[3].payload().expect("update");
    let expected = fixture("update")["value"]["payload"].clone();
    assert_eq!(update["after"], expected["after"], "the update's row matches Debezium's");
    assert_eq!(update["before"], Value::Null, "REPLICA IDENTITY DEFAULT sends no before image");
    assert_eq!(records[4].payload().expect("delete")["before"], json!({"id": 2}));
    let commit_ms = update["source"]["ts_ms"].as_i64().expect("source.ts_ms");
    let database_now: i64 = postgres.sql("SELECT (extract(epoch from now()) * 1000)::int8").parse().expect("now");
    assert!(
        (database_now - commit_ms).abs() < 60_000,
        "source.ts_ms is the commit time: {commit_ms} vs {database_now}"
    );
    for (record, what) in
        [(&records[0], "snapshot"), (&records[2], "insert"), (&records[3], "update"), (&records[4], "delete")]
    {
        let reference = fixture(what);
        let (mut ours, mut theirs) = (BTreeSet::new(), BTreeSet::new());
        shape(record.value.as_ref().expect("value"), "", &mut ours);
        shape(&reference["value"], "", &mut theirs);
        assert_eq!(ours, theirs, "{what}: the envelope's fields differ from Debezium's");
        assert_eq!(
            record.value.as_ref().expect("value")["schema"],
            reference["value"]["schema"].clone().tap_names("products"),
            "{what}: schema"
        );
        assert_eq!(
            record.key.as_ref().expect("key")["schema"],
            reference["key"]["schema"].clone().tap_names("products"),
            "{what}: key schema"
        );
    }
    assert_eq!(topic_rows(&records), database_rows(&postgres), "the table built from the topic is the database's");

    // A new column is picked up from the relation message; then a truncate empties the table.
    postgres.sql("ALTER TABLE products ADD COLUMN color text; UPDATE products SET color = 'red' WHERE id = 3;");
    let records = read(7);
    assert_eq!(records[6].payload().expect("update")["after"]["color"], "red", "{:?}", records[6]);
    postgres.sql("TRUNCATE products; INSERT INTO products (id, name, price) VALUES (4, 'Mug', 9.50);");
    let records = read(9);
    assert_eq!(records[7].op(), Some("t"));
    assert_eq!(records[8].op(), Some("c"));
    assert_eq!(topic_rows(&records), database_rows(&postgres));

    // WAL written for tables cdc does not capture: heartbeats move the slot past it anyway.
    postgres.sql("CREATE TABLE other (n int); INSERT INTO other SELECT generate_series(1, 20000);");
    let written = postgres.sql("SELECT pg_current_wal_lsn()");
    let caught_up = format!("SELECT confirmed_flush_lsn >= '{written}' FROM pg_replication_slots");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while postgres.sql(&caught_up) != "t" {
        assert!(std::time::Instant::now() < deadline, "the slot stayed behind {written}: {}", cdc.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
    cdc.kill();
}

/// Debezium's schema names start with its `topic.prefix` and database name; ours with ours.
trait TapNames {
    fn tap_names(self, table: &str) -> Value;
}

impl TapNames for Value {
    fn tap_names(self, table: &str) -> Value {
        let text =
            self.to_string().replace(&format!("dbserver1.inventory.{table}"), &format!("clickstream.public.{table}"));
        let mut value: Value = serde_json::from_str(&text).expect("json");
        // The fixture's `id` has a default of 0 (a serial column); ours has no default.
        strip_defaults(&mut value);
        value
    }
}

fn strip_defaults(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("field").and_then(Value::as_str) == Some("id") {
                map.remove("default");
            }
            map.values_mut().for_each(strip_defaults);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_defaults),
        _ => {}
    }
}

/// Runs cdc against a setup that must fail; returns its log once it exits non-zero.
fn failing_run(postgres: &Postgres, dir: &std::path::Path, connection: &str, table: &str, extra: &str) -> String {
    let name = clickstream_tests::unique("bad");
    let config = write_config(dir, "127.0.0.1:1", connection, table, &name, extra);
    let mut cdc = CdcProcess::start(binary(), &config, &dir.join(format!("{name}.log")));
    let status =
        cdc.wait_exit(Duration::from_secs(30)).unwrap_or_else(|| panic!("cdc kept running: {}", cdc.log_text()));
    assert!(!status.success(), "cdc should fail: {}", cdc.log_text());
    assert_eq!(postgres.sql("SELECT count(*) FROM pg_replication_slots"), "0", "no slot is left behind");
    cdc.log_text()
}

#[test]
fn bad_setups_say_what_to_fix_and_create_nothing() {
    let postgres = Postgres::start();
    postgres.sql(&format!(
        "CREATE ROLE cdc LOGIN REPLICATION PASSWORD '{CDC_PASSWORD}';
         CREATE ROLE plain LOGIN PASSWORD 'plain';
         CREATE TABLE products (id int PRIMARY KEY, name text);
         CREATE TABLE clicks (at timestamptz, url text);
         GRANT SELECT ON products, clicks TO cdc, plain;"
    ));
    let dir = tempfile::tempdir().expect("dir");
    let cdc = postgres.connection("cdc", CDC_PASSWORD);

    let log = failing_run(&postgres, dir.path(), &cdc, "clicks", "");
    assert!(log.contains("public.clicks") && log.contains("REPLICA IDENTITY") && log.contains("primary key"), "{log}");

    let log = failing_run(&postgres, dir.path(), &postgres.connection("cdc", "wrong"), "products", "");
    assert!(log.contains("password authentication failed for user \"cdc\""), "{log}");
    assert!(!log.contains("password=wrong"), "the password is not logged: {log}");

    let log = failing_run(&postgres, dir.path(), &postgres.connection("plain", "plain"), "products", "");
    assert!(log.contains("ALTER ROLE plain WITH REPLICATION"), "{log}");

    let log = failing_run(&postgres, dir.path(), &cdc, "products", "create_publication = false\n");
    assert!(log.contains("publication clickstream_cdc does not exist") && log.contains("CREATE PUBLICATION"), "{log}");

    // Allowed to replicate but not to create the publication (not the table's owner).
    let log = failing_run(&postgres, dir.path(), &cdc, "products", "");
    assert!(log.contains("cannot create publication clickstream_cdc") && log.contains("permission denied"), "{log}");
    assert_eq!(postgres.sql("SELECT count(*) FROM pg_publication"), "0");

    postgres.sql("CREATE PUBLICATION clickstream_cdc FOR TABLE clicks");
    let log = failing_run(&postgres, dir.path(), &cdc, "products", "");
    assert!(log.contains("ALTER PUBLICATION clickstream_cdc ADD TABLE public.products"), "{log}");

    let log = failing_run(&postgres, dir.path(), &cdc, "missing", "");
    assert!(log.contains("table public.missing does not exist"), "{log}");
}

/// Records on `topic` so far (its single partition's high watermark).
fn written(watcher: &rdkafka::consumer::BaseConsumer, topic: &str) -> i64 {
    clickstream_tests::enricher_process::written_so_far(watcher, topic, 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_update_loses_no_change() {
    const ROWS: i64 = 50_000;
    let tansu = Tansu::start();
    let postgres = Postgres::start();
    postgres.sql(&format!(
        "CREATE ROLE cdc LOGIN REPLICATION PASSWORD '{CDC_PASSWORD}';
         CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL);
         INSERT INTO products SELECT i, 'product ' || i, 10.00 FROM generate_series(1, {ROWS}) i;
         GRANT SELECT ON products TO cdc;
         CREATE PUBLICATION clickstream_cdc FOR TABLE products;"
    ));
    let topic = clickstream_tests::unique("cdc-kill");
    let bootstrap = tansu.bootstrap();
    create_topics(&bootstrap, &[(&topic, 1)]).await;
    let dir = tempfile::tempdir().expect("dir");
    // Small records: no schema wrapper, decimals as text.
    let extra = "schemas_enable = false\ndecimal_handling_mode = \"string\"\n";
    let config =
        write_config(dir.path(), &bootstrap, &postgres.connection("cdc", CDC_PASSWORD), "products", &topic, extra);
    let log = dir.path().join("cdc.log");
    let watcher: rdkafka::consumer::BaseConsumer =
        rdkafka::ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("watcher");

    let mut cdc = CdcProcess::start(binary(), &config, &log);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while written(&watcher, &topic) < ROWS {
        assert!(std::time::Instant::now() < deadline, "snapshot incomplete: {}", cdc.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    postgres.sql("UPDATE products SET price = price + 1");
    let mut at_kill = ROWS;
    while at_kill < ROWS + ROWS / 5 {
        assert!(std::time::Instant::now() < deadline, "the update did not stream: {}", cdc.log_text());
        std::thread::sleep(Duration::from_millis(20));
        at_kill = written(&watcher, &topic);
    }
    cdc.kill();
    let confirmed = postgres.sql("SELECT confirmed_flush_lsn FROM pg_replication_slots");
    assert!(at_kill < 2 * ROWS, "killed after the update was all written ({at_kill}); nothing was tested");

    let mut cdc = CdcProcess::start(binary(), &config, &log);
    let expected: std::collections::BTreeMap<String, String> = postgres
        .sql("SELECT id || '|' || price FROM products")
        .lines()
        .filter_map(|line| line.split_once('|').map(|(id, price)| (id.to_owned(), price.to_owned())))
        .collect();
    let records = read_records(&bootstrap, &topic, Duration::from_secs(240), Duration::from_secs(3), |records| {
        records.len() as i64 >= 2 * ROWS
    });
    let table: std::collections::BTreeMap<String, String> = table_from(&records)
        .into_iter()
        .map(|(id, row)| (id, row["price"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let updates = records.iter().filter(|r| r.op() == Some("u")).count() as i64;
    println!(
        "SIGKILL after {} of {ROWS} update records (slot confirmed at {confirmed}); after the restart {updates} \
         update records in all: {} repeats",
        at_kill - ROWS,
        updates - ROWS
    );
    assert_eq!(table.len(), expected.len(), "{}", cdc.log_text());
    assert!(table == expected, "the table built from Kafka differs from the database's");
    assert!(updates >= ROWS, "every update reached Kafka");
    cdc.kill();
}

/// PostgreSQL → `cdc` → the products topic → the enricher's join: a price changed in the
/// database shows in the next event posted to the gateway, and the version's valid-from time
/// is the change's commit time (`source.ts_ms`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_changed_in_postgres_reaches_the_next_enriched_event() {
    use clickstream_enricher::config::Guarantee;
    use clickstream_tests::enricher::{start_enricher, stop_enricher, wait_until, EnricherTopics};

    let tansu = Tansu::start();
    let bootstrap = tansu.bootstrap();
    let topics = EnricherTopics::new();
    topics.create(&bootstrap, 1).await;
    let postgres = Postgres::start();
    postgres.sql(&format!(
        "CREATE ROLE cdc LOGIN REPLICATION PASSWORD '{CDC_PASSWORD}';
         CREATE TABLE products (id text PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL);
         INSERT INTO products VALUES ('sku-1', 'Mug', 9.50);
         GRANT SELECT ON products TO cdc;
         CREATE PUBLICATION clickstream_cdc FOR TABLE products;"
    ));
    let dir = tempfile::tempdir().expect("dir");
    let connection = postgres.connection("cdc", CDC_PASSWORD);
    let config = write_config(dir.path(), &bootstrap, &connection, "products", &topics.products, "");
    let cdc = CdcProcess::start(binary(), &config, &dir.path().join("cdc.log"));
    let snapshot =
        read_records(&bootstrap, &topics.products, Duration::from_secs(60), Duration::ZERO, |r| !r.is_empty());
    assert_eq!(snapshot.len(), 1, "{}", cdc.log_text());

    let enricher = start_enricher(topics.config(&bootstrap, Guarantee::AtLeastOnce)).await;
    let gateway = clickstream_gateway::start(clickstream_tests::gateway_config(&bootstrap, &topics.raw, &topics.dlq))
        .await
        .expect("gateway");
    let table = enricher.products.clone();
    wait_until("the snapshot's price", || table.get("sku-1").is_some_and(|row| row["price"] == 9.5)).await;

    postgres.sql("UPDATE products SET price = 12.25 WHERE id = 'sku-1'");
    let commit_ms: i64 = postgres
        .sql("SELECT floor(extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000)::int8 FROM products")
        .parse()
        .expect("commit time");
    wait_until("the new price", || table.get("sku-1").is_some_and(|row| row["price"] == 12.25)).await;
    let event = json!({"type": "track", "event": "Product Viewed", "anonymousId": "visitor-1",
        "messageId": clickstream_tests::unique("view"), "properties": {"product_id": "sku-1"},
        "timestamp": clickstream_schema::format_timestamp(chrono::Utc::now())});
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/track", gateway.addr))
        .basic_auth(clickstream_tests::WRITE_KEY, Some(""))
        .json(&event)
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    let enriched =
        clickstream_tests::kafka::read_exactly(&bootstrap, &topics.enriched, 1, Duration::from_secs(30)).await;
    let product = &enriched[0].value["enrichment"]["product"];
    assert_eq!(product["price"], 12.25, "{product}");
    assert_eq!(product["_version"]["basis"], "source_ts", "{product}");
    let update = read_records(&bootstrap, &topics.products, Duration::from_secs(30), Duration::ZERO, |r| r.len() >= 2);
    let source_ts = update[1].payload().expect("update")["source"]["ts_ms"].as_i64().expect("source.ts_ms");
    let valid_from = chrono::DateTime::from_timestamp_millis(source_ts).expect("time");
    assert_eq!(product["_version"]["validFrom"], clickstream_schema::format_timestamp(valid_from), "{product}");
    assert_eq!(source_ts, commit_ms, "source.ts_ms is PostgreSQL's commit time");
    stop_enricher(enricher).await;
}
