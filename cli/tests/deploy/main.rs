//! deploy/ against the binary, since no Docker engine runs here: the YAML parses, every
//! workload runs a real subcommand with real flags and sets only real config keys of the
//! sections its command reads, and the Dockerfile builds with the command CI runs. The
//! Kubernetes manifests also pass kubernetes-validate's bundled schemas, and the properties
//! that keep acknowledged events through rollouts, scale-down and restarts are checked here.

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
            // A top-level key, not a section.
            "sources_file",
        ],
    ),
    ("enricher", &["kafka", "enricher", "telemetry", "topics", "routing"]),
    // It builds the gateway's producer and opens the gateway's spool.
    ("spool replay", &["kafka", "producer", "topics", "spool", "routing", "telemetry"]),
    ("topics apply", &["kafka", "topics", "enricher"]),
];

/// Variables the deploy files set before the binary reads them: (subcommand, variable, what
/// brings it). Each must NOT be a key of that subcommand yet; once it is, this test fails
/// until its line is deleted here (and, for a new section, the section is added above).
const PENDING: &[(&str, &str, &str)] = &[];

/// Kubernetes versions the manifests must validate against: the first with
/// `persistentVolumeClaimRetentionPolicy` stable, and the newest kubernetes-validate bundles.
const KUBERNETES_VERSIONS: &[&str] = &["1.32.0", "1.37.0"];

/// Manifests `kubectl apply -k deploy/k8s` must not apply: placeholders, and a Job run by hand.
const NOT_IN_KUSTOMIZATION: &[&str] = &["secret.example.yaml", "spool-recovery-job.yaml"];

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

/// Every Kubernetes manifest but the kustomization, by file name: the applied ones and those
/// run by hand.
fn kubernetes_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(deploy("k8s"))
        .expect("deploy/k8s")
        .map(|e| e.expect("deploy/k8s entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    files.sort();
    files
}

fn kubernetes_documents(file: &str) -> Vec<Value> {
    let text = read(deploy(&format!("k8s/{file}")));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("k8s/{file}: {e}")))
        .inspect(|d| assert!(d["kind"].as_str().is_some(), "k8s/{file}: a document without kind"))
        .collect()
}

/// The one document of `kind` named `name` in any manifest.
fn kubernetes_object(kind: &str, name: &str) -> Value {
    let found: Vec<Value> = kubernetes_files()
        .iter()
        .flat_map(|f| kubernetes_documents(f))
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "want exactly one {kind} {name} in deploy/k8s");
    found.into_iter().next().expect("one")
}

fn pod_spec(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str() {
        Some("Deployment" | "StatefulSet" | "Job") => Some(&doc["spec"]["template"]["spec"]),
        _ => None,
    }
}

/// A container's literal environment value.
fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"].as_sequence()?.iter().find(|e| e["name"] == name)?["value"].as_str()
}

fn kubernetes_workloads() -> Vec<Workload> {
    let mut out = Vec::new();
    for file in kubernetes_files() {
        for doc in kubernetes_documents(&file) {
            let Some(pod) = pod_spec(&doc) else { continue };
            for container in pod["containers"].as_sequence().expect("containers") {
                let env: Vec<String> = container["env"]
                    .as_sequence()
                    .map(|s| s.iter().filter_map(|e| e["name"].as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                let origin = format!("k8s/{file} {}", doc["metadata"]["name"].as_str().unwrap_or("?"));
                check_probe_ports(&origin, container);
                check_restricted(&origin, pod, container);
                check_kafka_credentials(&origin, container);
                out.push(Workload { origin, args: strings(&container["args"]), env });
            }
        }
    }
    out
}

/// Every Kafka client gets the SASL credentials from the Secret, optionally (SASL is off by
/// default), so that enabling SASL in clickstream.toml reaches all of them.
fn check_kafka_credentials(origin: &str, container: &Value) {
    for (var, key) in [("KAFKA_SASL_USERNAME", "kafka-username"), ("KAFKA_SASL_PASSWORD", "kafka-password")] {
        let entry = container["env"].as_sequence().and_then(|s| s.iter().find(|e| e["name"] == var));
        let reference = &entry.unwrap_or_else(|| panic!("{origin}: no {var}"))["valueFrom"]["secretKeyRef"];
        assert_eq!(reference["name"], "clickstream-secrets", "{origin}: {var} is not from the Secret");
        assert_eq!(reference["key"], key, "{origin}: {var}");
        assert_eq!(reference["optional"].as_bool(), Some(true), "{origin}: {var} must be optional");
    }
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
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
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
    assert_eq!(workloads.len(), 8, "4 compose services and 4 k8s workloads run clickstream: {workloads:#?}");
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
        // Other variables (KAFKA_SASL_*) are only read through "${...}" in the config.
        for var in workload.env.iter().filter(|v| v.starts_with("CLICKSTREAM_")) {
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

/// librdkafka links the system's OpenSSL, Cyrus SASL and libcurl (rdkafka's `ssl`, `sasl` and
/// `curl` features; curl fetches OIDC tokens), so the runtime stage must install each.
#[test]
fn dockerfile_runtime_has_the_libraries_librdkafka_links() {
    let dockerfile = read(deploy("Dockerfile"));
    let (_, runtime) = dockerfile.rsplit_once("\nFROM ").expect("a runtime stage");
    let manifest = read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"));
    let rdkafka = manifest.lines().find(|l| l.starts_with("rdkafka = ")).expect("rdkafka in the workspace Cargo.toml");
    for (feature, library) in [("ssl", "libssl3"), ("sasl", "libsasl2-2"), ("curl", "libcurl4")] {
        if rdkafka.contains(&format!("\"{feature}\"")) {
            assert!(
                runtime.split_whitespace().any(|word| word == library),
                "rdkafka's `{feature}` feature needs {library} in the Dockerfile's runtime stage"
            );
        }
    }
}

#[test]
fn kubernetes_topics_match_deploy_topics_toml() {
    let configmap: Value = serde_yaml::from_str(&read(deploy("k8s/configmap.yaml"))).expect("configmap");
    let embedded = configmap["data"]["topics.toml"].as_str().expect("topics.toml in the ConfigMap");
    assert_eq!(embedded.trim(), read(deploy("topics.toml")).trim(), "k8s/configmap.yaml's topics.toml is stale");
    let file = clickstream_platform::topics::TopicsFile::parse(embedded).expect("topics.toml parses");
    let names: BTreeSet<&str> = file.topics.iter().map(|t| t.name.as_str()).collect();
    for wanted in [
        "events.raw",
        "events.dlq",
        "products",
        "events.enriched",
        "agg.product_activity.1m",
        "enricher.dlq",
        clickstream_enricher::config::DEFAULT_PRODUCT_VERSIONS_TOPIC,
        clickstream_enricher::config::DEFAULT_WINDOW_WATERMARKS_TOPIC,
    ] {
        assert!(names.contains(wanted), "topics.toml lacks {wanted}");
    }
    let compacted: Vec<&str> =
        file.topics.iter().filter(|t| t.cleanup_policy == "compact").map(|t| t.name.as_str()).collect();
    assert_eq!(
        compacted,
        ["products", clickstream_enricher::config::DEFAULT_WINDOW_WATERMARKS_TOPIC, "agg.product_activity.1m"]
    );
}

/// The lines of a TOML or YAML text that are not comments.
fn uncommented(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// `http.drain_delay_secs` + `http.shutdown_budget_secs` as a workload's environment sets them
/// (else the defaults): the longest a gateway may take from SIGTERM to exit.
fn shutdown_secs(origin: &str, env: impl Fn(&str) -> Option<String>) -> u64 {
    let http = clickstream_gateway::GatewayConfig::default().http;
    let read = |var: &str, default: u64| {
        env(var).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{origin}: {var}={v} is not a number")))
    };
    read("CLICKSTREAM_HTTP__DRAIN_DELAY_SECS", http.drain_delay_secs)
        + read("CLICKSTREAM_HTTP__SHUTDOWN_BUDGET_SECS", http.shutdown_budget_secs)
}

mod compose;
mod kubernetes;
