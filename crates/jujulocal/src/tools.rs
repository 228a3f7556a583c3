//! The hook tools, run as `<tool-name> args...` (symlinks to the jujulocal binary).
//!
//! Each call loads the model, overlays the running hook's journal (so a unit sees its
//! own uncommitted writes, as in Juju), checks access like Juju does, prints the same
//! output formats and records the call.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::flags::{self, boolean, val, Flag, Parsed};
use crate::journal::{self, Call, HookCtx, Journal, Op};
use crate::model::{app_of, Bag, Grant, Model, Secret, SecretRevision};
use crate::Error;

pub const TOOLS: &[&str] = &[
    "config-get",
    "is-leader",
    "relation-ids",
    "relation-list",
    "relation-get",
    "relation-set",
    "relation-model-get",
    "status-set",
    "status-get",
    "application-version-set",
    "juju-log",
    "state-get",
    "state-set",
    "state-delete",
    "secret-add",
    "secret-get",
    "secret-set",
    "secret-info-get",
    "secret-ids",
    "secret-grant",
    "secret-revoke",
    "secret-remove",
    "network-get",
    "open-port",
    "close-port",
    "opened-ports",
    "action-get",
    "action-set",
    "action-fail",
    "action-log",
    "goal-state",
    "storage-get",
    "storage-list",
];

struct Env {
    ctx: HookCtx,
    view: Model,
    journal: Journal,
    dir: PathBuf,
    /// Standard input for `--file -`; `None` reads the process's own.
    stdin: Option<String>,
}

impl Env {
    fn queue(&mut self, op: Op) {
        journal::apply(&mut self.view, &self.ctx, &op);
        self.journal.ops.push(op);
    }
    fn app(&self) -> String {
        self.ctx.app().to_string()
    }
    fn is_leader(&self) -> bool {
        self.ctx.leader
    }
}

/// Entry point for a hook tool. Returns the process exit code.
pub fn main(tool: &str, args: Vec<String>) -> i32 {
    let started = std::time::Instant::now();
    let dir = match context_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("ERROR {e}");
            return 1;
        }
    };
    let load = || -> Result<Env, Error> {
        let ctx: HookCtx = journal::read_json(&journal::ctx_path(&dir))?;
        let journal: Journal = journal::read_json(&journal::journal_path(&dir)).unwrap_or_default();
        let mut view = Model::load(&ctx.home)?;
        for op in &journal.ops {
            journal::apply(&mut view, &ctx, op);
        }
        Ok(Env {
            ctx,
            view,
            journal,
            dir: dir.clone(),
            stdin: None,
        })
    };
    let mut env = match load() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("ERROR {e}");
            return 1;
        }
    };
    let (code, out) = match run(&mut env, tool, &args) {
        Ok(out) => (0, out),
        Err(Error::Usage(m)) => {
            eprintln!("ERROR {m}");
            (2, String::new())
        }
        Err(e) => {
            eprintln!("ERROR {e}");
            (1, String::new())
        }
    };
    env.journal.calls.push(Call {
        tool: tool.to_string(),
        args,
        exit: code,
        ms: started.elapsed().as_secs_f64() * 1000.0,
    });
    if let Err(e) = journal::write_json(&journal::journal_path(&env.dir), &env.journal) {
        eprintln!("ERROR cannot record the call: {e}");
        return 1;
    }
    print!("{out}");
    code
}

/// Hook tools run in this process against an in-memory model: the same checks, outputs
/// and journal as the executables, for unit tests that must not allow what Juju forbids.
pub struct Session {
    env: Env,
}

impl Session {
    /// A hook running for `ctx` on `model` (the model as committed before the hook).
    pub fn new(ctx: HookCtx, model: Model) -> Self {
        Self {
            env: Env {
                ctx,
                view: model,
                journal: Journal::default(),
                dir: PathBuf::new(),
                stdin: None,
            },
        }
    }

    /// Runs one tool with `args` (and `stdin` for `--file -`): its output, or the error
    /// the executable would print. The call is recorded in the journal.
    pub fn call(
        &mut self,
        tool: &str,
        args: &[String],
        stdin: Option<&[u8]>,
    ) -> Result<String, Error> {
        self.env.stdin = stdin.map(|b| String::from_utf8_lossy(b).into_owned());
        let result = if TOOLS.contains(&tool) {
            run(&mut self.env, tool, args)
        } else {
            Err(Error::Usage(format!("{tool}: command not found")))
        };
        self.env.stdin = None;
        self.env.journal.calls.push(Call {
            tool: tool.to_string(),
            args: args.to_vec(),
            exit: match &result {
                Ok(_) => 0,
                Err(Error::Usage(_)) => 2,
                Err(_) => 1,
            },
            ms: 0.0,
        });
        result
    }

    /// What the hook has written so far, and the calls it made.
    pub fn journal(&self) -> &Journal {
        &self.env.journal
    }

    pub fn ctx(&self) -> &HookCtx {
        &self.env.ctx
    }
}

fn context_dir() -> Result<PathBuf, Error> {
    let sock = std::env::var("JUJU_AGENT_SOCKET_ADDRESS")
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::Usage(
                "JUJU_AGENT_SOCKET_ADDRESS is not set: hook tools only work inside a hook".into(),
            )
        })?;
    std::env::var("JUJU_CONTEXT_ID")
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::Usage("JUJU_CONTEXT_ID is not set: hook tools only work inside a hook".into())
        })?;
    Path::new(&sock)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::Usage("bad JUJU_AGENT_SOCKET_ADDRESS".into()))
}

const FORMAT: Flag = val(&["format"]);
/// Flags shared by `secret-add` and `secret-set`.
const SECRET_FLAGS: &[Flag] = &[
    val(&["label"]),
    val(&["description"]),
    val(&["expire"]),
    val(&["rotate"]),
    val(&["owner"]),
    val(&["file"]),
];

/// Formats output: `json`, `yaml`, or Juju's default "smart" format.
fn output(p: &Parsed, v: &Value) -> Result<String, Error> {
    match p.get("format").unwrap_or("smart") {
        "json" => Ok(format!(
            "{}\n",
            serde_json::to_string(v).map_err(|e| Error::Model(e.to_string()))?
        )),
        "yaml" => serde_saphyr::to_string(v).map_err(|e| Error::Model(e.to_string())),
        "smart" => Ok(match v {
            Value::Null => String::new(),
            Value::String(s) => format!("{s}\n"),
            Value::Bool(b) => format!("{b}\n"),
            Value::Number(n) => format!("{n}\n"),
            Value::Array(a) => a
                .iter()
                .map(|x| match x {
                    Value::String(s) => format!("{s}\n"),
                    other => format!("{other}\n"),
                })
                .collect(),
            other => serde_saphyr::to_string(other).map_err(|e| Error::Model(e.to_string()))?,
        }),
        f => Err(Error::Usage(format!(
            "invalid value {f:?} for option --format: unknown format {f:?}"
        ))),
    }
}

fn no_args(p: &Parsed, max: usize) -> Result<(), Error> {
    if p.args.len() > max {
        return Err(Error::Usage(format!(
            "unrecognized args: {:?}",
            &p.args[max..]
        )));
    }
    Ok(())
}

fn run(env: &mut Env, tool: &str, args: &[String]) -> Result<String, Error> {
    match tool {
        "config-get" => config_get(env, args),
        "is-leader" => {
            let p = flags::parse(args, &[FORMAT])?;
            no_args(&p, 0)?;
            output(&p, &Value::Bool(env.is_leader()))
        }
        "relation-ids" => relation_ids(env, args),
        "relation-list" => relation_list(env, args),
        "relation-get" => relation_get(env, args),
        "relation-set" => relation_set(env, args),
        "relation-model-get" => {
            // The remote application's model: always this one (no cross-model relations).
            let p = flags::parse(args, &[FORMAT, val(&["r", "relation"])])?;
            no_args(&p, 0)?;
            relation_arg(env, &p)?;
            output(&p, &json!({ "uuid": env.view.uuid }))
        }
        "status-set" => status_set(env, args),
        "status-get" => status_get(env, args),
        "application-version-set" => {
            let p = flags::parse(args, &[])?;
            let [v] = p.args.as_slice() else {
                return Err(Error::Usage("no version specified".into()));
            };
            env.queue(Op::AppVersion { version: v.clone() });
            Ok(String::new())
        }
        "juju-log" => {
            let p = flags::parse(
                args,
                &[val(&["l", "log-level"]), boolean(&["debug"]), FORMAT],
            )?;
            if p.args.is_empty() {
                return Err(Error::Usage("no message specified".into()));
            }
            let level = if p.bool("debug") {
                "DEBUG"
            } else {
                p.get("l").unwrap_or("INFO")
            };
            let level = level.to_uppercase();
            if !["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&level.as_str())
            {
                return Err(Error::Usage(format!("invalid log level {level:?}")));
            }
            let message = p.args.join(" ");
            crate::controller::append_log(&env.ctx.home, &env.ctx.unit, &level, &message);
            env.queue(Op::Log { level, message });
            Ok(String::new())
        }
        "state-get" => {
            let p = flags::parse(args, &[FORMAT])?;
            no_args(&p, 1)?;
            let state = env
                .view
                .app(&env.app())?
                .units
                .get(&env.ctx.unit)
                .map(|u| u.state.clone())
                .unwrap_or_default();
            match p.args.first() {
                Some(k) => output(
                    &p,
                    &state
                        .get(k)
                        .map(|v| Value::String(v.clone()))
                        .unwrap_or(Value::Null),
                ),
                None => output(&p, &json!(state)),
            }
        }
        "state-set" => {
            let data = read_settings(env, args, "state-set")?;
            for k in data.keys() {
                if k.len() > 256 {
                    return Err(Error::Failed(format!("key {k:?} longer than 256 bytes")));
                }
            }
            env.queue(Op::StateSet { data });
            Ok(String::new())
        }
        "state-delete" => {
            let p = flags::parse(args, &[])?;
            let [k] = p.args.as_slice() else {
                return Err(Error::Usage("no key specified".into()));
            };
            env.queue(Op::StateDelete { key: k.clone() });
            Ok(String::new())
        }
        "secret-add" => secret_add(env, args),
        "secret-get" => secret_get(env, args),
        "secret-set" => secret_set(env, args),
        "secret-info-get" => secret_info_get(env, args),
        "secret-ids" => {
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
        "secret-grant" => secret_grant(env, args),
        "secret-revoke" => secret_revoke(env, args),
        "secret-remove" => {
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
        "network-get" => network_get(env, args),
        "open-port" | "close-port" => {
            let p = flags::parse(args, &[val(&["endpoints"]), FORMAT])?;
            let [port] = p.args.as_slice() else {
                return Err(Error::Usage("no port or range specified".into()));
            };
            let port = normalise_port(port)?;
            env.queue(if tool == "open-port" {
                Op::OpenPort { port }
            } else {
                Op::ClosePort { port }
            });
            Ok(String::new())
        }
        "opened-ports" => {
            let p = flags::parse(args, &[boolean(&["endpoints"]), FORMAT])?;
            let ports = env
                .view
                .app(&env.app())?
                .units
                .get(&env.ctx.unit)
                .map(|u| u.opened_ports.clone())
                .unwrap_or_default();
            output(&p, &json!(ports))
        }
        "action-get" => {
            let p = flags::parse(args, &[FORMAT])?;
            let action = current_action(env)?;
            let params = Value::Object(action.params.clone());
            match p.args.first() {
                None => output(&p, &params),
                Some(key) => {
                    let mut v = &params;
                    for part in key.split('.') {
                        v = v.get(part).unwrap_or(&Value::Null);
                    }
                    output(&p, v)
                }
            }
        }
        "action-set" => {
            current_action(env)?;
            let p = flags::parse(args, &[])?;
            if p.args.is_empty() {
                return Err(Error::Usage("no key=value pairs specified".into()));
            }
            let mut results = BTreeMap::new();
            for kv in &p.args {
                let (k, v) = kv.split_once('=').ok_or_else(|| {
                    Error::Usage(format!("argument {kv:?} must be of the form key=value"))
                })?;
                for part in k.split('.') {
                    if !valid_action_key(part) {
                        return Err(Error::Usage(format!(
                            "key {k:?} must start and end with lowercase alphanumeric, and contain only lowercase alphanumeric, hyphens and periods"
                        )));
                    }
                }
                if ["stdout", "stderr", "stdout-encoding", "stderr-encoding"].contains(&k) {
                    return Err(Error::Usage(format!(
                        "cannot set reserved action key {k:?}"
                    )));
                }
                results.insert(k.to_string(), Value::String(v.to_string()));
            }
            env.queue(Op::ActionSet { results });
            Ok(String::new())
        }
        "action-fail" => {
            current_action(env)?;
            let p = flags::parse(args, &[])?;
            let message = if p.args.is_empty() {
                "action failed without reason given, check action for errors".to_string()
            } else {
                p.args.join(" ")
            };
            env.queue(Op::ActionFail { message });
            Ok(String::new())
        }
        "action-log" => {
            current_action(env)?;
            let p = flags::parse(args, &[])?;
            if p.args.is_empty() {
                return Err(Error::Usage("no message specified".into()));
            }
            env.queue(Op::ActionLog {
                message: p.args.join(" "),
            });
            Ok(String::new())
        }
        "goal-state" => {
            let p = flags::parse(args, &[FORMAT])?;
            let app = env.view.app(&env.app())?;
            let units: serde_json::Map<String, Value> = app
                .units
                .keys()
                .map(|u| {
                    (
                        u.clone(),
                        json!({"status": "active", "since": crate::util::now_rfc3339()}),
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
                        entry[remote] =
                            json!({"status": "joined", "since": crate::util::now_rfc3339()});
                    }
                }
            }
            output(&p, &json!({"units": units, "relations": relations}))
        }
        "storage-list" => {
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
        "storage-get" => {
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
        other => Err(Error::Usage(format!("unknown hook tool {other:?}"))),
    }
}

fn valid_action_key(k: &str) -> bool {
    let b = k.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn normalise_port(p: &str) -> Result<String, Error> {
    if p == "icmp" {
        return Ok(p.into());
    }
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    if !["tcp", "udp"].contains(&proto) {
        return Err(Error::Usage(format!(
            "invalid protocol {proto:?}, expected \"tcp\", \"udp\", or \"icmp\""
        )));
    }
    let valid = |s: &str| s.parse::<u16>().map(|n| n > 0).unwrap_or(false);
    let ok = match num.split_once('-') {
        Some((a, b)) => valid(a) && valid(b),
        None => valid(num),
    };
    if !ok {
        return Err(Error::Usage(format!("invalid port {num:?}")));
    }
    Ok(format!("{num}/{proto}"))
}

fn current_action(env: &Env) -> Result<&crate::model::Action, Error> {
    let id = env
        .ctx
        .action_id
        .ok_or_else(|| Error::Failed("not running an action".into()))?;
    env.view
        .actions
        .iter()
        .find(|a| a.id == id)
        .ok_or_else(|| Error::Failed("not running an action".into()))
}

fn config_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[FORMAT, boolean(&["a", "all"])])?;
    no_args(&p, 1)?;
    let app = env.view.app(&env.app())?;
    let mut all = serde_json::Map::new();
    for (name, opt) in &app.meta.options {
        if let Some(v) = app.config.get(name).or(opt.default.as_ref()) {
            all.insert(name.clone(), v.clone());
        } else if p.bool("a") {
            all.insert(name.clone(), Value::Null);
        }
    }
    match p.args.first() {
        Some(k) => output(&p, all.get(k).unwrap_or(&Value::Null)),
        None => output(&p, &Value::Object(all)),
    }
}

fn relation_arg(env: &Env, p: &Parsed) -> Result<u64, Error> {
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

fn relation_key(env: &Env, id: u64) -> String {
    let ep = env
        .view
        .relation(id)
        .and_then(|r| r.end_for(&env.app()))
        .map(|e| e.endpoint.clone())
        .unwrap_or_default();
    format!("{ep}:{id}")
}

fn relation_ids(env: &mut Env, args: &[String]) -> Result<String, Error> {
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

fn relation_list(env: &mut Env, args: &[String]) -> Result<String, Error> {
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
    let departing = env.ctx.departing_unit.clone();
    let units: Vec<String> = rel
        .joined
        .get(&remote)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|u| *u != env.ctx.unit && Some(u) != departing.as_ref())
        .collect();
    output(&p, &json!(units))
}

fn relation_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
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
        return Err(Error::Failed(format!(
            "cannot read settings for {target:?} in relation {:?}: permission denied",
            relation_key(env, id)
        )));
    }
    let bag: Bag = if p.bool("app") {
        if target_app == app && !rel.is_peer() && !env.is_leader() {
            return Err(Error::Failed("permission denied".into()));
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
                return Err(Error::Failed(format!(
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

/// Reads `--file path|-` (YAML or JSON map) and `key=value` args into a settings map.
fn read_settings(env: &mut Env, args: &[String], tool: &str) -> Result<Bag, Error> {
    let p = flags::parse(args, &[val(&["file"])])?;
    read_settings_parsed(env, &p, tool)
}

fn read_settings_parsed(env: &mut Env, p: &Parsed, tool: &str) -> Result<Bag, Error> {
    let mut data = Bag::new();
    if let Some(file) = p.get("file") {
        let mut text = String::new();
        if file == "-" {
            match env.stdin.take() {
                Some(given) => text = given,
                None => {
                    std::io::stdin()
                        .read_to_string(&mut text)
                        .map_err(|e| Error::Failed(format!("reading stdin: {e}")))?;
                }
            }
        } else {
            text =
                std::fs::read_to_string(file).map_err(|e| Error::Failed(format!("{file}: {e}")))?;
        }
        let v: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_saphyr::from_str(&text)
                .map_err(|e| Error::Failed(format!("{tool}: cannot parse settings: {e}")))?
        };
        match v {
            Value::Null => {}
            Value::Object(map) => {
                for (k, v) in map {
                    let s = match v {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        Value::Bool(b) => b.to_string(),
                        Value::Number(n) => n.to_string(),
                        other => {
                            return Err(Error::Failed(format!(
                                "{tool}: value of {k:?} must be a string, got {other}"
                            )))
                        }
                    };
                    data.insert(k, s);
                }
            }
            other => {
                return Err(Error::Failed(format!(
                    "{tool}: expected a map of settings, got {other}"
                )))
            }
        }
    }
    for kv in &p.args {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("expected \"key=value\", got {kv:?}")))?;
        if k.is_empty() {
            return Err(Error::Usage(format!("expected \"key=value\", got {kv:?}")));
        }
        data.insert(k.to_string(), v.to_string());
    }
    Ok(data)
}

fn relation_set(env: &mut Env, args: &[String]) -> Result<String, Error> {
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
        return Err(Error::Failed("cannot write relation settings".into()));
    }
    env.queue(Op::RelationSet {
        relation_id: id,
        application,
        data,
    });
    Ok(String::new())
}

fn status_set(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, &[boolean(&["application"])])?;
    let Some(status) = p.args.first() else {
        return Err(Error::Usage(
            "invalid args, require <status> [message] [data]".into(),
        ));
    };
    if !["maintenance", "blocked", "waiting", "active"].contains(&status.as_str()) {
        return Err(Error::Usage(format!(
            "invalid status {status:?}, expected one of [maintenance blocked waiting active]"
        )));
    }
    let application = p.bool("application");
    if application && !env.is_leader() {
        return Err(Error::Failed("this unit is not the leader".into()));
    }
    let message = p.args[1..].join(" ");
    env.queue(Op::StatusSet {
        application,
        status: status.clone(),
        message,
    });
    Ok(String::new())
}

fn status_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(
        args,
        &[
            FORMAT,
            boolean(&["application"]),
            boolean(&["include-data"]),
        ],
    )?;
    let app = env.view.app(&env.app())?;
    // As Juju's status-get.go: without --include-data only the status value (the bare
    // word in the default format); with it also "message" and "status-data".
    let include = p.bool("include-data");
    let bare = !include && p.get("format").unwrap_or("smart") == "smart";
    let fmt = |s: &Option<crate::model::StatusEntry>| {
        let (status, message) = s
            .as_ref()
            .map_or(("unknown", ""), |s| (s.status.as_str(), s.message.as_str()));
        if include {
            json!({"status": status, "message": message, "status-data": {}})
        } else {
            json!({ "status": status })
        }
    };
    if p.bool("application") {
        if !env.is_leader() {
            return Err(Error::Failed(
                "finding application status: this unit is not the leader".into(),
            ));
        }
        if bare {
            return output(&p, &fmt(&app.status)["status"]);
        }
        let units: serde_json::Map<String, Value> = app
            .units
            .iter()
            .map(|(n, u)| (n.clone(), fmt(&u.status)))
            .collect();
        let mut st = fmt(&app.status);
        st["units"] = Value::Object(units);
        return output(&p, &json!({"application-status": st}));
    }
    let unit = fmt(&app.units.get(&env.ctx.unit).and_then(|u| u.status.clone()));
    if bare {
        return output(&p, &unit["status"]);
    }
    output(&p, &unit)
}

fn is_valid_secret_key(k: &str) -> bool {
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

fn secret_content(args: &[String]) -> Result<Bag, Error> {
    let mut content = Bag::new();
    for kv in args {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("key value {kv:?} not valid")))?;
        let (key, value) = if let Some(key) = k.strip_suffix("#base64") {
            let bytes = crate::util::base64_decode(v)
                .ok_or_else(|| Error::Usage(format!("invalid base64 value for {key:?}")))?;
            (
                key,
                String::from_utf8(bytes)
                    .map_err(|_| Error::Usage(format!("value of {key:?} is not UTF-8")))?,
            )
        } else if let Some(key) = k.strip_suffix("#file") {
            (
                key,
                std::fs::read_to_string(v).map_err(|e| {
                    Error::Failed(format!("reading secret content file {v:?}: {e}"))
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

fn owns(env: &Env, s: &Secret) -> bool {
    s.owner == env.ctx.unit || s.owner == env.app()
}

/// The secret identified by URI (or bare ID), which this unit must own (and lead, for
/// an application-owned secret).
fn secret_for_owner<'a>(env: &'a Env, uri: &str) -> Result<&'a Secret, Error> {
    let s = env
        .view
        .secret_by_uri(uri)
        .ok_or_else(|| Error::NotFound(format!("secret {uri:?} not found")))?;
    if !owns(env, s) {
        return Err(Error::Failed("permission denied".into()));
    }
    if s.owner == env.app() && !env.is_leader() {
        return Err(Error::Failed(format!(
            "cannot manage secret {uri:?}: this unit is not the leader"
        )));
    }
    Ok(s)
}

fn secret_add(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(args, SECRET_FLAGS)?;
    let mut content = secret_content(&p.args)?;
    if let Some(f) = p.get("file") {
        let text = std::fs::read_to_string(f).map_err(|e| Error::Failed(format!("{f}: {e}")))?;
        let v: Value =
            serde_saphyr::from_str(&text).map_err(|e| Error::Failed(format!("{f}: {e}")))?;
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
                return Err(Error::Failed(
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
            return Err(Error::Failed(format!(
                "secret with label {label:?} already exists"
            )));
        }
    }
    let id = crate::util::secret_xid();
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

fn secret_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
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
            return Err(Error::Failed("permission denied".into()));
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

fn secret_set(env: &mut Env, args: &[String]) -> Result<String, Error> {
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

fn secret_info_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
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

fn secret_grant(env: &mut Env, args: &[String]) -> Result<String, Error> {
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
            return Err(Error::Failed(format!(
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

fn secret_revoke(env: &mut Env, args: &[String]) -> Result<String, Error> {
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

fn network_get(env: &mut Env, args: &[String]) -> Result<String, Error> {
    let p = flags::parse(
        args,
        &[
            FORMAT,
            val(&["r", "relation"]),
            boolean(&["bind-address"]),
            boolean(&["ingress-address"]),
            boolean(&["egress-subnets"]),
            boolean(&["primary-address"]),
        ],
    )?;
    let [binding] = p.args.as_slice() else {
        return Err(Error::Usage("no arguments specified".into()));
    };
    let app = env.view.app(&env.app())?;
    if app.meta.endpoint(binding).is_none() {
        return Err(Error::NotFound(format!(
            "no network config found for binding {binding:?}"
        )));
    }
    let addr = app
        .units
        .get(&env.ctx.unit)
        .map(|u| u.address.clone())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into());
    if p.bool("bind-address") {
        return output(&p, &json!(addr));
    }
    if p.bool("ingress-address") {
        return output(&p, &json!(addr));
    }
    if p.bool("egress-subnets") {
        return output(&p, &json!(format!("{addr}/32")));
    }
    output(
        &p,
        &json!({
            "bind-addresses": [{"mac-address": "", "interface-name": "eth0",
                "addresses": [{"hostname": "", "value": addr, "cidr": format!("{addr}/32")}]}],
            "egress-subnets": [format!("{addr}/32")],
            "ingress-addresses": [addr],
        }),
    )
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

    #[test]
    fn ports() {
        assert_eq!(normalise_port("8080").unwrap(), "8080/tcp");
        assert_eq!(normalise_port("53/udp").unwrap(), "53/udp");
        assert!(normalise_port("0").is_err());
        assert!(normalise_port("80/sctp").is_err());
    }

    #[test]
    fn action_keys() {
        assert!(valid_action_key("user-password"));
        assert!(!valid_action_key("User"));
        assert!(!valid_action_key("-a"));
    }
}
