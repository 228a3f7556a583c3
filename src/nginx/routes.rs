//! The one routing table of a scaled-out application (pure): which requests NGINX
//! sends to the unit's own Synapse worker, everything else going to Synapse main.
//!
//! NGINX proxies through `$synapse_upstream`, a `map` on the request path in
//! nginx.conf whose entries are [`routes_map`]; its default is `synapse` (the local
//! Synapse on 8008). On one unit, and on the main unit, the file is a comment: all to
//! the local Synapse, as before scaling. On a worker unit each regex below maps to
//! `synapse` (the local worker) and a final catch-all to `synapse_main`, the upstream
//! [`upstreams`] declares at the main unit's stable name.
//!
//! Media goes to the main unit: its media store is on the main unit's volume, so any
//! unit serves media without S3 (the media repository runs on main only).

/// The requests a generic worker serves, as NGINX regexes on the path (first match
/// wins; all anchored). Grouped: sync, client reads, login and registration, inbound
/// federation.
pub const WORKER_ROUTES: &[&str] = &[
    // Sync and events streams.
    r"^/_matrix/client/(api/v1|r0|v3)/sync$",
    r"^/_matrix/client/(api/v1|r0|v3)/events$",
    r"^/_matrix/client/(api/v1|r0|v3)/initialSync$",
    r"^/_matrix/client/(api/v1|r0|v3)/rooms/[^/]+/initialSync$",
    // Client reads.
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/(messages|context|members|joined_members|state|event|relations|threads)",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/publicRooms$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/account/(3pid|whoami)$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/devices$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/keys/(query|changes|claim)$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/room_keys/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/profile/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/voip/turnServer$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/search$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/user_directory/search$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/capabilities$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/notifications$",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/(send|state|redact|receipt|read_markers)/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/(join|knock)/",
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^/]+/(join|invite|leave|ban|unban|kick)$",
    // Login and registration.
    r"^/_matrix/client/(api/v1|r0|v3|unstable)/login$",
    r"^/_matrix/client/(r0|v3|unstable)/register$",
    r"^/_matrix/client/(r0|v3|unstable)/register/available$",
    // Inbound federation.
    r"^/_matrix/federation/v1/(event|state|state_ids|backfill|get_missing_events|event_auth|timestamp_to_event|exchange_third_party_invite)/",
    r"^/_matrix/federation/v1/(publicRooms|query|make_join|make_leave|user/devices|hierarchy)",
    r"^/_matrix/federation/(v1|v2)/(send_join|send_leave|invite)/",
    r"^/_matrix/federation/v1/send/",
    r"^/_matrix/key/v2/query",
];

/// The upstream of Synapse main on worker units.
pub const MAIN_UPSTREAM: &str = "synapse_main";
/// The local Synapse (declared in nginx.conf).
pub const LOCAL_UPSTREAM: &str = "synapse";

/// The entries of nginx.conf's `map $uri $synapse_upstream` (`main`: the main unit's
/// `host:port` when this unit runs a worker).
pub fn routes_map(main: Option<&str>) -> String {
    let mut out =
        String::from("# Rendered by the Synapse charm: where NGINX sends each request.\n");
    if main.is_none() {
        out.push_str("# This unit runs Synapse main: everything goes to the local Synapse.\n");
        return out;
    }
    for r in WORKER_ROUTES {
        out.push_str(&format!("\"~{r}\" {LOCAL_UPSTREAM};\n"));
    }
    out.push_str(&format!("\"~^/\" {MAIN_UPSTREAM};\n"));
    out
}

/// The http-level upstreams: Synapse main at its stable name, on worker units.
pub fn upstreams(main: Option<&str>) -> String {
    let mut out =
        String::from("# Rendered by the Synapse charm: Synapse main, seen from a worker unit.\n");
    if let Some(m) = main {
        out.push_str(&format!(
            "upstream {MAIN_UPSTREAM} {{\n    server {m} max_fails=0;\n    keepalive 16;\n}}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a request path goes to the local worker (NGINX evaluates the same
    /// regexes).
    fn to_worker(path: &str) -> bool {
        WORKER_ROUTES.iter().any(|r| {
            regex_automata::meta::Regex::new(r)
                .map(|re| re.is_match(path))
                .unwrap_or(false)
        })
    }

    #[test]
    fn worker_routes_cover_sync_reads_login_and_federation() {
        for p in [
            "/_matrix/client/v3/sync",
            "/_matrix/client/r0/sync",
            "/_matrix/client/v3/rooms/!a:x/messages",
            "/_matrix/client/v3/login",
            "/_matrix/client/v3/rooms/!a:x/send/m.room.message/1",
            "/_matrix/federation/v1/send/123",
            "/_matrix/key/v2/query",
            "/_matrix/client/v3/keys/query",
        ] {
            assert!(to_worker(p), "{p} should go to the local worker");
        }
    }

    #[test]
    fn media_admin_and_the_rest_go_to_main() {
        for p in [
            "/_matrix/media/v3/upload",
            "/_matrix/media/v3/download/example.com/abc",
            "/_matrix/client/v1/media/download/example.com/abc",
            "/_synapse/admin/v1/register",
            "/_synapse/admin/v2/users/@a:x",
            "/_matrix/client/v3/createRoom",
            "/_matrix/client/v3/sync/extra",
            "/_matrix/client/versions",
        ] {
            assert!(!to_worker(p), "{p} should go to Synapse main");
        }
    }

    #[test]
    fn one_unit_or_the_main_unit_sends_everything_to_the_local_synapse() {
        let m = routes_map(None);
        assert!(m.lines().all(|l| l.starts_with('#')), "{m}");
        let u = upstreams(None);
        assert!(u.lines().all(|l| l.starts_with('#')), "{u}");
    }

    #[test]
    fn a_worker_unit_routes_the_table_locally_and_the_rest_to_main() {
        let m = routes_map(Some("synapse-0.synapse-endpoints:8008"));
        let entries: Vec<&str> = m.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(entries.len(), WORKER_ROUTES.len() + 1);
        assert!(entries[..WORKER_ROUTES.len()]
            .iter()
            .all(|l| l.ends_with(" synapse;")));
        assert_eq!(entries.last(), Some(&"\"~^/\" synapse_main;"));
        assert!(upstreams(Some("synapse-0.synapse-endpoints:8008"))
            .contains("server synapse-0.synapse-endpoints:8008 max_fails=0;"));
    }
}
