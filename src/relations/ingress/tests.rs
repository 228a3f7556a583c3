//! The exposure relations through the whole reconcile, against the one in-memory Juju
//! model (JujuLocal's model and hook tools) and the in-memory Pebble: what the charm
//! publishes, and what the provider's URL does to Synapse.

use serde_json::json;

use super::*;
use crate::charm::reconcile::reconcile as charm_reconcile;
use crate::juju::{Databag, Event, RelationHook, Status, StatusKind};
use crate::testing::juju::{APP, MODEL_NAME, UNIT, UNIT_ADDRESS};
use crate::testing::{FakePod, Juju};

fn rid(endpoint: &str, id: u64) -> RelationId {
    RelationId {
        endpoint: endpoint.into(),
        id,
    }
}

fn ev(hook: RelationHook, rel: &RelationId, remote: &str) -> Event {
    Event::Relation {
        hook,
        relation: rel.clone(),
        remote_app: Some(remote.split('/').next().unwrap_or(remote).to_string()),
        remote_unit: (hook != RelationHook::Broken && remote.contains('/'))
            .then(|| remote.to_string()),
        departing_unit: None,
    }
}

struct World {
    j: Juju,
    pod: FakePod,
    hints: UnitHints,
}

impl World {
    fn new(config: serde_json::Value) -> Self {
        let mut w = Self {
            j: Juju::new().with_config(config),
            pod: FakePod::up(),
            hints: UnitHints::default(),
        };
        assert_eq!(w.run(Event::ConfigChanged), Status::active());
        w
    }

    fn run(&mut self, event: Event) -> Status {
        let (pod, hints) = (&self.pod, &mut self.hints);
        self.j
            .hook(UNIT, event, |ctx, tools| {
                charm_reconcile(ctx, tools, pod, hints)
            })
            .unwrap()
    }

    fn restarts(&self) -> u32 {
        *self.pod.synapse.restarts.borrow()
    }

    fn public_baseurl(&self) -> String {
        let files = self.pod.synapse.files.borrow();
        let text = String::from_utf8_lossy(&files["/data/homeserver.yaml"]).to_string();
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        v["public_baseurl"].as_str().unwrap().to_string()
    }
}

const TRAEFIK: &str = "traefik-k8s";

fn url(u: &str) -> String {
    json!({ "url": u }).to_string()
}

#[test]
fn the_request_and_every_address_are_published_as_traefik_reads_them() {
    let mut w = World::new(json!({"server_name": "example.com"}));
    let rel = rid(traefik::ENDPOINT, 5);
    w.j.relate(&rel, TRAEFIK, &["traefik-k8s/0"]);
    w.run(ev(RelationHook::Joined, &rel, "traefik-k8s/0"));
    let app = w.j.app_data(&rel, APP);
    assert_eq!(app["model"], format!("\"{MODEL_NAME}\""));
    assert_eq!(app["name"], "\"synapse\"");
    assert_eq!(app["port"], "8080");
    assert_eq!(app["strip-prefix"], "true");
    let unit = w.j.unit_data(&rel, UNIT);
    assert_eq!(
        unit["host"],
        format!("\"synapse-0.synapse-endpoints.{MODEL_NAME}.svc.cluster.local\"")
    );
    assert_eq!(unit["ip"], format!("\"{UNIT_ADDRESS}\""));
    // Not answered yet: Synapse keeps serving, the status says what is missing.
    assert_eq!(
        w.run(Event::UpdateStatus),
        Status::waiting("Waiting for the ingress integration to provide a URL")
    );
    assert_eq!(w.public_baseurl(), "https://example.com/");
}

#[test]
fn the_url_becomes_public_baseurl_with_one_restart_per_change_and_goes_on_removal() {
    let mut w = World::new(json!({"server_name": "example.com"}));
    let before = w.restarts();
    let rel = rid(traefik::ENDPOINT, 5);
    w.j.relate(&rel, TRAEFIK, &["traefik-k8s/0"]);
    w.j.set_app_data(
        &rel,
        TRAEFIK,
        &[("ingress", &url("http://chat-synapse.ingress.test/"))],
    );
    assert_eq!(
        w.run(ev(RelationHook::Changed, &rel, TRAEFIK)),
        Status::active()
    );
    assert_eq!(w.public_baseurl(), "http://chat-synapse.ingress.test/");
    assert_eq!(w.restarts(), before + 1, "one restart for the new URL");

    // Steady: other hooks neither re-read the relation nor restart.
    w.j.take_tool_names();
    assert_eq!(w.run(Event::UpdateStatus), Status::active());
    assert_eq!(w.j.take_tool_names(), vec!["config-get", "relation-get"]);
    w.run(ev(RelationHook::Changed, &rel, TRAEFIK));
    assert_eq!(w.restarts(), before + 1, "the same URL again: no restart");

    w.j.set_app_data(
        &rel,
        TRAEFIK,
        &[("ingress", &url("https://matrix.ingress.test"))],
    );
    w.run(ev(RelationHook::Changed, &rel, TRAEFIK));
    assert_eq!(w.public_baseurl(), "https://matrix.ingress.test/");
    assert_eq!(
        w.restarts(),
        before + 2,
        "exactly one restart per URL change"
    );

    w.run(ev(RelationHook::Broken, &rel, TRAEFIK));
    w.j.remove_relation(&rel);
    assert_eq!(
        w.public_baseurl(),
        "https://example.com/",
        "back to the default"
    );
    assert_eq!(w.restarts(), before + 3);
    w.run(Event::UpdateStatus);
    assert_eq!(w.restarts(), before + 3);
}

#[test]
fn the_operators_public_baseurl_wins_over_the_ingress_url() {
    let mut w = World::new(json!({
        "server_name": "example.com",
        "public_baseurl": "https://matrix.example.com"
    }));
    let before = w.restarts();
    let rel = rid(traefik::ENDPOINT, 5);
    w.j.relate(&rel, TRAEFIK, &["traefik-k8s/0"]);
    w.j.set_app_data(
        &rel,
        TRAEFIK,
        &[("ingress", &url("http://x.test/chat-synapse"))],
    );
    assert_eq!(
        w.run(ev(RelationHook::Changed, &rel, TRAEFIK)),
        Status::active(),
        "a path does not matter when the operator chose the URL"
    );
    assert_eq!(w.public_baseurl(), "https://matrix.example.com/");
    assert_eq!(w.restarts(), before);
}

#[test]
fn a_path_prefixed_url_serves_clients_and_says_federation_cannot_work() {
    let mut w = World::new(json!({"server_name": "example.com"}));
    let rel = rid(traefik::ENDPOINT, 5);
    w.j.relate(&rel, TRAEFIK, &["traefik-k8s/0"]);
    w.j.set_app_data(
        &rel,
        TRAEFIK,
        &[("ingress", &url("http://ingress.test/chat-synapse"))],
    );
    let status = w.run(ev(RelationHook::Changed, &rel, TRAEFIK));
    assert_eq!(status.kind, StatusKind::Active);
    assert!(
        status
            .message
            .contains("http://ingress.test/chat-synapse has a path")
            && status.message.contains("federation cannot"),
        "{status:?}"
    );
    assert_eq!(w.public_baseurl(), "http://ingress.test/chat-synapse/");
    // Remembered: update-status says the same.
    assert_eq!(w.run(Event::UpdateStatus), status);
}

#[test]
fn bad_provider_data_blocks_naming_the_relation_and_keeps_the_default() {
    let mut w = World::new(json!({"server_name": "example.com"}));
    let before = w.restarts();
    let rel = rid(traefik::ENDPOINT, 5);
    w.j.relate(&rel, TRAEFIK, &["traefik-k8s/0"]);
    for (raw, needle) in [
        (
            "{\"url\": \"ftp://x.test\"}",
            "is not an http:// or https:// URL",
        ),
        ("nonsense", "is not JSON"),
    ] {
        w.j.set_app_data(&rel, TRAEFIK, &[("ingress", raw)]);
        let status = w.run(ev(RelationHook::Changed, &rel, TRAEFIK));
        assert_eq!(status.kind, StatusKind::Blocked, "{raw}");
        assert!(
            status
                .message
                .starts_with("the ingress integration sent an invalid URL:")
                && status.message.contains(needle),
            "{status:?}"
        );
        assert_eq!(w.public_baseurl(), "https://example.com/");
        assert_eq!(w.restarts(), before);
    }
}

const NGINX: &str = "nginx-ingress-integrator";

#[test]
fn the_leader_publishes_the_whole_route_and_follows_the_configuration() {
    let mut w = World::new(json!({"server_name": "example.com"}));
    let rel = rid(nginx_route::ENDPOINT, 6);
    w.j.relate(&rel, NGINX, &["nginx-ingress-integrator/0"]);
    // A key left from an older charm (or the reference charm) is removed.
    w.j.set_app_data(&rel, APP, &[("limit-rps", "10")]);
    w.run(ev(RelationHook::Joined, &rel, "nginx-ingress-integrator/0"));
    let expected = |host: &str| {
        Databag::from([
            ("service-hostname".into(), host.into()),
            ("service-name".into(), APP.into()),
            ("service-port".into(), "8080".into()),
            ("service-namespace".into(), MODEL_NAME.into()),
            ("max-body-size".into(), "50".into()),
        ])
    };
    assert_eq!(w.j.app_data(&rel, APP), expected("example.com"));
    w.j.set_config("public_baseurl", json!("https://matrix.example.com/"));
    w.run(Event::ConfigChanged);
    assert_eq!(w.j.app_data(&rel, APP), expected("matrix.example.com"));
    // Nothing changed: no write.
    w.j.take_sets();
    w.run(Event::ConfigChanged);
    assert!(w.j.take_sets().is_empty());
}

#[test]
fn a_non_leader_publishes_its_address_but_not_the_request_or_the_route() {
    let mut j = Juju::new().with_config(json!({"server_name": "example.com"}));
    let other = j.add_unit();
    j.set_leader(Some(UNIT));
    let ingress = rid(traefik::ENDPOINT, 5);
    let route = rid(nginx_route::ENDPOINT, 6);
    j.relate(&ingress, TRAEFIK, &["traefik-k8s/0"]);
    j.relate(&route, NGINX, &["nginx-ingress-integrator/0"]);
    let pod = FakePod::up();
    let mut hints = UnitHints::default();
    j.hook(
        &other,
        ev(RelationHook::Joined, &ingress, "traefik-k8s/0"),
        |ctx, tools| charm_reconcile(ctx, tools, &pod, &mut hints),
    )
    .unwrap();
    assert!(j.unit_data(&ingress, &other).contains_key("host"));
    assert!(j.app_data(&ingress, APP).is_empty());
    j.hook(&other, Event::ConfigChanged, |ctx, tools| {
        charm_reconcile(ctx, tools, &pod, &mut hints)
    })
    .unwrap();
    assert!(j.app_data(&route, APP).is_empty());
}

#[test]
fn decide_is_pure() {
    let c = SynapseConfig::from_juju(json!({"server_name": "e.com"}).as_object().unwrap()).unwrap();
    assert_eq!(decide(&c, false, Some("garbage")), Exposure::none());
    let e = decide(&c, true, Some(r#"{"url": "http://h.test/"}"#));
    assert_eq!((e.url.as_deref(), e.note), (Some("http://h.test"), None));
}
