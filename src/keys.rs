//! The lifecycle of Synapse's keys (signing key, registration and macaroon secrets):
//! the leader creates them once in an application secret and shares its URI in the
//! peer relation; every unit reads them from there. The keys themselves (generation,
//! format) are Synapse's domain: [`crate::synapse::keys`].

use crate::error::CharmResult;
use crate::juju::tools::{SecretOwner, SecretRead};
use crate::juju::{Databag, HookContext, HookTools, ToolErrorKind};
use crate::peers::{Peers, KEYS_SECRET_KEY};
use crate::switch::Origin;
use crate::synapse::keys::{self, SynapseKeys};

/// Where this unit finds the keys (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source<'a> {
    /// The leader owns the secret and reads it by label (creating it if missing).
    Owned,
    /// Another unit reads the secret the leader shared.
    Shared(&'a str),
    /// The leader has not shared them yet.
    NotYet,
}

pub fn source(leader: bool, peers: &Peers) -> Source<'_> {
    match (leader, peers.keys_secret()) {
        (true, _) => Source::Owned,
        (false, Some(uri)) => Source::Shared(uri),
        (false, None) => Source::NotYet,
    }
}

/// The peer databag entry that shares the secret's URI.
fn shared(id: &str) -> Databag {
    Databag::from([(KEYS_SECRET_KEY.to_string(), crate::util::secret_uri(id))])
}

/// Reads the keys from `source`. The leader creates them when they do not exist yet
/// (adopting a previous charm's signing key found through `origin`; with no origin it
/// creates nothing), and makes sure the other units can find them.
pub fn read(
    tools: &dyn HookTools,
    peers: &Peers,
    source: &Source,
    origin: Option<&Origin>,
) -> CharmResult<Option<SynapseKeys>> {
    match source {
        Source::NotYet => Ok(None),
        Source::Shared(uri) => {
            let content = tools.secret_get(Some(uri), None, SecretRead::Pinned)?;
            Ok(Some(SynapseKeys::from_content(&content)?))
        }
        Source::Owned => match tools.secret_get(None, Some(keys::SECRET_LABEL), SecretRead::Pinned)
        {
            Ok(content) => {
                let keys = SynapseKeys::from_content(&content)?;
                // Leadership may have come before the peer relation existed: make sure
                // the other units can find the secret.
                if peers.relation.is_some() && peers.keys_secret().is_none() {
                    if let Some(info) = tools.secret_info_by_label(keys::SECRET_LABEL)? {
                        peers.publish(tools, &shared(&info.id))?;
                    }
                }
                Ok(Some(keys))
            }
            Err(e) if e.kind == ToolErrorKind::NotFound => {
                let Some(origin) = origin else {
                    return Ok(None);
                };
                let keys = crate::switch::keys_to_store(tools, peers, origin)?;
                let uri = tools.secret_add(
                    &keys.to_content(),
                    keys::SECRET_LABEL,
                    "Synapse signing key and shared secrets",
                    SecretOwner::Application,
                )?;
                tracing::info!("stored Synapse's keys in {uri}");
                peers.publish(tools, &shared(&uri))?;
                Ok(Some(keys))
            }
            Err(e) => Err(e.into()),
        },
    }
}

/// Synapse's keys as this unit can see them now (`None` while the leader has not made
/// them: an action never creates them, only a hook that sees the data volume does).
pub fn current(ctx: &HookContext, tools: &dyn HookTools) -> CharmResult<Option<SynapseKeys>> {
    let peers = Peers::read(tools, &ctx.app_name, None)?;
    let leader = tools.is_leader()?;
    read(tools, &peers, &source(leader, &peers), None)
}
