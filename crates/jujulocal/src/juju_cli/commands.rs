//! The `juju` commands, each wired to what JujuLocal's controller does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::args::{key_values, model_name, Args};
use super::model_cmds::{add_model, destroy_model, list_models, model_time, show_model, status};
use super::models::{CliState, Models};
use super::{hooks_ran, json as docs, open, print_doc, write_out};
use crate::error::Area;
use crate::model::app_of;
use crate::{Controller, Error};

pub fn dispatch(cmd: &str, a: &Args, models: &Models, out: &mut dyn Write) -> Result<i32, Error> {
    match cmd {
        "version" => {
            let v = docs::version_string();
            if a.get("format").is_some() {
                print_doc(
                    out,
                    a,
                    "json",
                    &json!({"version": v, "git-commit": "", "git-tree-state": "clean", "compiler": "jujulocal", "official": false}),
                )?;
            } else {
                write_out(out, &format!("{v}\n"))?;
            }
        }
        "add-model" => add_model(a, models)?,
        "destroy-model" => destroy_model(a, models)?,
        "models" | "list-models" => list_models(a, models, out)?,
        "show-model" => show_model(a, models, out)?,
        "switch" => {
            let [name] = a.pos.as_slice() else {
                return Err(Error::Usage("switch needs a model name".into()));
            };
            models.current(Some(name))?;
            models.set_current(model_name(name))?;
        }
        "status" => status(a, models, out)?,
        "deploy" => deploy(a, models)?,
        "config" => config(a, models, out)?,
        "integrate" | "relate" => {
            let [x, y] = a.pos.as_slice() else {
                return Err(Error::Usage(
                    "an integration must involve two applications".into(),
                ));
            };
            let mut c = open(models, a)?;
            match c.integrate(x, y) {
                Ok(_) => {}
                Err(e @ Error::HookFailed { .. }) => hooks_ran(Err(e))?,
                Err(e) => return Err(e),
            }
        }
        "remove-relation" => {
            let mut c = open(models, a)?;
            let r = match a.pos.as_slice() {
                [id] if id.parse::<u64>().is_ok() => {
                    c.remove_relation_id(id.parse().unwrap_or_default())
                }
                [x, y] => c.remove_relation(x, y),
                _ => {
                    return Err(Error::Usage(
                        "a relation must involve two applications".into(),
                    ))
                }
            };
            hooks_ran(r)?;
        }
        "remove-application" => {
            if a.pos.is_empty() {
                return Err(Error::Usage("no application specified".into()));
            }
            let mut c = open(models, a)?;
            for app in &a.pos {
                c.model.app(app)?;
                eprintln!("will remove application {app}");
                hooks_ran(c.remove_application(app))?;
            }
        }
        "add-unit" => {
            let [app] = a.pos.as_slice() else {
                return Err(Error::Usage("no application specified".into()));
            };
            let n = count(a.get("num-units").unwrap_or("1"))?;
            let mut c = open(models, a)?;
            deployed(&c, app)?;
            hooks_ran(c.add_units(app, n as usize).map(|_| ()))?;
        }
        "remove-unit" => {
            let [app] = a.pos.as_slice() else {
                return Err(Error::Usage("no application specified".into()));
            };
            if app.contains('/') {
                return Err(Error::Usage(
                    "k8s models only support --num-units: remove units by number, e.g. `juju remove-unit APP --num-units 1`".into(),
                ));
            }
            let n = count(a.get("num-units").ok_or_else(|| {
                Error::Usage("specify the number of units (> 0) to remove using --num-units".into())
            })?)?;
            let mut c = open(models, a)?;
            let have = deployed(&c, app)?;
            if n == 0 || n as usize > have {
                return Err(Error::Usage(format!(
                    "cannot remove {n} units: application {app:?} has {have}"
                )));
            }
            scale(&mut c, app, have - n as usize)?;
        }
        "scale-application" => {
            let [app, n] = a.pos.as_slice() else {
                return Err(Error::Usage("scale-application APP SCALE".into()));
            };
            let n = count(n)?;
            let mut c = open(models, a)?;
            deployed(&c, app)?;
            scale(&mut c, app, n as usize)?;
            write_out(out, &format!("{app} scale changed to {n}\n"))?;
        }
        "run" => return run_action(a, models, out),
        "exec" => return super::exec::exec(a, models, out),
        "ssh" => return super::exec::ssh(a, models, out),
        "show-unit" => {
            let c = open(models, a)?;
            let mut doc = Map::new();
            for u in &a.pos {
                let unit = super::exec::resolve_unit(&c, u)?;
                if let Value::Object(m) = docs::show_unit(&c.model, &unit)? {
                    doc.extend(m);
                }
            }
            if doc.is_empty() {
                return Err(Error::Usage("unit name is missing".into()));
            }
            print_doc(out, a, "yaml", &Value::Object(doc))?;
        }
        "secrets" | "list-secrets" => {
            let c = open(models, a)?;
            let stamp = model_time(&c);
            let mut doc = Map::new();
            for (id, s) in &c.model.secrets {
                if a.get("owner").is_some_and(|o| o != s.owner) {
                    continue;
                }
                let view = docs::SecretView {
                    reveal: a.has("reveal"),
                    ..Default::default()
                };
                doc.insert(id.clone(), docs::secret(s, view, &stamp)?);
            }
            print_doc(out, a, "yaml", &Value::Object(doc))?;
        }
        "show-secret" => {
            let [ident] = a.pos.as_slice() else {
                return Err(Error::Usage("secret URI or name is missing".into()));
            };
            let c = open(models, a)?;
            let s = c
                .model
                .secret_by_uri(ident)
                .or_else(|| {
                    c.model
                        .secrets
                        .values()
                        .find(|s| s.label.as_deref() == Some(ident.as_str()))
                })
                .ok_or_else(|| Error::NotFound(format!("secret {ident:?} not found")))?;
            let revision = a
                .get("revision")
                .map(|r| {
                    r.parse::<u64>()
                        .map_err(|_| Error::Usage(format!("invalid revision {r:?}")))
                })
                .transpose()?;
            let view = docs::SecretView {
                reveal: a.has("reveal"),
                revision,
                revisions: a.has("revisions"),
            };
            let mut doc = Map::new();
            doc.insert(s.id.clone(), docs::secret(s, view, &model_time(&c))?);
            print_doc(out, a, "yaml", &Value::Object(doc))?;
        }
        "debug-log" => {
            let c = open(models, a)?;
            let log = c.debug_log();
            let limit = a
                .get("limit")
                .or(a.get("lines"))
                .map(|n| {
                    n.parse::<usize>()
                        .map_err(|_| Error::Usage(format!("invalid limit {n:?}")))
                })
                .transpose()?
                .filter(|n| *n > 0);
            let lines: Vec<&str> = log.lines().collect();
            let from = limit.map_or(0, |n| lines.len().saturating_sub(n));
            for l in &lines[from..] {
                write_out(out, &format!("{l}\n"))?;
            }
        }
        other => {
            return Err(Error::Refused(format!(
                "juju: {other:?} is not a juju command. See \"juju --help\"."
            )))
        }
    }
    Ok(0)
}

fn count(s: &str) -> Result<u32, Error> {
    s.parse()
        .map_err(|_| Error::Usage(format!("invalid number of units {s:?}")))
}

/// The number of units of a deployed (not played) application.
fn deployed(c: &Controller, app: &str) -> Result<usize, Error> {
    let a = c.model.app(app)?;
    if a.is_played() {
        return Err(Error::Refused(format!(
            "application {app:?} is played by jujulocal and has no units to change"
        )));
    }
    Ok(a.units.len())
}

/// Adds or removes units (the highest-numbered go first, as on Kubernetes).
fn scale(c: &mut Controller, app: &str, n: usize) -> Result<(), Error> {
    c.mark_dying(app, n)?;
    loop {
        let units: Vec<String> = c.model.app(app)?.units.keys().cloned().collect();
        if units.len() == n {
            return Ok(());
        }
        if units.len() < n {
            hooks_ran(c.add_units(app, n - units.len()).map(|_| ()))?;
            continue;
        }
        let last = crate::controller::scaling::highest_unit(&units).unwrap_or_default();
        hooks_ran(c.remove_unit(&last))?;
        // A unit whose hook failed is still removed from the model by Juju in the end.
        if c.model.app(app)?.units.contains_key(&last) {
            return Err(Error::Refused(format!("unit {last} could not be removed")));
        }
    }
}

/// Reads `--config` values: `key=value`, or a YAML file (`APP: {key: value}` as Juju
/// writes it, or a plain map).
fn config_values(items: &[&str], app: &str) -> Result<Vec<(String, String)>, Error> {
    let mut out = vec![];
    for item in items {
        if item.contains('=') {
            out.extend(key_values([&item.to_string()])?);
            continue;
        }
        let text = std::fs::read_to_string(item).map_err(|source| Error::Input {
            what: item.to_string(),
            source,
        })?;
        let v: Value = serde_saphyr::from_str(&text).map_err(|source| Error::InputYaml {
            what: format!("config file {item}"),
            source: Box::new(source),
        })?;
        let map = match v.get(app) {
            Some(Value::Object(m)) => m.clone(),
            _ => v.as_object().cloned().unwrap_or_default(),
        };
        for (k, v) in map {
            out.push((k, scalar(&v)?));
        }
    }
    Ok(out)
}

/// A YAML scalar as the string Juju would be given on the command line.
pub fn scalar(v: &Value) -> Result<String, Error> {
    Ok(match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => String::new(),
        other => {
            return Err(Error::Usage(format!(
                "expected a string, number or boolean, got {other}"
            )))
        }
    })
}

/// Resolves the charm argument: a local directory, or a `.charm` file unpacked into
/// the model. Charmhub names are refused: JujuLocal has no store.
fn charm_dir(charm: &str, dir: &Path, app: Option<&str>) -> Result<PathBuf, Error> {
    if !(charm.starts_with('.') || charm.starts_with('/')) {
        return Err(Error::NotFound(format!(
            "charm or bundle {charm:?} not found: jujulocal deploys local charms only (a path starting with ./ or /)"
        )));
    }
    let path = PathBuf::from(charm);
    if path.is_dir() {
        return Ok(path);
    }
    if !path.is_file() {
        return Err(Error::NotFound(format!(
            "charm path {charm:?} does not exist"
        )));
    }
    let stem = app
        .map(str::to_string)
        .or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "charm".into());
    let dest = dir.join("charms").join(stem);
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir_all(&dest).map_err(Error::io(Area::Charm, &dest))?;
    let st = std::process::Command::new("unzip")
        .arg("-q")
        .arg(&path)
        .arg("-d")
        .arg(&dest)
        .status()
        .map_err(Error::os(Area::Charm, "running unzip"))?;
    if !st.success() {
        return Err(Error::invalid(
            Area::Charm,
            format!("cannot unpack {charm}: unzip exited with {st}"),
        ));
    }
    Ok(dest)
}

fn deploy(a: &Args, models: &Models) -> Result<(), Error> {
    let (charm, app) = match a.pos.as_slice() {
        [c] => (c, None),
        [c, app] => (c, Some(app.as_str())),
        [] => return Err(Error::Usage("no charm name specified".into())),
        _ => {
            return Err(Error::Usage(format!(
                "unrecognized args: {:?}",
                &a.pos[2..]
            )))
        }
    };
    let dir = models.current(a.get("model"))?;
    let mut c = Controller::open(&dir)?;
    if crate::controller::providers::known(charm) {
        eprintln!(
            "Deploying {:?} (JujuLocal stand-in for {charm})",
            app.unwrap_or(charm)
        );
        // The channel picks a Charmhub revision; a stand-in has just the one, and
        // `juju status` shows the channel it was asked for.
        c.deploy_provider(charm, app)?;
        let name = app.unwrap_or(charm);
        if let Some(ch) = a.get("channel") {
            if let Some(si) = c.model.app_mut(name)?.stand_in.as_mut() {
                si.channel = Some(ch.to_string());
            }
            c.save()?;
        }
        // `--config` sets a configurable stand-in's options, as `juju config` does.
        let sets = config_values(&a.all("config"), name)?;
        if !sets.is_empty() {
            c.configure_provider(name, &sets.into_iter().collect())?;
        }
        return Ok(());
    }
    if a.get("channel").is_some() {
        return Err(Error::Usage(format!(
            "--channel is for charms from Charmhub, not the local charm {charm:?}"
        )));
    }
    let charm_dir = charm_dir(charm, &dir, app)?;
    let meta = crate::meta::CharmMeta::load(&charm_dir)?;
    let name = app.unwrap_or(&meta.name).to_string();
    let config: BTreeMap<String, String> = config_values(&a.all("config"), &name)?
        .into_iter()
        .collect();
    let declared = resource_names(&charm_dir)?;
    let mut resources = BTreeMap::new();
    for (k, v) in key_values(
        a.all("resource")
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
            .iter(),
    )? {
        if !declared.contains(&k) {
            return Err(Error::Usage(format!(
                "invalid resource name {k:?}: not declared by the charm"
            )));
        }
        resources.insert(k, v);
    }
    let n = count(a.get("num-units").unwrap_or("1"))?;
    let pods = match models.pod_config()? {
        Some(cfg) => {
            c.set_pod_config(cfg);
            true
        }
        None => {
            if !meta.containers.is_empty() {
                eprintln!(
                    "jujulocal: no pods file ($JUJULOCAL_PODS or {}): units run without containers",
                    models.root.join("pods.yaml").display()
                );
            }
            false
        }
    };
    let mut st = CliState::load(&dir);
    st.trust.insert(name.clone(), a.has("trust"));
    st.resources.insert(name.clone(), resources);
    st.save(&dir)?;
    eprintln!("Deploying {name:?} from local charm {:?}", meta.name);
    hooks_ran(c.deploy(&charm_dir, Some(&name), n, &config, pods))
}

/// The resource names a charm's metadata declares.
fn resource_names(charm_dir: &Path) -> Result<Vec<String>, Error> {
    let path = charm_dir.join("metadata.yaml");
    let text = std::fs::read_to_string(&path).map_err(Error::io(Area::Charm, &path))?;
    let v: Value = serde_saphyr::from_str(&text).map_err(|source| Error::Yaml {
        area: Area::Charm,
        path: path.clone(),
        source: Box::new(source),
    })?;
    Ok(v["resources"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default())
}

fn config(a: &Args, models: &Models, out: &mut dyn Write) -> Result<(), Error> {
    let Some((app, rest)) = a.pos.split_first() else {
        return Err(Error::Usage("no application name specified".into()));
    };
    let dir = models.current(a.get("model"))?;
    let mut c = Controller::open(&dir)?;
    if c.model.app(app)?.is_played() {
        // A stand-in's own options (e.g. traefik-k8s's routing_mode), set only.
        if rest.is_empty() || rest.iter().any(|x| !x.contains('=')) {
            return Err(Error::Refused(format!(
                "application {app:?} is played by jujulocal: only a stand-in's options can be set (key=value)"
            )));
        }
        let sets = key_values(rest.iter())?;
        return c.configure_provider(app, &sets.into_iter().collect());
    }
    let application = c.model.app(app)?;

    let trust = CliState::load(&dir)
        .trust
        .get(app.as_str())
        .copied()
        .unwrap_or(false);
    let sets: Vec<&String> = rest.iter().filter(|x| x.contains('=')).collect();
    let gets: Vec<&String> = rest.iter().filter(|x| !x.contains('=')).collect();
    let reset: Vec<String> = a
        .all("reset")
        .iter()
        .flat_map(|r| r.split(','))
        .filter(|r| !r.is_empty())
        .map(String::from)
        .collect();
    if sets.is_empty() && reset.is_empty() && a.get("file").is_none() {
        let doc = docs::config(app, application, trust);
        return match gets.as_slice() {
            [] => print_doc(out, a, "yaml", &doc),
            [key] => {
                let v = doc["settings"]
                    .get(key.as_str())
                    .or_else(|| doc["application-config"].get(key.as_str()))
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "key {key:?} not found in {app:?} application config or charm settings"
                        ))
                    })?;
                let text = match v.get("value") {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                write_out(out, &format!("{text}\n"))
            }
            _ => Err(Error::Usage(
                "can only retrieve a single value, or all values".into(),
            )),
        };
    }
    if !gets.is_empty() {
        return Err(Error::Usage(
            "cannot get and set configuration at the same time".into(),
        ));
    }
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    if let Some(f) = a.get("file") {
        values.extend(config_values(&[f], app)?);
    }
    values.extend(key_values(sets)?);
    if let Some(k) = values.keys().find(|k| reset.contains(k)) {
        return Err(Error::Usage(format!(
            "cannot set and reset key {k:?} simultaneously"
        )));
    }
    hooks_ran(c.config(app, &values, &reset))
}

fn run_action(a: &Args, models: &Models, out: &mut dyn Write) -> Result<i32, Error> {
    let [unit, action, params @ ..] = a.pos.as_slice() else {
        return Err(Error::Usage("no unit specified".into()));
    };
    let mut c = open(models, a)?;
    let unit = super::exec::resolve_unit(&c, unit)?;
    let mut given: BTreeMap<String, String> = BTreeMap::new();
    if let Some(f) = a.get("params") {
        given.extend(config_values(&[f], "")?);
    }
    given.extend(key_values(params)?);
    let app = c.model.app(app_of(&unit))?;
    if !app.meta.actions.contains_key(action.as_str()) {
        return Err(Error::NotFound(format!(
            "action {action:?} not defined for unit {unit:?} (not found)"
        )));
    }
    let first_id = c.model.next_action_id;
    let (task, code) = match c.run_action(&unit, action, &given) {
        Ok(act) => {
            let code = i32::from(act.status != "completed");
            (docs::action_task(&act, 0), code)
        }
        Err(Error::HookFailed { reason, .. }) => {
            let reopened = open(models, a)?;
            let act = reopened
                .model
                .actions
                .iter()
                .find(|x| x.id == first_id)
                .cloned();
            let mut results = Map::new();
            results.insert("return-code".into(), json!(1));
            results.insert("stderr".into(), json!(reason));
            let log = act.as_ref().map(|x| x.log.clone()).unwrap_or_default();
            let msg = act.and_then(|x| x.message);
            (
                docs::task(&unit, first_id, "failed", msg.as_deref(), &results, &log),
                1,
            )
        }
        Err(e) => return Err(e),
    };
    eprintln!(
        "Running operation {first_id} with 1 task\n  - task {first_id} on unit-{}\n",
        unit.replace('/', "-")
    );
    match a.get("format") {
        Some(_) => print_doc(out, a, "yaml", &task)?,
        None => {
            let results = task[&unit]["results"].clone();
            let mut plain = results.as_object().cloned().unwrap_or_default();
            plain.remove("return-code");
            if !plain.is_empty() {
                print_doc(out, a, "yaml", &Value::Object(plain))?;
            }
        }
    }
    if code != 0 {
        eprintln!(
            "ERROR the following task failed:\n id {first_id:?} with return code {}\n\nuse 'juju show-task' to inspect the failure",
            task[&unit]["results"]["return-code"]
        );
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_take_pairs_and_app_keyed_files() {
        let dir = std::env::temp_dir().join(format!("jl-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.yaml");
        std::fs::write(
            &f,
            "synapse:\n  server_name: a.b\n  public_baseurl_port: 8080\n  enable: true\n",
        )
        .unwrap();
        let f = f.display().to_string();
        let v = config_values(&["x=1", f.as_str()], "synapse").unwrap();
        assert_eq!(v[0], ("x".into(), "1".into()));
        assert!(v.contains(&("server_name".into(), "a.b".into())));
        assert!(v.contains(&("public_baseurl_port".into(), "8080".into())));
        assert!(v.contains(&("enable".into(), "true".into())));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn store_charms_are_refused() {
        let e = charm_dir("postgresql-k8s", Path::new("/tmp"), None).unwrap_err();
        assert!(e.to_string().contains("local charms only"), "{e}");
    }
}
