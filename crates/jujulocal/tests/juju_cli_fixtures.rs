//! `jujulocal-juju` against real Juju output: a small charm (a shell `dispatch`) is
//! deployed through the binary, and each `--format json` document must have Juju's key
//! structure (`tests/fixtures/juju/`). Also: exit codes of failures, scaling, removal,
//! and `--help` on hook tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use jujulocal::meta::Role;
use jujulocal::Controller;
use serde_json::Value;

mod support;
use support::Juju;

/// Maps keyed by names (applications, units, settings ...): our entries are compared
/// with the fixture's first entry.
const NAME_MAPS: &[&str] = &[
    "applications",
    "application-endpoints",
    "units",
    "relations",
    "settings",
    "application-config",
    "endpoint-bindings",
    "endpoints",
    "related-units",
    "Data",
    "application-data",
    "data",
];
/// Keys whose JSON type depends on the value (config values and defaults).
const ANY_TYPE: &[&str] = &["value", "default"];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every key of `ours` is a key of `juju` at the same place, with the same type.
fn same_shape(ours: &Value, juju: &Value, path: &str, name_map: bool, errs: &mut Vec<String>) {
    let key = path.rsplit('.').next().unwrap_or("");
    if !ANY_TYPE.contains(&key) && kind(ours) != kind(juju) {
        errs.push(format!(
            "{path}: ours is {}, Juju's is {}",
            kind(ours),
            kind(juju)
        ));
        return;
    }
    match (ours, juju) {
        (Value::Object(o), Value::Object(j)) if name_map => {
            let Some(first) = j.values().next() else {
                return;
            };
            for (k, v) in o {
                same_shape(v, first, &format!("{path}.<{k}>"), false, errs);
            }
        }
        (Value::Object(o), Value::Object(j)) => {
            for (k, v) in o {
                match j.get(k) {
                    Some(jv) => same_shape(
                        v,
                        jv,
                        &format!("{path}.{k}"),
                        NAME_MAPS.contains(&k.as_str()),
                        errs,
                    ),
                    None => errs.push(format!("{path}.{k}: Juju has no such key")),
                }
            }
        }
        (Value::Array(o), Value::Array(j)) => {
            if let Some(first) = j.first() {
                for (i, v) in o.iter().enumerate() {
                    same_shape(v, first, &format!("{path}[{i}]"), false, errs);
                }
            }
        }
        _ => {}
    }
}

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/juju")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn assert_shape(ours: &Value, name: &str, root_is_name_map: bool) {
    let mut errs = vec![];
    same_shape(ours, &fixture(name), "", root_is_name_map, &mut errs);
    assert!(
        errs.is_empty(),
        "{name}:\n{}\nours: {ours:#}",
        errs.join("\n")
    );
}

fn demo_charm(dir: &Path) -> PathBuf {
    let c = dir.join("demo-charm");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(
        c.join("metadata.yaml"),
        "name: demo\nrequires:\n  db:\n    interface: dbi\npeers:\n  replicas:\n    interface: demo_peers\nresources:\n  demo-image:\n    type: oci-image\n",
    )
    .unwrap();
    std::fs::write(
        c.join("config.yaml"),
        "options:\n  stry:\n    type: string\n    default: ''\n    description: A string.\n  inty:\n    type: int\n    default: 3\n    description: An int.\n",
    )
    .unwrap();
    std::fs::write(
        c.join("actions.yaml"),
        "get-password:\n  description: a password\n  params:\n    who:\n      type: string\nfaily:\n  description: fails\n",
    )
    .unwrap();
    let dispatch = "#!/bin/sh\nset -e\ncase \"$JUJU_DISPATCH_PATH\" in\n  hooks/install) secret-add --label demo-secret password=pw >/dev/null ;;\n  actions/get-password) action-set username=user password=pass ;;\n  actions/faily) action-fail 'Failure message' ;;\nesac\nopen-port 8080\nstatus-set active ''\n";
    std::fs::write(c.join("dispatch"), dispatch).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(c.join("dispatch"), std::fs::Permissions::from_mode(0o755)).unwrap();
    c
}

#[test]
fn documents_have_jujus_shape_and_commands_behave_like_juju() {
    let j = Juju::new("jujucli");
    j.ok(&["add-model", "m1"]);
    let models = j.json(&["models", "--format", "json"]);
    assert_eq!(models["current-model"], "m1");
    assert_eq!(models["models"][0]["short-name"], "m1");

    let charm = demo_charm(j.home());
    let charm = charm.display().to_string();
    j.ok(&[
        "deploy",
        &charm,
        "demo",
        "--model",
        "m1",
        "--config",
        "stry=hello",
        "--resource",
        "demo-image=img",
        "--trust",
        "-n",
        "2",
    ]);
    // A played application on the other side, as the remote end of a relation.
    std::env::set_var("JUJULOCAL_BIN", env!("CARGO_BIN_EXE_jujulocal"));
    let mut c = Controller::open(&j.model_dir()).unwrap();
    c.add_played("pg", &[("db".into(), "dbi".into(), Role::Provides)], 1)
        .unwrap();
    j.ok(&["integrate", "demo", "pg"]);

    let status = j.json(&["status", "--format", "json"]);
    assert_shape(&status, "status.json", false);
    let app = &status["applications"]["demo"];
    assert_eq!(app["scale"], 2);
    assert_eq!(app["application-status"]["current"], "active");
    assert_eq!(app["units"]["demo/0"]["leader"], true);
    assert_eq!(app["units"]["demo/0"]["open-ports"][0], "8080/tcp");
    assert_eq!(app["relations"]["db"][0]["related-application"], "pg");
    assert!(status["application-endpoints"]["pg"].is_object());
    for k in ["name", "type", "controller", "cloud", "version"] {
        assert!(status["model"][k].is_string(), "model.{k}");
    }
    for k in [
        "charm",
        "charm-origin",
        "charm-name",
        "charm-rev",
        "exposed",
    ] {
        assert!(!app[k].is_null(), "applications.demo.{k}");
    }
    assert!(j.ok(&["status"]).contains("demo/0*"));

    let config = j.json(&["config", "demo", "--format", "json"]);
    assert_shape(&config, "config.json", false);
    assert_eq!(config["settings"]["stry"]["value"], "hello");
    assert_eq!(config["settings"]["stry"]["source"], "user");
    assert_eq!(config["settings"]["inty"]["value"], 3);
    assert_eq!(config["application-config"]["trust"]["value"], true);
    assert_eq!(j.ok(&["config", "demo", "inty"]), "3\n");
    j.ok(&["config", "demo", "inty=7", "--reset", "stry"]);
    let config = j.json(&["config", "demo", "--format", "json"]);
    assert_eq!(config["settings"]["inty"]["value"], 7);
    assert_eq!(config["settings"]["stry"]["source"], "default");

    let run = j.json(&[
        "run",
        "--format",
        "json",
        "demo/leader",
        "get-password",
        "who=me",
    ]);
    assert_shape(&run, "run.json", true);
    assert_eq!(run["demo/0"]["status"], "completed");
    assert_eq!(run["demo/0"]["results"]["password"], "pass");
    assert_eq!(run["demo/0"]["results"]["return-code"], 0);
    let failed = j.cmd(&["run", "--format", "json", "demo/0", "faily"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("task failed"));
    let failed: Value = serde_json::from_slice(&failed.stdout).unwrap();
    assert_eq!(failed["demo/0"]["status"], "failed");
    assert_eq!(failed["demo/0"]["message"], "Failure message");
    let missing = j.cmd(&["run", "demo/0", "nope"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("(not found)"));

    let unit = j.json(&["show-unit", "demo/0", "--format", "json"]);
    assert_shape(&unit, "show-unit.json", true);
    assert_eq!(unit["demo/0"]["leader"], true);
    assert!(unit["demo/0"]["relation-info"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["endpoint"] == "db" && r["related-units"]["pg/0"]["in-scope"] == true));

    let secrets = j.json(&["secrets", "--format", "json"]);
    let (id, s) = secrets.as_object().unwrap().iter().next().unwrap();
    assert_eq!(s["owner"], "demo");
    let shown = j.json(&[
        "show-secret",
        id,
        "--reveal",
        "--revisions",
        "--format",
        "json",
    ]);
    assert_shape(&shown, "show-secret.json", true);
    assert_eq!(shown[id]["content"]["Data"]["password"], "pw");
    let by_label = j.json(&["show-secret", "demo-secret", "--format", "json"]);
    assert!(by_label[id]["content"].is_null());

    let exec = j.json(&[
        "exec", "--format", "json", "--unit", "demo/1", "--", "echo", "hi",
    ]);
    assert_eq!(exec["demo/1"]["results"]["stdout"], "hi\n");
    assert_eq!(j.ok(&["ssh", "demo/0", "echo", "there"]), "there\n");

    // Scaling: units come and go by number, the highest first.
    j.ok(&["add-unit", "demo", "-n", "1"]);
    j.ok(&["scale-application", "demo", "4"]);
    let units = |j: &Juju| -> Vec<String> {
        let s = j.json(&["status", "--format", "json"]);
        s["applications"]["demo"]["units"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(units(&j), ["demo/0", "demo/1", "demo/2", "demo/3"]);
    j.ok(&["remove-unit", "--no-prompt", "demo", "--num-units", "2"]);
    assert_eq!(units(&j), ["demo/0", "demo/1"]);
    assert_eq!(
        j.cmd(&["remove-unit", "--no-prompt", "demo/1"])
            .status
            .code(),
        Some(2)
    );

    // Hook tools answer --help outside a hook, and exit 0.
    let tool = j.model_dir().join("tools/storage-get");
    let help = Command::new(&tool).arg("--help").output().unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).starts_with("Usage: storage-get"));

    // Failures: a message on stderr and a non-zero exit.
    let bad = j.cmd(&["frobnicate"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("ERROR "));
    assert_eq!(j.cmd(&["status", "--bogus"]).status.code(), Some(2));
    // Charmhub names fail, except those JujuLocal stands in for (postgresql-k8s, ...).
    assert_ne!(j.cmd(&["deploy", "mysql-k8s"]).status.code(), Some(0));

    j.ok(&["remove-relation", "demo", "pg"]);
    j.ok(&["remove-application", "--no-prompt", "demo"]);
    let status = j.json(&["status", "--format", "json"]);
    assert!(status["applications"].as_object().unwrap().is_empty());
    j.ok(&["destroy-model", "m1", "--no-prompt"]);
    assert!(!j.model_dir().exists());
    assert_ne!(j.cmd(&["status"]).status.code(), Some(0));
}
