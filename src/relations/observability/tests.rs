//! The observability relations against the one in-memory Juju model (JujuLocal's
//! model and hook tools) and the in-memory Pebble.

use std::path::PathBuf;

use serde_json::Value;

use super::*;
use crate::charm::work::Work as EventWork;
use crate::juju::event::SecretHook;
use crate::juju::{Event, RelationHook};
use crate::testing::juju::{APP, UNIT};
use crate::testing::{FakePebble, FakePod, Juju};

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

/// One hook of `synapse/0` running the observability concern for `event` (the work
/// the event table gives it), with the exporter running or not.
fn run(j: &mut Juju, pod: &FakePod, event: Event, exporter: bool) {
    run_changed(j, pod, event, exporter, false)
}

fn run_changed(j: &mut Juju, pod: &FakePod, event: Event, exporter: bool, changed: bool) {
    let leader = j.model.applications[APP].leader.as_deref() == Some(UNIT);
    j.hook(UNIT, event, |ctx, tools| {
        let work = EventWork::for_event(&ctx.event)
            .observability
            .with_exporter_changed(changed);
        reconcile(
            ctx,
            tools,
            &work,
            &ObservabilityInputs {
                leader,
                exporter,
                synapse: &pod.synapse,
                nginx: &pod.nginx,
            },
        )
    })
    .unwrap();
    assert_eq!(
        j.failed_calls(),
        Vec::<String>::new(),
        "no tool call failed"
    );
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
fn related(leader: bool) -> (Juju, RelationId, RelationId, RelationId) {
    let mut j = Juju::without_peers();
    j.set_leader(leader.then_some(UNIT));
    let metrics = rid(prometheus::ENDPOINT, 3);
    let dash = rid(grafana::ENDPOINT, 4);
    let logging = rid(loki::ENDPOINT, 5);
    j.relate(&metrics, "prometheus-k8s", &["prometheus-k8s/0"]);
    j.relate(&dash, "grafana-k8s", &["grafana-k8s/0"]);
    j.relate(&logging, "loki-k8s", &["loki-k8s/0"]);
    j.relate(&rid("database", 1), "postgresql-k8s", &["postgresql-k8s/0"]);
    (j, metrics, dash, logging)
}

const LOKI0: &str = r#"{"url": "http://loki-k8s-0.loki-k8s-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push"}"#;

#[test]
fn update_status_and_other_events_make_no_call() {
    let (mut t, ..) = related(true);
    let pod = FakePod::up();
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
        run(&mut t, &pod, event.clone(), true);
        assert_eq!(t.take_calls(), Vec::<String>::new(), "{event:?}");
        assert_eq!(pod.take_calls(), Vec::<String>::new(), "{event:?}");
    }
}

#[test]
fn metrics_joined_writes_leader_and_unit_keys_once() {
    let (mut t, metrics, ..) = related(true);
    let pod = FakePod::up();
    let joined = relation_event(RelationHook::Joined, &metrics, Some("prometheus-k8s/0"));
    run(&mut t, &pod, joined.clone(), true);
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
    assert!(pod.take_calls().is_empty(), "no Pebble for metrics");
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
    run(&mut t, &pod, joined, true);
    run(
        &mut t,
        &pod,
        relation_event(RelationHook::Changed, &metrics, Some("prometheus-k8s/0")),
        true,
    );
    assert!(t.take_sets().is_empty());
    assert!(!t.take_calls().iter().any(|c| c.starts_with("relation-set")));
}

#[test]
fn exporter_off_means_one_job_and_database_events_rewrite_only_the_jobs() {
    let (mut t, metrics, ..) = related(true);
    let pod = FakePod::up();
    run(
        &mut t,
        &pod,
        relation_event(RelationHook::Joined, &metrics, Some("prometheus-k8s/0")),
        false,
    );
    let app = t.app_data(&metrics, APP);
    assert_eq!(jobs(&app), vec!["synapse_application"]);
    t.take_sets();
    t.take_calls();

    // The database relation brings PostgreSQL: the exporter starts.
    let db = rid("database", 1);
    run(
        &mut t,
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
        jobs(&t.app_data(&metrics, APP)),
        vec!["synapse_application", "synapse_stats_exporter"]
    );

    // Broken: the exporter stops, its job goes.
    run(
        &mut t,
        &pod,
        relation_event(RelationHook::Broken, &db, None),
        false,
    );
    assert_eq!(
        jobs(&t.app_data(&metrics, APP)),
        vec!["synapse_application"]
    );
    // A secret event with nothing changed: no write.
    t.take_sets();
    run(
        &mut t,
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
    let (mut t, metrics, dash, _) = related(false);
    let pod = FakePod::up();
    run(
        &mut t,
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
        &mut t,
        &pod,
        relation_event(RelationHook::Changed, &rid("database", 1), None),
        true,
    );
    run(
        &mut t,
        &pod,
        relation_event(RelationHook::Joined, &dash, Some("grafana-k8s/0")),
        true,
    );
    assert_eq!(t.take_calls(), Vec::<String>::new());
}

#[test]
fn dashboards_are_written_once_and_only_when_the_templates_change() {
    let (mut t, _, dash, _) = related(true);
    let pod = FakePod::up();
    let joined = relation_event(RelationHook::Joined, &dash, Some("grafana-k8s/0"));
    run(&mut t, &pod, joined.clone(), false);
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
    run(&mut t, &pod, joined.clone(), false);
    assert!(t.take_sets().is_empty());
    // Someone else's (an older charm's) dashboards: replaced.
    t.set_app_data(
        &dash,
        APP,
        &[(grafana::DASHBOARDS, r#"{"templates": {}, "uuid": "x"}"#)],
    );
    run(&mut t, &pod, joined, false);
    assert_eq!(t.take_sets().len(), 1);
}

#[test]
fn logging_adds_targets_to_both_containers_and_disables_gone_units() {
    let (mut t, _, _, logging) = related(true);
    let pod = FakePod::up();
    let changed = relation_event(RelationHook::Changed, &logging, Some("loki-k8s/0"));
    // Loki has not published its endpoint yet: nothing to forward to.
    run(&mut t, &pod, changed.clone(), false);
    assert!(pod.synapse.plan.borrow().log_targets.is_empty());
    let sets = t.take_sets();
    assert_eq!(sets.len(), 1, "the leader's metadata");
    let meta: Value = serde_json::from_str(&sets[0].2[loki::METADATA]).unwrap();
    assert_eq!(meta["application"], "synapse");
    assert_eq!(meta["charm_name"], "synapse");

    t.set_unit_data(&logging, "loki-k8s/0", &[("endpoint", LOKI0)]);
    pod.take_calls();
    run(&mut t, &pod, changed.clone(), false);
    assert_eq!(
        pod.take_calls(),
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
    run(&mut t, &pod, changed, false);
    assert_eq!(pod.take_calls(), vec!["plan", "plan"]);

    // A second Loki unit joins, then the first departs.
    t.set_unit_data(
        &logging,
        "loki-k8s/1",
        &[("endpoint", &LOKI0.replace("k8s-0", "k8s-1"))],
    );
    t.set_joined(&logging, "loki-k8s/1", true);
    run(
        &mut t,
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
    run(&mut t, &pod, departed, false);
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
        &mut t,
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
    let (mut t, _, _, logging) = related(false);
    t.set_unit_data(&logging, "loki-k8s/0", &[("endpoint", LOKI0)]);
    let pod = FakePod {
        synapse: FakePebble::default(),
        ..FakePod::up()
    };
    run(
        &mut t,
        &pod,
        Event::PebbleReady {
            container: "synapse-nginx".into(),
        },
        false,
    );
    assert_eq!(
        pod.take_calls(),
        vec!["plan", "plan", "add-layer synapse-logging"]
    );
    assert_eq!(pod.nginx.plan.borrow().log_targets.len(), 1);
}

#[test]
fn broken_metrics_relation_is_excluded() {
    let (mut t, metrics, ..) = related(true);
    let pod = FakePod::up();
    run(
        &mut t,
        &pod,
        relation_event(RelationHook::Broken, &metrics, None),
        true,
    );
    assert_eq!(t.take_calls(), vec!["relation-ids metrics-endpoint"]);
    assert!(t.take_sets().is_empty());
}

#[test]
fn leader_elected_reconciles_everything_once() {
    let (mut t, metrics, dash, logging) = related(true);
    t.set_unit_data(&logging, "loki-k8s/0", &[("endpoint", LOKI0)]);
    let pod = FakePod::up();
    run(&mut t, &pod, Event::LeaderElected, true);
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
        run(&mut t, &pod, e, true);
    }
    assert!(t.take_sets().is_empty());
}

#[test]
fn exporter_starting_on_a_quiet_event_still_updates_the_jobs() {
    let (mut t, metrics, ..) = related(true);
    let pod = FakePod::up();
    run(
        &mut t,
        &pod,
        relation_event(RelationHook::Joined, &metrics, Some("prometheus-k8s/0")),
        false,
    );
    t.take_sets();
    t.take_calls();
    // The move to PostgreSQL finished during an update-status: nothing to do unless
    // the caller says the exporter changed.
    run(&mut t, &pod, Event::UpdateStatus, true);
    assert!(t.take_calls().is_empty());
    run_changed(&mut t, &pod, Event::UpdateStatus, true, true);
    assert_eq!(
        jobs(&t.app_data(&metrics, APP)),
        vec!["synapse_application", "synapse_stats_exporter"]
    );
    let quiet = EventWork::for_event(&Event::UpdateStatus).observability;
    assert!(!quiet.clone().with_exporter_changed(true).is_empty());
    assert!(quiet.with_exporter_changed(false).is_empty());
}
