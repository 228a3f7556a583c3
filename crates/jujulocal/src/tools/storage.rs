//! Storage and goal state: `storage-get`, `storage-list`, `goal-state`.

use super::{output, Env, FORMAT};
use crate::flags::{self, val};
use crate::Error;
use serde_json::{json, Value};

pub(super) fn goal_state(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT])?;
    let app = env.view.app(&env.app())?;
    let units: serde_json::Map<String, Value> = app
        .units
        .iter()
        .map(|(name, u)| {
            // Juju: the peer's workload status, or `dying` once it is being removed.
            let status = match &u.status {
                _ if u.dying => "dying",
                Some(st) => st.status.as_str(),
                None => "allocating",
            };
            (
                name.clone(),
                json!({"status": status, "since": crate::util::now_rfc3339()}),
            )
        })
        .collect();
    let mut relations = serde_json::Map::new();
    for r in &env.view.relations {
        if let Some(end) = r.end_for(&env.app()) {
            let entry = relations
                .entry(end.endpoint.clone())
                .or_insert_with(|| json!({}));
            if let Some(remote) = r.remote_app(&env.app()) {
                entry[remote] = json!({"status": "joined", "since": crate::util::now_rfc3339()});
            }
        }
    }
    output(&p, &json!({"units": units, "relations": relations}))
}

pub(super) fn storage_list(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT])?;
    let meta = &env.view.app(&env.app())?.meta;
    let ids: Vec<String> = meta
        .storage
        .keys()
        .filter(|n| p.args.first().is_none_or(|f| f == *n))
        .map(|n| format!("{n}/{}", env.ctx.unit.rsplit('/').next().unwrap_or("0")))
        .collect();
    output(&p, &json!(ids))
}

pub(super) fn storage_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[val(&["s"]), FORMAT])?;
    let meta = &env.view.app(&env.app())?.meta;
    let id = p
        .get("s")
        .map(str::to_string)
        .or_else(|| {
            std::env::var("JUJU_STORAGE_ID")
                .ok()
                .filter(|s| !s.is_empty())
        })
        .ok_or_else(|| Error::Usage("no storage instance specified".into()))?;
    let name = id.split('/').next().unwrap_or("");
    let loc = meta
        .storage
        .get(name)
        .ok_or_else(|| Error::NotFound(format!("storage instance {id:?} not found")))?;
    let info = json!({"kind": "filesystem", "location": loc});
    match p.args.first() {
        Some(k) => output(&p, &info[k.as_str()]),
        None => output(&p, &info),
    }
}
