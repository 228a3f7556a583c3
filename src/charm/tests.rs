//! The reconcile, state in → event → state out, against the one in-memory Juju model
//! (JujuLocal's model and hook tools) and the in-memory Pebble.

use serde_json::json;

use super::reconcile::reconcile;
use crate::juju::hints::UnitHints;
use crate::juju::{Event, RelationId, Status, StatusKind};
use crate::peers::{ENDPOINT as PEERS, KEYS_SECRET_KEY, MAIN_UNIT_KEY};
use crate::synapse::keys::{self, SynapseKeys};
use crate::testing::juju::{APP, UNIT};
use crate::testing::{FakePebble, FakePod, Juju};

fn peer() -> RelationId {
    RelationId {
        endpoint: PEERS.into(),
        id: 0,
    }
}

fn juju(config: serde_json::Value) -> Juju {
    Juju::new().with_config(config)
}

/// One hook of `unit` running the reconcile for `event`; its writes are committed.
fn run(j: &mut Juju, unit: &str, event: Event, pod: &FakePod, hints: &mut UnitHints) -> Status {
    j.hook(unit, event, |ctx, tools| reconcile(ctx, tools, pod, hints))
        .unwrap()
}

fn config_changed(j: &mut Juju, pod: &FakePod) -> Status {
    run(
        j,
        UNIT,
        Event::ConfigChanged,
        pod,
        &mut UnitHints::default(),
    )
}

#[test]
fn first_reconcile_creates_keys_writes_files_and_starts_both() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    assert_eq!(config_changed(&mut j, &p), Status::active());
    let secrets = j.secrets_owned_by(APP);
    assert_eq!(
        secrets.len(),
        1,
        "keys secret created, owned by the application"
    );
    assert_eq!(secrets[0].label.as_deref(), Some(keys::SECRET_LABEL));
    assert_eq!(
        j.app_data(&peer(), APP).get(KEYS_SECRET_KEY),
        Some(&secrets[0].uri()),
        "URI shared with peers"
    );
    assert_eq!(
        j.app_data(&peer(), APP)
            .get(MAIN_UNIT_KEY)
            .map(String::as_str),
        Some(UNIT)
    );
    // The files Synapse reads; the candidate Synapse checked first is gone.
    let files: Vec<String> = p.synapse.files.borrow().keys().cloned().collect();
    assert_eq!(
        files,
        vec![
            "/data/example.com.signing.key",
            "/data/homeserver.yaml",
            "/data/log.config"
        ]
    );
    let pushes = p.synapse.pushes.borrow().clone();
    assert_eq!(
        pushes[2..],
        ["/data/homeserver.yaml.candidate", "/data/homeserver.yaml"],
        "checked before it is written"
    );
    assert_eq!(p.synapse.execs.borrow().len(), 1, "one check by Synapse");
    assert_eq!(*p.synapse.restarts.borrow(), 1);
    assert_eq!(*p.nginx.restarts.borrow(), 1);
}

#[test]
fn unchanged_state_means_no_writes_no_layers_no_restarts() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    run(&mut j, UNIT, Event::ConfigChanged, &p, &mut hints);
    assert_eq!(hints.peer_relation.as_deref(), Some("synapse-peers:0"));
    j.take_tool_names();
    let pushed = p.synapse.pushes.borrow().len();
    run(&mut j, UNIT, Event::UpdateStatus, &p, &mut hints);
    assert_eq!(p.synapse.pushes.borrow().len(), pushed, "no new pushes");
    assert_eq!(p.synapse.execs.borrow().len(), 1, "no new check");
    assert_eq!(*p.synapse.layers_added.borrow(), 1);
    assert_eq!(*p.nginx.layers_added.borrow(), 1);
    assert_eq!(*p.synapse.restarts.borrow(), 1);
    // Steady state: config and the peer bag, each read once; neither leadership nor
    // the keys secret is read (the plan already carries the keys) and nothing is written.
    assert_eq!(j.take_tool_names(), vec!["config-get", "relation-get"]);
}

#[test]
fn a_config_change_rewrites_homeserver_yaml_and_restarts_once() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    config_changed(&mut j, &p);
    let pushed = p.synapse.pushes.borrow().len();
    j.set_config("enable_room_list_search", json!(false));
    config_changed(&mut j, &p);
    let pushes = p.synapse.pushes.borrow().clone();
    assert_eq!(
        pushes[pushed..],
        ["/data/homeserver.yaml.candidate", "/data/homeserver.yaml"],
        "only the changed file, checked first"
    );
    assert_eq!(*p.synapse.restarts.borrow(), 2);
    assert_eq!(*p.nginx.restarts.borrow(), 1);
    assert!(
        String::from_utf8_lossy(&p.synapse.files.borrow()["/data/homeserver.yaml"])
            .contains("enable_room_list_search: false")
    );
}

#[test]
fn changing_server_name_blocks_and_changes_nothing() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    config_changed(&mut j, &p);
    let pushed = p.synapse.pushes.borrow().len();
    j.set_config("server_name", json!("other.org"));
    let status = config_changed(&mut j, &p);
    assert_eq!(status.kind, StatusKind::Blocked);
    assert!(
        status
            .message
            .contains("server_name cannot change from \"example.com\" to \"other.org\""),
        "{}",
        status.message
    );
    assert!(status
        .message
        .contains("juju config synapse server_name=example.com"));
    assert_eq!(p.synapse.pushes.borrow().len(), pushed);
    assert_eq!(*p.synapse.restarts.borrow(), 1);
}

#[test]
fn unreachable_containers_wait() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let p = FakePod {
        synapse: FakePebble::default(),
        ..FakePod::up()
    };
    assert_eq!(
        config_changed(&mut j, &p),
        Status::waiting("Waiting for Pebble in the synapse container")
    );
}

#[test]
fn starting_synapse_is_reported_as_waiting() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let mut p = FakePod::up();
    p.synapse.ready = false;
    assert_eq!(
        config_changed(&mut j, &p),
        Status::waiting("Synapse is starting (waiting for its ready check)")
    );
}

#[test]
fn non_leader_waits_for_keys_then_uses_the_leaders() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let leader = j.add_unit();
    j.set_leader(Some(&leader));
    let p = FakePod::up();
    assert_eq!(
        config_changed(&mut j, &p),
        Status::waiting("Waiting for the leader to choose the unit that runs Synapse")
    );
    // The leader chose another unit: this one would run a worker, which needs
    // PostgreSQL (and Redis); it runs nothing and says how to fix it.
    j.set_app_data(&peer(), APP, &[(MAIN_UNIT_KEY, &leader)]);
    let status = config_changed(&mut j, &p);
    assert_eq!(
        status,
        Status::blocked("2 units need PostgreSQL: run `juju integrate synapse postgresql-k8s`"),
    );
    assert!(
        p.synapse.pushes.borrow().is_empty(),
        "an idle unit writes nothing"
    );
    // This is the main unit, alone now, but the leader has not published the keys yet.
    j.remove_unit(&leader);
    j.set_app_data(&peer(), APP, &[(MAIN_UNIT_KEY, UNIT)]);
    assert_eq!(
        config_changed(&mut j, &p),
        Status::waiting("Waiting for the leader to create Synapse's keys")
    );
    // Then it runs Synapse with the leader's keys.
    let keys = SynapseKeys::generate().unwrap();
    let content: Vec<(String, String)> = keys.to_content().into_iter().collect();
    let content: Vec<(&str, &str)> = content
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let uri = j.add_secret(APP, Some(keys::SECRET_LABEL), &content, None);
    j.set_app_data(&peer(), APP, &[(KEYS_SECRET_KEY, &uri)]);
    assert_eq!(config_changed(&mut j, &p), Status::active());
    assert_eq!(
        p.synapse.files.borrow()["/data/example.com.signing.key"],
        keys.signing_key.as_bytes()
    );
    // A unit that does not lead cannot have written the application's databags.
    assert!(j.take_sets().iter().all(|(_, app, _)| !app));
}

#[test]
fn invalid_config_touches_nothing() {
    let mut j = juju(json!({}));
    let p = FakePod::up();
    let status = config_changed(&mut j, &p);
    assert_eq!(status.kind, StatusKind::Blocked);
    assert!(p.synapse.pushes.borrow().is_empty());
    assert_eq!(*p.nginx.layers_added.borrow(), 0);
}

#[test]
fn dispatch_sets_the_status_once_and_opens_the_port_on_start() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    j.dispatch(UNIT, Event::Start, &p).unwrap();
    assert_eq!(j.status(UNIT), Some(Status::active()));
    let names = j.take_tool_names();
    assert!(names.contains(&"open-port".to_string()), "{names:?}");
    assert!(names.contains(&"status-set".to_string()), "{names:?}");
    // The same status again is not set again.
    j.dispatch(UNIT, Event::UpdateStatus, &p).unwrap();
    assert_eq!(j.take_tool_names(), vec!["config-get", "relation-get"]);
    assert_eq!(
        j.model.applications[APP].units[UNIT].state.len(),
        0,
        "the charm keeps no state in Juju"
    );
}

#[test]
fn pebble_going_away_mid_hook_is_waiting_not_an_error() {
    let mut j = juju(json!({"server_name": "example.com"}));
    for n in 1..6 {
        let p = FakePod {
            synapse: FakePebble {
                vanish_after: Some(n),
                ..FakePebble::up()
            },
            ..FakePod::up()
        };
        assert_eq!(
            config_changed(&mut j, &p),
            Status::waiting("Waiting for Pebble in the synapse container"),
            "after {n} requests"
        );
    }
}

#[test]
fn a_configuration_synapse_rejects_never_reaches_it() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    run(&mut j, UNIT, Event::ConfigChanged, &p, &mut hints);
    let good = p.synapse.files.borrow()["/data/homeserver.yaml"].clone();
    let plan = p.synapse.plan.borrow().clone();
    *p.synapse.exec_reply.borrow_mut() = Some(pebble::ExecOutput {
        exit_code: 1,
        stdout: br#"{"ok": false, "path": ["modules", "<item 0>", "config"], "error": "Failed to parse config for module 'synapse_invite_checker.InviteChecker': Incomplete federation list config"}"#.to_vec(),
        stderr: vec![],
    });
    j.set_config("invite_checker_policy_rooms", json!("abc:example.com"));
    j.set_config(
        "invite_checker_blocklist_allowlist_url",
        json!("https://lists.example.com/l.json"),
    );
    let status = run(&mut j, UNIT, Event::ConfigChanged, &p, &mut hints);
    assert_eq!(
        status,
        Status::blocked(
            "Synapse rejects the new configuration (invite_checker_blocklist_allowlist_url, invite_checker_policy_rooms): Failed to parse config for module 'synapse_invite_checker.InviteChecker': Incomplete federation list config; Synapse keeps its last good configuration"
        )
    );
    assert_eq!(p.synapse.files.borrow()["/data/homeserver.yaml"], good);
    assert!(!p
        .synapse
        .files
        .borrow()
        .contains_key("/data/homeserver.yaml.candidate"));
    assert_eq!(*p.synapse.plan.borrow(), plan, "the layer is not touched");
    assert_eq!(*p.synapse.restarts.borrow(), 1, "no restart");
    // The same rejected configuration is not checked again on every hook.
    let checks = p.synapse.execs.borrow().len();
    let again = run(&mut j, UNIT, Event::UpdateStatus, &p, &mut hints);
    assert_eq!(again, status);
    assert_eq!(p.synapse.execs.borrow().len(), checks);
    // Fixed: back to the last good configuration, active, still no restart.
    j.set_config("invite_checker_policy_rooms", json!(""));
    j.set_config("invite_checker_blocklist_allowlist_url", json!(""));
    assert_eq!(
        run(&mut j, UNIT, Event::ConfigChanged, &p, &mut hints),
        Status::active()
    );
    assert_eq!(*p.synapse.restarts.borrow(), 1);
}

#[test]
fn a_check_that_cannot_run_blocks_without_restarting() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    config_changed(&mut j, &p);
    *p.synapse.exec_reply.borrow_mut() = Some(pebble::ExecOutput {
        exit_code: 2,
        stdout: vec![],
        stderr: b"cannot import Synapse: ImportError: nope\n".to_vec(),
    });
    j.set_config("enable_room_list_search", json!(false));
    let status = config_changed(&mut j, &p);
    assert_eq!(status.kind, StatusKind::Blocked);
    assert!(
        status.message.starts_with(
            "cannot check the new configuration with Synapse (cannot import Synapse: ImportError: nope"
        ),
        "{}",
        status.message
    );
    assert_eq!(*p.synapse.restarts.borrow(), 1);
}

#[test]
fn a_crash_looping_synapse_is_blocked_with_its_last_log_line_and_not_pushed() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let mut p = FakePod::up();
    config_changed(&mut j, &p);
    p.synapse.ready = false;
    p.synapse.backoff.borrow_mut().push("synapse".into());
    *p.synapse.log_lines.borrow_mut() = vec![
        "Traceback (most recent call last):".into(),
        "  File \"/opt/synapse/lib/x.py\", line 1, in <module>".into(),
        "psycopg2.OperationalError: password authentication failed for user \"synapse\"".into(),
    ];
    p.synapse.take_calls();
    let status = run(
        &mut j,
        UNIT,
        Event::UpdateStatus,
        &p,
        &mut UnitHints::default(),
    );
    assert_eq!(
        status,
        Status::blocked(
            "Synapse keeps exiting and Pebble restarts it; see `juju debug-log` and the synapse container's Pebble logs; last log line: psycopg2.OperationalError: password authentication failed for user \"synapse\""
        )
    );
    assert!(
        !p.synapse.take_calls().contains(&"replan".to_string()),
        "Pebble is already restarting it: no replan on top"
    );
}

#[test]
fn ready_after_a_restart_needs_a_check_that_passed_after_it() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let mut p = FakePod::up();
    let mut hints = UnitHints::default();
    run(&mut j, UNIT, Event::ConfigChanged, &p, &mut hints);
    // The check passed before; then a change restarts Synapse, which does not answer yet.
    p.synapse.ready = false;
    j.set_config("enable_room_list_search", json!(false));
    assert_eq!(
        run(&mut j, UNIT, Event::ConfigChanged, &p, &mut hints),
        Status::waiting("Synapse is starting (waiting for its ready check)")
    );
    assert_eq!(hints.watches["synapse"].baseline, Some(0));
    // Later hooks keep saying so until a check passes after the restart.
    assert_eq!(
        run(&mut j, UNIT, Event::UpdateStatus, &p, &mut hints),
        Status::waiting("Synapse is starting (waiting for its ready check)"),
        "the charm's own restart is not reported as Pebble's"
    );
    p.synapse.ready = true;
    assert_eq!(
        run(&mut j, UNIT, Event::UpdateStatus, &p, &mut hints),
        Status::active()
    );
    assert_eq!(
        hints.watches["synapse"].baseline, None,
        "the baseline is passed"
    );
}

#[test]
fn a_service_pebble_restarted_is_waiting_until_its_ready_check_passes_again() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    assert_eq!(
        run(&mut j, UNIT, Event::ConfigChanged, &p, &mut hints),
        Status::active()
    );
    for (pebble, service, what) in [
        (&p.synapse, "synapse", "Synapse"),
        (&p.nginx, "nginx", "NGINX"),
    ] {
        // It exited and Pebble started it again; its ready check, still "up", has not
        // run since, and the service already answers: still not ready.
        pebble.pebble_restart(service);
        let restarted = Status::waiting(format!(
            "{what} was restarted by Pebble (it exited or stopped answering); waiting for it to be ready"
        ));
        assert_eq!(
            run(&mut j, UNIT, Event::UpdateStatus, &p, &mut hints),
            restarted
        );
        assert_eq!(
            run(&mut j, UNIT, Event::UpdateStatus, &p, &mut hints),
            restarted,
            "it stays so until the check passes again"
        );
        *pebble.later_successes.borrow_mut() += 1;
        assert_eq!(
            run(&mut j, UNIT, Event::UpdateStatus, &p, &mut hints),
            Status::active()
        );
        assert_eq!(*pebble.restarts.borrow(), 1, "the charm restarted nothing");
    }
}

#[test]
fn a_restore_forgets_synapse_s_start_time_so_its_restart_is_not_called_pebble_s() {
    let dir = tempfile::tempdir().unwrap();
    let path = UnitHints::path(dir.path(), UNIT);
    let watched = crate::workload::WatchHint {
        baseline: None,
        since: Some("2026-01-01T00:00:01Z".into()),
        by_pebble: false,
    };
    UnitHints {
        watches: [
            ("synapse".into(), watched.clone()),
            ("synapse-nginx".into(), watched.clone()),
        ]
        .into(),
        ..Default::default()
    }
    .save(&path);
    super::forget_start(dir.path(), UNIT);
    let hints = UnitHints::load(&path);
    assert_eq!(hints.watches["synapse"].since, None);
    assert_eq!(
        hints.watches["synapse-nginx"], watched,
        "NGINX was not restarted"
    );
}

#[test]
fn without_success_counts_a_restart_by_pebble_is_waited_for_until_synapse_answers() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let mut p = FakePod::up();
    p.synapse.uncounted = true;
    let mut hints = UnitHints::default();
    assert_eq!(
        run(&mut j, UNIT, Event::ConfigChanged, &p, &mut hints),
        Status::active()
    );
    p.synapse.pebble_restart("synapse");
    p.synapse.ready = false;
    assert_eq!(
        run(&mut j, UNIT, Event::UpdateStatus, &p, &mut hints),
        Status::waiting(
            "Synapse was restarted by Pebble (it exited or stopped answering); waiting for it to be ready"
        )
    );
    // The count says nothing: Synapse answering its ready URL is enough.
    p.synapse.ready = true;
    assert_eq!(
        run(&mut j, UNIT, Event::UpdateStatus, &p, &mut hints),
        Status::active()
    );
}

#[test]
fn a_service_stopped_by_hand_is_started_by_the_charm_not_reported_as_pebble_s_restart() {
    let mut j = juju(json!({"server_name": "example.com"}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    run(&mut j, UNIT, Event::ConfigChanged, &p, &mut hints);
    p.nginx.running.borrow_mut().insert("nginx".into(), false);
    for _ in 0..2 {
        assert_eq!(
            run(&mut j, UNIT, Event::UpdateStatus, &p, &mut hints),
            Status::active()
        );
    }
    assert_eq!(*p.nginx.restarts.borrow(), 2, "started again by the charm");
}
