use super::*;

fn units(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn redis() -> Redis {
    Redis::Ready(RedisInfo {
        host: "redis-k8s-0.redis-k8s-endpoints".into(),
        port: 6379,
    })
}

fn cluster(me: &str, all: &[&str]) -> Cluster {
    match decide("synapse", me, "synapse/0", &units(all), &redis(), true) {
        Plan::Cluster(c) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn one_unit_runs_synapse_main_alone() {
    assert_eq!(
        decide(
            "synapse",
            "synapse/0",
            "synapse/0",
            &units(&["synapse/0"]),
            &Redis::Absent,
            false
        ),
        Plan::Single
    );
}

#[test]
fn every_unit_renders_the_same_instance_map_and_writers() {
    let all = ["synapse/0", "synapse/2", "synapse/10"];
    let main = cluster("synapse/0", &all);
    let worker = cluster("synapse/10", &all);
    assert!(main.is_main() && !worker.is_main());
    assert_eq!(main.workers, units(&["synapse/2", "synapse/10"]));
    assert_eq!(main.homeserver_keys(&[]), worker.homeserver_keys(&[]));
    let keys: serde_json::Map<String, Value> = main
        .homeserver_keys(&[])
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(
        keys["instance_map"],
        json!({
            "main": {"host": "synapse-0.synapse-endpoints", "port": 8035},
            "federationsender1": {"host": "synapse-0.synapse-endpoints", "port": 8034},
            "worker2": {"host": "synapse-2.synapse-endpoints", "port": 8034},
            "worker10": {"host": "synapse-10.synapse-endpoints", "port": 8034},
        })
    );
    assert_eq!(
        keys["stream_writers"],
        json!({"events": ["worker2", "worker10"]})
    );
    assert_eq!(
        keys["redis"],
        json!({"enabled": true, "host": "redis-k8s-0.redis-k8s-endpoints", "port": 6379})
    );
    // The sender sends; main stops sending itself (Synapse reads the list alone).
    assert_eq!(
        keys["federation_sender_instances"],
        json!(["federationsender1"])
    );
    assert!(!keys.contains_key("send_federation"));
}

#[test]
fn the_main_unit_alone_runs_the_federation_sender() {
    let all = ["synapse/0", "synapse/1"];
    let main = cluster("synapse/0", &all);
    let worker = cluster("synapse/1", &all);
    assert!(main.runs_federation_sender(&[]) && !worker.runs_federation_sender(&[]));
    assert!(worker.federation_sender_yaml(&[]).is_none());
    let text = main.federation_sender_yaml(&[]).unwrap();
    let v: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(v["worker_app"], "synapse.app.generic_worker");
    assert_eq!(v["worker_name"], "federationsender1");
    assert_eq!(v["worker_log_config"], "/data/log.config");
    let listeners: Vec<(u64, String)> = v["worker_listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["port"].as_u64().unwrap(),
                l["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Replication on 8034 (main's is 8035), metrics on 9001 (main's is 9000): no
    // clash in the shared pod, and no client listener (nothing is routed to it).
    assert_eq!(
        listeners,
        vec![(8034, "http".to_string()), (9001, "metrics".to_string())]
    );
}

#[test]
fn an_ignored_federation_sender_leaves_sending_to_main() {
    let all = ["synapse/0", "synapse/1"];
    let main = cluster("synapse/0", &all);
    let ignore = ["federationsender1".to_string()];
    assert!(!main.runs_federation_sender(&ignore));
    assert!(main.federation_sender_yaml(&ignore).is_none());
    let keys: serde_json::Map<String, Value> = main
        .homeserver_keys(&ignore)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert!(keys["instance_map"].get("federationsender1").is_none());
    assert!(!keys.contains_key("federation_sender_instances"));
    assert_eq!(keys["stream_writers"], json!({"events": ["worker1"]}));
}

#[test]
fn ignored_workers_are_left_out() {
    let c = cluster("synapse/0", &["synapse/0", "synapse/1", "synapse/2"]);
    let keys = c.homeserver_keys(&["worker1".to_string()]);
    let map = &keys[0].1;
    assert!(
        map.get("worker1").is_none() && map.get("worker2").is_some(),
        "{map}"
    );
    assert_eq!(keys[1].1, json!({"events": ["worker2"]}));
}

#[test]
fn a_removed_worker_leaves_everyone_s_configuration() {
    let before = cluster("synapse/1", &["synapse/0", "synapse/1", "synapse/2"]);
    let after = cluster("synapse/1", &["synapse/0", "synapse/1"]);
    let map = |c: &Cluster| c.homeserver_keys(&[])[0].1.clone();
    assert!(map(&before).get("worker2").is_some());
    assert!(map(&after).get("worker2").is_none());
}

#[test]
fn worker_yaml_names_the_worker_and_its_listeners() {
    let c = cluster("synapse/1", &["synapse/0", "synapse/1"]);
    let text = c.worker_yaml().unwrap();
    let v: Value = serde_saphyr::from_str(&text).unwrap();
    assert_eq!(v["worker_app"], "synapse.app.generic_worker");
    assert_eq!(v["worker_name"], "worker1");
    let ports: Vec<u64> = v["worker_listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["port"].as_u64().unwrap())
        .collect();
    assert_eq!(ports, vec![8034, 8008, 9000]);
    assert_eq!(v["worker_log_config"], "/data/log.config");
    assert!(cluster("synapse/0", &["synapse/0", "synapse/1"])
        .worker_yaml()
        .is_none());
}

#[test]
fn scaled_out_without_redis_names_the_fix_and_main_keeps_serving() {
    let all = units(&["synapse/0", "synapse/1"]);
    let main = decide("chat", "synapse/0", "synapse/0", &all, &Redis::Absent, true);
    let Plan::Incomplete {
        progress: Progress::Blocked(m),
        serve: true,
    } = main
    else {
        panic!("{main:?}")
    };
    assert!(m.contains("`juju integrate chat redis-k8s`"), "{m}");
    assert!(m.contains("serves from synapse/0 alone"), "{m}");
    let worker = decide("chat", "synapse/1", "synapse/0", &all, &Redis::Absent, true);
    assert!(matches!(
        worker,
        Plan::Incomplete {
            progress: Progress::Blocked(_),
            serve: false
        }
    ));
}

#[test]
fn scaled_out_without_postgresql_names_the_fix() {
    let all = units(&["synapse/0", "synapse/1"]);
    let p = decide("synapse", "synapse/1", "synapse/0", &all, &redis(), false);
    let Plan::Incomplete {
        progress: Progress::Blocked(m),
        serve: false,
    } = p
    else {
        panic!("{p:?}")
    };
    assert!(m.contains("`juju integrate synapse postgresql-k8s`"), "{m}");
}

#[test]
fn invalid_or_pending_redis_is_reported() {
    let all = units(&["synapse/0", "synapse/1"]);
    let bad = decide(
        "s",
        "synapse/1",
        "synapse/0",
        &all,
        &Redis::Invalid("`port` x".into()),
        true,
    );
    assert!(
        matches!(bad, Plan::Incomplete { progress: Progress::Blocked(m), .. } if m.contains("redis integration"))
    );
    let pending = decide("s", "synapse/1", "synapse/0", &all, &Redis::Pending, true);
    assert!(matches!(
        pending,
        Plan::Incomplete {
            progress: Progress::Waiting(_),
            ..
        }
    ));
}

#[test]
fn membership_and_redis_are_read_on_their_events_only() {
    assert!(must_read(&Event::Start));
    assert!(!must_read(&Event::UpdateStatus));
    assert!(!must_read(&Event::ConfigChanged));
}
