//! deploy/ against the binary, since no Docker engine runs here: the YAML parses, every
//! workload runs a real subcommand with real flags and sets only real config keys of the
//! sections its command reads, and the Dockerfile builds with the command CI runs.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize as _;
use serde_yaml::Value;

/// Config sections each subcommand reads; a variable of another section would be ignored.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "gateway",
        &[
            "http",
            "kafka",
            "producer",
            "topics",
            "limits",
            "delivery",
            "spool",
            "dedup",
            "rate_limit",
            "privacy",
            "admin",
            "telemetry",
        ],
    ),
    ("enricher", &["kafka", "enricher", "telemetry", "topics", "routing"]),
    ("topics apply", &["kafka", "topics", "enricher"]),
];

/// Variables the deploy files set before the binary reads them: (subcommand, variable, what
/// brings it). Each must NOT be a key of that subcommand yet; once it is, this test fails
/// until its line is deleted here (and, for a new section, the section is added above).
const PENDING: &[(&str, &str, &str)] = &[];

fn deploy(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(path)
}

fn read(path: impl AsRef<std::path::Path>) -> String {
    let path = path.as_ref();
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn clickstream(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_clickstream")).args(args).output().expect("run clickstream");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Every config key's environment variable, from `clickstream config keys`.
fn config_env_vars() -> BTreeSet<String> {
    let (ok, table) = clickstream(&["config", "keys", "--markdown"]);
    assert!(ok, "config keys failed");
    table
        .lines()
        .filter_map(|l| l.split('`').nth(3))
        .filter(|e| e.starts_with("CLICKSTREAM_"))
        .map(str::to_owned)
        .collect()
}

/// One container or compose service: its arguments and environment variable names.
#[derive(Debug)]
struct Workload {
    origin: String,
    args: Vec<String>,
    env: Vec<String>,
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().map(|s| s.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

fn compose_workloads() -> Vec<Workload> {
    let mut compose: Value = serde_yaml::from_str(&read(deploy("docker-compose.yml"))).expect("compose YAML");
    compose.apply_merge().expect("merge keys");
    let services = compose["services"].as_mapping().expect("services").clone();
    let mut out = Vec::new();
    for (name, service) in services {
        let name = name.as_str().expect("service name").to_owned();
        for volume in strings(&service["volumes"]) {
            let source = volume.split(':').next().unwrap_or_default();
            if source.starts_with("./") {
                assert!(deploy(source).exists(), "compose service {name} mounts missing {source}");
            }
        }
        if service["image"].as_str().is_some_and(|i| !i.starts_with("clickstream")) {
            continue;
        }
        let env = match &service["environment"] {
            Value::Mapping(map) => map.keys().filter_map(|k| k.as_str().map(str::to_owned)).collect(),
            other => strings(other).iter().map(|e| e.split('=').next().unwrap_or_default().to_owned()).collect(),
        };
        out.push(Workload {
            origin: format!("docker-compose.yml service {name}"),
            args: strings(&service["command"]),
            env,
        });
    }
    out
}

fn kubernetes_workloads() -> Vec<Workload> {
    let kustomization: Value = serde_yaml::from_str(&read(deploy("k8s/kustomization.yaml"))).expect("kustomization");
    let mut out = Vec::new();
    for file in strings(&kustomization["resources"]) {
        let text = read(deploy(&format!("k8s/{file}")));
        for document in serde_yaml::Deserializer::from_str(&text) {
            let doc = Value::deserialize(document).unwrap_or_else(|e| panic!("k8s/{file}: {e}"));
            assert!(doc["kind"].as_str().is_some(), "k8s/{file}: a document without kind");
            let pod = match doc["kind"].as_str() {
                Some("Deployment" | "StatefulSet" | "Job") => &doc["spec"]["template"]["spec"],
                _ => continue,
            };
            for container in pod["containers"].as_sequence().expect("containers") {
                let env: Vec<String> = container["env"]
                    .as_sequence()
                    .map(|s| s.iter().filter_map(|e| e["name"].as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                let origin = format!("k8s/{file} {}", doc["metadata"]["name"].as_str().unwrap_or("?"));
                check_probe_ports(&origin, container);
                check_restricted(&origin, pod, container);
                out.push(Workload { origin, args: strings(&container["args"]), env });
            }
        }
    }
    out
}

/// The "restricted" Pod Security Standard's container fields, and seccomp for the pod.
fn check_restricted(origin: &str, pod: &Value, container: &Value) {
    let context = &container["securityContext"];
    assert_eq!(context["allowPrivilegeEscalation"].as_bool(), Some(false), "{origin}: allowPrivilegeEscalation");
    assert_eq!(context["readOnlyRootFilesystem"].as_bool(), Some(true), "{origin}: readOnlyRootFilesystem");
    assert_eq!(context["runAsNonRoot"].as_bool(), Some(true), "{origin}: runAsNonRoot");
    assert_eq!(strings(&context["capabilities"]["drop"]), ["ALL"], "{origin}: capabilities must drop ALL");
    let seccomp =
        context["seccompProfile"]["type"].as_str().or(pod["securityContext"]["seccompProfile"]["type"].as_str());
    assert_eq!(seccomp, Some("RuntimeDefault"), "{origin}: seccompProfile");
}

/// Probes name a declared port, and the admin listener listens on the port named `admin`.
fn check_probe_ports(origin: &str, container: &Value) {
    let ports: Vec<(String, u64)> = container["ports"]
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|p| (p["name"].as_str().unwrap_or("").to_owned(), p["containerPort"].as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    for probe in ["readinessProbe", "livenessProbe"] {
        if let Some(port) = container[probe]["httpGet"]["port"].as_str() {
            assert!(ports.iter().any(|(n, _)| n == port), "{origin}: {probe} uses undeclared port {port}");
        }
    }
    for var in container["env"].as_sequence().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default();
        if name.ends_with("ADMIN__LISTEN") {
            let port: u64 = var["value"].as_str().and_then(|v| v.rsplit(':').next()?.parse().ok()).expect("admin port");
            assert!(ports.contains(&("admin".to_owned(), port)), "{origin}: {name} does not match the admin port");
        }
    }
}

#[test]
fn deploy_files_use_only_real_subcommands_flags_and_config_keys() {
    let known = config_env_vars();
    let workloads: Vec<Workload> = compose_workloads().into_iter().chain(kubernetes_workloads()).collect();
    assert_eq!(workloads.len(), 7, "4 compose services and 3 k8s workloads run clickstream: {workloads:#?}");
    let mut pending_seen = BTreeSet::new();
    for workload in &workloads {
        let path: Vec<&str> = workload.args.iter().map(String::as_str).take_while(|a| !a.starts_with('-')).collect();
        let subcommand = path.join(" ");
        let (ok, help) = clickstream(&[path.as_slice(), &["--help"]].concat());
        assert!(ok, "{}: `clickstream {subcommand}` is not a subcommand", workload.origin);
        for flag in workload.args.iter().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap_or_default();
            assert!(help.contains(&format!("{flag} ")), "{}: {subcommand} has no flag {flag}", workload.origin);
        }
        let sections = SECTIONS
            .iter()
            .find(|(s, _)| *s == subcommand)
            .map(|(_, s)| *s)
            .unwrap_or_else(|| panic!("{}: add {subcommand:?} to SECTIONS", workload.origin));
        for var in &workload.env {
            if help.contains(&format!("[env: {var}=")) {
                continue; // a flag's own variable, such as CLICKSTREAM_CONFIG
            }
            let section = var.trim_start_matches("CLICKSTREAM_").split("__").next().unwrap_or_default().to_lowercase();
            let real = known.contains(var) && sections.contains(&section.as_str());
            match PENDING.iter().find(|(s, v, _)| *s == subcommand && v == var) {
                Some((_, _, what)) => {
                    assert!(!real, "{var} is now a real key of `{subcommand}` ({what}): delete its PENDING line");
                    pending_seen.insert(var.clone());
                }
                None => assert!(
                    real,
                    "{}: {var} is not a config key that `clickstream {subcommand}` reads (see `clickstream config keys`)",
                    workload.origin
                ),
            }
        }
    }
    for (_, var, _) in PENDING {
        assert!(pending_seen.contains(*var), "PENDING names {var}, which no deploy file uses any more");
    }
}

#[test]
fn dockerfile_builds_with_the_command_ci_runs() {
    let dockerfile = read(deploy("Dockerfile"));
    let build = dockerfile
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cargo build"))
        .expect("a `cargo build` line in the Dockerfile");
    let build = build.split("&&").next().unwrap_or_default().trim_end_matches('\\').trim();
    let ci = read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/test"));
    assert!(ci.lines().any(|l| l.trim() == build), "scripts/test must run the Dockerfile's `{build}`");
    let lib = read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib.sh"));
    let packages = lib.lines().find_map(|l| l.strip_prefix("BUILD_PACKAGES=(")).expect("BUILD_PACKAGES");
    for package in packages.trim_end_matches(')').split_whitespace() {
        assert!(dockerfile.contains(package), "the Dockerfile's build stage lacks {package} (scripts/lib.sh)");
    }
}

#[test]
fn kubernetes_topics_match_deploy_topics_toml() {
    let configmap: Value = serde_yaml::from_str(&read(deploy("k8s/configmap.yaml"))).expect("configmap");
    let embedded = configmap["data"]["topics.toml"].as_str().expect("topics.toml in the ConfigMap");
    assert_eq!(embedded.trim(), read(deploy("topics.toml")).trim(), "k8s/configmap.yaml's topics.toml is stale");
    let file = clickstream_platform::topics::TopicsFile::parse(embedded).expect("topics.toml parses");
    let names: BTreeSet<&str> = file.topics.iter().map(|t| t.name.as_str()).collect();
    for wanted in ["events.raw", "events.dlq", "products", "events.enriched", "agg.product_activity.1m", "enricher.dlq"]
    {
        assert!(names.contains(wanted), "topics.toml lacks {wanted}");
    }
    let compacted: Vec<&str> =
        file.topics.iter().filter(|t| t.cleanup_policy == "compact").map(|t| t.name.as_str()).collect();
    assert_eq!(compacted, ["products", "agg.product_activity.1m"]);
}

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
    let http = clickstream_gateway::GatewayConfig::default().http;
    let grace = http.drain_delay_secs + http.shutdown_budget_secs;
    for (name, service) in services {
        let name = name.as_str().unwrap_or_default();
        if !service["image"].as_str().is_some_and(|i| i.starts_with("clickstream")) {
            continue;
        }
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

/// The transactional enricher needs a stable `transactional.id`, which it builds from the pod's
/// HOSTNAME: only a StatefulSet keeps pod names across rollouts.
#[test]
fn the_transactional_enricher_runs_with_stable_pod_names() {
    let text = read(deploy("k8s/enricher.yaml"));
    let docs: Vec<Value> =
        serde_yaml::Deserializer::from_str(&text).map(|d| Value::deserialize(d).expect("enricher.yaml")).collect();
    let workload =
        docs.iter().find(|d| d["metadata"]["name"] == "clickstream-enricher" && d["spec"]["template"].is_mapping());
    let workload = workload.expect("the enricher workload");
    let env = workload["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().expect("env");
    let guarantee = env.iter().find(|e| e["name"] == "CLICKSTREAM_ENRICHER__GUARANTEE").map(|e| &e["value"]);
    if guarantee.and_then(Value::as_str) == Some("exactly_once_transactional") {
        assert_eq!(workload["kind"], "StatefulSet", "a transactional enricher needs stable pod names");
        let service = workload["spec"]["serviceName"].as_str().expect("serviceName");
        assert!(
            docs.iter().any(|d| d["kind"] == "Service"
                && d["metadata"]["name"] == service
                && d["spec"]["clusterIP"] == "None"),
            "the StatefulSet's headless Service {service} is missing"
        );
    }
    assert!(docs.iter().any(|d| d["kind"] == "PodDisruptionBudget"), "the enricher has no PodDisruptionBudget");
}
