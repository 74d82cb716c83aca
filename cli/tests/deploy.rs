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
    // A HOSTNAME set here would give every replica one transactional.id, each fencing the others.
    for var in env.iter().filter_map(|e| e["name"].as_str()) {
        assert_ne!(var, "HOSTNAME", "the enricher's transactional.id comes from the pod's own HOSTNAME");
        assert!(!var.starts_with("CLICKSTREAM_ENRICHER__PRODUCER_PROPERTIES"), "{var}: one id for all replicas");
    }
    let configmap = kubernetes_object("ConfigMap", "clickstream");
    let config = configmap["data"]["clickstream.toml"].as_str().expect("clickstream.toml in the ConfigMap");
    assert!(
        !uncommented(config).any(|l| l.contains("transactional.id")),
        "the shared config sets a transactional.id, which all enricher replicas would share"
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

/// Where `scripts/test` installs kubernetes-validate; `KUBERNETES_VALIDATE` names another.
fn kubernetes_validate() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBERNETES_VALIDATE") {
        return path.into();
    }
    let home = std::env::var_os("HOME").expect("HOME");
    PathBuf::from(home).join(".cache/clickstream/venv/bin/kubernetes-validate")
}

/// The manifests against the Kubernetes JSON schemas that kubernetes-validate bundles (no
/// network), strictly: a misspelt or misplaced field fails instead of being dropped by the
/// API server. Every document must be validated, not skipped for a missing schema.
#[test]
fn kubernetes_manifests_validate_against_the_bundled_schemas() {
    let validator = kubernetes_validate();
    let version = Command::new(&validator)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; run ./scripts/test to install kubernetes-validate", validator.display()));
    let ci = read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/test"));
    let pinned = ci.lines().find_map(|l| l.strip_prefix("KUBERNETES_VALIDATE_VERSION=")).expect("the pinned version");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        pinned,
        "{} is not the version scripts/test pins; run ./scripts/test to install kubernetes-validate",
        validator.display()
    );
    let files = kubernetes_files();
    let documents: usize = files.iter().map(|f| kubernetes_documents(f).len()).sum();
    for kubernetes in KUBERNETES_VERSIONS {
        let output = Command::new(&validator)
            .args(["--strict", "--kubernetes-version", kubernetes])
            .args(&files)
            .current_dir(deploy("k8s"))
            .output()
            .expect("run kubernetes-validate");
        let report = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "Kubernetes {kubernetes}:\n{report}");
        assert!(!report.contains("WARN") && !report.contains("ERROR"), "Kubernetes {kubernetes}:\n{report}");
        let passed = report.lines().filter(|l| l.contains(" passed for resource ")).count();
        assert_eq!(passed, documents, "Kubernetes {kubernetes}: not every document was validated:\n{report}");
    }
}

#[test]
fn kustomization_applies_every_manifest_but_the_example_secret_and_the_recovery_job() {
    let kustomization: Value = serde_yaml::from_str(&read(deploy("k8s/kustomization.yaml"))).expect("kustomization");
    let resources: BTreeSet<String> = strings(&kustomization["resources"]).into_iter().collect();
    let expected: BTreeSet<String> =
        kubernetes_files().into_iter().filter(|f| !NOT_IN_KUSTOMIZATION.contains(&f.as_str())).collect();
    assert_eq!(resources, expected, "kustomization.yaml resources");
    for file in NOT_IN_KUSTOMIZATION {
        assert!(deploy(&format!("k8s/{file}")).exists(), "k8s/{file} is missing");
    }
}

/// Acknowledged events in a gateway's spool survive what Kubernetes does to its pods: a claim
/// per pod that neither a restart, a rollout, a scale-down nor deleting the StatefulSet removes;
/// pods that get their whole shutdown; and disruptions one at a time.
#[test]
fn the_gateway_spool_survives_rollouts_scale_down_and_restarts() {
    let gateway = kubernetes_object("StatefulSet", "clickstream-gateway");
    let spec = &gateway["spec"];
    let pod = &spec["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(strings(&container["args"]), ["gateway"]);
    let dir = env_value(container, "CLICKSTREAM_SPOOL__DIR").expect("CLICKSTREAM_SPOOL__DIR");
    let mount = container["volumeMounts"]
        .as_sequence()
        .and_then(|m| m.iter().find(|m| m["mountPath"] == dir))
        .unwrap_or_else(|| panic!("nothing is mounted on the spool directory {dir}"));
    let volume = mount["name"].as_str().expect("mount name");
    let templates = spec["volumeClaimTemplates"].as_sequence().expect("volumeClaimTemplates");
    let claim = templates
        .iter()
        .find(|t| t["metadata"]["name"] == volume)
        .unwrap_or_else(|| panic!("the spool volume {volume} is not a volumeClaimTemplate"));
    assert_eq!(strings(&claim["spec"]["accessModes"]), ["ReadWriteOnce"]);
    assert!(
        pod["volumes"].as_sequence().into_iter().flatten().all(|v| v["name"] != volume),
        "a pod volume named {volume} would shadow the claim"
    );
    let retention = &spec["persistentVolumeClaimRetentionPolicy"];
    assert_eq!(retention["whenScaled"], "Retain", "a scale-down must keep the removed pods' spools");
    assert_eq!(retention["whenDeleted"], "Retain", "deleting the StatefulSet must keep the spools");

    let origin = "k8s/gateway.yaml clickstream-gateway";
    let shutdown = shutdown_secs(origin, |var| env_value(container, var).map(str::to_owned));
    let grace = pod["terminationGracePeriodSeconds"].as_u64().expect("terminationGracePeriodSeconds");
    assert!(grace > shutdown, "{origin}: terminationGracePeriodSeconds {grace} <= drain + budget {shutdown}");

    let service = spec["serviceName"].as_str().expect("serviceName");
    assert_eq!(kubernetes_object("Service", service)["spec"]["clusterIP"], "None", "{service} must be headless");
    let traffic = kubernetes_object("Service", "clickstream-gateway");
    assert_ne!(traffic["spec"]["clusterIP"], "None", "the traffic Service must have a cluster IP");
    let ports: Vec<&str> = traffic["spec"]["ports"]
        .as_sequence()
        .expect("ports")
        .iter()
        .filter_map(|p| p["targetPort"].as_str())
        .collect();
    assert_eq!(ports, ["http"], "the traffic Service sends only to the public port");

    let hpa = kubernetes_object("HorizontalPodAutoscaler", "clickstream-gateway");
    let target = &hpa["spec"]["scaleTargetRef"];
    assert_eq!((target["kind"].as_str(), target["name"].as_str()), (Some("StatefulSet"), Some("clickstream-gateway")));
    assert!(hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"].as_u64() > Some(0));

    let spread: Vec<&str> = pod["topologySpreadConstraints"]
        .as_sequence()
        .expect("topologySpreadConstraints")
        .iter()
        .filter_map(|c| c["topologyKey"].as_str())
        .collect();
    assert_eq!(spread, ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]);
}

/// Both long-running workloads: probes on the admin port's endpoints, a PodDisruptionBudget
/// that selects their pods, and Prometheus pointed at the admin port.
#[test]
fn gateway_and_enricher_have_probes_budgets_and_admin_metrics() {
    for name in ["clickstream-gateway", "clickstream-enricher"] {
        let workload = kubernetes_object("StatefulSet", name);
        let template = &workload["spec"]["template"];
        let container = &template["spec"]["containers"][0];
        let mut probes = vec![("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")];
        if name == "clickstream-gateway" {
            probes.push(("startupProbe", "/healthz"));
        }
        for (probe, path) in probes {
            let get = &container[probe]["httpGet"];
            assert_eq!((get["path"].as_str(), get["port"].as_str()), (Some(path), Some("admin")), "{name}: {probe}");
        }
        let admin = container["ports"]
            .as_sequence()
            .and_then(|p| p.iter().find(|p| p["name"] == "admin"))
            .and_then(|p| p["containerPort"].as_u64())
            .expect("an admin port");
        let scraped = template["metadata"]["annotations"]["prometheus.io/port"].as_str();
        assert_eq!(scraped, Some(admin.to_string().as_str()), "{name}: Prometheus must scrape the admin port");

        let budget = kubernetes_object("PodDisruptionBudget", name);
        let labels = template["metadata"]["labels"].as_mapping().expect("pod labels");
        let selector = budget["spec"]["selector"]["matchLabels"].as_mapping().expect("matchLabels");
        assert!(!selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v)), "{name}: PDB selector");
        assert!(budget["spec"]["maxUnavailable"] == 1 || budget["spec"]["minAvailable"].is_u64(), "{name}: PDB");
    }
}

/// Write keys and Kafka credentials live in the Secret clickstream-secrets, never in the
/// ConfigMap; the gateway finds sources.toml where CLICKSTREAM_SOURCES_FILE says, in a
/// read-only volume fed by the Secret, which Kubernetes refreshes in place when it changes.
#[test]
fn write_keys_and_kafka_credentials_come_from_the_secret() {
    let configmap = kubernetes_object("ConfigMap", "clickstream");
    for (key, text) in configmap["data"].as_mapping().expect("data") {
        let text = text.as_str().unwrap_or_default();
        assert!(!text.contains("write_key"), "ConfigMap {key:?} holds write keys; they belong in the Secret");
    }
    let config = configmap["data"]["clickstream.toml"].as_str().expect("clickstream.toml");
    assert!(config.contains("\"${KAFKA_SASL_PASSWORD}\""), "clickstream.toml shows no SASL reference to the Secret");
    assert!(!uncommented(config).any(|l| l.contains("sasl")), "SASL must stay off by default (commented out)");

    let gateway = kubernetes_object("StatefulSet", "clickstream-gateway");
    let pod = &gateway["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let file = env_value(container, "CLICKSTREAM_SOURCES_FILE").expect("CLICKSTREAM_SOURCES_FILE");
    assert_eq!(file, "/etc/clickstream/secrets/sources.toml");
    let mounts = container["volumeMounts"].as_sequence().expect("volumeMounts");
    let (mount, inside) = mounts
        .iter()
        .filter_map(|m| Some((m, file.strip_prefix(m["mountPath"].as_str()?)?.strip_prefix('/')?)))
        .max_by_key(|(m, _)| m["mountPath"].as_str().map_or(0, str::len))
        .unwrap_or_else(|| panic!("no volume is mounted over {file}"));
    assert_eq!(mount["readOnly"].as_bool(), Some(true), "the secret volume must be read-only");
    assert!(mount["subPath"].is_null(), "a subPath mount is never refreshed when the Secret changes");
    let volume = pod["volumes"]
        .as_sequence()
        .and_then(|v| v.iter().find(|v| v["name"] == mount["name"]))
        .expect("the mounted volume");
    let secrets: Vec<&Value> = match volume["projected"]["sources"].as_sequence() {
        Some(sources) => sources.iter().map(|s| &s["secret"]).filter(|s| s.is_mapping()).collect(),
        None => vec![&volume["secret"]],
    };
    let from_secret = secrets.iter().any(|secret| {
        let name = secret["name"].as_str().or(secret["secretName"].as_str());
        name == Some("clickstream-secrets")
            && secret["items"].as_sequence().map_or(inside == "sources.toml", |items| {
                items.iter().any(|i| i["key"] == "sources.toml" && i["path"] == inside)
            })
    });
    assert!(from_secret, "{file} is not the Secret clickstream-secrets' key sources.toml");

    let example = kubernetes_object("Secret", "clickstream-secrets");
    let sources = example["stringData"]["sources.toml"].as_str().expect("sources.toml in the example");
    assert!(sources.contains("[[sources]]") && sources.contains("write_key = \"CHANGE-ME"), "placeholder sources");
}

/// The recovery Job replays what a removed gateway left, from the claim the StatefulSet made
/// for that pod, into the spool directory the gateway used; and the README tells how.
#[test]
fn the_spool_recovery_job_replays_a_removed_gateways_claim() {
    let gateway = kubernetes_object("StatefulSet", "clickstream-gateway");
    let gateway_container = &gateway["spec"]["template"]["spec"]["containers"][0];
    let spool_dir = env_value(gateway_container, "CLICKSTREAM_SPOOL__DIR").expect("the gateway's spool dir");
    let template = gateway["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].as_str().expect("claim template");
    let docs = kubernetes_documents("spool-recovery-job.yaml");
    assert_eq!(docs.len(), 1);
    let job = &docs[0];
    assert_eq!(job["kind"], "Job");
    let pod = &job["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args = strings(&container["args"]);
    assert_eq!(args[..2], ["spool", "replay"], "the Job must run `clickstream spool replay`");
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str);
    assert_eq!(flag("--dir"), Some(spool_dir), "the Job must replay the gateway's spool directory");
    assert_eq!(flag("--config"), Some("/etc/clickstream/clickstream.toml"));
    let mount = container["volumeMounts"]
        .as_sequence()
        .and_then(|m| m.iter().find(|m| m["mountPath"] == spool_dir))
        .expect("a volume on the spool directory");
    let claim = pod["volumes"]
        .as_sequence()
        .and_then(|v| v.iter().find(|v| v["name"] == mount["name"]))
        .and_then(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .expect("the spool volume is a claim");
    let prefix = format!("{template}-clickstream-gateway-");
    let ordinal = claim.strip_prefix(&prefix).unwrap_or_else(|| panic!("{claim} is not a gateway spool claim"));
    assert!(ordinal.parse::<u32>().is_ok(), "{claim}: no pod ordinal");
    let readme = read(deploy("README.md"));
    for needed in ["spool-recovery-job.yaml", "spool replay", "kubectl get pvc", "kubectl delete pvc"] {
        assert!(readme.contains(needed), "deploy/README.md's recovery procedure lacks {needed}");
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
