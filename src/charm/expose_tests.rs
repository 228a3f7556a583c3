//! Delegation, the admin API option and the workload version, through the reconcile
//! against the in-memory Juju model and Pebble. The same behaviour against the real
//! NGINX and Synapse is in `tests/integration/test_expose.py` and `tests/nginx_config.sh`.

use serde_json::json;

use super::reconcile::reconcile;
use crate::juju::hints::UnitHints;
use crate::juju::{Event, Status};
use crate::nginx::site::{ADMIN_API_PATH, WELL_KNOWN_CLIENT_PATH, WELL_KNOWN_SERVER_PATH};
use crate::synapse::version::VERSION_URL;
use crate::testing::juju::{APP, UNIT};
use crate::testing::{FakePod, Juju};

fn run(j: &mut Juju, event: Event, pod: &FakePod, hints: &mut UnitHints) -> Status {
    j.hook(UNIT, event, |ctx, tools| reconcile(ctx, tools, pod, hints))
        .unwrap()
}

fn file(p: &FakePod, path: &str) -> String {
    String::from_utf8(p.nginx.files.borrow()[path].clone()).unwrap()
}

fn version(j: &Juju) -> String {
    j.model.applications[APP].units[UNIT]
        .workload_version
        .clone()
}

#[test]
fn a_base_domain_delegates_to_the_public_host_through_nginx_files() {
    let mut j = Juju::new().with_config(json!({
        "server_name": "example.com",
        "public_baseurl": "https://matrix.example.com:8448",
    }));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    assert_eq!(
        run(&mut j, Event::ConfigChanged, &p, &mut hints),
        Status::active()
    );
    assert_eq!(
        file(&p, WELL_KNOWN_SERVER_PATH),
        "{\"m.server\":\"matrix.example.com:8448\"}\n"
    );
    assert_eq!(
        file(&p, WELL_KNOWN_CLIENT_PATH),
        "{\"m.homeserver\":{\"base_url\":\"https://matrix.example.com:8448\"}}\n"
    );
    assert!(!file(&p, ADMIN_API_PATH).contains('{'), "closed by default");
    // Pushed before NGINX started: nothing to reload.
    assert!(p.nginx.signals.borrow().is_empty());
}

#[test]
fn a_new_delegation_rewrites_the_file_without_any_restart_or_reload() {
    let mut j = Juju::new().with_config(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    assert_eq!(
        file(&p, WELL_KNOWN_SERVER_PATH),
        "{\"m.server\":\"example.com:443\"}\n"
    );
    let synapse_restarts = *p.synapse.restarts.borrow();
    j.set_config("public_baseurl", json!("https://matrix.example.com"));
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    assert_eq!(
        file(&p, WELL_KNOWN_SERVER_PATH),
        "{\"m.server\":\"matrix.example.com:443\"}\n"
    );
    // public_baseurl is in homeserver.yaml: Synapse restarts once for it, NGINX never.
    assert_eq!(*p.synapse.restarts.borrow(), synapse_restarts + 1);
    assert_eq!(*p.nginx.restarts.borrow(), 1);
    assert!(
        p.nginx.signals.borrow().is_empty(),
        "static files: no reload"
    );
}

#[test]
fn opening_the_admin_api_reloads_nginx_and_never_restarts_synapse() {
    let mut j = Juju::new().with_config(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    let synapse_restarts = *p.synapse.restarts.borrow();
    j.set_config("admin_api_allowed_cidrs", json!("10.1.0.0/16, fd00::/8"));
    assert_eq!(
        run(&mut j, Event::ConfigChanged, &p, &mut hints),
        Status::active()
    );
    let admin = file(&p, ADMIN_API_PATH);
    assert!(
        admin.contains("allow 10.1.0.0/16;\n    allow fd00::/8;\n    deny all;"),
        "{admin}"
    );
    assert_eq!(*p.nginx.signals.borrow(), vec!["SIGHUP nginx"]);
    assert_eq!(*p.nginx.restarts.borrow(), 1, "reloaded, not restarted");
    assert_eq!(*p.synapse.restarts.borrow(), synapse_restarts);
    // The same value again: nothing written, no reload; only the plan and NGINX's
    // state are read (its services too: a restart by Pebble is told by its start time).
    p.nginx.take_calls();
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    assert_eq!(p.nginx.take_calls(), vec!["plan", "checks", "services"]);
    assert_eq!(p.nginx.signals.borrow().len(), 1);
    // Closed again.
    j.set_config("admin_api_allowed_cidrs", json!(""));
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    assert!(!file(&p, ADMIN_API_PATH).contains('{'));
    assert_eq!(p.nginx.signals.borrow().len(), 2);
}

#[test]
fn a_restarted_nginx_container_gets_its_files_again() {
    let mut j = Juju::new().with_config(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    // A new container: empty plan, no files; the hints still say "pushed".
    *p.nginx.plan.borrow_mut() = Default::default();
    p.nginx.files.borrow_mut().clear();
    p.nginx.running.borrow_mut().clear();
    run(
        &mut j,
        Event::PebbleReady {
            container: crate::nginx::CONTAINER.into(),
        },
        &p,
        &mut hints,
    );
    assert!(p.nginx.files.borrow().contains_key(WELL_KNOWN_SERVER_PATH));
    assert!(p.nginx.files.borrow().contains_key(ADMIN_API_PATH));
    assert!(
        p.nginx.signals.borrow().is_empty(),
        "started with them, no reload"
    );
}

#[test]
fn the_workload_version_is_read_once_after_each_start_of_synapse() {
    let mut j = Juju::new().with_config(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    p.synapse.http.borrow_mut().insert(
        VERSION_URL.into(),
        br#"{"server": {"name": "Synapse", "version": "1.140.0"}}"#.to_vec(),
    );
    let mut hints = UnitHints::default();
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    assert_eq!(version(&j), "1.140.0");
    let fetched = |p: &FakePod| {
        p.synapse
            .fetches
            .borrow()
            .iter()
            .filter(|u| *u == VERSION_URL)
            .count()
    };
    assert_eq!(fetched(&p), 1);
    // Steady state: neither asked again nor set again.
    j.take_tool_names();
    run(&mut j, Event::UpdateStatus, &p, &mut hints);
    assert_eq!(fetched(&p), 1);
    assert!(!j
        .take_tool_names()
        .contains(&"application-version-set".to_string()));
    // A restart (new configuration) may mean a new Synapse: asked once more.
    p.synapse.http.borrow_mut().insert(
        VERSION_URL.into(),
        br#"{"server": {"name": "Synapse", "version": "1.141.0"}}"#.to_vec(),
    );
    j.set_config("enable_room_list_search", json!(false));
    run(&mut j, Event::ConfigChanged, &p, &mut hints);
    assert_eq!(version(&j), "1.141.0");
    assert_eq!(fetched(&p), 2);
}

#[test]
fn a_synapse_that_does_not_tell_its_version_is_asked_on_the_next_hook() {
    let mut j = Juju::new().with_config(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    assert_eq!(
        run(&mut j, Event::ConfigChanged, &p, &mut hints),
        Status::active()
    );
    assert_eq!(version(&j), "");
    p.synapse.http.borrow_mut().insert(
        VERSION_URL.into(),
        br#"{"server": {"name": "Synapse", "version": "1.140.0"}}"#.to_vec(),
    );
    run(&mut j, Event::UpdateStatus, &p, &mut hints);
    assert_eq!(version(&j), "1.140.0");
}
