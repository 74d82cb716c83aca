//! deploy/compose: the spool and Kafka data kept, the shutdown waited for, the topics job and
//! the observability services.

use super::*;

/// What Docker only shows at run time: the spool folder exists in the image with the service
/// user as owner (else a named volume on it is root's and spooling fails), Kafka writes into
/// its volume, and every clickstream service may finish its shutdown before Docker kills it.
#[test]
fn compose_keeps_the_spool_and_kafka_data_and_waits_for_shutdown() {
    let dockerfile = read(deploy("Dockerfile"));
    let spool_dir = clickstream_gateway::GatewayConfig::default().spool.dir;
    assert!(
        dockerfile.lines().any(|l| l.contains("install -d -o clickstream -g clickstream /var/lib/clickstream/spool")),
        "the Dockerfile must create /var/lib/clickstream/spool owned by the service user"
    );
    let mut compose: Value = serde_yaml::from_str(&read(deploy("docker-compose.yml"))).expect("compose YAML");
    compose.apply_merge().expect("merge keys");
    let services = compose["services"].as_mapping().expect("services");
    let kafka = &compose["services"]["kafka"];
    let log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"].as_str().expect("kafka sets KAFKA_LOG_DIRS");
    assert!(
        strings(&kafka["volumes"]).iter().any(|v| v.split(':').nth(1) == Some(log_dirs)),
        "KAFKA_LOG_DIRS {log_dirs} is not on a volume"
    );
    for (name, service) in services {
        let name = name.as_str().unwrap_or_default();
        if !service["image"].as_str().is_some_and(|i| i.starts_with("clickstream")) {
            continue;
        }
        let env = |var: &str| service["environment"][var].as_str().map(str::to_owned);
        let grace = shutdown_secs(name, env);
        let period = service["stop_grace_period"].as_str().unwrap_or("10s");
        let secs: u64 =
            period.trim_end_matches('s').parse().unwrap_or_else(|_| panic!("{name}: stop_grace_period {period}"));
        assert!(secs > grace, "{name}: stop_grace_period {period} is not longer than the drain and budget, {grace} s");
        for volume in strings(&service["volumes"]) {
            if volume.split(':').nth(1) == Some("/var/lib/clickstream/spool") {
                let dir = service["environment"]["CLICKSTREAM_SPOOL__DIR"].as_str().unwrap_or(&spool_dir);
                assert_eq!(dir, "/var/lib/clickstream/spool", "{name} spools outside its volume");
            }
        }
    }
}

fn compose() -> Value {
    let mut compose: Value = serde_yaml::from_str(&read(deploy("docker-compose.yml"))).expect("compose YAML");
    compose.apply_merge().expect("merge keys");
    compose
}

/// `topics apply` exits 1 on drift after creating what is missing, every time: nothing may wait
/// for it to succeed, and it may not retry forever. The services that need the topics restart
/// until they exist.
#[test]
fn compose_topics_job_reports_drift_without_blocking_the_stack() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    let (job, topics) = services
        .iter()
        .find(|(_, s)| strings(&s["command"]).starts_with(&["topics".to_owned(), "apply".to_owned()]))
        .expect("a topics apply service");
    let job = job.as_str().expect("name");
    let restart = topics["restart"].as_str().unwrap_or("no");
    assert!(
        restart == "no" || restart.strip_prefix("on-failure:").is_some_and(|n| n.parse::<u32>().is_ok()),
        "{job}: restart {restart} would rerun a drift report forever; use \"no\" or on-failure:N"
    );
    for (name, service) in services {
        let Some(condition) = service["depends_on"][job]["condition"].as_str() else { continue };
        let name = name.as_str().unwrap_or_default();
        assert_ne!(condition, "service_completed_successfully", "{name} would not start while a topic drifts");
        let restart = service["restart"].as_str().unwrap_or("no");
        assert!(
            ["always", "unless-stopped"].contains(&restart),
            "{name} exits while its topics are missing, so it needs restart: unless-stopped, not {restart}"
        );
    }
}

/// Prometheus scrapes each clickstream service on its admin port, and nothing on a public
/// port (which serves no /metrics); Grafana gets it as data source and the dashboard file.
#[test]
fn compose_observability_scrapes_admin_ports_and_provisions_grafana() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    let prometheus: Value = serde_yaml::from_str(&read(deploy("compose/prometheus.yml"))).expect("prometheus.yml");
    let mut targets = BTreeSet::new();
    for job in prometheus["scrape_configs"].as_sequence().expect("scrape_configs") {
        assert!(job["metrics_path"].as_str().is_none_or(|p| p == "/metrics"));
        for config in job["static_configs"].as_sequence().expect("static_configs") {
            targets.extend(strings(&config["targets"]));
        }
    }
    let mut wanted = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().unwrap_or_default();
        let env = &service["environment"];
        for var in ["CLICKSTREAM_ADMIN__LISTEN", "CLICKSTREAM_ENRICHER__ADMIN__LISTEN"] {
            if let Some(listen) = env[var].as_str() {
                wanted.insert(format!("{name}:{}", listen.rsplit(':').next().unwrap_or_default()));
            }
        }
        if let Some(listen) = env["CLICKSTREAM_HTTP__LISTEN"].as_str() {
            let public = format!("{name}:{}", listen.rsplit(':').next().unwrap_or_default());
            assert!(!targets.contains(&public), "Prometheus scrapes the public port {public}");
        }
    }
    assert_eq!(targets, wanted, "Prometheus targets must be the admin ports of every clickstream service");

    let grafana = &compose["services"]["grafana"];
    let mounts: Vec<(String, String)> = strings(&grafana["volumes"])
        .iter()
        .map(|v| {
            let mut parts = v.split(':');
            (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned())
        })
        .collect();
    let provisioning = |kind: &str| -> Value {
        let (source, _) = mounts
            .iter()
            .find(|(_, target)| target.starts_with(&format!("/etc/grafana/provisioning/{kind}/")))
            .unwrap_or_else(|| panic!("Grafana mounts no {kind} provisioning file"));
        serde_yaml::from_str(&read(deploy(source))).unwrap_or_else(|e| panic!("{source}: {e}"))
    };
    let datasources = provisioning("datasources");
    let source = &datasources["datasources"][0];
    assert_eq!(source["type"], "prometheus");
    assert_eq!(source["isDefault"].as_bool(), Some(true), "the dashboard's datasource variable picks the default");
    let url = source["url"].as_str().expect("datasource url");
    let host = url.trim_start_matches("http://").split(':').next().unwrap_or_default();
    assert!(compose["services"][host]["image"].as_str().is_some_and(|i| i.starts_with("prom/prometheus")), "{url}");

    let dashboards = provisioning("dashboards");
    let provider = &dashboards["providers"][0];
    assert_eq!(provider["type"], "file");
    let folder = provider["options"]["path"].as_str().expect("provider path");
    let (dashboard, _) = mounts
        .iter()
        .find(|(_, target)| target.strip_prefix(folder).is_some_and(|rest| rest.starts_with('/')))
        .unwrap_or_else(|| panic!("no dashboard is mounted into the provider's folder {folder}"));
    assert_eq!(dashboard, "./grafana/clickstream.json");
    let json: serde_json::Value = serde_json::from_str(&read(deploy(dashboard))).expect("dashboard JSON");
    assert!(json["uid"].is_string() && json["panels"].as_array().is_some_and(|p| !p.is_empty()));
}
