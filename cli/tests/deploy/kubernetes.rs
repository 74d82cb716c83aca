//! deploy/k8s: schema validation, the kustomization, the spool's claims, probes and budgets,
//! the Secret, the recovery Job and the enricher's stable names.

use super::*;

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
