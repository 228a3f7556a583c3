//! Scaling out: which Synapse process each unit runs, derived from the peer
//! membership (never guessed) and the `redis` relation.
//!
//! - One unit: Synapse main alone, as if there were no peers.
//! - More units, with Redis and PostgreSQL: the main unit (the leader's choice, see
//!   [`crate::peers`]) runs Synapse main; every other unit runs a generic worker
//!   (`synapse.app.generic_worker`, `worker<N>` for unit `<app>/<N>`). Every unit
//!   renders the same `instance_map` (main on its replication port 8035, each worker on
//!   8034, at the pods' stable names `<app>-<n>.<app>-endpoints`), the same Redis and
//!   the same `stream_writers` (events: every worker), so a change of membership
//!   changes every unit's configuration once. The main unit also runs the federation
//!   sender (`federationsender1`, replication on 8034 of the main unit, metrics on
//!   9001): once `federation_sender_instances` names it, Synapse main stops sending
//!   to other homeservers itself. Naming it in `workers_ignore_list` leaves it out
//!   (main sends again).
//! - More units without Redis or PostgreSQL: the main unit keeps serving alone and
//!   says what is missing; the other units run nothing and say the same.
//!
//! [`decide`] and the rendering are pure; [`read`] is the shell: the planned units and
//! the `redis` relation, read on the events that can change them and remembered in
//! the hints otherwise.

use serde_json::{json, Map, Value};

use crate::error::CharmResult;
use crate::juju::hints::UnitHints;
use crate::juju::{Event, HookTools, RelationHook, RelationId};
use crate::relations::redis::{self, Redis, RedisInfo};
use crate::status::Progress;

/// Synapse main's replication listener.
pub const MAIN_REPLICATION_PORT: u16 = 8035;
/// A worker's replication listener.
pub const WORKER_REPLICATION_PORT: u16 = 8034;
/// The worker's own configuration, read after homeserver.yaml.
pub const WORKER_CONFIG_PATH: &str = "/data/worker.yaml";
/// The `instance_map` name of Synapse main.
pub const MAIN_INSTANCE: &str = "main";
/// The federation sender's `worker_name`: a generic worker on the main unit, next to
/// Synapse main, that sends everything to other homeservers.
pub const FEDERATION_SENDER: &str = "federationsender1";
/// The federation sender's own configuration, read after homeserver.yaml.
pub const FEDERATION_SENDER_CONFIG_PATH: &str = "/data/federation_sender.yaml";
/// The federation sender's metrics listener (main's is 9000, in the same pod).
pub const FEDERATION_SENDER_METRICS_PORT: u16 = 9001;

/// The whole application's topology as one unit renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub app: String,
    /// This unit.
    pub me: String,
    /// The unit running Synapse main.
    pub main: String,
    /// The units running a generic worker, in unit-number order.
    pub workers: Vec<String>,
    pub redis: RedisInfo,
}

/// What one unit is to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// One unit: Synapse main alone (no cluster keys at all).
    Single,
    Cluster(Cluster),
    /// Scaled out, but something the cluster needs is missing. `serve`: this is the
    /// main unit, which keeps serving alone meanwhile.
    Incomplete {
        progress: Progress,
        serve: bool,
    },
}

fn unit_number(unit: &str) -> u64 {
    unit.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The pod's stable name on the cluster network: `<app>-<n>.<app>-endpoints`.
pub fn address(app: &str, unit: &str) -> String {
    format!("{}.{app}-endpoints", unit.replace('/', "-"))
}

/// A worker's `worker_name`: `worker<N>` for unit `<app>/<N>`.
pub fn worker_name(unit: &str) -> String {
    format!("worker{}", unit.rsplit('/').next().unwrap_or("0"))
}

/// Decides this unit's part (pure). `units` are every unit of the application in the
/// peer relation, this one included; `postgres`: the `database` relation exists.
pub fn decide(
    app: &str,
    me: &str,
    main: &str,
    units: &[String],
    redis: &Redis,
    postgres: bool,
) -> Plan {
    let mut workers: Vec<String> = units
        .iter()
        .filter(|u| u.as_str() != main)
        .cloned()
        .collect();
    workers.sort_by_key(|u| unit_number(u));
    workers.dedup();
    if workers.is_empty() {
        return Plan::Single;
    }
    let n = workers.len() + 1;
    let serve = me == main;
    let meanwhile = if serve {
        format!(" (Synapse serves from {main} alone meanwhile)")
    } else {
        String::new()
    };
    let incomplete = |progress| Plan::Incomplete { progress, serve };
    if !postgres {
        return incomplete(Progress::Blocked(format!(
            "{n} units need PostgreSQL: run `juju integrate {app} postgresql-k8s`{meanwhile}"
        )));
    }
    match redis {
        Redis::Absent => incomplete(Progress::Blocked(format!(
            "{n} units need Redis: run `juju integrate {app} redis-k8s`{meanwhile}"
        ))),
        Redis::Pending => incomplete(Progress::Waiting(format!(
            "Waiting for Redis to publish its address{meanwhile}"
        ))),
        Redis::Invalid(why) => incomplete(Progress::Blocked(format!(
            "the redis integration sent invalid data: {why}{meanwhile}"
        ))),
        Redis::Ready(info) => Plan::Cluster(Cluster {
            app: app.to_string(),
            me: me.to_string(),
            main: main.to_string(),
            workers,
            redis: info.clone(),
        }),
    }
}

impl Cluster {
    pub fn is_main(&self) -> bool {
        self.me == self.main
    }

    /// Whether the application has a federation sender (not in `workers_ignore_list`).
    pub fn has_federation_sender(ignore: &[String]) -> bool {
        !ignore.iter().any(|w| w == FEDERATION_SENDER)
    }

    /// Whether this unit runs the federation sender: the main unit, unless ignored.
    pub fn runs_federation_sender(&self, ignore: &[String]) -> bool {
        self.is_main() && Self::has_federation_sender(ignore)
    }

    /// The keys every unit adds to homeserver.yaml. Workers named in `ignore` (the
    /// `workers_ignore_list` option) are left out of `instance_map` and the stream
    /// writers: nothing is routed or replicated to them.
    pub fn homeserver_keys(&self, ignore: &[String]) -> Vec<(&'static str, Value)> {
        let listed = |w: &&String| !ignore.contains(&worker_name(w));
        let mut instances = Map::new();
        instances.insert(
            MAIN_INSTANCE.into(),
            json!({"host": address(&self.app, &self.main), "port": MAIN_REPLICATION_PORT}),
        );
        let sender = Self::has_federation_sender(ignore);
        if sender {
            instances.insert(
                FEDERATION_SENDER.into(),
                json!({"host": address(&self.app, &self.main), "port": WORKER_REPLICATION_PORT}),
            );
        }
        for w in self.workers.iter().filter(listed) {
            instances.insert(
                worker_name(w),
                json!({"host": address(&self.app, w), "port": WORKER_REPLICATION_PORT}),
            );
        }
        let writers: Vec<String> = self
            .workers
            .iter()
            .filter(listed)
            .map(|w| worker_name(w))
            .collect();
        let mut keys = vec![
            ("instance_map", Value::Object(instances)),
            ("stream_writers", json!({"events": writers})),
            (
                "redis",
                json!({"enabled": true, "host": self.redis.host, "port": self.redis.port}),
            ),
        ];
        // The list decides alone (Synapse ignores the legacy `send_federation` once it
        // is set): main sends only while no sender is named.
        if sender {
            keys.push(("federation_sender_instances", json!([FEDERATION_SENDER])));
        }
        keys
    }

    /// Synapse main's replication listener (workers read their listeners from
    /// worker.yaml).
    pub fn main_replication_listener() -> Value {
        json!({
            "port": MAIN_REPLICATION_PORT, "type": "http", "tls": false,
            "bind_addresses": ["::"], "resources": [{"names": ["replication"]}]
        })
    }

    /// worker.yaml of a worker unit; `None` on the main unit.
    pub fn worker_yaml(&self) -> Option<String> {
        if self.is_main() {
            return None;
        }
        let doc = json!({
            "worker_app": "synapse.app.generic_worker",
            "worker_name": worker_name(&self.me),
            "worker_listeners": [
                {"port": WORKER_REPLICATION_PORT, "type": "http", "tls": false,
                 "bind_addresses": ["::"], "resources": [{"names": ["replication"]}]},
                {"port": crate::synapse::homeserver::CLIENT_PORT, "type": "http", "tls": false,
                 "x_forwarded": true, "bind_addresses": ["::"],
                 "resources": [{"names": ["client", "federation"], "compress": false}]},
                {"port": crate::synapse::homeserver::METRICS_PORT, "type": "metrics",
                 "bind_addresses": ["::"]},
            ],
            "worker_log_config": crate::synapse::homeserver::LOG_CONFIG_PATH,
        });
        let text = serde_saphyr::to_string(&doc).unwrap_or_default();
        Some(format!(
            "# Rendered by the Synapse charm: this unit runs a Synapse worker.\n{text}"
        ))
    }

    /// federation_sender.yaml on the main unit (`None` elsewhere, or when ignored): a
    /// generic worker with a replication listener and its own metrics port, no
    /// client listener (nothing is routed to it).
    pub fn federation_sender_yaml(&self, ignore: &[String]) -> Option<String> {
        if !self.runs_federation_sender(ignore) {
            return None;
        }
        let doc = json!({
            "worker_app": "synapse.app.generic_worker",
            "worker_name": FEDERATION_SENDER,
            "worker_listeners": [
                {"port": WORKER_REPLICATION_PORT, "type": "http", "tls": false,
                 "bind_addresses": ["::"], "resources": [{"names": ["replication"]}]},
                {"port": FEDERATION_SENDER_METRICS_PORT, "type": "metrics",
                 "bind_addresses": ["::"]},
            ],
            "worker_log_config": crate::synapse::homeserver::LOG_CONFIG_PATH,
        });
        let text = serde_saphyr::to_string(&doc).unwrap_or_default();
        Some(format!(
            "# Rendered by the Synapse charm: the federation sender on the main unit.\n{text}"
        ))
    }
}

/// What the peer relation and the `redis` relation said when last read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopologyHint {
    /// Every unit Juju plans for the application, this one included.
    pub units: Vec<String>,
    /// The `redis` relation; read only while there is more than one unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<Redis>,
}

/// Whether this event can change the membership or Redis.
pub fn must_read(event: &Event) -> bool {
    match event {
        Event::Install | Event::Start | Event::UpgradeCharm | Event::LeaderElected => true,
        Event::Relation { relation, .. } => {
            relation.endpoint == crate::peers::ENDPOINT || relation.endpoint == redis::ENDPOINT
        }
        _ => false,
    }
}

/// The planned units and (when scaled out) Redis, read on the events that can change
/// them, remembered otherwise. A unit departing in this dispatch is gone already.
pub fn read(
    event: &Event,
    tools: &dyn HookTools,
    me: &str,
    peer_relation: Option<&RelationId>,
    hints: &mut UnitHints,
) -> CharmResult<TopologyHint> {
    if let Some(h) = hints.topology.as_ref().filter(|_| !must_read(event)) {
        return Ok(h.clone());
    }
    let departing = match event {
        Event::Relation {
            hook: RelationHook::Departed,
            departing_unit,
            ..
        } => departing_unit.clone(),
        _ => None,
    };
    // The planned units (`goal-state`), not only those in the peer relation yet: a
    // scale from 1 to 3 is then one change of everybody's configuration, not two.
    let mut units = match peer_relation {
        Some(_) => tools.planned_units()?,
        None => vec![],
    };
    units.retain(|u| Some(u) != departing.as_ref());
    units.push(me.to_string());
    units.sort_by_key(|u| unit_number(u));
    units.dedup();
    let redis = if units.len() > 1 {
        Some(redis::read(event, tools)?)
    } else {
        None
    };
    let hint = TopologyHint { units, redis };
    hints.topology = Some(hint.clone());
    Ok(hint)
}

#[cfg(test)]
mod tests;
