//! Injected hook-tool faults, with a tiny shell charm (`tests/fixtures/fault-charm`)
//! and no pods: a hook failed by an injected fault (a failing tool, or the charm
//! killed mid-hook) commits none of its queued writes, and firing it again converges
//! to the state of a run without the fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use jujulocal::controller::faults::{FaultAction, InjectedFault};
use jujulocal::model::Bag;
use jujulocal::{Controller, Error, Event};

const UNIT: &str = "faulty/0";

fn charm(into: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fault-charm");
    let dest = into.join("charm");
    std::fs::create_dir_all(&dest).unwrap();
    for f in ["metadata.yaml", "config.yaml", "dispatch"] {
        std::fs::copy(src.join(f), dest.join(f)).unwrap();
    }
    dest
}

fn deployed(dir: &Path) -> Controller {
    std::env::set_var("JUJULOCAL_BIN", env!("CARGO_BIN_EXE_jujulocal"));
    let mut c = Controller::bootstrap(&dir.join("model"), "faults").unwrap();
    c.deploy(&charm(dir), None, 1, &BTreeMap::new(), false)
        .unwrap();
    c
}

/// What the charm writes: peer app databag, unit state, unit status.
fn written(c: &Controller) -> (Bag, Bag, (String, String)) {
    let rel = &c.model.relations[0];
    let unit = &c.model.applications["faulty"].units[UNIT];
    let status = unit.status.clone().unwrap();
    (
        rel.app_data.get("faulty").cloned().unwrap_or_default(),
        unit.state.clone(),
        (status.status, status.message),
    )
}

fn set_value(c: &mut Controller, v: &str) -> Result<(), Error> {
    c.config("faulty", &BTreeMap::from([("value".into(), v.into())]), &[])
}

/// Fires config-changed with the fault in place, checks that the hook failed at
/// `tool` and committed nothing queued, then fires it again.
fn fail_then_retry(c: &mut Controller, tool: &str, expected_exit: i32) {
    let before = written(c);
    let err = set_value(c, "two").unwrap_err();
    assert!(
        matches!(&err, Error::HookFailed { hook, .. } if hook == "config-changed"),
        "{err:?}"
    );
    let last = c.history().pop().unwrap();
    assert_eq!(last.hook, "config-changed");
    assert_eq!(last.exit, expected_exit);
    let call = last.calls.iter().find(|x| x.tool == tool).unwrap();
    assert_eq!(call.exit, 1, "{tool} failed on purpose");
    assert_eq!(
        c.model.applications["faulty"].units[UNIT].error.as_deref(),
        Some("config-changed")
    );
    let after = written(c);
    assert_eq!(after.0, before.0, "databag unchanged");
    assert_eq!(after.1, before.1, "state unchanged");
    assert!(
        c.injected_faults().unwrap().is_empty(),
        "the fault was used"
    );
    // The unit agent's lines in the debug log, as Juju writes them.
    let agent = |c: &Controller| -> Vec<String> {
        c.debug_log()
            .lines()
            .filter(|l| l.contains("juju.worker.uniter.operation"))
            .map(str::to_string)
            .collect()
    };
    let failed = agent(c).pop().unwrap_or_default();
    assert!(
        failed.starts_with("unit-faulty-0 ")
            && failed.contains(" ERROR juju.worker.uniter.operation hook \"config-changed\" (via hook dispatching script: dispatch) failed: exit status "),
        "{failed}"
    );
    // No automatic retry: fire the same hook again.
    c.run(UNIT, Event::ConfigChanged).unwrap();
    assert_eq!(c.model.applications["faulty"].units[UNIT].error, None);
    let ran = agent(c).pop().unwrap_or_default();
    assert!(
        ran.ends_with(" INFO juju.worker.uniter.operation ran \"config-changed\" hook (via hook dispatching script: dispatch)"),
        "{ran}"
    );
}

#[test]
fn a_failed_tool_fails_the_hook_which_commits_nothing_and_a_retry_converges() {
    // The reference: the same change without a fault.
    let ref_dir = tempfile::tempdir().unwrap();
    let mut reference = deployed(ref_dir.path());
    set_value(&mut reference, "two").unwrap();
    let expected = written(&reference);
    assert_eq!(expected.0.get("value").map(String::as_str), Some("two"));

    for (i, (tool, kill, exit)) in [
        ("relation-set", false, 1),
        ("state-set", false, 1),
        ("status-set", true, 128 + libc::SIGKILL),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let mut c = deployed(dir.path());
        if kill {
            c.inject_charm_kill(tool, 1).unwrap();
        } else {
            c.inject_tool_failure(tool, 1).unwrap();
        }
        fail_then_retry(&mut c, tool, exit);
        assert_eq!(written(&c), expected, "case {i}: {tool}");
    }
}

#[test]
fn the_cli_injects_counts_and_clears_faults() {
    let dir = tempfile::tempdir().unwrap();
    let c = deployed(dir.path());
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_jujulocal"))
            .arg("--model-dir")
            .arg(&c.home)
            .args(args)
            .output()
            .unwrap()
    };
    assert!(cli(&["inject-failure", "secret-add", "--count", "3"])
        .status
        .success());
    assert!(cli(&["inject-failure", "relation-get", "--kill"])
        .status
        .success());
    let faults = c.injected_faults().unwrap();
    assert_eq!(
        faults["secret-add"],
        InjectedFault {
            action: FaultAction::Fail,
            remaining: 3
        }
    );
    assert_eq!(faults["relation-get"].action, FaultAction::KillCharm);
    assert_eq!(faults["relation-get"].remaining, 1);
    assert!(cli(&[
        "inject-failure",
        "config-get",
        "--kill-container",
        "web",
        "--count",
        "2"
    ])
    .status
    .success());
    assert_eq!(
        c.injected_faults().unwrap()["config-get"],
        InjectedFault {
            action: FaultAction::KillContainer("web".into()),
            remaining: 2
        }
    );
    assert!(cli(&["inject-failure", "config-get", "--count", "0"])
        .status
        .success());
    let bad = cli(&["inject-failure", "not-a-tool"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(cli(&["inject-failure", "secret-add", "--count", "0"])
        .status
        .success());
    assert!(!c.injected_faults().unwrap().contains_key("secret-add"));
    // Two failures in a row: the first retry fails too, the second converges.
    let mut c = Controller::open(&c.home).unwrap();
    c.inject_tool_failure("relation-get", 0).unwrap();
    c.inject_tool_failure("relation-set", 2).unwrap();
    assert!(set_value(&mut c, "three").is_err());
    assert!(c.run(UNIT, Event::ConfigChanged).is_err());
    c.run(UNIT, Event::ConfigChanged).unwrap();
    assert_eq!(
        written(&c).0.get("value").map(String::as_str),
        Some("three")
    );
}
