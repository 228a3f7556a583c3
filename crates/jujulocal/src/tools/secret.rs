//! Secrets: `secret-add`, `secret-get`, `secret-set`, `secret-info-get`, `secret-ids`,
//! `secret-grant`, `secret-revoke`, `secret-remove`.

use std::collections::BTreeMap;

use super::relation::relation_arg;
use super::{no_args, output, Env, FORMAT};
use crate::flags::{self, boolean, val, Flag};
use crate::journal::Op;
use crate::model::{app_of, Bag, Grant, Secret, SecretRevision};
use crate::Error;
use serde_json::{json, Value};

/// Flags shared by `secret-add` and `secret-set`.
const SECRET_FLAGS: &[Flag] = &[
    val(&["label"]),
    val(&["description"]),
    val(&["expire"]),
    val(&["rotate"]),
    val(&["owner"]),
    val(&["file"]),
];

pub(super) fn is_valid_secret_key(k: &str) -> bool {
    // ^([a-z](?:-?[a-z0-9]){2,})$
    let b = k.as_bytes();
    if b.len() < 3 || !b[0].is_ascii_lowercase() || b[b.len() - 1] == b'-' {
        return false;
    }
    let mut prev_dash = false;
    for c in &b[1..] {
        match c {
            b'-' if prev_dash => return false,
            b'-' => prev_dash = true,
            c if c.is_ascii_lowercase() || c.is_ascii_digit() => prev_dash = false,
            _ => return false,
        }
    }
    true
}

pub(super) fn secret_content(args: &[String]) -> Result<Bag, Error> {
    let mut content = Bag::new();
    for kv in args {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("key value {kv:?} not valid")))?;
        let (key, value) = if let Some(key) = k.strip_suffix("#base64") {
            let bytes = crate::util::base64_decode(v)
                .map_err(|_| Error::Usage(format!("invalid base64 value for {key:?}")))?;
            (
                key,
                String::from_utf8(bytes)
                    .map_err(|_| Error::Usage(format!("value of {key:?} is not UTF-8")))?,
            )
        } else if let Some(key) = k.strip_suffix("#file") {
            (
                key,
                std::fs::read_to_string(v).map_err(|source| Error::Input {
                    what: format!("reading secret content file {v:?}"),
                    source,
                })?,
            )
        } else {
            (k, v.to_string())
        };
        if !is_valid_secret_key(key) {
            return Err(Error::Usage(format!("key {key:?} not valid")));
        }
        content.insert(key.to_string(), value);
    }
    Ok(content)
}

pub(super) fn owns(env: &Env, s: &Secret) -> bool {
    s.owner == env.ctx.unit || s.owner == env.app()
}

/// The secret identified by URI (or bare ID), which this unit must own (and lead, for
/// an application-owned secret).
pub(super) fn secret_for_owner<'a>(env: &'a Env, uri: &str) -> Result<&'a Secret, Error> {
    let s = env
        .view
        .secret_by_uri(uri)
        .ok_or_else(|| Error::NotFound(format!("secret {uri:?} not found")))?;
    if !owns(env, s) {
        return Err(Error::PermissionDenied);
    }
    if s.owner == env.app() && !env.is_leader() {
        return Err(Error::Refused(format!(
            "cannot manage secret {uri:?}: this unit is not the leader"
        )));
    }
    Ok(s)
}

pub(super) fn secret_add(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, SECRET_FLAGS)?;
    let mut content = secret_content(&p.args)?;
    if let Some(f) = p.get("file") {
        let text = std::fs::read_to_string(f).map_err(|source| Error::Input {
            what: f.to_string(),
            source,
        })?;
        let v: Value = serde_saphyr::from_str(&text).map_err(|source| Error::InputYaml {
            what: f.to_string(),
            source: Box::new(source),
        })?;
        if let Value::Object(m) = v {
            for (k, v) in m {
                content.insert(
                    k,
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                );
            }
        }
    }
    if content.is_empty() {
        return Err(Error::Usage("missing secret value".into()));
    }
    let owner = match p.get("owner").unwrap_or("application") {
        "application" => {
            if !env.is_leader() {
                return Err(Error::Refused(
                    "cannot create application secret: this unit is not the leader".into(),
                ));
            }
            env.app()
        }
        "unit" => env.ctx.unit.clone(),
        o => return Err(Error::Usage(format!("secret owner {o:?} not valid"))),
    };
    if let Some(r) = p.get("rotate") {
        if ![
            "never",
            "hourly",
            "daily",
            "weekly",
            "monthly",
            "quarterly",
            "yearly",
        ]
        .contains(&r)
        {
            return Err(Error::Usage(format!("rotate policy {r:?} not valid")));
        }
    }
    if let Some(label) = p.get("label") {
        if env
            .view
            .secrets
            .values()
            .any(|s| s.owner == owner && s.label.as_deref() == Some(label))
        {
            return Err(Error::Refused(format!(
                "secret with label {label:?} already exists"
            )));
        }
    }
    let id = crate::util::secret_xid()?;
    let secret = Secret {
        id: id.clone(),
        owner,
        label: p.get("label").map(str::to_string),
        description: p.get("description").map(str::to_string),
        rotate: p.get("rotate").map(str::to_string),
        expire: p.get("expire").map(str::to_string),
        revisions: vec![SecretRevision {
            revision: 1,
            content,
        }],
        grants: vec![],
        consumers: BTreeMap::new(),
        owner_tracking: BTreeMap::new(),
    };
    env.queue(Op::SecretAdd { secret });
    Ok(format!("secret:{id}\n"))
}

pub(super) fn secret_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(
        args,
        &[
            FORMAT,
            val(&["label"]),
            boolean(&["refresh"]),
            boolean(&["peek"]),
        ],
    )?;
    no_args(&p, 1)?;
    if p.bool("refresh") && p.bool("peek") {
        return Err(Error::Usage(
            "specify one of --peek or --refresh but not both".into(),
        ));
    }
    let label = p.get("label").map(str::to_string);
    let unit = env.ctx.unit.clone();
    let secret = match (p.args.first(), &label) {
        (Some(uri), _) => env
            .view
            .secret_by_uri(uri)
            .ok_or_else(|| Error::NotFound(format!("secret {uri:?} not found")))?,
        (None, Some(l)) => env
            .view
            .secrets
            .values()
            .find(|s| {
                (owns(env, s) && s.label.as_deref() == Some(l.as_str()))
                    || s.consumers.get(&unit).and_then(|c| c.label.as_deref()) == Some(l.as_str())
            })
            .ok_or_else(|| Error::NotFound(format!("secret with label {l:?} not found")))?,
        (None, None) => return Err(Error::Usage("require either a secret URI or label".into())),
    }
    .clone();
    let owner = owns(env, &secret);
    if !owner {
        let granted = secret.grants.iter().any(|g| {
            g.app == env.app()
                && g.unit.as_ref().is_none_or(|u| *u == unit)
                && env.view.relation(g.relation_id).is_some()
        });
        if !granted {
            return Err(Error::PermissionDenied);
        }
    }
    let latest = secret
        .latest()
        .ok_or_else(|| Error::NotFound(format!("secret {:?} has no revisions", secret.uri())))?;
    let tracked = if owner {
        secret.owner_tracking.get(&unit).copied()
    } else {
        secret
            .consumers
            .get(&unit)
            .map(|c| c.revision)
            .filter(|r| *r > 0)
    };
    let (rev, track) = if p.bool("peek") {
        (latest.revision, None)
    } else if p.bool("refresh") || tracked.is_none() {
        (latest.revision, Some(latest.revision))
    } else {
        (tracked.unwrap_or(latest.revision), None)
    };
    let consumer_label = if owner {
        None
    } else {
        label.clone().filter(|_| !p.args.is_empty())
    };
    if track.is_some() || consumer_label.is_some() {
        env.queue(Op::SecretTrack {
            id: secret.id.clone(),
            unit,
            label: consumer_label,
            revision: track.or(tracked).unwrap_or(rev),
        });
    }
    let content = secret
        .revision(rev)
        .map(|r| r.content.clone())
        .ok_or_else(|| Error::NotFound(format!("secret revision {rev} not found")))?;
    output(&p, &json!(content))
}

pub(super) fn secret_set(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, SECRET_FLAGS)?;
    let Some((uri, rest)) = p.args.split_first() else {
        return Err(Error::Usage("missing secret URI".into()));
    };
    let id = secret_for_owner(env, uri)?.id.clone();
    let content = secret_content(rest)?;
    env.queue(Op::SecretSet {
        id: id.clone(),
        content: (!content.is_empty()).then_some(content),
        label: p.get("label").map(str::to_string),
        description: p.get("description").map(str::to_string),
    });
    env.journal.new_revisions.push(id);
    Ok(String::new())
}

pub(super) fn secret_info_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT, val(&["label"])])?;
    no_args(&p, 1)?;
    let s = match (p.args.first(), p.get("label")) {
        (Some(uri), _) => env.view.secret_by_uri(uri),
        (None, Some(l)) => env
            .view
            .secrets
            .values()
            .find(|s| owns(env, s) && s.label.as_deref() == Some(l)),
        (None, None) => return Err(Error::Usage("require either a secret URI or label".into())),
    };
    let s = s.filter(|s| owns(env, s)).ok_or_else(|| {
        Error::NotFound(format!(
            "secret {:?} not found",
            p.args
                .first()
                .map(String::as_str)
                .or(p.get("label"))
                .unwrap_or("")
        ))
    })?;
    let owner = if s.owner.contains('/') {
        "unit"
    } else {
        "application"
    };
    let mut info = json!({
        "revision": s.latest().map(|r| r.revision).unwrap_or(0),
        "owner": owner,
        "rotation": s.rotate.clone().unwrap_or_else(|| "never".into()),
    });
    if let Some(l) = &s.label {
        info["label"] = json!(l);
    }
    if let Some(d) = &s.description {
        info["description"] = json!(d);
    }
    if let Some(e) = &s.expire {
        info["expiry"] = json!(e);
    }
    output(&p, &json!({ s.id.clone(): info }))
}

pub(super) fn secret_ids(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT])?;
    let ids: Vec<Value> = env
        .view
        .secrets
        .values()
        .filter(|s| owns(env, s))
        .map(|s| Value::String(s.uri()))
        .collect();
    output(&p, &Value::Array(ids))
}

pub(super) fn secret_grant(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[val(&["r", "relation"]), val(&["unit"])])?;
    let [uri] = p.args.as_slice() else {
        return Err(Error::Usage("missing secret URI".into()));
    };
    let id = secret_for_owner(env, uri)?.id.clone();
    if p.get("r").is_none() {
        return Err(Error::Usage("missing relation".into()));
    }
    let rel_id = relation_arg(env, &p)?;
    let rel = env
        .view
        .relation(rel_id)
        .ok_or_else(|| Error::NotFound("relation not found".into()))?;
    let app = rel.remote_app(&env.app()).unwrap_or_default().to_string();
    let unit = p.get("unit").map(str::to_string);
    if let Some(u) = &unit {
        if app_of(u) != app {
            return Err(Error::Refused(format!(
                "cannot grant to unit {u:?}: not in relation"
            )));
        }
    }
    env.queue(Op::SecretGrant {
        id,
        grant: Grant {
            relation_id: rel_id,
            app,
            unit,
        },
    });
    Ok(String::new())
}

pub(super) fn secret_revoke(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(
        args,
        &[
            val(&["r", "relation"]),
            val(&["app", "application"]),
            val(&["unit"]),
        ],
    )?;
    let [uri] = p.args.as_slice() else {
        return Err(Error::Usage("missing secret URI".into()));
    };
    let id = secret_for_owner(env, uri)?.id.clone();
    let relation_id = if p.get("r").is_some() {
        Some(relation_arg(env, &p)?)
    } else {
        None
    };
    env.queue(Op::SecretRevoke {
        id,
        relation_id,
        app: p.get("app").map(str::to_string),
        unit: p.get("unit").map(str::to_string),
    });
    Ok(String::new())
}

pub(super) fn secret_remove(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[val(&["revision"])])?;
    let [uri] = p.args.as_slice() else {
        return Err(Error::Usage("missing secret URI".into()));
    };
    let s = secret_for_owner(env, uri)?;
    let revision = match p.get("revision") {
        None => None,
        Some(r) => Some(
            r.parse()
                .map_err(|_| Error::Usage(format!("invalid revision {r:?}")))?,
        ),
    };
    let id = s.id.clone();
    env.queue(Op::SecretRemove { id, revision });
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_follow_juju_rules() {
        for ok in ["abc", "secret-key", "a1b", "password"] {
            assert!(is_valid_secret_key(ok), "{ok}");
        }
        for bad in ["ab", "Abc", "1ab", "a--b", "abc-", "a_b"] {
            assert!(!is_valid_secret_key(bad), "{bad}");
        }
    }
}
