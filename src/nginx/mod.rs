//! The `synapse-nginx` container: NGINX on 8080 in front of Synapse. Its static
//! configuration ships in the rock (`nginx_rock/etc/nginx`); the charm provides the
//! Pebble layer and the files of [`site`] (well-known answers, the admin API's
//! location), which it pushes only when they differ. A changed admin file reloads NGINX
//! (SIGHUP); nothing here ever touches Synapse.

pub mod routes;
pub mod site;

use std::collections::BTreeMap;

use pebble::{
    Check, CheckLevel, GoDuration, Layer, Override, PushOptions, Service, ServiceAction, Startup,
};

use crate::error::{pebble_err, CharmResult};
use crate::juju::hints::UnitHints;
use crate::status::Progress;
use crate::workload::{
    apply_layer_tracked, layer_in_plan, tracked_state, unreachable, Watched, Workload,
};
use site::Site;

pub const CONTAINER: &str = "synapse-nginx";
pub const LAYER_LABEL: &str = "synapse-nginx";
pub const SERVICE: &str = "nginx";
pub const READY_CHECK: &str = "nginx-ready";
pub const PORT: u16 = 8080;
pub const READY_URL: &str = "http://localhost:8080/health";

pub fn layer() -> Layer {
    let service = Service {
        override_: Override::Replace,
        summary: Some("NGINX, the web entry point of Synapse".into()),
        startup: Some(Startup::Enabled),
        command: Some("/usr/sbin/nginx -c /etc/nginx/nginx.conf".into()),
        on_check_failure: BTreeMap::from([(READY_CHECK.to_string(), ServiceAction::Restart)]),
        ..Service::default()
    };
    let ready = Check {
        override_: Override::Replace,
        level: Some(CheckLevel::Ready),
        period: Some(GoDuration::from_secs(10)),
        timeout: Some(GoDuration::from_secs(3)),
        threshold: Some(3),
        ..Check::http(READY_URL)
    };
    Layer {
        summary: Some("Synapse NGINX".into()),
        description: Some("NGINX in front of Synapse, managed by the Synapse charm".into()),
        services: BTreeMap::from([(SERVICE.to_string(), service)]),
        checks: BTreeMap::from([(READY_CHECK.to_string(), ready)]),
        log_targets: BTreeMap::new(),
    }
}

const WATCHED: Watched<'static> = Watched {
    service: SERVICE,
    ready_check: READY_CHECK,
    ready_url: READY_URL,
    what: "NGINX",
    container: CONTAINER,
    key: CONTAINER,
};

/// Pushes the site files and applies NGINX's layer where they differ, and reports
/// NGINX's state.
pub fn reconcile(w: &dyn Workload, site: &Site, hints: &mut UnitHints) -> CharmResult<Progress> {
    crate::error::unreachable_is_waiting(step(w, site, hints))
}

fn step(w: &dyn Workload, site: &Site, hints: &mut UnitHints) -> CharmResult<Progress> {
    let err = pebble_err(CONTAINER);
    let plan = match w.plan() {
        Ok(p) => p,
        Err(e) if e.is_connect() => return Ok(unreachable(CONTAINER)),
        Err(e) => return Err(err(e)),
    };
    // Without the layer, this Pebble is new (a new or restarted container): its files
    // are gone too. With it, the files are those last pushed unless the site changed.
    let layer_present = layer_in_plan(&plan, &layer());
    let hash = site.hash();
    let mut reload = false;
    if !layer_present || hints.nginx_site.as_deref() != Some(hash.as_str()) {
        // A changed .conf matters only to an NGINX started before this push.
        reload = push_site(w, site).map_err(&err)? && layer_present;
    }
    let watches = &mut hints.watches;
    let failed = |msg: &str| {
        tracing::error!("NGINX failed to start: {msg}");
        Progress::Blocked(
            "NGINX failed to start; see the synapse-nginx container's Pebble logs".into(),
        )
    };
    match apply_layer_tracked(w, &plan, LAYER_LABEL, &layer(), &[WATCHED], watches) {
        Ok(_) => {}
        Err(pebble::Error::Change { err: msg, .. }) => return Ok(failed(&msg)),
        Err(e) => return Err(err(e)),
    }
    if reload {
        reload_if_running(w).map_err(&err)?;
    }
    hints.nginx_site = Some(hash);
    match tracked_state(w, &[WATCHED], &mut hints.watches) {
        Err(pebble::Error::Change { err: msg, .. }) => Ok(failed(&msg)),
        other => other.map_err(&err),
    }
}

/// Pushes the files whose content differs; returns whether NGINX must reload (its
/// included configuration changed; the well-known files are read on every request).
fn push_site(w: &dyn Workload, site: &Site) -> pebble::Result<bool> {
    let opts = PushOptions {
        // Read by NGINX's workers (www-data); nothing secret in them.
        permissions: Some(0o644),
        make_dirs: true,
        ..Default::default()
    };
    let mut reload = false;
    for (path, content) in site.files() {
        if w.pull(path)?.as_deref() != Some(content.as_bytes()) {
            tracing::info!(path, "writing");
            w.push(path, content.as_bytes(), &opts)?;
            // The well-known answers are read on every request; the rest is configuration.
            reload |= !path.ends_with(".json");
        }
    }
    Ok(reload)
}

/// SIGHUP makes NGINX re-read its configuration without dropping connections; a
/// stopped NGINX reads it when it starts.
fn reload_if_running(w: &dyn Workload) -> pebble::Result<()> {
    if w.services()?
        .iter()
        .any(|s| s.name == SERVICE && s.is_running())
    {
        tracing::info!("NGINX's configuration changed: reloading");
        w.signal(&[SERVICE], "SIGHUP")?;
    }
    Ok(())
}
