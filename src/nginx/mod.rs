//! The `synapse-nginx` container: NGINX on 8080 in front of Synapse. Its configuration
//! ships in the rock (`nginx_rock/etc/nginx`); the charm provides the Pebble layer.

use std::collections::BTreeMap;

use pebble::{Check, CheckLevel, GoDuration, Layer, Override, Service, ServiceAction, Startup};

use crate::error::{pebble_err, CharmResult};
use crate::status::Progress;
use crate::workload::{
    apply_layer_tracked, tracked_state, unreachable, Baselines, Watched, Workload,
};

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
};

/// Applies NGINX's layer where it differs and reports NGINX's state.
pub fn reconcile(w: &dyn Workload, baselines: &mut Baselines) -> CharmResult<Progress> {
    crate::error::unreachable_is_waiting(step(w, baselines))
}

fn step(w: &dyn Workload, baselines: &mut Baselines) -> CharmResult<Progress> {
    let err = pebble_err(CONTAINER);
    let plan = match w.plan() {
        Ok(p) => p,
        Err(e) if e.is_connect() => return Ok(unreachable(CONTAINER)),
        Err(e) => return Err(err(e)),
    };
    let failed = |msg: &str| {
        tracing::error!("NGINX failed to start: {msg}");
        Progress::Blocked(
            "NGINX failed to start; see the synapse-nginx container's Pebble logs".into(),
        )
    };
    match apply_layer_tracked(w, &plan, LAYER_LABEL, &layer(), &WATCHED, baselines) {
        Ok(_) => {}
        Err(pebble::Error::Change { err: msg, .. }) => return Ok(failed(&msg)),
        Err(e) => return Err(err(e)),
    }
    match tracked_state(w, &WATCHED, baselines) {
        Err(pebble::Error::Change { err: msg, .. }) => Ok(failed(&msg)),
        other => other.map_err(&err),
    }
}
