//! `reconcile` against small in-memory fakes of the hook tools and of Pebble that keep
//! app and unit databags apart and record every call.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

use pebble::{CheckInfo, Layer, PushOptions, ServiceInfo};
use serde_json::{Map, Value};

use super::topology::tests::ctx;
use super::*;
use crate::juju::event::SecretHook;
use crate::juju::tools::*;
use crate::workload::PebbleResult;

/// The Python with `lzma` that the tests use as an independent decoder.
pub fn test_python() -> PathBuf {
    let tools = std::env::var_os("SYNAPSE_CHARM_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/synapse-charm"));
    let py = tools.join("test-venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup.sh",
        py.display()
    );
    py
}

#[derive(Default)]
struct Tools {
    leader: bool,
    /// endpoint → relations
    ids: BTreeMap<String, Vec<RelationId>>,
    /// relation → remote units
    units: BTreeMap<RelationId, Vec<String>>,
    /// (relation, unit or app name, app?) → bag
    bags: RefCell<BTreeMap<(RelationId, String, bool), Databag>>,
    calls: RefCell<Vec<String>>,
    sets: RefCell<Vec<(RelationId, bool, Databag)>>,
}

const APP: &str = "synapse";
const UNIT: &str = "synapse/0";

impl Tools {
    fn call(&self, c: &str) {
        self.calls.borrow_mut().push(c.to_string());
    }
    fn relate(&mut self, rel: &RelationId, remote_units: &[&str]) {
        self.ids
            .entry(rel.endpoint.clone())
            .or_default()
            .push(rel.clone());
        self.units.insert(
            rel.clone(),
            remote_units.iter().map(|u| u.to_string()).collect(),
        );
    }
    fn bag(&self, rel: &RelationId, who: &str, app: bool) -> Databag {
        self.bags
            .borrow()
            .get(&(rel.clone(), who.to_string(), app))
            .cloned()
            .unwrap_or_default()
    }
    fn set_remote(&self, rel: &RelationId, unit: &str, k: &str, v: &str) {
        self.bags
            .borrow_mut()
            .entry((rel.clone(), unit.to_string(), false))
            .or_default()
            .insert(k.into(), v.into());
    }
    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }
    fn take_sets(&self) -> Vec<(RelationId, bool, Databag)> {
        std::mem::take(&mut *self.sets.borrow_mut())
    }
}

fn nope<T>(tool: &'static str) -> ToolResult<T> {
    Err(ToolError::new(
        tool,
        ToolErrorKind::Failed,
        "not in this fake",
    ))
}

impl HookTools for Tools {
    fn config_get(&self) -> ToolResult<Map<String, Value>> {
        self.call("config-get");
        nope("config-get")
    }
    fn is_leader(&self) -> ToolResult<bool> {
        self.call("is-leader");
        Ok(self.leader)
    }
    fn relation_ids(&self, endpoint: &str) -> ToolResult<Vec<RelationId>> {
        self.call(&format!("relation-ids {endpoint}"));
        Ok(self.ids.get(endpoint).cloned().unwrap_or_default())
    }
    fn relation_list(&self, r: &RelationId) -> ToolResult<Vec<String>> {
        self.call(&format!("relation-list {r}"));
        Ok(self.units.get(r).cloned().unwrap_or_default())
    }
    fn relation_remote_app(&self, _: &RelationId) -> ToolResult<Option<String>> {
        self.call("relation-list --app");
        nope("relation-list")
    }
    fn relation_get(&self, r: &RelationId, target: &str, app: bool) -> ToolResult<Databag> {
        self.call(&format!(
            "relation-get {r} {target}{}",
            if app { " --app" } else { "" }
        ));
        if app && target == APP && !self.leader {
            return Err(ToolError::new(
                "relation-get",
                ToolErrorKind::PermissionDenied,
                "permission denied",
            ));
        }
        Ok(self.bag(r, target, app))
    }
    fn relation_set(&self, r: &RelationId, app: bool, data: &Databag) -> ToolResult<()> {
        self.call(&format!(
            "relation-set {r}{}",
            if app { " --app" } else { "" }
        ));
        if app && !self.leader {
            return Err(ToolError::new(
                "relation-set",
                ToolErrorKind::PermissionDenied,
                "not the leader",
            ));
        }
        self.sets.borrow_mut().push((r.clone(), app, data.clone()));
        let who = if app { APP } else { UNIT };
        let mut bags = self.bags.borrow_mut();
        let bag = bags.entry((r.clone(), who.to_string(), app)).or_default();
        crate::juju::tools::merge_databag(bag, data);
        Ok(())
    }
    fn status_set(&self, _: &Status, _: bool) -> ToolResult<()> {
        self.call("status-set");
        nope("status-set")
    }
    fn application_version_set(&self, _: &str) -> ToolResult<()> {
        self.call("application-version-set");
        nope("application-version-set")
    }
    fn state_get(&self) -> ToolResult<Databag> {
        self.call("state-get");
        nope("state-get")
    }
    fn state_set(&self, _: &Databag) -> ToolResult<()> {
        self.call("state-set");
        nope("state-set")
    }
    fn state_delete(&self, _: &str) -> ToolResult<()> {
        self.call("state-delete");
        nope("state-delete")
    }
    fn secret_get(&self, _: Option<&str>, _: Option<&str>, _: SecretRead) -> ToolResult<Databag> {
        self.call("secret-get");
        nope("secret-get")
    }
    fn secret_info_by_label(&self, _: &str) -> ToolResult<Option<SecretInfo>> {
        self.call("secret-info-get");
        nope("secret-info-get")
    }
    fn secret_add(&self, _: &Databag, _: &str, _: &str, _: SecretOwner) -> ToolResult<String> {
        self.call("secret-add");
        nope("secret-add")
    }
    fn secret_set(&self, _: &str, _: &Databag) -> ToolResult<()> {
        self.call("secret-set");
        nope("secret-set")
    }
    fn network_get(&self, binding: &str) -> ToolResult<NetworkInfo> {
        self.call(&format!("network-get {binding}"));
        Ok(NetworkInfo {
            bind_address: Some("10.1.1.7".into()),
            ingress_addresses: vec!["10.1.1.7".into()],
        })
    }
    fn open_port(&self, _: u16) -> ToolResult<()> {
        self.call("open-port");
        nope("open-port")
    }
    fn opened_ports(&self) -> ToolResult<Vec<String>> {
        self.call("opened-ports");
        nope("opened-ports")
    }
    fn action_get(&self) -> ToolResult<Map<String, Value>> {
        self.call("action-get");
        nope("action-get")
    }
    fn action_set(&self, _: &Databag) -> ToolResult<()> {
        self.call("action-set");
        nope("action-set")
    }
    fn action_fail(&self, _: &str) -> ToolResult<()> {
        self.call("action-fail");
        nope("action-fail")
    }
    fn action_log(&self, _: &str) -> ToolResult<()> {
        self.call("action-log");
        nope("action-log")
    }
}

/// A Pebble that only knows plans and layers (log targets combine like Pebble's
/// `override: replace`).
#[derive(Default)]
struct Pebble {
    down: bool,
    plan: RefCell<Layer>,
    calls: RefCell<Vec<String>>,
}

impl Workload for Pebble {
    fn name(&self) -> &str {
        "fake"
    }
    fn plan(&self) -> PebbleResult<Layer> {
        self.calls.borrow_mut().push("plan".into());
        if self.down {
            return Err(pebble::Error::Connect {
                socket: "/fake".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        Ok(self.plan.borrow().clone())
    }
    fn add_layer(&self, label: &str, layer: &Layer) -> PebbleResult<()> {
        self.calls.borrow_mut().push(format!("add-layer {label}"));
        let mut plan = self.plan.borrow_mut();
        plan.log_targets.extend(layer.log_targets.clone());
        plan.services.extend(layer.services.clone());
        Ok(())
    }
    fn replan(&self) -> PebbleResult<()> {
        self.calls.borrow_mut().push("replan".into());
        Ok(())
    }
    fn stop(&self, _: &[&str]) -> PebbleResult<()> {
        self.calls.borrow_mut().push("stop".into());
        Ok(())
    }
    fn pull(&self, _: &str) -> PebbleResult<Option<Vec<u8>>> {
        self.calls.borrow_mut().push("pull".into());
        Ok(None)
    }
    fn push(&self, _: &str, _: &[u8], _: &PushOptions) -> PebbleResult<()> {
        self.calls.borrow_mut().push("push".into());
        Ok(())
    }
    fn services(&self) -> PebbleResult<Vec<ServiceInfo>> {
        self.calls.borrow_mut().push("services".into());
        Ok(vec![])
    }
    fn checks(&self) -> PebbleResult<Vec<CheckInfo>> {
        self.calls.borrow_mut().push("checks".into());
        Ok(vec![])
    }
    fn probe(&self, _: &str) -> bool {
        true
    }
}

struct Pod {
    synapse: Pebble,
    nginx: Pebble,
}

impl Pod {
    fn up() -> Self {
        Self {
            synapse: Pebble::default(),
            nginx: Pebble::default(),
        }
    }
    fn calls(&self) -> Vec<String> {
        let mut c = std::mem::take(&mut *self.synapse.calls.borrow_mut());
        c.extend(std::mem::take(&mut *self.nginx.calls.borrow_mut()));
        c
    }
}

fn rid(endpoint: &str, id: u64) -> RelationId {
    RelationId {
        endpoint: endpoint.into(),
        id,
    }
}

fn relation_event(hook: RelationHook, rel: &RelationId, remote: Option<&str>) -> Event {
    Event::Relation {
        hook,
        relation: rel.clone(),
        remote_app: remote.map(|u| u.split('/').next().unwrap_or(u).to_string()),
        remote_unit: remote.map(str::to_string),
        departing_unit: None,
    }
}

fn run(t: &Tools, pod: &Pod, event: Event, exporter: bool) {
    reconcile(
        &ctx(event),
        t,
        &ObservabilityInputs {
            leader: t.leader,
            exporter,
            exporter_changed: false,
            synapse: &pod.synapse,
            nginx: &pod.nginx,
        },
    )
    .unwrap();
}

fn jobs(bag: &Databag) -> Vec<String> {
    let v: Value = serde_json::from_str(&bag[prometheus::SCRAPE_JOBS]).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap().to_string())
        .collect()
}

/// One of each observability relation, plus a database relation.
fn related(leader: bool) -> (Tools, RelationId, RelationId, RelationId) {
    let mut t = Tools {
        leader,
        ..Tools::default()
    };
    let metrics = rid(prometheus::ENDPOINT, 3);
    let dash = rid(grafana::ENDPOINT, 4);
    let logging = rid(loki::ENDPOINT, 5);
    t.relate(&metrics, &["prometheus-k8s/0"]);
    t.relate(&dash, &["grafana-k8s/0"]);
    t.relate(&logging, &["loki-k8s/0"]);
    t.relate(&rid("database", 1), &["postgresql-k8s/0"]);
    (t, metrics, dash, logging)
}

const LOKI0: &str = r#"{"url": "http://loki-k8s-0.loki-k8s-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"}"#;

#[test]
fn update_status_and_other_events_make_no_call() {
    let (t, ..) = related(true);
    let pod = Pod::up();
    for event in [
        Event::UpdateStatus,
        Event::ConfigChanged,
        Event::Install,
        Event::LeaderSettingsChanged,
        Event::PebbleReady {
            container: "other".into(),
        },
        relation_event(RelationHook::Changed, &rid("synapse-peers", 0), None),
        relation_event(RelationHook::Changed, &rid("ingress", 7), None),
    ] {
        run(&t, &pod, event.clone(), true);
        assert_eq!(t.take_calls(), Vec::<String>::new(), "{event:?}");
        assert_eq!(pod.calls(), Vec::<String>::new(), "{event:?}");
    }
}

#[test]
fn metrics_joined_writes_leader_and_unit_keys_once() {
    let (t, metrics, ..) = related(true);
    let pod = Pod::up();
    let joined = relation_event(RelationHook::Joined, &metrics, Some("prometheus-k8s/0"));
    run(&t, &pod, joined.clone(), true);
    assert_eq!(
        t.take_calls(),
        vec![
            "relation-get metrics-endpoint:3 synapse --app",
            "relation-set metrics-endpoint:3 --app",
            "network-get metrics-endpoint",
            "relation-get metrics-endpoint:3 synapse/0",
            "relation-set metrics-endpoint:3",
        ]
    );
    assert!(pod.calls().is_empty(), "no Pebble for metrics");
    let sets = t.take_sets();
    assert_eq!(sets.len(), 2);
    let (_, app, bag) = &sets[0];
    assert!(*app);
    assert_eq!(
        bag.keys().collect::<Vec<_>>(),
        vec!["alert_rules", "scrape_jobs", "scrape_metadata"]
    );
    assert_eq!(
        jobs(bag),
        vec!["synapse_application", "synapse_stats_exporter"]
    );
    let meta: Value = serde_json::from_str(&bag["scrape_metadata"]).unwrap();
    assert_eq!(meta["model_uuid"], "0b5b5a54-1c2d-4e3f-8a9b-0123456789ab");
    let (_, app, bag) = &sets[1];
    assert!(!*app);
    assert_eq!(bag[prometheus::UNIT_ADDRESS], "10.1.1.7");
    assert_eq!(bag[prometheus::UNIT_NAME], "synapse/0");

    // The same event again (or relation-changed): reads, no writes.
    run(&t, &pod, joined, true);
    run(
        &t,
        &pod,
        relation_event(RelationHook::Changed, &metrics, Some("prometheus-k8s/0")),
        true,
    );
    assert!(t.take_sets().is_empty());
    assert!(!t.take_calls().iter().any(|c| c.starts_with("relation-set")));
}

#[test]
fn exporter_off_means_one_job_and_database_events_rewrite_only_the_jobs() {
    let (t, metrics, ..) = related(true);
    let pod = Pod::up();
    run(
        &t,
        &pod,
        relation_event(RelationHook::Joined, &metrics, Some("prometheus-k8s/0")),
        false,
    );
    let app = t.bag(&metrics, APP, true);
    assert_eq!(jobs(&app), vec!["synapse_application"]);
    t.take_sets();
    t.take_calls();

    // The database relation brings PostgreSQL: the exporter starts.
    let db = rid("database", 1);
    run(
        &t,
        &pod,
        relation_event(RelationHook::Changed, &db, Some("postgresql-k8s/0")),
        true,
    );
    assert_eq!(
        t.take_calls(),
        vec![
            "relation-ids metrics-endpoint",
            "relation-get metrics-endpoint:3 synapse --app",
            "relation-set metrics-endpoint:3 --app",
        ],
        "leader app keys only"
    );
    let sets = t.take_sets();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].2.keys().collect::<Vec<_>>(), vec!["scrape_jobs"]);
    assert_eq!(
        jobs(&t.bag(&metrics, APP, true)),
        vec!["synapse_application", "synapse_stats_exporter"]
    );

    // Broken: the exporter stops, its job goes.
    run(
        &t,
        &pod,
        relation_event(RelationHook::Broken, &db, None),
        false,
    );
    assert_eq!(
        jobs(&t.bag(&metrics, APP, true)),
        vec!["synapse_application"]
    );
    // A secret event with nothing changed: no write.
    t.take_sets();
    run(
        &t,
        &pod,
        Event::Secret {
            hook: SecretHook::Changed,
            id: "secret:x".into(),
            label: None,
            revision: None,
        },
        false,
    );
    assert!(t.take_sets().is_empty());
}

#[test]
fn non_leader_writes_its_unit_keys_only() {
    let (t, metrics, dash, _) = related(false);
    let pod = Pod::up();
    run(
        &t,
        &pod,
        relation_event(RelationHook::Joined, &metrics, Some("prometheus-k8s/0")),
        true,
    );
    let sets = t.take_sets();
    assert_eq!(sets.len(), 1);
    assert!(!sets[0].1);
    // Database events and dashboards are the leader's business: no call at all.
    t.take_calls();
    run(
        &t,
        &pod,
        relation_event(RelationHook::Changed, &rid("database", 1), None),
        true,
    );
    run(
        &t,
        &pod,
        relation_event(RelationHook::Joined, &dash, Some("grafana-k8s/0")),
        true,
    );
    assert_eq!(t.take_calls(), Vec::<String>::new());
}

#[test]
fn dashboards_are_written_once_and_only_when_the_templates_change() {
    let (t, _, dash, _) = related(true);
    let pod = Pod::up();
    let joined = relation_event(RelationHook::Joined, &dash, Some("grafana-k8s/0"));
    run(&t, &pod, joined.clone(), false);
    let sets = t.take_sets();
    assert_eq!(sets.len(), 1);
    assert!(sets[0].1, "app databag");
    let doc = &sets[0].2[grafana::DASHBOARDS];
    let templates = grafana::decode_dashboards(doc).unwrap();
    assert_eq!(
        templates.keys().collect::<Vec<_>>(),
        vec!["file:synapse_overview", "file:synapse_statistics"]
    );
    // Again: same templates, so no new uuid and no relation-changed for Grafana.
    run(&t, &pod, joined.clone(), false);
    assert!(t.take_sets().is_empty());
    // Someone else's (an older charm's) dashboards: replaced.
    t.bags.borrow_mut().insert(
        (dash.clone(), APP.into(), true),
        Databag::from([(
            grafana::DASHBOARDS.into(),
            r#"{"templates": {}, "uuid": "x"}"#.into(),
        )]),
    );
    run(&t, &pod, joined, false);
    assert_eq!(t.take_sets().len(), 1);
}

#[test]
fn logging_adds_targets_to_both_containers_and_disables_gone_units() {
    let (t, _, _, logging) = related(true);
    let pod = Pod::up();
    let changed = relation_event(RelationHook::Changed, &logging, Some("loki-k8s/0"));
    // Loki has not published its endpoint yet: nothing to forward to.
    run(&t, &pod, changed.clone(), false);
    assert!(pod.synapse.plan.borrow().log_targets.is_empty());
    let sets = t.take_sets();
    assert_eq!(sets.len(), 1, "the leader's metadata");
    let meta: Value = serde_json::from_str(&sets[0].2[loki::METADATA]).unwrap();
    assert_eq!(meta["application"], "synapse");
    assert_eq!(meta["charm_name"], "synapse");

    t.set_remote(&logging, "loki-k8s/0", "endpoint", LOKI0);
    pod.calls();
    run(&t, &pod, changed.clone(), false);
    assert_eq!(
        pod.calls(),
        vec![
            "plan",
            "add-layer synapse-logging",
            "plan",
            "add-layer synapse-logging"
        ],
        "no replan"
    );
    for p in [&pod.synapse, &pod.nginx] {
        let plan = p.plan.borrow();
        let lt = &plan.log_targets["loki-k8s/0"];
        assert_eq!(lt.services, vec!["all"]);
        assert_eq!(lt.labels["juju_unit"], "synapse/0");
        assert_eq!(lt.labels["product"], "Juju");
    }
    assert!(t.take_sets().is_empty(), "metadata already there");

    // Nothing changed: the plans are read, nothing added.
    run(&t, &pod, changed, false);
    assert_eq!(pod.calls(), vec!["plan", "plan"]);

    // A second Loki unit joins, then the first departs.
    t.set_remote(
        &logging,
        "loki-k8s/1",
        "endpoint",
        &LOKI0.replace("k8s-0", "k8s-1"),
    );
    let mut t = t;
    t.units.insert(
        logging.clone(),
        vec!["loki-k8s/0".into(), "loki-k8s/1".into()],
    );
    run(
        &t,
        &pod,
        relation_event(RelationHook::Joined, &logging, Some("loki-k8s/1")),
        false,
    );
    assert_eq!(pod.synapse.plan.borrow().log_targets.len(), 2);
    // Juju may still list the departing unit: it counts as gone all the same.
    let departed = Event::Relation {
        hook: RelationHook::Departed,
        relation: logging.clone(),
        remote_app: Some("loki-k8s".into()),
        remote_unit: Some("loki-k8s/0".into()),
        departing_unit: Some("loki-k8s/0".into()),
    };
    run(&t, &pod, departed, false);
    for p in [&pod.synapse, &pod.nginx] {
        let plan = p.plan.borrow();
        assert_eq!(plan.log_targets["loki-k8s/0"].services, vec!["-all"]);
        assert!(plan.log_targets["loki-k8s/0"].location.is_some());
        assert_eq!(plan.log_targets["loki-k8s/1"].services, vec!["all"]);
    }
    // Broken: the relation is excluded, so every target is disabled; nothing written
    // to the broken relation.
    t.take_sets();
    t.take_calls();
    run(
        &t,
        &pod,
        relation_event(RelationHook::Broken, &logging, None),
        false,
    );
    assert_eq!(t.take_calls(), vec!["relation-ids logging"]);
    assert!(t.take_sets().is_empty());
    for p in [&pod.synapse, &pod.nginx] {
        assert!(p
            .plan
            .borrow()
            .log_targets
            .values()
            .all(|lt| lt.services == ["-all"]));
    }
}

#[test]
fn unreachable_containers_are_skipped() {
    let (t, _, _, logging) = related(false);
    t.set_remote(&logging, "loki-k8s/0", "endpoint", LOKI0);
    let pod = Pod {
        synapse: Pebble {
            down: true,
            ..Pebble::default()
        },
        nginx: Pebble::default(),
    };
    run(
        &t,
        &pod,
        Event::PebbleReady {
            container: "synapse-nginx".into(),
        },
        false,
    );
    assert_eq!(
        pod.calls(),
        vec!["plan", "plan", "add-layer synapse-logging"]
    );
    assert_eq!(pod.nginx.plan.borrow().log_targets.len(), 1);
}

#[test]
fn broken_metrics_relation_is_excluded() {
    let (t, metrics, ..) = related(true);
    let pod = Pod::up();
    run(
        &t,
        &pod,
        relation_event(RelationHook::Broken, &metrics, None),
        true,
    );
    assert_eq!(t.take_calls(), vec!["relation-ids metrics-endpoint"]);
    assert!(t.take_sets().is_empty());
}

#[test]
fn leader_elected_reconciles_everything_once() {
    let (t, metrics, dash, logging) = related(true);
    t.set_remote(&logging, "loki-k8s/0", "endpoint", LOKI0);
    let pod = Pod::up();
    run(&t, &pod, Event::LeaderElected, true);
    let written: Vec<(String, bool)> = t
        .take_sets()
        .into_iter()
        .map(|(r, app, _)| (r.to_string(), app))
        .collect();
    assert_eq!(
        written,
        vec![
            (metrics.to_string(), true),
            (metrics.to_string(), false),
            (dash.to_string(), true),
            (logging.to_string(), true),
        ]
    );
    assert_eq!(pod.synapse.plan.borrow().log_targets.len(), 1);
    // After pod churn (upgrade-charm, start, pebble-ready): nothing left to write.
    for e in [
        Event::UpgradeCharm,
        Event::Start,
        Event::PebbleReady {
            container: "synapse".into(),
        },
    ] {
        run(&t, &pod, e, true);
    }
    assert!(t.take_sets().is_empty());
}

#[test]
fn exporter_starting_on_a_quiet_event_still_updates_the_jobs() {
    let (t, metrics, ..) = related(true);
    let pod = Pod::up();
    run(
        &t,
        &pod,
        relation_event(RelationHook::Joined, &metrics, Some("prometheus-k8s/0")),
        false,
    );
    t.take_sets();
    t.take_calls();
    // The move to PostgreSQL finished during an update-status: nothing to do unless
    // the caller says the exporter changed.
    run(&t, &pod, Event::UpdateStatus, true);
    assert!(t.take_calls().is_empty());
    reconcile(
        &ctx(Event::UpdateStatus),
        &t,
        &ObservabilityInputs {
            leader: true,
            exporter: true,
            exporter_changed: true,
            synapse: &pod.synapse,
            nginx: &pod.nginx,
        },
    )
    .unwrap();
    assert_eq!(
        jobs(&t.bag(&metrics, APP, true)),
        vec!["synapse_application", "synapse_stats_exporter"]
    );
    assert!(acts_on(&Event::UpdateStatus, true) && !acts_on(&Event::UpdateStatus, false));
}
