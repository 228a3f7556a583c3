//! Relations: `relation-ids`, `relation-list`, `relation-get`, `relation-set`,
//! `relation-model-get`.

use super::{no_args, output, read_settings_parsed, Env, FORMAT};
use crate::flags::{self, boolean, val, Parsed};
use crate::journal::Op;
use crate::model::{app_of, Bag};
use crate::Error;
use serde_json::{json, Value};

pub(super) fn relation_arg(env: &Env, p: &Parsed) -> Result<u64, Error> {
    let id = match p.get("r") {
        Some(r) => {
            let (ep, n) = match r.rsplit_once(':') {
                Some((ep, n)) => (Some(ep), n),
                None => (None, r),
            };
            let id: u64 = n.parse().map_err(|_| {
                Error::Usage(format!(
                    "invalid value {r:?} for option -r: invalid relation id"
                ))
            })?;
            if let Some(ep) = ep {
                let rel = env.view.relation(id).ok_or_else(|| {
                    Error::NotFound(format!(
                        "invalid value {r:?} for option -r: relation not found"
                    ))
                })?;
                if rel.end_for(&env.app()).map(|e| e.endpoint.as_str()) != Some(ep) {
                    return Err(Error::NotFound(format!(
                        "invalid value {r:?} for option -r: relation not found"
                    )));
                }
            }
            id
        }
        None => env
            .ctx
            .relation_id
            .ok_or_else(|| Error::Usage("no relation id specified".into()))?,
    };
    let rel = env
        .view
        .relation(id)
        .ok_or_else(|| Error::NotFound("relation not found".into()))?;
    if rel.end_for(&env.app()).is_none() {
        return Err(Error::NotFound("relation not found".into()));
    }
    Ok(id)
}

pub(super) fn relation_key(env: &Env, id: u64) -> String {
    let ep = env
        .view
        .relation(id)
        .and_then(|r| r.end_for(&env.app()))
        .map(|e| e.endpoint.clone())
        .unwrap_or_default();
    format!("{ep}:{id}")
}

pub(super) fn relation_ids(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT])?;
    no_args(&p, 1)?;
    let endpoint = match p.args.first() {
        Some(e) => e.clone(),
        None => env
            .ctx
            .relation_id
            .and_then(|id| env.view.relation(id))
            .and_then(|r| r.end_for(&env.app()))
            .map(|e| e.endpoint.clone())
            .ok_or_else(|| Error::Usage("no endpoint name specified".into()))?,
    };
    let app = env.view.app(&env.app())?;
    if app.meta.endpoint(&endpoint).is_none() {
        return Err(Error::NotFound(format!("no endpoint named {endpoint:?}")));
    }
    // Juju 3.4+ (juju/juju#17464, peers kept by #18253) leaves the relation being
    // broken out of `relation-ids` in its own -broken hook; it stays usable by id.
    let broken = env
        .ctx
        .dispatch_path
        .ends_with("-relation-broken")
        .then_some(env.ctx.relation_id)
        .flatten();
    let ids: Vec<String> = env
        .view
        .relations_of(&env.app(), &endpoint)
        .iter()
        .filter(|r| r.is_peer() || Some(r.id) != broken)
        .map(|r| format!("{endpoint}:{}", r.id))
        .collect();
    output(&p, &json!(ids))
}

pub(super) fn relation_list(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT, val(&["r", "relation"]), boolean(&["app"])])?;
    no_args(&p, 0)?;
    let id = relation_arg(env, &p)?;
    let rel = env
        .view
        .relation(id)
        .ok_or_else(|| Error::NotFound("relation not found".into()))?;
    let app = env.app();
    let remote = rel.remote_app(&app).unwrap_or_default().to_string();
    if p.bool("app") {
        return output(&p, &Value::String(remote));
    }
    let members: Vec<String> = rel
        .joined
        .get(&remote)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|u| *u != env.ctx.unit)
        .collect();
    output(&p, &json!(visible_members(&env.ctx, members)))
}

/// The remote units a hook sees (pure), as Juju's uniter keeps each unit's view:
/// none in `-relation-broken` (every member has departed); in `-relation-departed`,
/// not the unit departing now; and on a leaving unit (its own departed hooks, where
/// `JUJU_DEPARTING_UNIT` is itself) not those it has already seen depart, which
/// JujuLocal delivers in membership order.
pub(crate) fn visible_members(ctx: &crate::journal::HookCtx, members: Vec<String>) -> Vec<String> {
    if ctx.dispatch_path.ends_with("-relation-broken") {
        return vec![];
    }
    let Some(departing) = &ctx.departing_unit else {
        return members;
    };
    let gone = ctx.remote_unit.as_ref().unwrap_or(departing);
    if *departing == ctx.unit {
        return match members.iter().position(|u| u == gone) {
            Some(i) => members[i + 1..].to_vec(),
            None => members,
        };
    }
    members.into_iter().filter(|u| u != gone).collect()
}

pub(super) fn relation_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT, val(&["r", "relation"]), boolean(&["app"])])?;
    no_args(&p, 2)?;
    let id = relation_arg(env, &p)?;
    let key = p.args.first().map(String::as_str).unwrap_or("-");
    let target = match p.args.get(1) {
        Some(t) => t.clone(),
        None => env
            .ctx
            .remote_unit
            .clone()
            .or_else(|| p.bool("app").then(|| env.ctx.remote_app.clone()).flatten())
            .ok_or_else(|| Error::Usage("no unit or application specified".into()))?,
    };
    let rel = env
        .view
        .relation(id)
        .ok_or_else(|| Error::NotFound("relation not found".into()))?;
    let app = env.app();
    let target_app = app_of(&target).to_string();
    if rel.end_for(&target_app).is_none() {
        return Err(Error::Refused(format!(
            "cannot read settings for {target:?} in relation {:?}: permission denied",
            relation_key(env, id)
        )));
    }
    let bag: Bag = if p.bool("app") {
        if target_app == app && !rel.is_peer() && !env.is_leader() {
            return Err(Error::PermissionDenied);
        }
        rel.app_data.get(&target_app).cloned().unwrap_or_default()
    } else {
        if target.contains('/') {
            let known = target == env.ctx.unit
                || rel
                    .joined
                    .get(&target_app)
                    .is_some_and(|us| us.contains(&target))
                || env.ctx.departing_unit.as_deref() == Some(target.as_str());
            if !known {
                return Err(Error::Refused(format!(
                    "cannot read settings for unit {target:?} in relation {:?}: unit not found",
                    relation_key(env, id)
                )));
            }
        } else {
            return Err(Error::Usage(format!(
                "{target:?} is not a unit name (use --app for application data)"
            )));
        }
        rel.unit_data.get(&target).cloned().unwrap_or_default()
    };
    if key == "-" {
        output(&p, &json!(bag))
    } else {
        output(
            &p,
            &bag.get(key)
                .map(|v| Value::String(v.clone()))
                .unwrap_or(Value::Null),
        )
    }
}

pub(super) fn relation_set(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(
        args,
        &[
            val(&["r", "relation"]),
            boolean(&["app"]),
            val(&["file"]),
            FORMAT,
        ],
    )?;
    let id = relation_arg(env, &p)?;
    let data = read_settings_parsed(env, &p, "relation-set")?;
    let application = p.bool("app");
    if application && !env.is_leader() {
        return Err(Error::Refused("cannot write relation settings".into()));
    }
    env.queue(Op::RelationSet {
        relation_id: id,
        application,
        data,
    });
    Ok(String::new())
}

pub(super) fn relation_model_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    // The remote application's model: always this one (no cross-model relations).
    let p = flags::parse(args, &[FORMAT, val(&["r", "relation"])])?;
    no_args(&p, 0)?;
    relation_arg(env, &p)?;
    output(&p, &json!({ "uuid": env.view.uuid }))
}
