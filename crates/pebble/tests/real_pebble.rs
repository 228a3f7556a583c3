//! Tests against a real Pebble daemon (see tests/common/mod.rs): system info,
//! connection errors, layers and plan, services and changes, replan. Checks,
//! files, signals and notices are in real_pebble_files_checks.rs.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::net::UnixListener;
use std::thread;
use std::time::{Duration, Instant};

use common::{api_error, counting_service, layer_with, sleeper, starts, Pebble, WAIT};
use pebble::{
    Check, CheckLevel, Error, ExecCheck, GoDuration, Layer, LogTarget, LogTargetType, Override,
    PushOptions, Service, ServiceAction, ServiceStatus, Startup, Status,
};

// ----- system-info, connection errors, timeouts ------------------------------

#[test]
fn system_info_and_health_on_a_fresh_daemon() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let info = client.system_info().unwrap();
    assert!(info.version.starts_with('v'), "{info:?}");
    assert_eq!(info.boot_id.len(), 36, "{info:?}");
    assert_eq!(client.socket(), pebble.socket());
    assert!(client.can_connect());
    // No checks at all: healthy.
    assert!(client.health(None, &[]).unwrap());
    assert!(client.health(Some(CheckLevel::Alive), &[]).unwrap());
    // Nothing configured yet.
    assert_eq!(client.plan().unwrap(), Layer::default());
    assert!(client.services(&[]).unwrap().is_empty());
    assert!(client.checks(None, &[]).unwrap().is_empty());
}

#[test]
fn connect_error_on_missing_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("missing.socket");
    let client = pebble::Client::new(&socket);
    let e = client.system_info().unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    assert!(e.to_string().contains(&socket.display().to_string()), "{e}");
    assert!(!client.can_connect());
    // Every call reports the same way, e.g. a push.
    assert!(client
        .push("/x", b"", &PushOptions::default())
        .unwrap_err()
        .is_connect());
}

#[test]
fn connect_error_on_stale_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("stale.socket");
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let e = pebble::Client::new(&socket).system_info().unwrap_err();
    assert!(e.is_connect(), "{e:?}");
}

#[test]
fn silent_daemon_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.socket");
    let listener = UnixListener::bind(&socket).unwrap();
    let server = thread::spawn(move || {
        // Accept, read the request, never answer; hold the connection.
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
        thread::sleep(Duration::from_secs(2));
    });
    let client = pebble::Client::new(&socket).with_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let e = client.system_info().unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(e.is_timeout());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.join().unwrap();
}

// ----- layers and plan --------------------------------------------------------

#[test]
fn invalid_layers_are_rejected_with_pebble_messages() {
    let pebble = Pebble::start();
    let client = pebble.client();

    // A service without a command.
    let e = client
        .add_layer("base", &layer_with("web", Service::default()), true)
        .unwrap_err();
    let msg = e.to_string();
    let (status, _, message) = api_error(e);
    eprintln!("missing command: {msg}");
    assert_eq!(status, 400);
    assert!(message.contains("\"command\""), "{message}");
    assert!(msg.starts_with(&format!("pebble at {}: ", pebble.socket().display())));
    assert!(msg.ends_with("(400)"), "{msg}");

    // A check with no http/tcp/exec.
    let mut layer = Layer::default();
    layer.checks.insert("chk".into(), Check::default());
    let (status, _, message) = api_error(client.add_layer("base", &layer, true).unwrap_err());
    eprintln!("empty check: {message}");
    assert_eq!(status, 400);
    assert!(message.contains("chk"), "{message}");

    // Adding the same label twice without combine.
    let ok = layer_with("web", sleeper());
    client.add_layer("base", &ok, false).unwrap();
    let (status, _, message) = api_error(client.add_layer("base", &ok, false).unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(message, "layer \"base\" already exists");
    // With combine it is fine.
    client.add_layer("base", &ok, true).unwrap();

    // Reserved label prefix.
    let (status, _, message) = api_error(client.add_layer("pebble-x", &ok, true).unwrap_err());
    eprintln!("reserved label: {message}");
    assert_eq!(status, 400);
}

fn full_layer() -> Layer {
    let mut web = Service::new("/bin/sleep 1000");
    web.summary = Some("web server".into());
    web.description = Some("multi\nline".into());
    web.startup = Some(Startup::Disabled);
    web.after = vec!["db".into()];
    web.before = vec!["late".into()];
    web.requires = vec!["db".into()];
    web.environment = BTreeMap::from([
        ("PORT".into(), "5000".into()),
        ("FLAG".into(), "true".into()),
        ("EMPTY".into(), String::new()),
        ("HASH".into(), "3f2a: # not a comment".into()),
    ]);
    web.user_id = Some(0);
    web.group_id = Some(0);
    web.working_dir = Some("/tmp".into());
    web.on_success = Some(ServiceAction::Ignore);
    web.on_failure = Some(ServiceAction::Restart);
    web.on_check_failure = BTreeMap::from([("web-up".into(), ServiceAction::Restart)]);
    web.backoff_delay = Some("300ms".parse().unwrap());
    web.backoff_factor = Some(1.5);
    web.backoff_limit = Some("2m".parse().unwrap());
    web.kill_delay = Some("1h2m3.5s".parse().unwrap());

    let mut up = Check::http("http://127.0.0.1:9/health");
    up.level = Some(CheckLevel::Alive);
    up.startup = Some(Startup::Disabled);
    up.period = Some("1m".parse().unwrap());
    up.timeout = Some("5s".parse().unwrap());
    up.threshold = Some(5);
    if let Some(http) = up.http.as_mut() {
        http.headers.insert("X-Probe".into(), "1".into());
    }
    let mut tcp = Check::tcp(9);
    tcp.startup = Some(Startup::Disabled);
    tcp.threshold = Some(3);
    if let Some(t) = tcp.tcp.as_mut() {
        t.host = Some("127.0.0.1".into());
    }
    let exec = Check {
        startup: Some(Startup::Disabled),
        threshold: Some(1),
        level: Some(CheckLevel::Ready),
        exec: Some(ExecCheck {
            command: "/bin/true".into(),
            service_context: Some("web".into()),
            environment: BTreeMap::from([("A".into(), "b".into())]),
            working_dir: Some("/".into()),
            ..ExecCheck::default()
        }),
        ..Check::default()
    };

    let mut layer = Layer {
        summary: Some("layer summary".into()),
        description: Some("layer description".into()),
        ..Layer::default()
    };
    layer.services.insert("web".into(), web);
    layer.services.insert("db".into(), sleeper());
    layer.services.insert("late".into(), sleeper());
    layer.checks.insert("web-up".into(), up);
    layer.checks.insert("tcp".into(), tcp);
    layer.checks.insert("exec".into(), exec);
    layer.log_targets.insert(
        "loki".into(),
        LogTarget {
            override_: Override::Replace,
            target_type: Some(LogTargetType::Loki),
            location: Some("http://127.0.0.1:9/loki/api/v1/push".into()),
            services: vec!["all".into(), "-db".into()],
            labels: BTreeMap::from([("app".into(), "synapse".into())]),
        },
    );
    layer
}

#[test]
fn plan_read_back_equals_the_desired_layer() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let desired = full_layer();
    client.add_layer("full", &desired, true).unwrap();
    let text = client.plan_yaml().unwrap();
    eprintln!("plan as Pebble prints it:\n{text}");
    // Pebble prints Go's Duration.String() form.
    assert!(text.contains("backoff-limit: 2m0s"), "{text}");
    assert!(text.contains("kill-delay: 1h2m3.5s"), "{text}");
    assert!(text.contains("period: 1m0s"), "{text}");
    let plan = client.plan().unwrap();
    assert_eq!(plan.services, desired.services);
    assert_eq!(plan.checks, desired.checks);
    assert_eq!(plan.log_targets, desired.log_targets);
    // The plan has no layer summary of its own.
    assert_eq!(plan.summary, None);

    // A merge layer on top changes only what it sets.
    let mut patch = Service {
        override_: Override::Merge,
        ..Service::default()
    };
    patch.environment.insert("EXTRA".into(), "1".into());
    client
        .add_layer("patch", &layer_with("web", patch), true)
        .unwrap();
    let plan = client.plan().unwrap();
    let mut want = desired.services["web"].clone();
    want.environment.insert("EXTRA".into(), "1".into());
    assert_eq!(plan.services["web"], want);
}

#[test]
fn check_threshold_defaults_appear_in_the_plan() {
    // Pebble fills in `threshold: 3` for checks that do not set it, so a
    // desired check must set it explicitly to compare equal to the plan.
    let pebble = Pebble::start();
    let client = pebble.client();
    let mut layer = Layer::default();
    let mut chk = Check::tcp(9);
    chk.startup = Some(Startup::Disabled);
    layer.checks.insert("c".into(), chk.clone());
    client.add_layer("l", &layer, true).unwrap();
    let plan = client.plan().unwrap();
    eprintln!("{}", client.plan_yaml().unwrap());
    chk.threshold = Some(3);
    assert_eq!(plan.checks["c"], chk);
}

// ----- services and changes -----------------------------------------------

#[test]
fn start_stop_restart_and_service_info() {
    let pebble = Pebble::start();
    let client = pebble.client();
    client
        .add_layer("base", &layer_with("svc", sleeper()), true)
        .unwrap();
    let before = client.services(&[]).unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].name, "svc");
    assert_eq!(before[0].startup, Startup::Disabled);
    assert_eq!(before[0].current, ServiceStatus::Inactive);

    let change = client.start(&["svc"], WAIT).unwrap();
    assert_eq!(change.status, Status::Done);
    assert_eq!(change.kind, "start");
    assert!(change.ready);
    assert_eq!(change.summary, "Start service \"svc\"");
    let info = client.services(&["svc"]).unwrap();
    assert!(info[0].is_running(), "{info:?}");
    assert!(info[0].current_since.is_some());

    // Starting a running service is a no-op change.
    let again = client.start(&["svc"], WAIT).unwrap();
    assert_eq!(again.status, Status::Done);
    eprintln!(
        "second start logs: {:?}",
        again.tasks.iter().map(|t| &t.log).collect::<Vec<_>>()
    );

    let since = info[0].current_since.clone();
    client.restart(&["svc"], WAIT).unwrap();
    let info = client.services(&["svc"]).unwrap();
    assert!(info[0].is_running());
    assert_ne!(info[0].current_since, since, "restart must restart");

    let stopped = client.stop(&["svc"], WAIT).unwrap();
    assert_eq!(stopped.kind, "stop");
    assert_eq!(
        client.services(&["svc"]).unwrap()[0].current,
        ServiceStatus::Inactive
    );
    // Unknown names are skipped when listing.
    assert!(client.services(&["nope"]).unwrap().is_empty());
    // The change can be fetched again by id.
    let fetched = client.change(&change.id).unwrap();
    assert_eq!(fetched.id, change.id);
    assert_eq!(fetched.status, Status::Done);
}

#[test]
fn unknown_service_and_empty_lists_are_api_errors() {
    let pebble = Pebble::start();
    let client = pebble.client();
    client
        .add_layer("base", &layer_with("svc", sleeper()), true)
        .unwrap();
    let e = client.start(&["nope"], WAIT).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "pebble at {}: cannot start services: service \"nope\" does not exist (400)",
            pebble.socket().display()
        )
    );
    let (status, _, message) = api_error(client.stop(&[], WAIT).unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(message, "must specify services for stop action");
    let (status, kind, message) = api_error(client.autostart(WAIT).unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(kind.as_deref(), Some("no-default-services"));
    assert_eq!(message, "no default services");
}

#[test]
fn autostart_starts_enabled_services() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let mut svc = sleeper();
    svc.startup = Some(Startup::Enabled);
    let mut layer = layer_with("on", svc);
    layer.services.insert("off".into(), sleeper());
    client.add_layer("base", &layer, true).unwrap();
    client.autostart(WAIT).unwrap();
    let services = client.services(&[]).unwrap();
    assert_eq!(services[0].name, "off");
    assert_eq!(services[0].current, ServiceStatus::Inactive);
    assert_eq!(services[1].name, "on");
    assert_eq!(services[1].current, ServiceStatus::Active);
}

#[test]
fn change_error_when_a_service_exits_at_once() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let mut svc = Service::new("/bin/sh -c 'echo about-to-fail; exit 3'");
    svc.on_failure = Some(ServiceAction::Ignore);
    client
        .add_layer("base", &layer_with("bad", svc), true)
        .unwrap();
    let e = client.start(&["bad"], WAIT).unwrap_err();
    eprintln!("failed start: {e}");
    match &e {
        Error::Change {
            kind,
            err,
            task_logs,
            ..
        } => {
            assert_eq!(kind, "start");
            assert!(err.contains("exited quickly with code 3"), "{err}");
            assert!(
                task_logs.iter().any(|l| l.contains("about-to-fail")),
                "{task_logs:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("about-to-fail"));
}

#[test]
fn wait_timeout_and_unknown_changes() {
    let pebble = Pebble::start();
    let client = pebble.client();
    client
        .add_layer("base", &layer_with("svc", sleeper()), true)
        .unwrap();
    // A start takes at least one second, so a 200 ms wait times out.
    let started = Instant::now();
    let e = client
        .start(&["svc"], Duration::from_millis(200))
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    let id = match e {
        Error::WaitTimeout { id, .. } => id,
        other => panic!("{other:?}"),
    };
    let change = client.wait_change(&id, WAIT).unwrap();
    assert_eq!(change.status, Status::Done);

    let e = client.change("999999").unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let (status, _, message) = api_error(e);
    assert_eq!(status, 404);
    assert_eq!(message, "cannot find change with id \"999999\"");
    // /wait 404s too; the polling fallback then reports the same error.
    let e = client
        .wait_change("999999", Duration::from_secs(2))
        .unwrap_err();
    assert_eq!(e.status(), Some(404), "{e:?}");
}

#[test]
fn wait_change_slices_long_waits() {
    // With a 1 s per-call timeout the server-side wait is sliced into
    // 1 s pieces (504 in between) without the socket timing out.
    let pebble = Pebble::start();
    let client = pebble.client().with_timeout(Duration::from_secs(1));
    let mut svc = Service::new("/bin/sh -c 'sleep 2.5; exec sleep 1000'");
    svc.kill_delay = Some(GoDuration::from_secs(1));
    client
        .add_layer("base", &layer_with("svc", svc), true)
        .unwrap();
    let change = client.start(&["svc"], WAIT).unwrap();
    assert_eq!(change.status, Status::Done);
}

// ----- replan semantics the charm relies on ---------------------------------

#[test]
fn replan_restarts_only_changed_services() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let counter = pebble.dir().join("starts");
    let config = pebble.dir().join("app.conf");
    fs::write(&config, "version 1\n").unwrap();
    let read_config = format!("cat {} > /dev/null;", config.display());

    let mut svc = counting_service(&counter, &read_config);
    svc.environment.insert("CONFIG_HASH".into(), "v1".into());
    let layer = layer_with("app", svc.clone());
    client.add_layer("app", &layer, true).unwrap();
    client.replan(WAIT).unwrap();
    assert_eq!(starts(&counter), 1);
    let since = client.services(&["app"]).unwrap()[0].current_since.clone();

    // (1) Same layer again + replan: untouched.
    client.add_layer("app", &layer, true).unwrap();
    let change = client.replan(WAIT).unwrap();
    eprintln!(
        "no-op replan change: kind={} summary={:?} tasks={}",
        change.kind,
        change.summary,
        change.tasks.len()
    );
    assert_eq!(starts(&counter), 1);
    assert_eq!(client.services(&["app"]).unwrap()[0].current_since, since);

    // (2) A changed environment value + replan: restarted exactly once.
    svc.environment.insert("CONFIG_HASH".into(), "v2".into());
    client
        .add_layer("app", &layer_with("app", svc.clone()), true)
        .unwrap();
    client.replan(WAIT).unwrap();
    assert_eq!(starts(&counter), 2);
    client.replan(WAIT).unwrap();
    assert_eq!(starts(&counter), 2);

    // (3) The config FILE changes but the layer does not + replan: NOT
    // restarted. This is Pebble's documented behaviour (replan compares
    // service specs only), which is why the charm puts a hash of the
    // config content into the service environment (step 2 above).
    fs::write(&config, "version 2\n").unwrap();
    client
        .add_layer("app", &layer_with("app", svc), true)
        .unwrap();
    client.replan(WAIT).unwrap();
    assert_eq!(starts(&counter), 2);
    assert_eq!(
        client.services(&["app"]).unwrap()[0].current,
        ServiceStatus::Active
    );
}

#[test]
fn replan_with_nothing_to_do() {
    let pebble = Pebble::start();
    let client = pebble.client();
    let change = client.replan(WAIT).unwrap();
    assert_eq!(change.status, Status::Done);
    assert!(change.tasks.is_empty());
    eprintln!("empty replan summary: {:?}", change.summary);
}
