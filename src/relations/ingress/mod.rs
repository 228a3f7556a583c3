//! Reachable from outside: the `ingress` relation (traefik-k8s, [`traefik`]) and the
//! `nginx-route` relation (nginx-ingress-integrator, [`nginx_route`]).
//!
//! - `ingress`: the leader asks for a route to NGINX on 8080, every unit publishes its
//!   address; the URL the provider answers with becomes the default `public_baseurl`
//!   (the option, when set, wins). A URL with a path (`http://host/model-app`) still
//!   serves clients, but federation needs `/_matrix` at the root of the host: the
//!   status says so.
//! - `nginx-route`: the leader publishes the whole route (host name from
//!   `public_baseurl`/`server_name`, the Kubernetes service, the upload limit).
//!
//! The relation ids and the provider's URL are remembered in the hints file and read
//! again only on the events that can change them ([`Work`]).

pub mod nginx_route;
pub mod traefik;

#[cfg(test)]
mod tests;

use crate::error::CharmResult;
use crate::juju::hints::{IngressHint, UnitHints};
use crate::juju::{HookContext, HookTools, RelationId};
use crate::relations::{publish_value, Leaving};
use crate::status::Progress;
use crate::synapse::config::SynapseConfig;

/// The work an event calls for (see [`crate::charm::work`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Read the `ingress` relation again (it may have appeared, gone or answered).
    pub ingress_lookup: bool,
    /// Publish the request (leader) and this unit's address.
    pub ingress_publish: bool,
    /// Look the `nginx-route` relation up again.
    pub route_lookup: bool,
    /// Leader: publish the route (it follows the configuration).
    pub route_publish: bool,
}

impl Work {
    pub fn everything() -> Self {
        Self {
            ingress_lookup: true,
            ingress_publish: true,
            route_lookup: true,
            route_publish: true,
        }
    }
}

/// What the exposure concern decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// The ingress URL to use as the default `public_baseurl`.
    pub url: Option<String>,
    pub progress: Progress,
    /// Shown in an active status: what does not work with this URL.
    pub note: Option<String>,
}

impl Exposure {
    fn none() -> Self {
        Self {
            url: None,
            progress: Progress::Ready,
            note: None,
        }
    }
}

/// What the `ingress` relation means for Synapse (pure): `related` says whether there is
/// one, `raw` is the provider's `ingress` value.
pub fn decide(config: &SynapseConfig, related: bool, raw: Option<&str>) -> Exposure {
    if !related {
        return Exposure::none();
    }
    match traefik::provided(raw) {
        traefik::Provided::Pending => Exposure {
            url: None,
            progress: Progress::Waiting(
                "Waiting for the ingress integration to provide a URL".into(),
            ),
            note: None,
        },
        traefik::Provided::Invalid(why) => Exposure {
            url: None,
            progress: Progress::Blocked(format!(
                "the ingress integration sent an invalid URL: {why}"
            )),
            note: None,
        },
        traefik::Provided::Ready(url) => {
            let note = (config.public_baseurl.is_none() && url.path_prefixed()).then(|| {
                format!(
                    "ingress URL {} has a path: clients work, federation cannot (Matrix needs /_matrix at the root of the host); use subdomain routing or set public_baseurl",
                    url.url
                )
            });
            Exposure {
                url: Some(url.url),
                progress: Progress::Ready,
                note,
            }
        }
    }
}

/// Publishes what the events call for and decides what the ingress URL means. Every
/// unit runs it (each publishes its own address), before the main-unit check.
pub fn reconcile(
    ctx: &HookContext,
    tools: &dyn HookTools,
    work: &Work,
    config: &SynapseConfig,
    hints: &mut UnitHints,
) -> CharmResult<Exposure> {
    let leaving = Leaving::of(&ctx.event);
    if work.ingress_lookup || hints.ingress.is_none() {
        let relation = live_relation(tools, traefik::ENDPOINT, &leaving)?;
        let answer = match &relation {
            Some(r) => provider_url(tools, r)?,
            None => None,
        };
        hints.ingress = Some(IngressHint {
            relation: relation.map(|r| r.to_string()).unwrap_or_default(),
            answer,
        });
    }
    let hint = hints.ingress.clone().unwrap_or_default();
    let relation = RelationId::parse(&hint.relation);
    if let Some(rel) = relation.as_ref().filter(|_| work.ingress_publish) {
        publish_ingress(ctx, tools, rel)?;
    }
    publish_route(ctx, tools, work, config, hints, &leaving)?;
    Ok(decide(config, relation.is_some(), hint.answer.as_deref()))
}

/// The first relation of `endpoint` that is not being broken.
fn live_relation(
    tools: &dyn HookTools,
    endpoint: &str,
    leaving: &Leaving,
) -> CharmResult<Option<RelationId>> {
    Ok(tools
        .relation_ids(endpoint)?
        .into_iter()
        .find(|r| Some(r) != leaving.broken))
}

/// The provider's raw `ingress` value, if it has written one.
fn provider_url(tools: &dyn HookTools, rel: &RelationId) -> CharmResult<Option<String>> {
    let Some(remote) = tools.relation_remote_app(rel)? else {
        return Ok(None);
    };
    let bag = tools.relation_get(rel, &remote, true)?;
    Ok(bag.get(traefik::URL_KEY).cloned())
}

/// This unit's address; on the leader also the request.
fn publish_ingress(ctx: &HookContext, tools: &dyn HookTools, rel: &RelationId) -> CharmResult<()> {
    let own = tools.relation_get(rel, &ctx.unit_name, false)?;
    let address = traefik::UnitAddress {
        host: traefik::unit_fqdn(&ctx.unit_name, &ctx.app_name, &ctx.model_name),
        ip: tools.network_get(traefik::ENDPOINT)?.bind_address,
    };
    publish_value(tools, rel, false, &own, &address)?;
    if tools.is_leader()? {
        let own = tools.relation_get(rel, &ctx.app_name, true)?;
        let request = traefik::request(&ctx.model_name, &ctx.app_name);
        if publish_value(tools, rel, true, &own, &request)? {
            tracing::info!(
                "asked the ingress integration for a route to port {}",
                request.port
            );
        }
    }
    Ok(())
}

/// Leader: the whole route, when the events call for it.
fn publish_route(
    ctx: &HookContext,
    tools: &dyn HookTools,
    work: &Work,
    config: &SynapseConfig,
    hints: &mut UnitHints,
    leaving: &Leaving,
) -> CharmResult<()> {
    if work.route_lookup || hints.nginx_route_relation.is_none() {
        let relation = live_relation(tools, nginx_route::ENDPOINT, leaving)?;
        hints.nginx_route_relation = Some(relation.map(|r| r.to_string()).unwrap_or_default());
    }
    let Some(rel) = hints
        .nginx_route_relation
        .as_deref()
        .and_then(RelationId::parse)
    else {
        return Ok(());
    };
    if !(work.route_publish && tools.is_leader()?) {
        return Ok(());
    }
    let own = tools.relation_get(&rel, &ctx.app_name, true)?;
    let route = nginx_route::route(config, &ctx.app_name, &ctx.model_name);
    if publish_value(tools, &rel, true, &own, &route)? {
        tracing::info!(hostname = %route.service_hostname, "published the nginx route");
    }
    Ok(())
}
