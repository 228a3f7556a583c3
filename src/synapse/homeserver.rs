//! Renders `/data/homeserver.yaml` (and the log configuration) from the charm state.
//! The charm writes the whole file itself: no templates, no generate step in the workload.

use serde_json::{json, Map, Value};

use super::config::SynapseConfig;
use super::keys::SynapseKeys;

pub const DATA_DIR: &str = "/data";
pub const CONFIG_PATH: &str = "/data/homeserver.yaml";
pub const LOG_CONFIG_PATH: &str = "/data/log.config";
pub const SQLITE_PATH: &str = "/data/homeserver.db";
pub const MEDIA_STORE_PATH: &str = "/data/media_store";
pub const CLIENT_PORT: u16 = 8008;
pub const METRICS_PORT: u16 = 9000;

/// Where Synapse keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded default while no PostgreSQL is related.
    Sqlite,
    /// The database provided over the `database` relation.
    Postgres(crate::relations::database::DatabaseInfo),
}

/// Everything homeserver.yaml depends on.
#[derive(Debug, Clone)]
pub struct HomeserverInputs<'a> {
    pub config: &'a SynapseConfig,
    pub keys: &'a SynapseKeys,
    pub database: Database,
    /// URL from an ingress relation, used when `public_baseurl` is not set.
    pub ingress_url: Option<&'a str>,
    /// The bucket from the `media` relation, when Synapse is to use one.
    pub media: Option<&'a crate::relations::s3::S3Info>,
    /// The relay of the smtp integration: Synapse sends mail through it. `None`: no
    /// `email` section, no mail.
    pub email: Option<&'a crate::relations::smtp::SmtpServer>,
    /// The appservice registration files from the `matrix-auth` relations.
    pub appservices: &'a [String],
}

pub fn signing_key_path(server_name: &str) -> String {
    format!("{DATA_DIR}/{server_name}.signing.key")
}

/// `public_baseurl`: the option, else the ingress URL, else `https://<server_name>`; with a trailing slash.
pub fn public_baseurl(config: &SynapseConfig, ingress_url: Option<&str>) -> String {
    let base = config
        .public_baseurl
        .clone()
        .or_else(|| ingress_url.map(|u| u.trim_end_matches('/').to_string()))
        .unwrap_or_else(|| format!("https://{}", config.server_name));
    format!("{}/", base.trim_end_matches('/'))
}

fn csv(items: &[String]) -> Value {
    Value::Array(items.iter().map(|s| Value::String(s.clone())).collect())
}

pub fn render(inp: &HomeserverInputs) -> String {
    let c = inp.config;
    let mut hs = Map::new();
    let mut put = |k: &str, v: Value| {
        hs.insert(k.to_string(), v);
    };
    put("server_name", json!(c.server_name));
    put("public_baseurl", json!(public_baseurl(c, inp.ingress_url)));
    put("report_stats", json!(c.report_stats));
    put(
        "listeners",
        json!([
            {
                "port": CLIENT_PORT, "type": "http", "tls": false, "x_forwarded": true,
                "bind_addresses": ["::"],
                "resources": [{"names": ["client", "federation"], "compress": false}]
            },
            {"port": METRICS_PORT, "type": "metrics", "bind_addresses": ["::"]}
        ]),
    );
    if let Some(cluster) = &c.cluster {
        if cluster.is_main() {
            if let Some(Value::Array(l)) = hs.get_mut("listeners") {
                l.push(crate::topology::Cluster::main_replication_listener());
            }
        }
        for (k, v) in cluster.homeserver_keys(&c.workers_ignore_list) {
            hs.insert(k.to_string(), v);
        }
    }
    let mut put = |k: &str, v: Value| {
        hs.insert(k.to_string(), v);
    };
    put("enable_metrics", json!(true));
    put(
        "database",
        match &inp.database {
            Database::Sqlite => json!({"name": "sqlite3", "args": {"database": SQLITE_PATH}}),
            Database::Postgres(db) => json!({"name": "psycopg2", "args": {
                "user": db.user, "password": db.password, "database": db.database,
                "host": db.host, "port": db.port, "cp_min": 5, "cp_max": 10,
                "keepalives_idle": 10, "keepalives_interval": 10, "keepalives_count": 3,
            }}),
        },
    );
    if let Some(server) = inp.email {
        put(
            "email",
            crate::relations::smtp::server::email_section(
                server,
                &crate::relations::smtp::server::EmailOptions {
                    server_name: &c.server_name,
                    notif_from: c.notif_from.as_deref(),
                    enable_notifs: c.enable_email_notifs,
                },
            ),
        );
    }
    put("log_config", json!(LOG_CONFIG_PATH));
    put("media_store_path", json!(c.media_store_path));
    if let Some(info) = inp.media {
        put(
            "media_storage_providers",
            crate::relations::media::storage_providers(info),
        );
    }
    if !inp.appservices.is_empty() {
        put("app_service_config_files", csv(inp.appservices));
    }
    put("max_upload_size", json!("50M"));
    put("url_preview_enabled", json!(false));
    put("signing_key_path", json!(signing_key_path(&c.server_name)));
    put(
        "registration_shared_secret",
        json!(inp.keys.registration_shared_secret),
    );
    put("macaroon_secret_key", json!(inp.keys.macaroon_secret_key));
    put("form_secret", json!(inp.keys.form_secret));
    put("serve_server_wellknown", json!(true));
    put("forgotten_room_retention_period", json!("28d"));
    put(
        "media_retention",
        json!({"remote_media_lifetime": "14d", "local_media_lifetime": "28d"}),
    );
    put("delete_stale_devices_after", json!("1y"));
    put(
        "rc_joins",
        json!({"remote": {"per_second": c.rc_joins_remote_per_second, "burst_count": c.rc_joins_remote_burst_count}}),
    );
    if c.trusted_key_servers.is_empty() {
        put(
            "trusted_key_servers",
            json!([{"server_name": "matrix.org"}]),
        );
    } else {
        put(
            "trusted_key_servers",
            Value::Array(
                c.trusted_key_servers
                    .iter()
                    .map(|s| json!({"server_name": s}))
                    .collect(),
            ),
        );
    }
    put("suppress_key_server_warning", json!(true));
    if c.block_non_admin_invites {
        put("block_non_admin_invites", json!(true));
    }
    if !c.enable_password_config {
        put("password_config", json!({"enabled": false}));
    }
    if !c.enable_room_list_search {
        put("enable_room_list_search", json!(false));
    }
    if c.allow_public_rooms_over_federation {
        put("allow_public_rooms_over_federation", json!(true));
    }
    if !c.federation_domain_whitelist.is_empty() {
        put(
            "federation_domain_whitelist",
            csv(&c.federation_domain_whitelist),
        );
    }
    if !c.ip_range_whitelist.is_empty() {
        put("ip_range_whitelist", csv(&c.ip_range_whitelist));
    }
    if let Some(complexity) = c.limit_remote_rooms_complexity {
        put(
            "limit_remote_rooms",
            json!({"enabled": true, "complexity": complexity}),
        );
    }
    if c.publish_rooms_allowlist.is_empty() {
        // As the reference charm: any local user may publish rooms to the directory
        // (Synapse's own default lets only server admins).
        put("room_list_publication_rules", json!([{"action": "allow"}]));
    } else {
        let mut rules: Vec<Value> = c
            .publish_rooms_allowlist
            .iter()
            .map(|u| json!({"user_id": u, "alias": "*", "room_id": "*", "action": "allow"}))
            .collect();
        rules.push(json!({"user_id": "*", "alias": "*", "room_id": "*", "action": "deny"}));
        put("room_list_publication_rules", Value::Array(rules));
    }
    if c.invite_checker_blocklist_allowlist_url.is_some()
        || !c.invite_checker_policy_rooms.is_empty()
    {
        let mut cfg = Map::new();
        if let Some(u) = &c.invite_checker_blocklist_allowlist_url {
            cfg.insert("blocklist_allowlist_url".into(), json!(u));
        }
        if !c.invite_checker_policy_rooms.is_empty() {
            cfg.insert(
                "policy_room_ids".into(),
                csv(&c.invite_checker_policy_rooms),
            );
        }
        put(
            "modules",
            json!([{"module": "synapse_invite_checker.InviteChecker", "config": cfg}]),
        );
    }
    let doc = serde_saphyr::to_string(&Value::Object(hs)).unwrap_or_default();
    format!("# Rendered by the Synapse charm from its configuration: change `juju config` instead.\n# Edits made here are replaced whenever the charm renders this file again.\n{doc}")
}

/// Synapse's logging: everything to the console, which Pebble collects.
pub fn log_config() -> String {
    "\
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
filters:
  context:
    (): synapse.logging.context.LoggingContextFilter
    request: \"\"
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
    filters: [context]
loggers:
  synapse.storage.SQL:
    level: WARNING
root:
  level: INFO
  handlers: [console]
disable_existing_loggers: false
"
    .to_string()
}

/// The `server_name` in an existing homeserver.yaml, if any.
pub fn existing_server_name(yaml: &str) -> Option<String> {
    let v: Value = serde_saphyr::from_str(yaml).ok()?;
    v.get("server_name")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(extra: Value) -> SynapseConfig {
        let mut base = json!({"server_name": "example.com"});
        if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
            b.extend(e);
        }
        let Value::Object(m) = base else {
            unreachable!()
        };
        SynapseConfig::from_juju(&m).unwrap()
    }

    fn keys() -> SynapseKeys {
        SynapseKeys {
            registration_shared_secret: "reg".into(),
            macaroon_secret_key: "mac".into(),
            form_secret: "form".into(),
            signing_key: "ed25519 a_abcd AAAA\n".into(),
        }
    }

    fn render_value(extra: Value) -> Value {
        let c = config(extra);
        let k = keys();
        let text = render(&HomeserverInputs {
            config: &c,
            keys: &k,
            database: Database::Sqlite,
            ingress_url: None,
            media: None,
            email: None,
            appservices: &[],
        });
        serde_saphyr::from_str(&text).unwrap()
    }

    #[test]
    fn defaults() {
        let v = render_value(json!({}));
        assert_eq!(v["server_name"], "example.com");
        assert_eq!(v["public_baseurl"], "https://example.com/");
        assert_eq!(v["database"]["name"], "sqlite3");
        assert_eq!(v["database"]["args"]["database"], "/data/homeserver.db");
        assert_eq!(v["listeners"][0]["port"], 8008);
        assert_eq!(v["listeners"][0]["x_forwarded"], true);
        assert_eq!(v["listeners"][1]["type"], "metrics");
        assert_eq!(v["listeners"][1]["port"], 9000);
        assert_eq!(v["enable_metrics"], true);
        assert_eq!(v["report_stats"], false);
        assert_eq!(v["signing_key_path"], "/data/example.com.signing.key");
        assert_eq!(v["registration_shared_secret"], "reg");
        assert_eq!(v["log_config"], "/data/log.config");
        assert_eq!(
            v["trusted_key_servers"],
            json!([{"server_name": "matrix.org"}])
        );
        assert_eq!(v["rc_joins"]["remote"]["burst_count"], 10);
        assert_eq!(v["rc_joins"]["remote"]["per_second"], 0.01);
        assert_eq!(v["serve_server_wellknown"], true);
        assert_eq!(
            v["room_list_publication_rules"],
            json!([{"action": "allow"}])
        );
        for absent in [
            "password_config",
            "enable_room_list_search",
            "ip_range_whitelist",
            "modules",
            "limit_remote_rooms",
            "block_non_admin_invites",
            "federation_domain_whitelist",
            "allow_public_rooms_over_federation",
        ] {
            assert!(
                v.get(absent).is_none(),
                "{absent} should not be rendered by default"
            );
        }
    }

    #[test]
    fn every_option_maps() {
        let v = render_value(json!({
            "public_baseurl": "https://chat.example.com",
            "report_stats": true,
            "block_non_admin_invites": true,
            "enable_password_config": false,
            "enable_room_list_search": false,
            "allow_public_rooms_over_federation": true,
            "federation_domain_whitelist": "a.org, b.org",
            "ip_range_whitelist": "10.0.0.0/8",
            "limit_remote_rooms_complexity": 1.5,
            "publish_rooms_allowlist": "alice:example.com",
            "trusted_key_servers": "keys.example.org",
            "invite_checker_policy_rooms": "room:example.com",
            "invite_checker_blocklist_allowlist_url": "https://lists.example.com/x.json",
            "rc_joins_remote_burst_count": 3,
            "rc_joins_remote_per_second": 0.5,
        }));
        assert_eq!(v["public_baseurl"], "https://chat.example.com/");
        assert_eq!(v["report_stats"], true);
        assert_eq!(v["block_non_admin_invites"], true);
        assert_eq!(v["password_config"], json!({"enabled": false}));
        assert_eq!(v["enable_room_list_search"], false);
        assert_eq!(v["allow_public_rooms_over_federation"], true);
        assert_eq!(v["federation_domain_whitelist"], json!(["a.org", "b.org"]));
        assert_eq!(v["ip_range_whitelist"], json!(["10.0.0.0/8"]));
        assert_eq!(
            v["limit_remote_rooms"],
            json!({"enabled": true, "complexity": 1.5})
        );
        assert_eq!(
            v["room_list_publication_rules"][0]["user_id"],
            "@alice:example.com"
        );
        assert_eq!(v["room_list_publication_rules"][1]["action"], "deny");
        assert_eq!(
            v["trusted_key_servers"],
            json!([{"server_name": "keys.example.org"}])
        );
        assert_eq!(
            v["modules"][0]["module"],
            "synapse_invite_checker.InviteChecker"
        );
        assert_eq!(
            v["modules"][0]["config"]["policy_room_ids"],
            json!(["!room:example.com"])
        );
        assert_eq!(
            v["modules"][0]["config"]["blocklist_allowlist_url"],
            "https://lists.example.com/x.json"
        );
        assert_eq!(
            v["rc_joins"]["remote"],
            json!({"per_second": 0.5, "burst_count": 3})
        );
    }

    #[test]
    fn postgres_database() {
        let c = config(json!({}));
        let k = keys();
        let db = crate::relations::database::DatabaseInfo {
            host: "fd00::1".into(),
            port: 5433,
            endpoints: vec![],
            database: "synapse".into(),
            user: "relation_id_4".into(),
            password: "pw".into(),
        };
        let text = render(&HomeserverInputs {
            config: &c,
            keys: &k,
            database: Database::Postgres(db),
            ingress_url: None,
            media: None,
            email: None,
            appservices: &[],
        });
        let v: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(v["database"]["name"], "psycopg2");
        assert_eq!(
            v["database"]["args"],
            json!({"user": "relation_id_4", "password": "pw", "database": "synapse", "host": "fd00::1", "port": 5433, "cp_min": 5, "cp_max": 10, "keepalives_idle": 10, "keepalives_interval": 10, "keepalives_count": 3})
        );
    }

    #[test]
    fn ingress_url_is_the_fallback_base_url() {
        let c = config(json!({}));
        assert_eq!(
            public_baseurl(&c, Some("http://ingress/model-synapse")),
            "http://ingress/model-synapse/"
        );
        let c = config(json!({"public_baseurl": "https://x.org/"}));
        assert_eq!(public_baseurl(&c, Some("http://ingress")), "https://x.org/");
    }

    #[test]
    fn rendering_is_deterministic_and_reads_back_its_server_name() {
        let c = config(json!({}));
        let k = keys();
        let i = HomeserverInputs {
            config: &c,
            keys: &k,
            database: Database::Sqlite,
            ingress_url: None,
            media: None,
            email: None,
            appservices: &[],
        };
        assert_eq!(render(&i), render(&i));
        assert_eq!(
            existing_server_name(&render(&i)).as_deref(),
            Some("example.com")
        );
        assert_eq!(existing_server_name("not: [valid"), None);
    }
}
