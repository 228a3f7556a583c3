//! The peer relation (`synapse-peers`) and the election of the unit that runs Synapse.
//!
//! The leader publishes, in the peer application databag, the URI of the keys secret
//! and the name of the main unit. Synapse main keeps its data on the unit's own volume,
//! so exactly one unit (the "main" unit, chosen once by the leader) runs it; a
//! leadership change does not move it while the main unit is alive. The other units
//! run Synapse workers ([`crate::topology`]).

use crate::error::CharmResult;
use crate::juju::{Databag, HookContext, HookTools, RelationId, Status, ToolErrorKind};

pub const ENDPOINT: &str = "synapse-peers";
/// Peer application databag key holding the URI of the keys secret.
pub const KEYS_SECRET_KEY: &str = "keys-secret-id";
/// Peer application databag key naming the unit that runs Synapse.
pub const MAIN_UNIT_KEY: &str = "main-unit";
/// The same, as Canonical's Python charm names it: read while ours is absent, so a
/// live `juju refresh --switch` keeps Synapse on the unit that ran it.
pub const REFERENCE_MAIN_UNIT_KEY: &str = "main_unit_id";

/// What the peer relation tells this unit (read once per dispatch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    pub relation: Option<RelationId>,
    pub app_data: Databag,
}

impl Peers {
    /// Reads the peer application databag. `known` is the peer relation id remembered
    /// from an earlier dispatch: it saves the `relation-ids` call while it is valid.
    pub fn read(tools: &dyn HookTools, app: &str, known: Option<&RelationId>) -> CharmResult<Self> {
        if let Some(rel) = known {
            match tools.relation_get(rel, app, true) {
                Ok(app_data) => {
                    return Ok(Self {
                        relation: Some(rel.clone()),
                        app_data,
                    })
                }
                Err(e) if e.kind == ToolErrorKind::RelationNotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        let relation = tools.relation_ids(ENDPOINT)?.into_iter().next();
        let app_data = match &relation {
            Some(rel) => tools.relation_get(rel, app, true)?,
            None => Databag::new(),
        };
        Ok(Self { relation, app_data })
    }

    /// The URI of the keys secret, once the leader has shared it.
    pub fn keys_secret(&self) -> Option<&str> {
        self.app_data.get(KEYS_SECRET_KEY).map(String::as_str)
    }

    /// The unit that runs Synapse, once the leader has chosen it.
    pub fn main_unit(&self) -> Option<&str> {
        self.app_data
            .get(MAIN_UNIT_KEY)
            .or_else(|| self.app_data.get(REFERENCE_MAIN_UNIT_KEY))
            .map(String::as_str)
    }

    /// Leader only: publishes keys in the peer application databag where they differ.
    pub fn publish(&self, tools: &dyn HookTools, desired: &Databag) -> CharmResult<()> {
        if let Some(rel) = &self.relation {
            crate::relations::publish(tools, rel, true, &self.app_data, desired)?;
        }
        Ok(())
    }
}

/// This unit's part in running Synapse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// This unit runs Synapse main.
    Main,
    /// Another unit runs Synapse main; this one runs a worker (see [`crate::topology`]).
    Idle { main: String },
    /// The leader has not chosen yet.
    Undecided,
}

impl Role {
    /// The unit running Synapse main, once chosen.
    pub fn main_unit(&self, me: &str) -> Option<String> {
        match self {
            Role::Main => Some(me.to_string()),
            Role::Idle { main } => Some(main.clone()),
            Role::Undecided => None,
        }
    }

    /// The status of a unit that cannot run anything yet.
    pub fn status(&self) -> Option<Status> {
        match self {
            Role::Undecided => Some(Status::waiting(
                "Waiting for the leader to choose the unit that runs Synapse",
            )),
            _ => None,
        }
    }
}

/// The election's outcome: this unit's role, and whether it claims the main role
/// (the leader publishes itself as main unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Election {
    pub role: Role,
    pub claim: bool,
}

/// Decides the role (pure). `leader` and `main_alive` are only consulted where the
/// answer depends on them; the shell asks for them in that order and no further.
pub fn elect(unit: &str, main: Option<&str>, leader: bool, main_alive: bool) -> Election {
    let decided = |role| Election { role, claim: false };
    match main {
        Some(m) if m == unit => decided(Role::Main),
        Some(m) if !leader || main_alive => decided(Role::Idle {
            main: m.to_string(),
        }),
        // The leader reassigns only if the main unit is gone.
        Some(_) | None if leader => Election {
            role: Role::Main,
            claim: true,
        },
        _ => decided(Role::Undecided),
    }
}

/// Runs the election for this unit: reads leadership and the peer units only when the
/// peer data does not already decide, and publishes a claim.
pub fn role(ctx: &HookContext, tools: &dyn HookTools, peers: &Peers) -> CharmResult<Role> {
    let main = peers.main_unit();
    if main == Some(ctx.unit_name.as_str()) {
        return Ok(Role::Main);
    }
    let leader = tools.is_leader()?;
    let main_alive = match (leader, main, &peers.relation) {
        (true, Some(m), Some(rel)) => tools.relation_list(rel)?.iter().any(|u| u == m),
        _ => false,
    };
    let election = elect(&ctx.unit_name, main, leader, main_alive);
    if election.claim {
        if let Some(old) = main {
            tracing::warn!(%old, "the main unit is gone: this unit takes over");
        }
        peers.publish(
            tools,
            &Databag::from([(MAIN_UNIT_KEY.to_string(), ctx.unit_name.clone())]),
        )?;
    }
    Ok(election.role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn election() {
        let main = |role| Election { role, claim: false };
        assert_eq!(elect("s/0", Some("s/0"), false, false), main(Role::Main));
        assert_eq!(
            elect("s/0", Some("s/1"), false, false),
            main(Role::Idle { main: "s/1".into() })
        );
        assert_eq!(
            elect("s/0", Some("s/1"), true, true),
            main(Role::Idle { main: "s/1".into() })
        );
        let claim = Election {
            role: Role::Main,
            claim: true,
        };
        assert_eq!(elect("s/0", Some("s/1"), true, false), claim);
        assert_eq!(elect("s/0", None, true, false), claim);
        assert_eq!(elect("s/0", None, false, false), main(Role::Undecided));
    }
}
