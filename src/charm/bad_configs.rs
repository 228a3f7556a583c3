//! A table of bad configurations, single options and combinations: each is refused
//! with its exact message while Synapse keeps serving the last good configuration
//! (no file rewritten, no restart), and the unit recovers when the value is fixed.

use serde_json::{json, Value};

use super::reconcile::reconcile;
use crate::juju::hints::UnitHints;
use crate::juju::{Event, Status};
use crate::testing::juju::UNIT;
use crate::testing::{FakePod, Juju};

const GOOD: &str = "example.com";

/// (what is set, the exact `blocked` message).
fn table() -> Vec<(Value, &'static str)> {
    vec![
        (json!({"server_name": ""}), "invalid configuration: server_name: must be set to the domain of the server's Matrix IDs, e.g. matrix.example.com"),
        (json!({"server_name": "bad name"}), "invalid configuration: server_name: \"bad name\" is not a valid server name (host name with an optional :port)"),
        (json!({"server_name": "-x.example.com"}), "invalid configuration: server_name: \"-x.example.com\" is not a valid server name (host name with an optional :port)"),
        (json!({"server_name": "example.com:0"}), "invalid configuration: server_name: \"example.com:0\" is not a valid server name (host name with an optional :port)"),
        (json!({"server_name": "example.com:99999"}), "invalid configuration: server_name: \"example.com:99999\" is not a valid server name (host name with an optional :port)"),
        (json!({"server_name": "[::1"}), "invalid configuration: server_name: \"[::1\" is not a valid server name (host name with an optional :port)"),
        (json!({"server_name": 42}), "invalid configuration: server_name: expected a string, got 42"),
        (json!({"server_name": "other.example.com"}), "server_name cannot change from \"example.com\" to \"other.example.com\": Synapse's database is bound to it; restore it with `juju config synapse server_name=example.com`"),
        (json!({"public_baseurl": "matrix.example.com"}), "invalid configuration: public_baseurl: \"matrix.example.com\" is not an http:// or https:// URL"),
        (json!({"public_baseurl": "ftp://matrix.example.com"}), "invalid configuration: public_baseurl: \"ftp://matrix.example.com\" is not an http:// or https:// URL"),
        (json!({"public_baseurl": "https:///x"}), "invalid configuration: public_baseurl: \"https:///x\" has no valid host"),
        (json!({"public_baseurl": "https://matrix.example.com/?a=b"}), "invalid configuration: public_baseurl: \"https://matrix.example.com/?a=b\" must not have a query (?...): paths are appended to it"),
        (json!({"public_baseurl": "https://matrix.example.com/#top"}), "invalid configuration: public_baseurl: \"https://matrix.example.com/#top\" must not have a fragment (#...)"),
        (json!({"public_baseurl": "https://matrix.example.com/a b"}), "invalid configuration: public_baseurl: \"https://matrix.example.com/a b\" must not contain spaces or control characters"),
        (json!({"experimental_alive_check": "1m,3"}), "invalid configuration: experimental_alive_check: \"1m,3\" must be three comma-separated values: period,threshold,timeout (e.g. 2m,5,20s)"),
        (json!({"experimental_alive_check": "1m,x,10s"}), "invalid configuration: experimental_alive_check: threshold \"x\" must be a positive whole number"),
        (json!({"experimental_alive_check": "1m,0,10s"}), "invalid configuration: experimental_alive_check: threshold \"0\" must be a positive whole number"),
        (json!({"experimental_alive_check": "60,3,10s"}), "invalid configuration: experimental_alive_check: period \"60\" must end in s, m or h"),
        (json!({"experimental_alive_check": "1m,3,2m"}), "invalid configuration: experimental_alive_check: timeout 2m0s must not be longer than the period 1m0s"),
        (json!({"experimental_alive_check": "0s,3,0s"}), "invalid configuration: experimental_alive_check: period \"0s\" must be at least 1s"),
        (json!({"experimental_alive_check": "500ms,3,100ms"}), "invalid configuration: experimental_alive_check: period \"500ms\" must end in s, m or h"),
        (json!({"experimental_alive_check": "1m,3,1.5s"}), "invalid configuration: experimental_alive_check: timeout \"1.5s\" must be a whole number of seconds"),
        (json!({"experimental_alive_check": "48h,3,10s"}), "invalid configuration: experimental_alive_check: period \"48h\" must not be longer than 24h"),
        (json!({"experimental_alive_check": "1m,-1,10s"}), "invalid configuration: experimental_alive_check: threshold \"-1\" must be a positive whole number"),
        (json!({"experimental_alive_check": "1x,3,10s"}), "invalid configuration: experimental_alive_check: period \"1x\" must end in s, m or h"),
        (json!({"limit_remote_rooms_complexity": -1.0}), "invalid configuration: limit_remote_rooms_complexity: -1 must be greater than zero"),
        (json!({"limit_remote_rooms_complexity": 0}), "invalid configuration: limit_remote_rooms_complexity: 0 must be greater than zero"),
        (json!({"limit_remote_rooms_complexity": "abc"}), "invalid configuration: limit_remote_rooms_complexity: expected a number, got \"abc\""),
        (json!({"rc_joins_remote_burst_count": -1}), "invalid configuration: rc_joins_remote_burst_count: -1 must not be negative"),
        (json!({"rc_joins_remote_burst_count": 1.5}), "invalid configuration: rc_joins_remote_burst_count: 1.5 is not a whole number"),
        (json!({"rc_joins_remote_per_second": -0.5}), "invalid configuration: rc_joins_remote_per_second: -0.5 must not be negative"),
        (json!({"rc_joins_remote_per_second": "x"}), "invalid configuration: rc_joins_remote_per_second: expected a number, got \"x\""),
        (json!({"federation_domain_whitelist": "-x.org"}), "invalid configuration: federation_domain_whitelist: \"-x.org\" is not a host name"),
        (json!({"federation_domain_whitelist": "a..b"}), "invalid configuration: federation_domain_whitelist: \"a..b\" is not a host name"),
        (json!({"federation_domain_whitelist": "example.com:8448"}), "invalid configuration: federation_domain_whitelist: \"example.com:8448\" is not a host name"),
        (json!({"federation_domain_whitelist": "ok.org,bad_one.org"}), "invalid configuration: federation_domain_whitelist: \"bad_one.org\" is not a host name"),
        (json!({"ip_range_whitelist": "10.0.0.0/33"}), "invalid configuration: ip_range_whitelist: \"10.0.0.0/33\" is not a CIDR"),
        (json!({"ip_range_whitelist": "300.0.0.1"}), "invalid configuration: ip_range_whitelist: \"300.0.0.1\" is not a CIDR"),
        (json!({"ip_range_whitelist": "::1/129"}), "invalid configuration: ip_range_whitelist: \"::1/129\" is not a CIDR"),
        (json!({"ip_range_whitelist": "10.0.0.0/x"}), "invalid configuration: ip_range_whitelist: \"10.0.0.0/x\" is not a CIDR"),
        (json!({"trusted_key_servers": "bad host"}), "invalid configuration: trusted_key_servers: \"bad host\" is not a host name"),
        (json!({"trusted_key_servers": "matrix.org:8448"}), "invalid configuration: trusted_key_servers: \"matrix.org:8448\" is not a host name"),
        (json!({"publish_rooms_allowlist": "Alice"}), "invalid configuration: publish_rooms_allowlist: \"Alice\" is not a user ID of the form localpart:domain"),
        (json!({"publish_rooms_allowlist": "alice"}), "invalid configuration: publish_rooms_allowlist: \"alice\" is not a user ID of the form localpart:domain"),
        (json!({"publish_rooms_allowlist": "@alice:"}), "invalid configuration: publish_rooms_allowlist: \"@alice:\" is not a user ID of the form localpart:domain"),
        (json!({"publish_rooms_allowlist": "bob:example.com,@Carol:example.com"}), "invalid configuration: publish_rooms_allowlist: \"@Carol:example.com\" is not a user ID of the form localpart:domain"),
        (json!({"invite_checker_policy_rooms": "no-server", "invite_checker_blocklist_allowlist_url": "https://lists.example.com/l.json"}), "invalid configuration: invite_checker_policy_rooms: \"no-server\" is not a room ID of the form opaque_id:domain"),
        (json!({"invite_checker_policy_rooms": "abc:example.com"}), "invalid configuration: invite_checker_blocklist_allowlist_url: must be set too when invite_checker_policy_rooms is set"),
        (json!({"invite_checker_blocklist_allowlist_url": "https://lists.example.com/l.json"}), "invalid configuration: invite_checker_policy_rooms: must be set too when invite_checker_blocklist_allowlist_url is set"),
        (json!({"invite_checker_policy_rooms": "abc:example.com", "invite_checker_blocklist_allowlist_url": "ftp://lists.example.com"}), "invalid configuration: invite_checker_blocklist_allowlist_url: \"ftp://lists.example.com\" is not an http:// or https:// URL"),
        (json!({"invite_checker_policy_rooms": "abc:example.com", "invite_checker_blocklist_allowlist_url": "https://lists.example.com/l.json#x"}), "invalid configuration: invite_checker_blocklist_allowlist_url: \"https://lists.example.com/l.json#x\" must not have a fragment (#...)"),
        (json!({"workers_ignore_list": "a b"}), "invalid configuration: workers_ignore_list: \"a b\" is not a worker name"),
        (json!({"workers_ignore_list": "w/1"}), "invalid configuration: workers_ignore_list: \"w/1\" is not a worker name"),
        (json!({"notif_from": "Matrix \u{7} <a@example.com>"}), "invalid configuration: notif_from: must not contain control characters"),
        (json!({"notif_from": "example.com"}), "invalid configuration: notif_from: \"example.com\" is not an email address (has no @: give an email address); e.g. Matrix <noreply@example.com>"),
        (json!({"notif_from": "Matrix <noreply@example.com"}), "invalid configuration: notif_from: \"Matrix <noreply@example.com\" is not an email address (the address in <...> must end the value); e.g. Matrix <noreply@example.com>"),
        (json!({"notif_from": "no reply@example.com"}), "invalid configuration: notif_from: \"no reply@example.com\" is not an email address (\"no reply\" is not the local part of an email address); e.g. Matrix <noreply@example.com>"),
        (json!({"notif_from": "noreply@-bad-.example"}), "invalid configuration: notif_from: \"noreply@-bad-.example\" is not an email address (\"-bad-.example\" is not a mail domain); e.g. Matrix <noreply@example.com>"),
        (json!({"notif_from": "noreply@192.0.2.1"}), "invalid configuration: notif_from: \"noreply@192.0.2.1\" is not an email address (\"192.0.2.1\" is not a mail domain); e.g. Matrix <noreply@example.com>"),
        (json!({"enable_password_config": "yes"}), "invalid configuration: enable_password_config: expected true or false, got \"yes\""),
        (json!({"enable_room_list_search": 1}), "invalid configuration: enable_room_list_search: expected true or false, got 1"),
        (json!({"report_stats": "true"}), "invalid configuration: report_stats: expected true or false, got \"true\""),
        (json!({"block_non_admin_invites": "x"}), "invalid configuration: block_non_admin_invites: expected true or false, got \"x\""),
        (json!({"allow_public_rooms_over_federation": 0}), "invalid configuration: allow_public_rooms_over_federation: expected true or false, got 0"),
        (json!({"server_name": "", "ip_range_whitelist": "10.0.0.0/33"}), "invalid configuration: server_name: must be set to the domain of the server's Matrix IDs, e.g. matrix.example.com; ip_range_whitelist: \"10.0.0.0/33\" is not a CIDR"),
        (json!({"public_baseurl": "nope", "experimental_alive_check": "1m"}), "invalid configuration: public_baseurl: \"nope\" is not an http:// or https:// URL; experimental_alive_check: \"1m\" must be three comma-separated values: period,threshold,timeout (e.g. 2m,5,20s)"),
        (json!({"rc_joins_remote_burst_count": -1, "rc_joins_remote_per_second": -1.0}), "invalid configuration: rc_joins_remote_burst_count: -1 must not be negative; rc_joins_remote_per_second: -1 must not be negative"),
        (json!({"federation_domain_whitelist": "-a", "trusted_key_servers": "-b"}), "invalid configuration: federation_domain_whitelist: \"-a\" is not a host name; trusted_key_servers: \"-b\" is not a host name"),
        (json!({"server_name": "bad name", "public_baseurl": "x", "workers_ignore_list": "a b"}), "invalid configuration: server_name: \"bad name\" is not a valid server name (host name with an optional :port); public_baseurl: \"x\" is not an http:// or https:// URL; workers_ignore_list: \"a b\" is not a worker name"),
        (json!({"admin_api_allowed_cidrs": "10.0.0.1"}), "invalid configuration: admin_api_allowed_cidrs: \"10.0.0.1\" is not a CIDR: write address/prefix (e.g. 10.0.0.1/32 for one address)"),
        (json!({"admin_api_allowed_cidrs": "10.0.0.1/8"}), "invalid configuration: admin_api_allowed_cidrs: \"10.0.0.1/8\" has bits set after the prefix; the network is 10.0.0.0/8"),
        (json!({"admin_api_allowed_cidrs": "10.0.0.0/33"}), "invalid configuration: admin_api_allowed_cidrs: \"10.0.0.0/33\" is not a CIDR: the prefix must be 0 to 32"),
        (json!({"admin_api_allowed_cidrs": "fd00::/129"}), "invalid configuration: admin_api_allowed_cidrs: \"fd00::/129\" is not a CIDR: the prefix must be 0 to 128"),
        (json!({"admin_api_allowed_cidrs": "10.0.0.0/8,intranet/8"}), "invalid configuration: admin_api_allowed_cidrs: \"intranet/8\" is not a CIDR: \"intranet\" is not an IP address"),
        (json!({"admin_api_allowed_cidrs": "10.0.0.0/8; allow all"}), "invalid configuration: admin_api_allowed_cidrs: \"10.0.0.0/8; allow all\" is not a CIDR: the prefix must be 0 to 32"),
        (json!({"admin_api_allowed_cidrs": true}), "invalid configuration: admin_api_allowed_cidrs: expected a string, got true"),
        (json!({"ip_range_whitelist": "1.2.3.4/40,10.0.0.0/8,fe80::/200"}), "invalid configuration: ip_range_whitelist: \"1.2.3.4/40\" is not a CIDR; ip_range_whitelist: \"fe80::/200\" is not a CIDR"),
        (json!({"server_name": "other.example.com", "enable_room_list_search": false}), "server_name cannot change from \"example.com\" to \"other.example.com\": Synapse's database is bound to it; restore it with `juju config synapse server_name=example.com`"),
    ]
}

#[test]
fn bad_configurations_are_refused_and_synapse_keeps_serving() {
    let mut j = Juju::new().with_config(json!({"server_name": GOOD}));
    let p = FakePod::up();
    let mut hints = UnitHints::default();
    let hook = |j: &mut Juju, hints: &mut UnitHints| {
        j.hook(UNIT, Event::ConfigChanged, |ctx, tools| {
            reconcile(ctx, tools, &p, hints)
        })
        .unwrap()
    };
    assert_eq!(hook(&mut j, &mut hints), Status::active());
    let good_file = p.synapse.files.borrow()["/data/homeserver.yaml"].clone();
    let restarts = *p.synapse.restarts.borrow();
    let good_config = j.model.applications["synapse"].config.clone();
    let cases = table();
    assert!(cases.len() >= 60, "at least 60 bad configurations");
    let mut failed = vec![];
    for (set, expected) in &cases {
        let Value::Object(set) = set else {
            panic!("a case is a JSON object")
        };
        for (k, v) in set {
            j.set_config(k, v.clone());
        }
        let status = hook(&mut j, &mut hints);
        let kept = p.synapse.files.borrow()["/data/homeserver.yaml"] == good_file
            && *p.synapse.restarts.borrow() == restarts;
        // Fixed: back to the good values, active again without a restart.
        j.model
            .applications
            .get_mut("synapse")
            .unwrap_or_else(|| panic!("synapse"))
            .config = good_config.clone();
        let recovered = hook(&mut j, &mut hints) == Status::active()
            && *p.synapse.restarts.borrow() == restarts;
        if status != Status::blocked(*expected) || !kept || !recovered {
            failed.push(format!(
                "{set:?}: got {status} (kept the last good configuration: {kept}, recovered: {recovered})"
            ));
        }
    }
    println!(
        "bad configurations: {} passed, {} failed",
        cases.len() - failed.len(),
        failed.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
