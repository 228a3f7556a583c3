//! The model commands of the `juju` front end: `add-model`, `destroy-model`,
//! `models`, `show-model` and `status` (which plays the update-status timer).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::args::{model_name, Args};
use super::models::{CliState, Models};
use super::{hooks_ran, json as docs, print_doc, write_out};
use crate::error::Area;
use crate::model::app_of;
use crate::{Controller, Error};

/// When the model was last written: JujuLocal keeps no creation times for secrets.
pub(super) fn model_time(c: &Controller) -> String {
    let t = std::fs::metadata(crate::model::Model::path(&c.home))
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::now());
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    iso(secs)
}

fn iso(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(super) fn add_model(a: &Args, models: &Models) -> Result<(), Error> {
    let Some(name) = a.pos.first() else {
        return Err(Error::Usage("model name is required".into()));
    };
    let name = model_name(name);
    let dir = models.dir(name);
    if crate::model::Model::path(&dir).exists() {
        return Err(Error::Refused(format!(
            "failed to create new model: model {name:?} for admin already exists"
        )));
    }
    Controller::bootstrap(&dir, name)?;
    if !a.has("no-switch") {
        models.set_current(name)?;
    }
    eprintln!("Added '{name}' model on jujulocal/local with credential 'local' for user 'admin'");
    Ok(())
}

pub(super) fn destroy_model(a: &Args, models: &Models) -> Result<(), Error> {
    let [name] = a.pos.as_slice() else {
        return Err(Error::Usage("no model specified".into()));
    };
    let dir = models.current(Some(name))?;
    let mut c = Controller::open(&dir)?;
    c.stop_pods();
    c.stop_providers();
    eprintln!("Destroying model {}", model_name(name));
    if dir == models.root {
        // A model bootstrapped by `jujulocal` in the root: forget it, keep the root.
        for f in ["model.json", "runtime.json", "juju-cli.json"] {
            let p = dir.join(f);
            if p.exists() {
                std::fs::remove_file(&p).map_err(Error::io(Area::Model, &p))?;
            }
        }
    } else {
        std::fs::remove_dir_all(&dir).map_err(Error::io(Area::Model, &dir))?;
    }
    if models.current_name().as_deref() == Some(model_name(name)) {
        let p = models.root.join("current-model");
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

fn model_info(m: &crate::model::Model) -> Value {
    json!({
        "name": format!("admin/{}", m.name), "short-name": m.name, "model-uuid": m.uuid,
        "model-type": "caas", "controller-uuid": "00000000-0000-4000-8000-00000000a11a",
        "controller-name": "jujulocal", "is-controller": false, "owner": "admin",
        "cloud": "jujulocal", "region": "local", "type": "kubernetes", "life": "alive",
        "status": {"current": "available"}, "agent-version": crate::controller::JUJU_VERSION,
    })
}

pub(super) fn list_models(a: &Args, models: &Models, out: &mut dyn Write) -> Result<(), Error> {
    let list = models.list();
    let current = models.current_name();
    if a.get("format").is_none() {
        let mut s = String::from(
            "Controller: jujulocal\n\nModel       Cloud/Region      Type        Status     Units\n",
        );
        for (m, _) in &list {
            let star = if current.as_deref() == Some(m.name.as_str()) {
                "*"
            } else {
                ""
            };
            let units: usize = m.applications.values().map(|a| a.units.len()).sum();
            s.push_str(&format!(
                "{:<11} jujulocal/local   kubernetes  available  {units}\n",
                format!("{}{star}", m.name)
            ));
        }
        return write_out(out, &s);
    }
    let mut doc = json!({"models": list.iter().map(|(m, _)| model_info(m)).collect::<Vec<_>>()});
    if let Some(c) = current {
        doc["current-model"] = json!(c);
    }
    print_doc(out, a, "yaml", &doc)
}

pub(super) fn show_model(a: &Args, models: &Models, out: &mut dyn Write) -> Result<(), Error> {
    let dir = models.current(a.pos.first().map(String::as_str).or(a.get("model")))?;
    let m = crate::model::Model::load(&dir)?;
    let mut doc = Map::new();
    doc.insert(m.name.clone(), model_info(&m));
    print_doc(out, a, "yaml", &Value::Object(doc))
}

/// Without a unit agent running between commands, `status` plays its timer: when the
/// update-status interval (`$JUJULOCAL_UPDATE_STATUS_INTERVAL`, default `10s`; `0`
/// turns it off) has passed since the last one, update-status fires on every unit.
pub(super) fn status(a: &Args, models: &Models, out: &mut dyn Write) -> Result<(), Error> {
    let dir = models.current(a.get("model"))?;
    let interval = match std::env::var("JUJULOCAL_UPDATE_STATUS_INTERVAL") {
        Ok(s) if s == "0" => None,
        Ok(s) => Some(super::args::duration_secs(&s)?),
        Err(_) => Some(10.0),
    };
    let mut c = Controller::open(&dir)?;
    if let Some(interval) = interval {
        let mut st = CliState::load(&dir);
        let now = now_secs();
        let due = st
            .last_update_status
            .is_none_or(|t| now.saturating_sub(t) as f64 >= interval);
        if due && !c.model.applications.is_empty() {
            st.last_update_status = Some(now);
            st.save(&dir)?;
            hooks_ran(c.update_status())?;
        }
    }
    let mut doc = docs::status(&c.model);
    if !a.pos.is_empty() {
        if let Some(Value::Object(apps)) = doc.get_mut("applications") {
            apps.retain(|name, _| a.pos.iter().any(|p| p == name || app_of(p) == name));
        }
    }
    match a.get("format").unwrap_or("tabular") {
        "tabular" | "short" | "line" | "oneline" | "summary" => {
            write_out(out, &crate::status::table(&c.model))
        }
        _ => print_doc(out, a, "yaml", &doc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_740_355_397), "2025-02-24T00:03:17Z");
    }
}
