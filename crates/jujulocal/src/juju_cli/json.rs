//! The JSON documents the `juju` client prints with `--format json`, built from
//! JujuLocal's model: the keys and shapes are Juju 3.6's (as Jubilant parses them);
//! `tests/fixtures/juju/` holds real Juju output these are checked against.

use serde_json::{json, Map, Value};

use crate::controller::JUJU_VERSION;
use crate::model::{Action, Application, Model, Secret, StatusEntry};
use crate::Error;

/// Juju's agent version string for this platform.
pub fn version_string() -> String {
    format!("{JUJU_VERSION}-ubuntu-amd64")
}

/// RFC 3339 (`2025-02-24T12:03:17.123Z`) to Juju's status time (`24 Feb 2025 12:03:17Z`).
pub fn since(rfc3339: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parse = || -> Option<String> {
        let (date, time) = rfc3339.split_once('T')?;
        let mut d = date.split('-');
        let (y, m, day) = (d.next()?, d.next()?, d.next()?);
        let month = MONTHS.get(m.parse::<usize>().ok()?.checked_sub(1)?)?;
        let hms = time.get(..8)?;
        Some(format!("{day} {month} {y} {hms}Z"))
    };
    parse().unwrap_or_else(|| rfc3339.to_string())
}

fn status_info(s: &StatusEntry) -> Value {
    let mut v = json!({"current": s.status, "since": since(&s.since)});
    if !s.message.is_empty() {
        v["message"] = json!(s.message);
    }
    v
}

/// The application's status as Juju shows it: its own, else the most severe unit status.
pub fn app_status(app: &Application) -> StatusEntry {
    let rank = |s: &str| match s {
        "error" => 0,
        "blocked" => 1,
        "maintenance" => 2,
        "waiting" => 3,
        "active" => 4,
        _ => 5,
    };
    app.status
        .clone()
        .or_else(|| {
            app.units
                .values()
                .filter_map(unit_workload)
                .min_by_key(|s| rank(&s.status))
        })
        .unwrap_or_else(|| StatusEntry {
            status: "unknown".into(),
            message: String::new(),
            since: crate::util::now_rfc3339(),
        })
}

/// A unit's workload status; a failed hook shows as `error` like in Juju.
fn unit_workload(u: &crate::model::Unit) -> Option<StatusEntry> {
    match (&u.error, &u.status) {
        (Some(hook), s) => Some(StatusEntry {
            status: "error".into(),
            message: format!("hook failed: {hook:?}"),
            since: s
                .as_ref()
                .map(|s| s.since.clone())
                .unwrap_or_else(crate::util::now_rfc3339),
        }),
        (None, s) => s.clone(),
    }
}

fn charm_url(app: &Application) -> String {
    match &app.stand_in {
        Some(si) => si.charm.clone(),
        None => format!("local:{}-0", app.meta.name),
    }
}

/// `juju status --format json`.
pub fn status(model: &Model) -> Value {
    let now = crate::util::now_rfc3339();
    let mut apps = Map::new();
    let mut remote = Map::new();
    for (name, app) in &model.applications {
        let mut relations: Map<String, Value> = Map::new();
        for r in &model.relations {
            let Some(end) = r.end_for(name) else { continue };
            let other = r.remote_app(name).unwrap_or(name);
            let scope = "global";
            let entry = relations
                .entry(end.endpoint.clone())
                .or_insert_with(|| json!([]));
            if let Value::Array(list) = entry {
                list.push(
                    json!({"related-application": other, "interface": r.interface, "scope": scope}),
                );
            }
        }
        if app.is_played() && app.stand_in.is_none() {
            // Played applications stand for applications outside this model's control:
            // Juju shows such (cross-model) applications under application-endpoints.
            // Stand-ins (`juju deploy postgresql-k8s`) show as the charm's application.
            let endpoints: Map<String, Value> = app
                .meta
                .endpoints
                .iter()
                .map(|(n, e)| {
                    let role = match e.role {
                        crate::meta::Role::Provides => "provider",
                        crate::meta::Role::Requires => "requirer",
                        crate::meta::Role::Peers => "peer",
                    };
                    (n.clone(), json!({"interface": e.interface, "role": role}))
                })
                .collect();
            let rels: Map<String, Value> = relations
                .into_iter()
                .map(|(ep, list)| {
                    let names: Vec<Value> = list
                        .as_array()
                        .map(|l| l.iter().map(|x| x["related-application"].clone()).collect())
                        .unwrap_or_default();
                    (ep, Value::Array(names))
                })
                .collect();
            remote.insert(
                name.clone(),
                json!({"url": format!("jujulocal:played/{name}"), "endpoints": endpoints,
                       "life": "alive",
                       "application-status": played_status(app, &now),
                       "relations": rels}),
            );
            continue;
        }
        let mut units = Map::new();
        for (u, unit) in &app.units {
            let ws = unit_workload(unit).unwrap_or_else(|| StatusEntry {
                status: "waiting".into(),
                message: "agent initialising".into(),
                since: now.clone(),
            });
            let mut v = json!({
                "workload-status": status_info(&ws),
                "juju-status": {"current": "idle", "since": since(&ws.since), "version": JUJU_VERSION},
                "address": if unit.address.is_empty() { "127.0.0.1" } else { unit.address.as_str() },
                "provider-id": u.replace('/', "-"),
            });
            if app.leader.as_deref() == Some(u.as_str()) {
                v["leader"] = json!(true);
            }
            if !unit.opened_ports.is_empty() {
                v["open-ports"] = json!(unit.opened_ports);
            }
            units.insert(u.clone(), v);
        }
        let version = app
            .units
            .values()
            .find(|u| !u.workload_version.is_empty())
            .map(|u| u.workload_version.clone())
            .unwrap_or_default();
        let mut bindings = Map::new();
        bindings.insert(String::new(), json!("alpha"));
        for ep in app.meta.endpoints.keys() {
            bindings.insert(ep.clone(), json!("alpha"));
        }
        let mut a = json!({
            "charm": charm_url(app),
            "base": {"name": "ubuntu", "channel": "24.04"},
            "charm-origin": "local",
            "charm-name": app.meta.name,
            "charm-rev": 0,
            "scale": app.units.len(),
            "exposed": false,
            "application-status": status_info(&app_status(app)),
            "units": units,
            "endpoint-bindings": bindings,
        });
        if let Some(si) = &app.stand_in {
            // As Juju shows a Charmhub charm (revision 1: a stand-in has just the one).
            a["charm-origin"] = json!("charmhub");
            a["charm-name"] = json!(si.charm);
            a["charm-rev"] = json!(1);
            a["charm-channel"] = json!(si.channel.as_deref().unwrap_or("latest/stable"));
        }
        if !relations.is_empty() {
            a["relations"] = Value::Object(relations);
        }
        if !version.is_empty() {
            a["version"] = json!(version);
        }
        apps.insert(name.clone(), a);
    }
    let mut out = json!({
        "model": {
            "name": model.name, "type": "caas", "controller": "jujulocal", "cloud": "jujulocal",
            "region": "local", "version": JUJU_VERSION,
            "model-status": {"current": "available", "since": since(&now)},
            "sla": "unsupported",
        },
        "machines": {},
        "applications": apps,
        "storage": {},
        "controller": {"timestamp": now.get(11..19).map(|t| format!("{t}Z")).unwrap_or_default()},
    });
    if !remote.is_empty() {
        out["application-endpoints"] = Value::Object(remote);
    }
    out
}

/// `juju config APP --format json`: charm settings with value, default and source.
pub fn config(name: &str, app: &Application, trust: bool) -> Value {
    let mut settings = Map::new();
    for (k, o) in &app.meta.options {
        let mut v = json!({"type": o.kind});
        if let Some(d) = &o.default {
            v["default"] = d.clone();
        }
        match (app.config.get(k), &o.default) {
            (Some(val), _) => {
                v["value"] = val.clone();
                v["source"] = json!("user");
            }
            (None, Some(d)) => {
                v["value"] = d.clone();
                v["source"] = json!("default");
            }
            (None, None) => v["source"] = json!("unset"),
        }
        settings.insert(k.clone(), v);
    }
    json!({
        "application": name,
        "charm": app.meta.name,
        "application-config": {
            "trust": {"default": false, "description": "Does this application have access to trusted credentials",
                      "source": if trust { "user" } else { "default" }, "type": "bool", "value": trust},
        },
        "settings": settings,
    })
}

/// A finished task (`juju run`, `juju exec`): `{"<unit>": {...}}` as Juju 3 prints it.
pub fn task(
    unit: &str,
    id: u64,
    status: &str,
    message: Option<&str>,
    results: &Map<String, Value>,
    log: &[String],
) -> Value {
    let mut t = json!({"id": id.to_string(), "results": results, "status": status, "unit": unit});
    if let Some(m) = message.filter(|m| !m.is_empty()) {
        t["message"] = json!(m);
    }
    if !log.is_empty() {
        t["log"] = json!(log);
    }
    let mut out = Map::new();
    out.insert(unit.to_string(), t);
    Value::Object(out)
}

/// Action results as Juju shows them: a dotted key (`action-set a.b=c`) is a path in
/// nested maps (`{"a": {"b": "c"}}`).
pub fn nest_results<'a>(
    flat: impl IntoIterator<Item = (&'a String, &'a Value)>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in flat {
        let mut parts: Vec<&str> = key.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut map = &mut out;
        for part in parts {
            let entry = map
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            map = match entry.as_object_mut() {
                Some(m) => m,
                None => unreachable!("just made an object"),
            };
        }
        map.insert(last.to_string(), value.clone());
    }
    out
}

/// An action's task, with its return code among the results.
pub fn action_task(a: &Action, return_code: i32) -> Value {
    let mut results = nest_results(&a.results);
    results.insert("return-code".into(), json!(return_code));
    task(
        &a.unit,
        a.id,
        &a.status,
        a.message.as_deref(),
        &results,
        &a.log,
    )
}

#[cfg(test)]
mod nest_tests {
    use super::*;

    #[test]
    fn dotted_result_keys_nest_as_in_juju() {
        let flat: std::collections::BTreeMap<String, Value> = [
            ("backups.backup-1.size", "3"),
            ("backups.backup-1.last-modified", "t"),
            ("result", "correct"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
        assert_eq!(
            Value::Object(nest_results(&flat)),
            json!({"backups": {"backup-1": {"size": "3", "last-modified": "t"}}, "result": "correct"})
        );
    }
}

/// `juju show-unit UNIT --format json`.
pub fn show_unit(model: &Model, unit: &str) -> Result<Value, Error> {
    let app_name = crate::model::app_of(unit);
    let app = model.app(app_name)?;
    let u = app
        .units
        .get(unit)
        .ok_or_else(|| Error::NotFound(format!("unit {unit:?} not found")))?;
    let mut infos = vec![];
    for r in &model.relations {
        let Some(end) = r.end_for(app_name) else {
            continue;
        };
        let remote = r.remote_app(app_name).unwrap_or(app_name);
        let remote_ep = r
            .ends
            .iter()
            .find(|e| e.app == remote)
            .map(|e| e.endpoint.clone())
            .unwrap_or_else(|| end.endpoint.clone());
        let mut related = Map::new();
        for ru in r.joined.get(remote).into_iter().flatten() {
            if ru == unit {
                continue;
            }
            related.insert(
                ru.clone(),
                json!({"in-scope": true, "data": r.unit_data.get(ru).cloned().unwrap_or_default()}),
            );
        }
        infos.push(json!({
            "relation-id": r.id,
            "endpoint": end.endpoint,
            "cross-model": false,
            "related-endpoint": remote_ep,
            "application-data": r.app_data.get(remote).cloned().unwrap_or_default(),
            "local-unit": {"in-scope": true, "data": r.unit_data.get(unit).cloned().unwrap_or_default()},
            "related-units": related,
        }));
    }
    let mut v = json!({
        "opened-ports": u.opened_ports,
        "charm": charm_url(app),
        "leader": app.leader.as_deref() == Some(unit),
        "life": "alive",
        "relation-info": infos,
        "provider-id": unit.replace('/', "-"),
        "address": if u.address.is_empty() { "127.0.0.1" } else { u.address.as_str() },
    });
    if !u.workload_version.is_empty() {
        v["workload-version"] = json!(u.workload_version);
    }
    let mut out = Map::new();
    out.insert(unit.to_string(), v);
    Ok(Value::Object(out))
}

/// What `show-secret` may add to a secret's summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct SecretView {
    pub reveal: bool,
    pub revision: Option<u64>,
    pub revisions: bool,
}

/// One secret as `juju secrets`/`show-secret` print it (JujuLocal does not record when
/// a secret was created or updated: those times are the model file's).
pub fn secret(s: &Secret, view: SecretView, stamp: &str) -> Result<Value, Error> {
    let latest = s.latest().map(|r| r.revision).unwrap_or(0);
    let mut v = json!({"revision": latest, "owner": s.owner, "created": stamp, "updated": stamp});
    for (k, val) in [
        ("label", &s.label),
        ("description", &s.description),
        ("rotation", &s.rotate),
        ("expires", &s.expire),
    ] {
        if let Some(x) = val {
            v[k] = json!(x);
        }
    }
    if view.revisions {
        let revs: Vec<Value> = s
            .revisions
            .iter()
            .map(|r| json!({"revision": r.revision, "backend": "internal", "created": stamp, "updated": stamp}))
            .collect();
        v["revisions"] = json!(revs);
    }
    if view.reveal || view.revision.is_some() {
        let rev = view.revision.unwrap_or(latest);
        let r = s
            .revision(rev)
            .ok_or_else(|| Error::NotFound(format!("secret revision {rev} not found")))?;
        v["content"] = json!({"Data": r.content});
    }
    Ok(v)
}

/// A played application's status: what its stand-in says (e.g. where its proxy
/// listens), else that JujuLocal plays it.
fn played_status(app: &Application, now: &str) -> Value {
    match &app.status {
        Some(s) => json!({"current": s.status, "message": s.message, "since": since(&s.since)}),
        None => json!({"current": "active", "message": "played by jujulocal", "since": since(now)}),
    }
}
