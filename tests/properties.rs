//! Property tests for the charm's parsers of outside input: `config-get` output, the
//! databags of the remote applications, secret contents, action parameters, Synapse's
//! config-check answer and the hook tools' output. Bad input gives a value or a clear
//! error, never a panic. Cases per property: `PROPTEST_CASES` (default 2000; `make
//! fuzz` runs 100000).

#[path = "support/json.rs"]
mod json;
#[path = "support/property.rs"]
mod property;

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value};

use synapse_k8s_charm::actions::backup::content;
use synapse_k8s_charm::actions::user_id;
use synapse_k8s_charm::juju::process::{ProcessTools, ToolRunner};
use synapse_k8s_charm::juju::tools::SecretRead;
use synapse_k8s_charm::juju::{Databag, HookTools, RelationId, ToolError, ToolResult};
use synapse_k8s_charm::nginx::site::{Cidr, Site};
use synapse_k8s_charm::relations::database::relation::{parse_endpoints, provided, Endpoint};
use synapse_k8s_charm::relations::database::{DatabaseInfo, Provided};
use synapse_k8s_charm::relations::observability::{grafana, loki, prometheus};
use synapse_k8s_charm::relations::s3::xml::parse_list;
use synapse_k8s_charm::relations::s3::{self, UriStyle};
use synapse_k8s_charm::relations::smtp::server::{self as smtp, EmailOptions, PasswordSource};
use synapse_k8s_charm::relations::smtp::{SmtpError, SmtpServer};
use synapse_k8s_charm::synapse::check::{verdict, Verdict};
use synapse_k8s_charm::synapse::config::SynapseConfig;
use synapse_k8s_charm::synapse::homeserver::{self, Database, HomeserverInputs};
use synapse_k8s_charm::synapse::keys::SynapseKeys;
use synapse_k8s_charm::util::bounded;

use json::{json, object, scalar};
use property::{check, text, text_or};

/// The options of config.yaml (`config_yaml_options_are_known` keeps this in step).
const OPTIONS: &[&str] = &[
    "admin_api_allowed_cidrs",
    "allow_public_rooms_over_federation",
    "backup_passphrase",
    "block_non_admin_invites",
    "enable_email_notifs",
    "enable_mjolnir",
    "enable_password_config",
    "enable_room_list_search",
    "experimental_alive_check",
    "federation_domain_whitelist",
    "invite_checker_blocklist_allowlist_url",
    "invite_checker_policy_rooms",
    "ip_range_whitelist",
    "limit_remote_rooms_complexity",
    "notif_from",
    "public_baseurl",
    "publish_rooms_allowlist",
    "rc_joins_remote_burst_count",
    "rc_joins_remote_per_second",
    "report_stats",
    "server_name",
    "trusted_key_servers",
    "workers_ignore_list",
];

#[test]
fn config_yaml_options_are_known() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut names: Vec<&str> = doc["options"]
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    names.sort_unstable();
    assert_eq!(names, OPTIONS, "the options of config.yaml changed");
}

/// Values that are valid for some option, and near misses.
const CONFIG_STRINGS: &[&str] = &[
    "example.com",
    "matrix.example.com:8448",
    "localhost",
    "[::1]:8448",
    "::1",
    "example.com:0",
    "example.com:65536",
    "-bad-.com",
    "10.0.0.0/8",
    "10.0.0.0/33",
    "10.0.0.1/8",
    "127.0.0.1/32",
    "0.0.0.0/0,::/0",
    "fd00::/8",
    "1.2.3.4",
    "!room:example.com",
    "room:example.com",
    "@admin:example.com",
    "admin",
    "https://example.com",
    "http://matrix.example.com/base/",
    "https://example.com/list?x=1",
    "https://example.com/#frag",
    "ftp://example.com",
    "https://",
    "2m,5,20s",
    "10s,1,10s",
    "10s,1,1m",
    "0s,0,0s",
    "2m,5",
    "2m,x,20s",
    "pusher1",
    "federation_sender-1",
    "a, b,,c",
    "synapse@example.com",
    " ",
];

/// Valid values of each option (`None`: a boolean option, any `true`/`false`).
fn valid_values(option: &str) -> Option<&'static [&'static str]> {
    Some(match option {
        "backup_passphrase" => &["s3cret", "with spaces and ünïcode"],
        "experimental_alive_check" => &["2m,5,20s", "10s,1,10s", "1m30s,3,15s"],
        "federation_domain_whitelist" | "trusted_key_servers" => {
            &["example.com", "a.example.com, b.example.com", ""]
        }
        "ip_range_whitelist" => &["10.0.0.0/8", "fd00::/8, 192.168.0.0/16", ""],
        "admin_api_allowed_cidrs" => &[
            "10.0.0.0/8",
            "fd00::/8, 192.168.0.0/16",
            "0.0.0.0/0,::/0",
            "",
        ],
        "limit_remote_rooms_complexity" => &["1.0", "0.5", "100"],
        "notif_from" => &["synapse@example.com", "Synapse <noreply@example.com>"],
        "public_baseurl" => &["https://example.com", "http://matrix.example.com/base/"],
        "publish_rooms_allowlist" => &["@admin:example.com", "@a:example.com, @b:example.com"],
        "rc_joins_remote_burst_count" => &["10", "0"],
        "rc_joins_remote_per_second" => &["0.01", "0", "3"],
        "server_name" => &["example.com", "matrix.example.com:8448", "localhost"],
        "workers_ignore_list" => &["pusher1", "federation_sender-1, pusher1"],
        // Set together (or not at all): see `valid_config`.
        "invite_checker_blocklist_allowlist_url" => &["https://example.com/list.json"],
        "invite_checker_policy_rooms" => &["!room:example.com", "!a:example.com, !b:example.com"],
        _ => return None,
    })
}

fn typed(option: &str, text: &str) -> Value {
    match option {
        "limit_remote_rooms_complexity" | "rc_joins_remote_per_second" => {
            text.parse::<f64>().map_or(Value::Null, Value::from)
        }
        "rc_joins_remote_burst_count" => text.parse::<i64>().map_or(Value::Null, Value::from),
        _ => Value::from(text),
    }
}

/// A valid `config-get` map: server_name, every other option absent or set to a
/// valid value of its kind (the two invite-checker options together).
fn valid_config() -> impl Strategy<Value = Map<String, Value>> {
    let choices =
        proptest::collection::vec((any::<bool>(), any::<prop::sample::Index>()), OPTIONS.len());
    choices.prop_map(|choices| {
        let mut m = Map::new();
        let invite = choices[0].0;
        for (option, (set, pick)) in OPTIONS.iter().zip(choices) {
            let value = match valid_values(option) {
                Some(_) if option.starts_with("invite_checker_") && !invite => continue,
                Some(vals)
                    if set || *option == "server_name" || option.starts_with("invite_checker_") =>
                {
                    typed(option, vals[pick.index(vals.len())])
                }
                Some(_) => continue,
                None if set => Value::Bool(pick.index(2) == 1),
                None => continue,
            };
            m.insert(option.to_string(), value);
        }
        m
    })
}

/// A `config-get` map: a valid one with up to three options (or unknown keys) set to
/// anything: a value of another option, any scalar, any JSON.
fn config_map() -> impl Strategy<Value = (Map<String, Value>, usize)> {
    let value = prop_oneof![
        4 => proptest::sample::select(CONFIG_STRINGS).prop_map(Value::from),
        1 => prop_oneof![Just(0.01), Just(-1.0), Just(0.0), Just(1e300), Just(2.5)]
            .prop_map(Value::from),
        1 => prop_oneof![Just(10i64), Just(-1), Just(0), Just(i64::MAX), Just(i64::MIN)]
            .prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => scalar(CONFIG_STRINGS),
        1 => json(OPTIONS, CONFIG_STRINGS),
    ];
    let key =
        prop_oneof![6 => proptest::sample::select(OPTIONS).prop_map(str::to_string), 1 => text()];
    (
        valid_config(),
        proptest::collection::vec((key, value), 0..4),
    )
        .prop_map(|(mut m, changes)| {
            let n = changes.len();
            m.extend(changes);
            (m, n)
        })
}

fn database_info() -> impl Strategy<Value = DatabaseInfo> {
    (text(), any::<u16>(), text(), text(), text()).prop_map(
        |(host, port, database, user, password)| DatabaseInfo {
            endpoints: vec![],
            host,
            port,
            database,
            user,
            password,
        },
    )
}

#[test]
fn config_get() {
    let inputs = (
        config_map(),
        proptest::option::of(database_info()),
        proptest::option::of(text_or(&["https://ingress.example.com/model-synapse/"])),
    );
    check("config_get", inputs, |((raw, changed), db, ingress)| {
        let parsed = SynapseConfig::from_juju(&raw);
        // Valid values of every option are accepted.
        prop_assert!(changed > 0 || parsed.is_ok(), "{raw:?}: {parsed:?}");
        match parsed {
            Ok(config) => {
                let _ = config.unhonoured(false);
                let keys = SynapseKeys::placeholder();
                let relay = SmtpServer::placeholder();
                let yaml = homeserver::render(&HomeserverInputs {
                    config: &config,
                    keys: &keys,
                    database: db.map_or(Database::Sqlite, Database::Postgres),
                    ingress_url: ingress.as_deref(),
                    media: None,
                    email: config.enable_email_notifs.then_some(&relay),
                    appservices: &[],
                });
                // What the charm writes is YAML that names the server it was given.
                prop_assert_eq!(
                    homeserver::existing_server_name(&yaml),
                    Some(config.server_name.clone()),
                    "{}",
                    yaml
                );
                let base = homeserver::public_baseurl(&config, ingress.as_deref());
                // NGINX's files: JSON documents naming a host:port, and an admin
                // location made only of the parsed networks.
                let site = Site::new(&base, &config.admin_api_allowed_cidrs);
                let server: Value = serde_json::from_str(&site.server_well_known())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let delegated = server["m.server"].as_str().unwrap_or_default();
                prop_assert!(
                    !delegated.contains('/') && delegated.contains(':'),
                    "{base}: {delegated}"
                );
                let client: Value = serde_json::from_str(&site.client_well_known())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(
                    client["m.homeserver"]["base_url"].as_str(),
                    Some(base.trim_end_matches('/'))
                );
                prop_assert_eq!(site.admin_cidrs.len(), config.admin_api_allowed_cidrs.len());
                for line in site.admin_api().lines() {
                    let allow = line
                        .trim()
                        .strip_prefix("allow ")
                        .and_then(|l| l.strip_suffix(';'));
                    prop_assert!(
                        line.starts_with('#')
                            || allow.is_some_and(|c| Cidr::parse(c).is_ok())
                            || [
                                "location /_synapse/admin/ {",
                                "    deny all;",
                                "    include /etc/nginx/snippets/synapse-proxy.conf;",
                                "}",
                            ]
                            .contains(&line),
                        "{line:?}"
                    );
                }
            }
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.starts_with("invalid configuration: "), "{text:?}");
                prop_assert!(!e.0.is_empty());
                for p in &e.0 {
                    prop_assert!(OPTIONS.contains(&p.option), "{:?} is no option", p.option);
                    prop_assert!(!p.reason.is_empty(), "{p:?}");
                }
            }
        }
        Ok(())
    });
}

#[test]
fn existing_homeserver_yaml() {
    let bits: &'static [&'static str] = &[
        "server_name: example.com\n",
        "server_name: [1, 2]\n",
        "server_name: 3\n",
        "{",
        "- a",
        "&x *x",
        "server_name: !!binary AAAA",
    ];
    check("existing_homeserver_yaml", text_or(bits), |yaml| {
        let _ = homeserver::existing_server_name(&yaml);
        Ok(())
    });
}

const DB_STRINGS: &[&str] = &[
    "10.0.0.1:5432",
    "pg-primary:5433,pg-replica:5433",
    "[fd00::1]:5432",
    "[fd00::1",
    "[fd00::1]x",
    "fd00::1",
    "db:0",
    "db:65536",
    ":5432",
    ",",
    "synapse",
    "relation-7",
];

fn databag(
    keys: &'static [&'static str],
    strings: &'static [&'static str],
) -> impl Strategy<Value = Databag> {
    proptest::collection::btree_map(text_or(keys), text_or(strings), 0..6)
}

#[test]
fn database_databag() {
    let keys: &'static [&'static str] = &[
        "endpoints",
        "database",
        "username",
        "password",
        "uris",
        "secret-user",
    ];
    check(
        "database_databag",
        (
            databag(keys, DB_STRINGS),
            proptest::option::of(databag(keys, DB_STRINGS)),
        ),
        |(app, secret)| {
            match provided(&app, secret.as_ref()) {
                Provided::Pending(what) => prop_assert!(!what.is_empty()),
                Provided::Invalid(msg) => {
                    prop_assert!(
                        msg.starts_with("endpoints ") || msg.starts_with("database "),
                        "{msg:?}"
                    );
                    prop_assert!(
                        msg.chars().count() <= 301 && !msg.chars().any(char::is_control),
                        "bounded: {msg:?}"
                    );
                }
                Provided::Ready(info) => {
                    prop_assert!(!info.host.is_empty() && info.port > 0, "{info:?}");
                    prop_assert!(!info.database.is_empty(), "{info:?}");
                }
            }
            Ok(())
        },
    );
}

const S3_KEYS: &[&str] = &[
    "access-key",
    "secret-key",
    "bucket",
    "path",
    "endpoint",
    "region",
    "s3-uri-style",
    "storage-class",
    "s3-api-version",
    "delete-older-than-days",
    "tls-ca-chain",
    "attributes",
    "data",
];

const S3_STRINGS: &[&str] = &[
    "AKIAEXAMPLE",
    "synapse-media",
    "a.b-c_d",
    "http://127.0.0.1:9000",
    "https://s3.example.com/",
    "http://[::1]:9000",
    "http://host:0",
    "us-east-1",
    "host",
    "path",
    "synapse/media/",
    "/a/../b",
    "30",
    "0",
    "[\"-----BEGIN CERTIFICATE-----\\nx\\n-----END CERTIFICATE-----\"]",
    "[]",
    "[1]",
    "STANDARD",
];

/// Any s3 provider databag: the connection info or a clear, bounded error that never
/// repeats the keys; what parses is normalised (a bucket S3 accepts, a key prefix, a
/// URL without a trailing slash).
#[test]
fn s3_databag() {
    check(
        "s3_databag",
        proptest::collection::btree_map(text_or(S3_KEYS), text_or(S3_STRINGS), 0..10),
        |bag| {
            match s3::parse(&bag) {
                Ok(info) => {
                    prop_assert!(s3::valid_bucket(&info.bucket), "{info:?}");
                    prop_assert!(
                        info.path.is_empty()
                            || (info.path.ends_with('/') && !info.path.starts_with('/')),
                        "{info:?}"
                    );
                    prop_assert!(info.endpoint.is_some() || info.region.is_some());
                    if let Some(e) = &info.endpoint {
                        prop_assert!(e.starts_with("http") && !e.ends_with('/'), "{e:?}");
                    }
                    prop_assert!(!info.access_key.is_empty() && !info.secret_key.is_empty());
                }
                Err(e) => {
                    let msg = e.to_string();
                    check_bounded(&msg)?;
                    // The same bag with recognisable keys: no message may show them.
                    let mut marked = bag.clone();
                    for (key, mark) in [("access-key", "MARKAK77"), ("secret-key", "MARKSK77")] {
                        if marked.contains_key(key) {
                            marked.insert(key.into(), mark.into());
                        }
                    }
                    if let Err(e) = s3::parse(&marked) {
                        let msg = e.to_string();
                        prop_assert!(!msg.contains("MARK"), "{msg:?} shows a key");
                    }
                }
            }
            Ok(())
        },
    );
}

/// Valid connection info written as s3-integrator writes it parses back to itself.
#[test]
fn s3_databag_round_trip() {
    let word = "[a-z0-9][a-z0-9-]{1,20}[a-z0-9]";
    check(
        "s3_databag_round_trip",
        (
            ("[A-Za-z0-9/+=]{1,40}", "[A-Za-z0-9/+=]{1,40}", word),
            proptest::option::of((word, 1..65535u16)),
            proptest::option::of("[a-z]{2}-[a-z]{3,9}-[1-9]"),
            proptest::collection::vec(word, 0..4),
            any::<bool>(),
        ),
        |((ak, sk, bucket), endpoint, region, segments, path_style)| {
            let region = if endpoint.is_none() && region.is_none() {
                Some("us-east-1".to_string())
            } else {
                region
            };
            let mut bag = Databag::from([
                ("access-key".to_string(), ak.clone()),
                ("secret-key".to_string(), sk.clone()),
                ("bucket".to_string(), bucket.clone()),
                ("path".to_string(), segments.join("/")),
                (
                    "s3-uri-style".to_string(),
                    if path_style { "path" } else { "host" }.to_string(),
                ),
            ]);
            let url = endpoint.map(|(h, p)| format!("http://{h}:{p}"));
            if let Some(u) = &url {
                bag.insert("endpoint".into(), u.clone());
            }
            if let Some(r) = &region {
                bag.insert("region".into(), r.clone());
            }
            let info = s3::parse(&bag).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            prop_assert_eq!(&info.access_key, &ak);
            prop_assert_eq!(&info.secret_key, &sk);
            prop_assert_eq!(&info.bucket, &bucket);
            prop_assert_eq!(&info.endpoint, &url);
            prop_assert_eq!(&info.region, &region);
            let want = if segments.is_empty() {
                String::new()
            } else {
                format!("{}/", segments.join("/"))
            };
            prop_assert_eq!(&info.path, &want);
            let style = if path_style {
                UriStyle::Path
            } else {
                UriStyle::Host
            };
            prop_assert_eq!(info.uri_style, style);
            Ok(())
        },
    );
}

const SMTP_STRINGS: &[&str] = &[
    "smtp.example.com",
    "10.0.0.1",
    "::1",
    "587",
    "25",
    "0",
    "65536",
    "none",
    "not_provided",
    "plain",
    "starttls",
    "tls",
    "True",
    "False",
    "secret:d1b2c3",
    "synapse",
    "example.com",
    "bad host",
];

/// The smtp-integrator databag: a relay, waiting for the host, or an error naming
/// the key (bounded, one line); a relay's email section is a YAML-safe mapping that
/// carries the password only in `smtp_pass`, and only with auth_type plain.
#[test]
fn smtp_databag() {
    let keys: &'static [&'static str] = &[
        "host",
        "port",
        "auth_type",
        "transport_security",
        "skip_ssl_verify",
        "user",
        "password",
        "password_id",
        "domain",
    ];
    check(
        "smtp_databag",
        (databag(keys, SMTP_STRINGS), proptest::option::of(text())),
        |(bag, secret_password)| {
            match smtp::parse(&bag) {
                Err(SmtpError::Pending) => {
                    prop_assert!(bag.get("host").is_none_or(|h| h.trim().is_empty()))
                }
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(msg.starts_with("smtp: "), "{msg:?}");
                    prop_assert!(
                        msg.chars().count() <= 400 && !msg.chars().any(char::is_control),
                        "bounded: {msg:?}"
                    );
                }
                Ok(offer) => {
                    prop_assert!(!offer.host.is_empty() && offer.port > 0);
                    let plain = offer.auth_plain;
                    let password = match &offer.password {
                        PasswordSource::Secret(_) => secret_password,
                        PasswordSource::Plain(p) => Some(p.clone()),
                        PasswordSource::None => None,
                    };
                    if let Ok(server) = offer.with_password(password) {
                        prop_assert_eq!(server.credentials.is_some(), plain);
                        let section = smtp::email_section(
                            &server,
                            &EmailOptions {
                                server_name: "example.com",
                                notif_from: None,
                                enable_notifs: true,
                            },
                        );
                        let yaml = serde_saphyr::to_string(&section)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        let back: Value = serde_saphyr::from_str(&yaml)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!(&back, &section);
                        prop_assert_eq!(section.get("smtp_pass").is_some(), plain);
                    }
                }
            }
            Ok(())
        },
    );
}

/// S3's ListObjectsV2 answer (outside input): any text gives a page or a reason; a
/// listing written as S3 writes it (keys escaped) parses back to its objects.
#[test]
fn s3_list_page() {
    check("s3_list_page", text(), |xml| {
        let _ = parse_list(&xml);
        let _ = parse_list(&format!("<ListBucketResult>{xml}</ListBucketResult>"));
        Ok(())
    });
    check(
        "s3_list_page_round_trip",
        proptest::collection::vec(("[ -~]{1,30}", any::<u64>()), 0..5),
        |objects| {
            let mut xml = String::from("<ListBucketResult><IsTruncated>false</IsTruncated>");
            for (key, size) in &objects {
                let escaped = key
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                xml.push_str(&format!(
                    "<Contents><Key>{escaped}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified><Size>{size}</Size></Contents>"
                ));
            }
            xml.push_str("</ListBucketResult>");
            let page = parse_list(&xml).map_err(TestCaseError::fail)?;
            let got: Vec<(String, u64)> =
                page.objects.into_iter().map(|o| (o.key, o.size)).collect();
            prop_assert_eq!(got, objects);
            prop_assert!(!page.truncated);
            Ok(())
        },
    );
}

/// A `backup-id` parameter (outside input): accepted ids are one object name that
/// maps to a key under the bucket's path and back; others give a bounded reason.
#[test]
fn backup_id_param() {
    check(
        "backup_id_param",
        (text(), proptest::option::of("[a-z0-9]{1,8}")),
        |(id, prefix)| {
            let path = prefix.map(|p| format!("{p}/")).unwrap_or_default();
            match content::check_id(&id) {
                Ok(()) => {
                    prop_assert!(!id.contains('/') && !id.starts_with('.'));
                    let key = content::key(&path, &id);
                    prop_assert_eq!(content::id_of(&path, &key), Some(id.clone()));
                }
                Err(msg) => check_bounded(&msg)?,
            }
            Ok(())
        },
    );
}

/// Any text as `notif_from`: accepted addresses have one @ in their address part.
#[test]
fn notif_from_sender() {
    let strings: &[&str] = &[
        "a@example.com",
        "Matrix <noreply@example.com>",
        "<",
        ">",
        "@",
        " ",
    ];
    check("notif_from_sender", text_or(strings), |raw| {
        if smtp::check_sender(&raw).is_ok() {
            prop_assert!(raw.contains('@'), "{raw:?}");
        }
        Ok(())
    });
}

/// Any text: a network or a reason naming the text; a network prints in a form that
/// parses back to itself.
#[test]
fn admin_cidr() {
    let strings: &[&str] = &[
        "10.0.0.0/8",
        "10.0.0.1/8",
        "fd00::/8",
        "::/0",
        "1.2.3.4/32",
        "/",
        "1.2.3.4/",
    ];
    check("admin_cidr", text_or(strings), |raw| {
        match Cidr::parse(&raw) {
            Ok(c) => prop_assert_eq!(Cidr::parse(&c.to_string()), Ok(c)),
            Err(e) => prop_assert!(e.contains(&format!("{raw:?}")), "{e}"),
        }
        Ok(())
    });
    let v4 = (any::<u32>(), 0u8..=32).prop_map(|(a, p)| {
        let m = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
        format!("{}/{p}", std::net::Ipv4Addr::from(a & m))
    });
    let v6 = (any::<u128>(), 0u8..=128).prop_map(|(a, p)| {
        let m = u128::MAX.checked_shl(128 - u32::from(p)).unwrap_or(0);
        format!("{}/{p}", std::net::Ipv6Addr::from(a & m))
    });
    check("admin_cidr_networks", prop_oneof![v4, v6], |net| {
        prop_assert_eq!(
            Cidr::parse(&net).map(|c| c.to_string()),
            Ok(net.clone()),
            "{}",
            net
        );
        Ok(())
    });
}

#[test]
fn database_endpoints() {
    check("database_endpoints", text_or(DB_STRINGS), |raw| {
        match parse_endpoints(&raw) {
            Ok(eps) => {
                prop_assert!(!eps.is_empty());
                for e in &eps {
                    prop_assert!(!e.host.is_empty() && e.port > 0, "{raw:?}: {e:?}");
                }
            }
            Err(e) => prop_assert!(!e.is_empty()),
        }
        Ok(())
    });
}

/// Endpoints written as postgresql-k8s writes them parse back to themselves.
#[test]
fn database_endpoints_round_trip() {
    // Host names as DNS has them (labels without a leading or trailing `-`), and
    // IPv6 addresses as they print.
    let host = prop_oneof![
        "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,3}",
        any::<[u16; 8]>().prop_map(|s| std::net::Ipv6Addr::from(s).to_string()),
    ];
    let endpoint = (host, 1u16..).prop_map(|(host, port)| Endpoint { host, port });
    check(
        "database_endpoints_round_trip",
        proptest::collection::vec(endpoint, 1..5),
        |eps| {
            let raw = eps
                .iter()
                .map(|e| {
                    if e.host.contains(':') {
                        format!("[{}]:{}", e.host, e.port)
                    } else {
                        format!("{}:{}", e.host, e.port)
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            prop_assert_eq!(parse_endpoints(&raw), Ok(eps), "{}", raw);
            Ok(())
        },
    );
}

#[test]
fn loki_endpoint() {
    let value = prop_oneof![
        json(
            &["url"],
            &[
                "http://loki:3100/loki/api/v1/push",
                " https://x ",
                "ftp://x"
            ]
        )
        .prop_map(|v| v.to_string()),
        text(),
    ];
    let bag = proptest::collection::btree_map(text_or(&["endpoint"]), value, 0..3);
    check("loki_endpoint", bag, |bag| {
        if let Some(url) = loki::endpoint_url(&bag) {
            prop_assert!(
                url.starts_with("http://") || url.starts_with("https://"),
                "{url:?}"
            );
            prop_assert_eq!(url.trim(), url.as_str());
        }
        Ok(())
    });
}

#[test]
fn grafana_content() {
    let b64 = "[A-Za-z0-9+/= \n]{0,80}";
    check("grafana_content", (text(), b64, text()), |(t, b, doc)| {
        // The round trip of what the charm publishes.
        let encoded = grafana::encode_content(&t);
        prop_assert!(encoded.is_ok(), "{encoded:?}");
        let encoded = encoded.unwrap_or_default();
        prop_assert_eq!(
            grafana::decode_content(&encoded),
            Some(t.clone().into_bytes())
        );
        prop_assert_eq!(
            grafana::b64_decode(&grafana::b64_encode(t.as_bytes())),
            Some(t.into_bytes())
        );
        // Anything a remote databag holds.
        let _ = grafana::b64_decode(&b);
        let _ = grafana::decode_content(&b);
        let _ = grafana::decode_dashboards(&doc);
        Ok(())
    });
}

#[test]
fn grafana_dashboards_doc() {
    let keys: &'static [&'static str] = &["templates", "content", "uuid", "file:synapse", "charm"];
    let strings: &'static [&'static str] = &["/Td6WFoAAATm1rRGAgAhARYAAAB0L+Wj", "AAAA"];
    check("grafana_dashboards_doc", json(keys, strings), |v| {
        let _ = grafana::decode_dashboards(&v.to_string());
        let _ = grafana::same_templates(Some(&v.to_string()), &Map::new());
        Ok(())
    });
}

#[test]
fn prometheus_job() {
    let keys: &'static [&'static str] = &prometheus::ALLOWED_JOB_KEYS;
    check("prometheus_job", object(keys, scalar(&[])), |job| {
        let Value::Object(job) = job else {
            return Ok(());
        };
        let clean = prometheus::sanitize_job(&job);
        for (k, v) in &clean {
            prop_assert!(prometheus::ALLOWED_JOB_KEYS.contains(&k.as_str()));
            prop_assert_eq!(job.get(k), Some(v));
        }
        Ok(())
    });
}

const KEY_FIELDS: &[&str] = &[
    "registration-shared-secret",
    "macaroon-secret-key",
    "form-secret",
    "signing-key",
];

#[test]
fn keys_secret_content() {
    let values: &'static [&'static str] =
        &["ed25519 a_AbCd c2VlZA", "ed25519 b_x y", "ed25519 a_x", "x"];
    let content = proptest::collection::btree_map(text_or(KEY_FIELDS), text_or(values), 0..6);
    check("keys_secret_content", content, |content| {
        match SynapseKeys::from_content(&content) {
            Ok(keys) => {
                // Read content survives being written back.
                let again = SynapseKeys::from_content(&keys.to_content());
                prop_assert!(again.as_ref().ok() == Some(&keys), "{again:?}");
                prop_assert!(keys.key_id().starts_with("a_"), "{}", keys.key_id());
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
        Ok(())
    });
}

#[test]
fn action_user_id() {
    let names: &'static [&'static str] = &[
        "alice",
        "@alice:example.com",
        "@alice:other",
        "_bot",
        "A",
        "@:example.com",
        "a/b+c=d.e-f",
    ];
    check(
        "action_user_id",
        (
            text_or(names),
            text_or(&["example.com", "example.com:8448"]),
        ),
        |(username, server)| {
            match user_id(&username, &server) {
                Ok(id) => {
                    prop_assert!(id.len() <= 255, "{id:?}");
                    let local = id
                        .strip_prefix('@')
                        .and_then(|r| r.strip_suffix(server.as_str()))
                        .and_then(|r| r.strip_suffix(':'));
                    prop_assert!(local.is_some(), "{id:?} is not @local:{server}");
                    let local = local.unwrap_or_default();
                    prop_assert!(!local.is_empty() && !local.starts_with('_'), "{id:?}");
                    prop_assert!(
                        local.chars().all(|c| c.is_ascii_lowercase()
                            || c.is_ascii_digit()
                            || "._=-/+".contains(c)),
                        "{id:?}"
                    );
                }
                Err(e) => prop_assert!(!e.0.is_empty()),
            }
            Ok(())
        },
    );
}

fn check_bounded(s: &str) -> Result<(), TestCaseError> {
    prop_assert!(!s.chars().any(char::is_control), "{s:?}");
    prop_assert!(s.chars().count() <= 301, "{} chars", s.chars().count());
    Ok(())
}

#[test]
fn config_check_answer() {
    let lines: &'static [&'static str] = &[
        r#"{"ok": true}"#,
        r#"{"ok": false, "path": ["server_name"], "error": "bad"}"#,
        r#"{"ok": false, "error": "'rc_joins' is wrong\n\u0000"}"#,
        r#"{"ok": false, "path": [], "error": ""}"#,
        r#"{"ok": 1}"#,
        "\n",
        "Traceback (most recent call last):",
    ];
    let bytes = prop_oneof![
        text_or(lines).prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..200),
    ];
    let code = prop_oneof![Just(0i64), Just(1), Just(2), Just(-1), any::<i64>()];
    check(
        "config_check_answer",
        (code, bytes.clone(), bytes),
        |(code, out, err)| {
            match verdict(code, &out, &err) {
                Verdict::Accepted => prop_assert_eq!(code, 0),
                Verdict::Rejected { options, message } => {
                    prop_assert_eq!(code, 1);
                    for o in options {
                        prop_assert!(OPTIONS.contains(&o), "{o:?}");
                    }
                    check_bounded(&message)?;
                }
                Verdict::Failed(message) => check_bounded(&message)?,
            }
            Ok(())
        },
    );
}

#[test]
fn bounded_text() {
    check("bounded_text", text(), |t| {
        let b = bounded(&t);
        check_bounded(&b)?;
        prop_assert_eq!(b.trim(), b.as_str());
        prop_assert_eq!(bounded(&b), b.clone(), "not idempotent");
        Ok(())
    });
}

/// Hook tools that print `stdout` (or fail with `stderr`) for every call.
struct Printing {
    stdout: Vec<u8>,
    stderr: Option<String>,
}

impl ToolRunner for Printing {
    fn run(&self, tool: &'static str, _: &[&str], _: Option<&[u8]>) -> ToolResult<Vec<u8>> {
        match &self.stderr {
            Some(e) => Err(ToolError::from_stderr(tool, e)),
            None => Ok(self.stdout.clone()),
        }
    }
}

/// Whatever the hook tools print, every read the charm makes gives a value or an error.
#[test]
fn hook_tool_output() {
    let keys: &'static [&'static str] = &[
        "bind-addresses",
        "addresses",
        "value",
        "ingress-addresses",
        "revision",
        "label",
        "synapse/0",
    ];
    let strings: &'static [&'static str] = &["database:1", "db", "10.0.0.1", "secret:abc", "true"];
    let stdout = prop_oneof![
        3 => json(keys, strings).prop_map(|v| v.to_string().into_bytes()),
        1 => text_or(&["", "null", "true", "[\"database:1\", \"x\"]", "{}"]).prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..100),
    ];
    let stderr = proptest::option::of(text_or(&[
        "ERROR relation not found",
        "ERROR permission denied",
        "ERROR secret not found",
        "ERROR this unit is not the leader",
    ]));
    check("hook_tool_output", (stdout, stderr), |(stdout, stderr)| {
        let tools = ProcessTools::new(Printing { stdout, stderr });
        let rel = RelationId {
            endpoint: "database".into(),
            id: 1,
        };
        let _ = tools.config_get();
        let _ = tools.is_leader();
        let _ = tools.relation_ids("database");
        let _ = tools.relation_list(&rel);
        let _ = tools.relation_remote_app(&rel);
        let _ = tools.relation_get(&rel, "postgresql-k8s", true);
        let _ = tools.state_get();
        let _ = tools.secret_get(Some("secret:abc"), None, SecretRead::Refresh);
        let _ = tools.secret_info_by_label("synapse-keys");
        let _ = tools.secret_add(
            &BTreeMap::new(),
            "l",
            "d",
            synapse_k8s_charm::juju::tools::SecretOwner::Application,
        );
        let _ = tools.network_get("synapse-peers");
        let _ = tools.opened_ports();
        if let Err(e) = tools.action_get() {
            prop_assert!(!e.to_string().is_empty());
        }
        Ok(())
    });
}

const REGISTRATION_KEYS: &[&str] = &[
    "id",
    "url",
    "as_token",
    "hs_token",
    "sender_localpart",
    "namespaces",
    "users",
    "aliases",
    "rooms",
    "regex",
    "exclusive",
    "rate_limited",
    "protocols",
    "receive_ephemeral",
];
const REGISTRATION_VALUES: &[&str] = &[
    "irc",
    "http://10.0.0.1:9000",
    "https://bridge.example.com/as",
    "ftp://x",
    "at-1",
    "a b",
    "ircbot",
    "@irc_.*:example\\.com",
    "(",
    "[a-",
    "(?P<n>a)(?P=n)",
    "a{,3}",
    "\\p{L}",
];

#[test]
fn appservice_registration() {
    use synapse_k8s_charm::relations::matrix_auth::registration::Registration;
    let doc = prop_oneof![
        3 => json(REGISTRATION_KEYS, REGISTRATION_VALUES).prop_map(|v| v.to_string()),
        1 => text(),
    ];
    check("appservice_registration", doc, |doc| {
        match Registration::parse(&doc) {
            Ok(r) => {
                // What is written back parses to the same registration.
                let again = Registration::parse(&r.text);
                prop_assert!(again.as_ref().ok() == Some(&r), "{again:?}");
                prop_assert!(!r.id.is_empty() && !r.as_token.is_empty(), "{r:?}");
            }
            Err(e) => prop_assert!(!e.field.is_empty() && !e.reason.is_empty(), "{e:?}"),
        }
        Ok(())
    });
}

#[test]
fn python_regex() {
    use synapse_k8s_charm::relations::matrix_auth::pyre;
    let pattern = prop_oneof![
        3 => "[a\\\\()\\[\\]{}*+?|^$.,:=!<>#PpxzZNu0-9_-]{0,24}",
        1 => text(),
    ];
    check("python_regex", pattern, |p| {
        if let Err(e) = pyre::check(&p) {
            prop_assert!(!e.0.is_empty());
        }
        Ok(())
    });
}

#[test]
fn fernet_token() {
    use base64::Engine;
    use synapse_k8s_charm::relations::matrix_auth::fernet::Key;
    let key = Key::parse("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=").unwrap();
    let token = prop_oneof![
        2 => text(),
        2 => proptest::collection::vec(any::<u8>(), 0..120).prop_map(|mut b| {
            if let Some(first) = b.first_mut() {
                *first = 0x80;
            }
            base64::engine::general_purpose::URL_SAFE.encode(b)
        }),
    ];
    check("fernet_token", (token, text()), |(token, key_text)| {
        // Anything not made with the key is refused with a reason, never a panic.
        prop_assert!(key.decrypt(&token).is_err());
        let _ = Key::parse(&key_text).map(|k| k.decrypt(&token));
        Ok(())
    });
}

#[test]
fn fernet_round_trip() {
    use synapse_k8s_charm::relations::matrix_auth::fernet::Key;
    let key = Key::parse("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=").unwrap();
    let input = (
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<u64>(),
        any::<[u8; 16]>(),
    );
    check("fernet_round_trip", input, |(plain, ts, iv)| {
        let token = key.encrypt_with(&plain, ts, iv);
        prop_assert_eq!(key.decrypt(&token), Ok(plain));
        Ok(())
    });
}
