//! The `redis` integration (requirer of redis-k8s's `redis` interface): the Redis that
//! Synapse's processes use to talk to each other once the application runs on more
//! than one unit.
//!
//! The provider publishes `hostname` and `port` in its unit databag; the first remote
//! unit's databag is the answer (interfaces §7). Synapse writes nothing back.
//! [`parse`] is pure; [`read`] finds the relation and reads that databag once.

use crate::error::CharmResult;
use crate::juju::{Databag, Event, HookTools, RelationHook};

pub const ENDPOINT: &str = "redis";

/// Where Redis listens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RedisInfo {
    pub host: String,
    pub port: u16,
}

/// The `redis` relation as one dispatch sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Redis {
    /// No relation.
    Absent,
    /// Related, but the provider has not published its address yet.
    Pending,
    /// The provider's data cannot be used (why, naming the key).
    Invalid(String),
    Ready(RedisInfo),
}

/// The provider's unit databag as a typed value (pure).
pub fn parse(bag: &Databag) -> Redis {
    let Some(host) = bag
        .get("hostname")
        .map(|h| h.trim())
        .filter(|h| !h.is_empty())
    else {
        return Redis::Pending;
    };
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == '@')
    {
        return Redis::Invalid(format!("`hostname` {host:?} is not a host name"));
    }
    let port = match bag.get("port").map(|p| p.trim()) {
        None | Some("") => return Redis::Pending,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Redis::Invalid(format!("`port` {p:?} is not a TCP port")),
        },
    };
    Redis::Ready(RedisInfo {
        host: host.to_string(),
        port,
    })
}

/// Finds the relation and reads the first remote unit's databag. A relation being
/// broken in this dispatch counts as gone.
pub fn read(event: &Event, tools: &dyn HookTools) -> CharmResult<Redis> {
    let broken = |id: &crate::juju::RelationId| matches!(event, Event::Relation { hook: RelationHook::Broken, relation, .. } if relation == id);
    let Some(rel) = tools
        .relation_ids(ENDPOINT)?
        .into_iter()
        .find(|r| !broken(r))
    else {
        return Ok(Redis::Absent);
    };
    let mut units = tools.relation_list(&rel)?;
    units.sort();
    let Some(unit) = units.first() else {
        return Ok(Redis::Pending);
    };
    Ok(parse(&tools.relation_get(&rel, unit, false)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(pairs: &[(&str, &str)]) -> Databag {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn provider_data() {
        assert_eq!(
            parse(&bag(&[
                ("hostname", "redis-k8s-0.redis-k8s-endpoints"),
                ("port", "6379")
            ])),
            Redis::Ready(RedisInfo {
                host: "redis-k8s-0.redis-k8s-endpoints".into(),
                port: 6379
            })
        );
        assert_eq!(parse(&bag(&[])), Redis::Pending);
        assert_eq!(parse(&bag(&[("hostname", "h")])), Redis::Pending);
        assert!(matches!(
            parse(&bag(&[("hostname", "h"), ("port", "70000")])),
            Redis::Invalid(m) if m.contains("`port`")
        ));
        assert!(matches!(
            parse(&bag(&[("hostname", "redis://h"), ("port", "1")])),
            Redis::Invalid(m) if m.contains("`hostname`")
        ));
    }
}
