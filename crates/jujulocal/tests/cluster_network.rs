//! The cluster network and scaling, with real pods of a tiny shell charm
//! (`tests/fixtures/cluster-charm`, one workload container running a real Pebble):
//! pods reach each other by `<app>-<n>.<app>-endpoints`, `network-get` gives the
//! address the other pods see, a second model gets a disjoint subnet it cannot leave,
//! scaling 1 → 3 → 2 → 1 fires Juju's hook sequences, and nothing is left behind,
//! in the host's network namespace least of all. Needs root, iproute2 and Pebble.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jujulocal::controller::PodConfig;
use jujulocal::Controller;

mod support;
use support::pebble_bin;

fn charm() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster-charm")
}

/// A model whose pods (and cluster network) stop when the test ends, passed or not.
struct Up(Controller);

impl Drop for Up {
    fn drop(&mut self) {
        self.0.stop_pods();
    }
}

impl std::ops::Deref for Up {
    type Target = Controller;
    fn deref(&self) -> &Controller {
        &self.0
    }
}

impl std::ops::DerefMut for Up {
    fn deref_mut(&mut self) -> &mut Controller {
        &mut self.0
    }
}

/// A model with pods in their own network namespaces (so on the cluster network).
fn model(dir: &Path, name: &str) -> Up {
    std::env::set_var("JUJULOCAL_BIN", env!("CARGO_BIN_EXE_jujulocal"));
    let mut c = Controller::bootstrap(&dir.join(name), name).unwrap();
    c.set_pod_config(PodConfig {
        pebble_bin: pebble_bin(),
        container_mounts: BTreeMap::new(),
        netns: true,
    });
    Up(c)
}

fn deploy(c: &mut Controller, app: &str, n: u32) {
    c.deploy(&charm(), Some(app), n, &BTreeMap::new(), true)
        .unwrap();
}

fn address(c: &Controller, unit: &str) -> String {
    let app = unit.split('/').next().unwrap();
    c.model.applications[app].units[unit].address.clone()
}

/// What the unit's `network-get cluster` printed in its start hook.
fn network_get(c: &Controller, unit: &str) -> serde_json::Value {
    let path = c.unit_charm_dir(unit).join("network.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn python() -> &'static str {
    assert!(
        Path::new("/usr/bin/python3").exists(),
        "/usr/bin/python3 (Debian's python3) is needed for the TCP probes"
    );
    "/usr/bin/python3"
}

/// Listens on `port` in the unit's pod; returns once it listens. `accept()` reads the
/// address of the first peer that connects.
struct Listener(std::process::Child, BufReader<std::process::ChildStdout>);

impl Listener {
    fn start(c: &Controller, unit: &str, port: u16) -> Self {
        let mut child = c
            .pod_command(unit, python())
            .unwrap()
            .args([
                "-c",
                &format!(
                    "import socket,sys\ns=socket.socket()\ns.settimeout(30)\n\
                     s.bind(('0.0.0.0',{port}))\ns.listen()\nprint('ready',flush=True)\n\
                     c,a=s.accept()\nprint(a[0],flush=True)\nc.sendall(b'hello')\nc.close()"
                ),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        Self(child, out)
    }
    fn accept(mut self) -> String {
        let mut line = String::new();
        self.1.read_line(&mut line).unwrap();
        let _ = self.0.wait();
        line.trim().to_string()
    }
}

/// Connects from the unit's pod to `host:port`: the greeting, or the error.
fn connect(c: &Controller, unit: &str, host: &str, port: u16) -> Result<String, String> {
    let o = c
        .pod_command(unit, python())
        .unwrap()
        .args([
            "-c",
            &format!(
                "import socket\ns=socket.create_connection(('{host}',{port}),timeout=3)\n\
                 print(s.recv(16).decode())"
            ),
        ])
        .output()
        .unwrap();
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

/// `getent hosts NAME` in the unit's workload container (through its Pebble).
fn resolve_in_workload(c: &Controller, unit: &str, name: &str) -> String {
    let o = Command::new(pebble_bin())
        .env("PEBBLE_SOCKET", c.pebble_socket(unit, "workload"))
        .args(["exec", "--", "getent", "hosts", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Link names and routes of the host's network namespace.
fn host_network() -> (Vec<String>, String) {
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let mut names: Vec<String> = String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_string()))
        .collect();
    names.sort();
    let routes = Command::new("ip").arg("route").output().unwrap();
    (names, String::from_utf8_lossy(&routes.stdout).into_owned())
}

fn netns_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
}

/// Whether any process still lives in one of these network namespaces.
fn namespaces_in_use(ns: &[PathBuf]) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| netns_of(*pid).is_some_and(|n| ns.contains(&n)))
        .collect()
}

/// Links in the cluster network's own namespace (seen through its holder).
fn cluster_links(holder: u32) -> String {
    let o = Command::new("nsenter")
        .arg(format!("--net=/proc/{holder}/ns/net"))
        .args(["ip", "-o", "link"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn pods_reach_each_other_by_name_and_a_second_model_is_apart() {
    let host_before = host_network();
    let tmp = tempfile::Builder::new().prefix("jlnet").tempdir().unwrap();
    let mut a = model(tmp.path(), "m1");
    deploy(&mut a, "probe", 2);
    let mut b = model(tmp.path(), "m2");
    deploy(&mut b, "probe", 1);

    // Each model its own subnet (and its own bridge namespace).
    let (sa, sb) = (a.cluster().unwrap(), b.cluster().unwrap());
    assert_ne!(sa.subnet, sb.subnet);
    assert_ne!(netns_of(sa.holder), netns_of(sb.holder));
    let (a0, a1, b0) = (
        address(&a, "probe/0"),
        address(&a, "probe/1"),
        address(&b, "probe/0"),
    );
    assert!(a0.starts_with(&format!("10.244.{}.", sa.subnet)), "{a0}");
    assert!(b0.starts_with(&format!("10.244.{}.", sb.subnet)), "{b0}");
    assert_ne!(a0, a1);

    // network-get gives the pod's own cluster address.
    let net = network_get(&a, "probe/0");
    assert_eq!(net["bind-addresses"][0]["addresses"][0]["value"], a0);
    assert_eq!(net["bind-addresses"][0]["interface-name"], "eth0");
    assert_eq!(net["ingress-addresses"][0], a0);
    assert_eq!(net["egress-subnets"][0], format!("{a0}/32"));

    // probe/0 reaches probe/1 by its stable names; probe/1 sees probe/0's address.
    for (port, name) in [
        (7401, "probe-1.probe-endpoints".to_string()),
        (
            7402,
            "probe-1.probe-endpoints.m1.svc.cluster.local".to_string(),
        ),
    ] {
        let l = Listener::start(&a, "probe/1", port);
        assert_eq!(connect(&a, "probe/0", &name, port).as_deref(), Ok("hello"));
        assert_eq!(
            l.accept(),
            a0,
            "the peer address is probe/0's network-get address"
        );
    }
    // The names resolve in the workload containers too.
    assert!(resolve_in_workload(&a, "probe/0", "probe-1.probe-endpoints").starts_with(&a1));
    assert!(resolve_in_workload(
        &a,
        "probe/1",
        "probe-0.probe-endpoints.m1.svc.cluster.local"
    )
    .starts_with(&a0));

    // The other model neither resolves nor reaches the first one's pods.
    let l = Listener::start(&a, "probe/1", 7403);
    let err = connect(&b, "probe/0", &a1, 7403).unwrap_err();
    assert!(
        err.contains("unreachable") || err.contains("timed out"),
        "{err}"
    );
    assert!(connect(&b, "probe/0", "probe-1.probe-endpoints", 7403).is_err());
    assert_eq!(connect(&a, "probe/0", &a1, 7403).as_deref(), Ok("hello"));
    drop(l.accept());
    // The host gains no route to them: its routing table is compared at the end (a
    // host with a default route may still send such packets to its gateway).
    let namespaces: Vec<PathBuf> = [sa.holder, sb.holder]
        .into_iter()
        .chain(["probe/0", "probe/1"].map(|u| a.pod(u).unwrap().charm_pid))
        .chain([b.pod("probe/0").unwrap().charm_pid])
        .filter_map(netns_of)
        .collect();
    a.stop_pods();
    b.stop_pods();
    assert!(a.cluster().is_none() && b.cluster().is_none());
    assert_eq!(namespaces_in_use(&namespaces), Vec::<u32>::new());
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(tmp.path().to_str().unwrap()));
    assert_eq!(
        host_network(),
        host_before,
        "the host's links and routes are untouched"
    );
}

fn take_events(c: &Controller) -> Vec<String> {
    let path = c.home.join("events.log");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    std::fs::write(&path, "").unwrap();
    text.lines().map(str::to_string).collect()
}

/// `unit hook` or, for relation hooks, with the remote unit, the departing unit and
/// relation-list as the charm logs them.
fn ev(unit: &str, hook: &str) -> String {
    format!("{unit} {hook}")
}
fn rel(unit: &str, hook: &str, remote: &str, departing: &str, list: &[&str]) -> String {
    let list: Vec<String> = list.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "{unit} {hook} remote={remote} departing={departing} list=[{}]",
        list.join(",")
    )
}

/// The sequence of a new unit: its own hooks, then the joins (non-peer `source`
/// with feeder/0 first, then the peers).
fn joining(new: &str, peers: &[&str]) -> Vec<String> {
    let mut members: Vec<&str> = peers.to_vec();
    members.push(new);
    let mut v = vec![
        ev(new, "install"),
        ev(new, "source-relation-created"),
        ev(new, "cluster-relation-created"),
        ev(new, "leader-settings-changed"),
        ev(new, "config-changed"),
        ev(new, "start"),
        ev(new, "data-storage-attached"),
    ];
    for h in ["feed-relation-joined", "feed-relation-changed"] {
        v.push(rel("feeder/0", h, new, "", &members));
    }
    for h in ["source-relation-joined", "source-relation-changed"] {
        v.push(rel(new, h, "feeder/0", "", &["feeder/0"]));
    }
    let others = |u: &str| -> Vec<&str> { members.iter().copied().filter(|m| *m != u).collect() };
    for p in peers {
        for h in ["cluster-relation-joined", "cluster-relation-changed"] {
            v.push(rel(p, h, new, "", &others(p)));
        }
    }
    for p in peers {
        for h in ["cluster-relation-joined", "cluster-relation-changed"] {
            // Deviation: the shared membership already lists every peer here.
            v.push(rel(new, h, p, "", &others(new)));
        }
    }
    v.push(ev(new, "workload-pebble-ready"));
    v
}

/// The sequence of a leaving unit (Kubernetes: the highest number).
fn leaving(gone: &str, remaining: &[&str]) -> Vec<String> {
    let mut v = vec![
        rel("feeder/0", "feed-relation-departed", gone, gone, remaining),
        rel(gone, "source-relation-departed", "feeder/0", gone, &[]),
        rel(gone, "source-relation-broken", "", "", &[]),
    ];
    for r in remaining {
        let others: Vec<&str> = remaining.iter().copied().filter(|m| m != r).collect();
        v.push(rel(r, "cluster-relation-departed", gone, gone, &others));
    }
    for (i, r) in remaining.iter().enumerate() {
        v.push(rel(
            gone,
            "cluster-relation-departed",
            r,
            gone,
            &remaining[i + 1..],
        ));
    }
    v.extend([
        ev(gone, "data-storage-detaching"),
        ev(gone, "stop"),
        ev(gone, "remove"),
    ]);
    v
}

#[test]
fn scaling_fires_jujus_sequences_and_leaves_nothing_behind() {
    let host_before = host_network();
    let tmp = tempfile::Builder::new()
        .prefix("jlscale")
        .tempdir()
        .unwrap();
    let mut c = model(tmp.path(), "scale");
    deploy(&mut c, "probe", 1);
    deploy(&mut c, "feeder", 1);
    c.integrate("probe:source", "feeder:feed").unwrap();
    let holder = c.cluster().unwrap().holder;
    take_events(&c);

    // 1 → 3
    c.scale_application("probe", 3).unwrap();
    let mut want = joining("probe/1", &["probe/0"]);
    want.extend(joining("probe/2", &["probe/0", "probe/1"]));
    assert_eq!(take_events(&c), want);
    let hosts = std::fs::read_to_string(c.home.join("pods/probe-0/hosts")).unwrap();
    for u in ["probe-1", "probe-2", "feeder-0"] {
        let app = u.split('-').next().unwrap();
        assert!(
            hosts.contains(&format!("\t{u}.{app}-endpoints\n")),
            "{hosts}"
        );
    }
    let refused = connect(&c, "probe/2", "probe-0.probe-endpoints", 1).unwrap_err();
    assert!(
        refused.contains("refused"),
        "the name resolves and the pod answers (nothing listens on port 1): {refused}"
    );

    // 3 → 2, the leader going: the lowest remaining unit is elected.
    c.set_leader("probe/2").unwrap();
    take_events(&c);
    let (pid2, addr2) = (c.pod("probe/2").unwrap().charm_pid, address(&c, "probe/2"));
    let ns2 = netns_of(pid2).unwrap();
    c.scale_application("probe", 2).unwrap();
    let mut want = leaving("probe/2", &["probe/0", "probe/1"]);
    want.push(ev("probe/0", "leader-elected"));
    assert_eq!(take_events(&c), want);
    assert_eq!(
        namespaces_in_use(&[ns2]),
        Vec::<u32>::new(),
        "the pod's namespace is gone"
    );
    let host2 = addr2.rsplit('.').next().unwrap();
    assert!(
        !cluster_links(holder).contains(&format!("vh{host2}@")),
        "its veth is gone"
    );
    let hosts = std::fs::read_to_string(c.home.join("pods/probe-0/hosts")).unwrap();
    assert!(!hosts.contains("probe-2."), "{hosts}");

    // 2 → 1
    c.scale_application("probe", 1).unwrap();
    assert_eq!(take_events(&c), leaving("probe/1", &["probe/0"]));

    // Numbers are never reused.
    c.scale_application("probe", 2).unwrap();
    assert!(c.model.applications["probe"].units.contains_key("probe/3"));
    take_events(&c);

    let namespaces: Vec<PathBuf> = [holder]
        .into_iter()
        .chain(["probe/0", "probe/3", "feeder/0"].map(|u| c.pod(u).unwrap().charm_pid))
        .filter_map(netns_of)
        .collect();
    c.remove_application("probe").unwrap();
    c.remove_application("feeder").unwrap();
    assert!(
        c.cluster().is_none(),
        "the last pod took the network with it"
    );
    assert_eq!(namespaces_in_use(&namespaces), Vec::<u32>::new());
    assert!(!std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(tmp.path().to_str().unwrap()));
    assert_eq!(
        host_network(),
        host_before,
        "the host's links and routes are untouched"
    );
}

/// A scale-down marks every unit it removes `dying` in goal-state before the first
/// one leaves, as Juju does: the unit that stays sees the final membership at once
/// (a charm then reconfigures once, not once per departing unit).
#[test]
fn a_scale_down_shows_every_leaving_unit_dying_from_the_first_departure() {
    let tmp = tempfile::Builder::new()
        .prefix("jldying")
        .tempdir()
        .unwrap();
    let mut c = model(tmp.path(), "dying");
    deploy(&mut c, "probe", 3);
    c.scale_application("probe", 1).unwrap();
    let text = std::fs::read_to_string(c.home.join("goals.log")).unwrap();
    let first = text
        .lines()
        .find(|l| l.starts_with("probe/0 "))
        .unwrap_or_else(|| panic!("probe/0 saw no departure: {text}"));
    let goal: serde_json::Value = serde_json::from_str(&first["probe/0 ".len()..]).unwrap();
    let status = |u: &str| {
        goal["units"][u]["status"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(
        (
            status("probe/0") == "dying",
            status("probe/1"),
            status("probe/2")
        ),
        (false, "dying".to_string(), "dying".to_string()),
        "{first}"
    );
    assert_eq!(
        c.model.applications["probe"]
            .units
            .keys()
            .collect::<Vec<_>>(),
        ["probe/0"]
    );
    assert!(!c.model.applications["probe"].units["probe/0"].dying);
}
