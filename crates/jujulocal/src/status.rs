//! `jujulocal status`: a table like `juju status`.

use crate::model::Model;

pub fn table(model: &Model) -> String {
    let mut out = format!(
        "Model  Controller  Cloud/Region  Version\n{:<6} jujulocal   local         {}\n\n",
        model.name,
        crate::controller::JUJU_VERSION
    );
    out.push_str(&format!(
        "{:<16} {:<10} {:<8} {:<8} {}\n",
        "App", "Version", "Status", "Scale", "Message"
    ));
    for (name, app) in &model.applications {
        let st = app.status.clone().or_else(|| {
            // Like Juju: without an application status, show the most severe unit status.
            let rank = |s: &str| match s {
                "error" => 0,
                "blocked" => 1,
                "maintenance" => 2,
                "waiting" => 3,
                "active" => 4,
                _ => 5,
            };
            app.units
                .values()
                .filter_map(|u| u.status.clone())
                .min_by_key(|s| rank(&s.status))
        });
        let version = app
            .units
            .values()
            .find(|u| !u.workload_version.is_empty())
            .map(|u| u.workload_version.clone())
            .unwrap_or_default();
        let (s, m) = st
            .map(|s| (s.status, s.message))
            .unwrap_or(("unknown".into(), String::new()));
        let played = match (&app.stand_in, app.is_played()) {
            (Some(_), _) => " (stand-in)",
            (None, true) => " (played)",
            (None, false) => "",
        };
        out.push_str(&format!(
            "{:<16} {:<10} {:<8} {:<8} {}{}\n",
            name,
            version,
            s,
            app.units.len(),
            m,
            played
        ));
    }
    out.push_str(&format!(
        "\n{:<18} {:<12} {:<6} {:<14} {}\n",
        "Unit", "Workload", "Agent", "Ports", "Message"
    ));
    for (name, app) in &model.applications {
        if app.is_played() && app.stand_in.is_none() {
            continue;
        }
        for (u, unit) in &app.units {
            let leader = if app.leader.as_deref() == Some(u) {
                "*"
            } else {
                ""
            };
            let (mut s, mut m) = unit
                .status
                .clone()
                .map(|s| (s.status, s.message))
                .unwrap_or(("unknown".into(), String::new()));
            let agent = if let Some(h) = &unit.error {
                s = "error".into();
                m = format!("hook failed: {h:?}");
                "idle"
            } else {
                "idle"
            };
            let _ = name;
            out.push_str(&format!(
                "{:<18} {:<12} {:<6} {:<14} {}\n",
                format!("{u}{leader}"),
                s,
                agent,
                unit.opened_ports.join(","),
                m
            ));
        }
    }
    if !model.relations.is_empty() {
        out.push_str(&format!(
            "\n{:<34} {:<34} {:<20} {}\n",
            "Integration provider", "Requirer", "Interface", "Type"
        ));
        for r in &model.relations {
            let ends: Vec<String> = r
                .ends
                .iter()
                .map(|e| format!("{}:{}", e.app, e.endpoint))
                .collect();
            let (a, b) = match ends.as_slice() {
                [one] => (one.clone(), one.clone()),
                [a, b] => (a.clone(), b.clone()),
                _ => continue,
            };
            let kind = if r.is_peer() { "peer" } else { "regular" };
            out.push_str(&format!(
                "{:<34} {:<34} {:<20} {} (id {})\n",
                a, b, r.interface, kind, r.id
            ));
        }
    }
    out
}
