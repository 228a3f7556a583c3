//! Property tests: the hook environment is outside input, so any `JUJU_*` values give a
//! context or a clear [`ContextError`], never a panic; and every valid context survives
//! `to_env` then `from_env` unchanged. Cases per property: `PROPTEST_CASES` (default
//! 2000; `make fuzz` runs 100000).

#[path = "../../../tests/support/property.rs"]
mod property;

use std::collections::BTreeMap;

use juju_hook::{
    parse_event, same_secret, secret_id, secret_uri, ContextError, Event, HookContext,
    RelationHook, RelationId, SecretHook, StorageHook,
};
use proptest::prelude::*;

use property::{check, text, text_or};

/// Every variable the contract reads.
const VARS: &[&str] = &[
    "JUJU_UNIT_NAME",
    "JUJU_MODEL_NAME",
    "JUJU_MODEL_UUID",
    "JUJU_VERSION",
    "JUJU_CHARM_HTTP_PROXY",
    "JUJU_CHARM_HTTPS_PROXY",
    "JUJU_CHARM_NO_PROXY",
    "JUJU_DISPATCH_PATH",
    "JUJU_HOOK_NAME",
    "JUJU_ACTION_NAME",
    "JUJU_ACTION_UUID",
    "JUJU_RELATION",
    "JUJU_RELATION_ID",
    "JUJU_REMOTE_APP",
    "JUJU_REMOTE_UNIT",
    "JUJU_DEPARTING_UNIT",
    "JUJU_SECRET_ID",
    "JUJU_SECRET_LABEL",
    "JUJU_SECRET_REVISION",
    "JUJU_WORKLOAD_NAME",
    "JUJU_NOTICE_ID",
    "JUJU_NOTICE_TYPE",
    "JUJU_NOTICE_KEY",
    "JUJU_PEBBLE_CHECK_NAME",
    "JUJU_STORAGE_ID",
    "JUJU_STORAGE_LOCATION",
];

/// Values that reach the parsers' branches (valid ones and near misses).
const VALUES: &[&str] = &[
    "synapse/0",
    "synapse/4294967295",
    "synapse/4294967296",
    "synapse/-1",
    "synapse/",
    "/0",
    "a/b/3",
    "hooks/install",
    "hooks/update-status",
    "hooks/database-relation-changed",
    "hooks/-relation-joined",
    "hooks/database-relation-departed",
    "hooks/secret-changed",
    "hooks/secret-rotate",
    "hooks/synapse-pebble-ready",
    "hooks/synapse-pebble-custom-notice",
    "hooks/synapse-pebble-check-failed",
    "hooks/synapse-pebble-check-recovered",
    "hooks/data-storage-attached",
    "hooks/data-storage-detaching",
    "hooks/",
    "hooks",
    "actions/register-user",
    "actions/",
    "/",
    "database",
    "database:7",
    "database:",
    ":7",
    "db:x",
    "db:18446744073709551615",
    "db:18446744073709551616",
    "a:b:3",
    "postgresql-k8s/1",
    "postgresql-k8s",
    "secret:abc",
    "secret://uuid/abc",
    "3",
    "-1",
    "18446744073709551616",
    "data/0",
];

fn env_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let known = (
        proptest::sample::select(VARS).prop_map(str::to_string),
        text_or(VALUES),
    );
    let other = (text(), text_or(VALUES));
    (
        proptest::collection::vec(known, 0..14),
        proptest::collection::vec(other, 0..3),
    )
        .prop_map(|(known, other)| known.into_iter().chain(other).collect())
}

/// A clear error names a variable and says what is wrong with it.
fn clear(e: &ContextError, env: &BTreeMap<String, String>) -> Result<(), TestCaseError> {
    let text = e.to_string();
    match e {
        ContextError::Missing(var) => {
            prop_assert!(
                env.get(*var).is_none_or(String::is_empty),
                "{var} reported missing but set: {env:?}"
            );
            prop_assert!(text.starts_with(var), "{text:?}");
        }
        ContextError::Invalid { var, value } => {
            prop_assert!(
                env.get(*var) == Some(value),
                "{var} reported with {value:?}, set to {:?}",
                env.get(*var)
            );
            prop_assert!(text.starts_with(var), "{text:?}");
        }
    }
    Ok(())
}

#[test]
fn hook_env() {
    check("hook_env", env_map(), |vars| {
        let env = |k: &str| vars.get(k).cloned();
        match parse_event(&env) {
            Ok(event) => {
                // Every event has a name and a dispatch path without panicking.
                let _ = (event.name(), event.hook_name(), event.to_env());
            }
            Err(e) => clear(&e, &vars)?,
        }
        match HookContext::from_env(&env) {
            Ok(ctx) => {
                let unit = vars.get("JUJU_UNIT_NAME").cloned().unwrap_or_default();
                prop_assert!(ctx.unit_name == unit, "{ctx:?}");
                let (app, n) = unit.split_once('/').unwrap_or_default();
                prop_assert!(
                    ctx.app_name == app && n.parse() == Ok(ctx.unit_number),
                    "{unit:?} -> {ctx:?}"
                );
                let _ = ctx.to_env();
            }
            Err(e) => clear(&e, &vars)?,
        }
        Ok(())
    });
}

fn nonempty() -> BoxedStrategy<String> {
    text().prop_filter("non-empty", |s| !s.is_empty()).boxed()
}

fn opt_nonempty() -> BoxedStrategy<Option<String>> {
    proptest::option::of(nonempty()).boxed()
}

fn relation_hook() -> impl Strategy<Value = RelationHook> {
    proptest::sample::select(vec![
        RelationHook::Created,
        RelationHook::Joined,
        RelationHook::Changed,
        RelationHook::Departed,
        RelationHook::Broken,
    ])
}

fn event() -> impl Strategy<Value = Event> {
    let simple = proptest::sample::select(vec![
        Event::Install,
        Event::Start,
        Event::Stop,
        Event::Remove,
        Event::UpgradeCharm,
        Event::ConfigChanged,
        Event::LeaderElected,
        Event::LeaderSettingsChanged,
        Event::UpdateStatus,
        Event::Exec,
    ]);
    let relation = (
        relation_hook(),
        nonempty(),
        any::<u64>(),
        opt_nonempty(),
        opt_nonempty(),
        opt_nonempty(),
    )
        .prop_map(
            |(hook, endpoint, id, remote_app, remote_unit, departing_unit)| {
                // Juju's remote app is derived from the remote unit when it is not set.
                let remote_app = remote_app.or_else(|| {
                    remote_unit
                        .as_deref()
                        .and_then(|u| u.split_once('/'))
                        .map(|(a, _)| a.to_string())
                        .filter(|a| !a.is_empty())
                });
                let remote_unit = match (&remote_app, remote_unit) {
                    // An empty app before the `/` cannot be told from an unset one.
                    (None, Some(u)) if u.contains('/') => None,
                    (_, u) => u,
                };
                Event::Relation {
                    hook,
                    relation: RelationId { endpoint, id },
                    remote_app,
                    remote_unit,
                    departing_unit,
                }
            },
        );
    let secret = (
        proptest::sample::select(vec![
            SecretHook::Changed,
            SecretHook::Expired,
            SecretHook::Remove,
            SecretHook::Rotate,
        ]),
        nonempty(),
        opt_nonempty(),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(hook, id, label, revision)| Event::Secret {
            hook,
            id,
            label,
            revision,
        });
    let storage = (
        proptest::sample::select(vec![StorageHook::Attached, StorageHook::Detaching]),
        nonempty(),
        opt_nonempty(),
    )
        .prop_map(|(hook, storage_id, location)| Event::Storage {
            hook,
            storage_id,
            location,
        });
    let workload = prop_oneof![
        nonempty().prop_map(|container| Event::PebbleReady { container }),
        (nonempty(), text(), text(), text()).prop_map(
            |(container, notice_id, notice_type, notice_key)| Event::PebbleCustomNotice {
                container,
                notice_id,
                notice_type,
                notice_key,
            }
        ),
        (nonempty(), nonempty())
            .prop_map(|(container, check)| Event::PebbleCheckFailed { container, check }),
        (nonempty(), nonempty())
            .prop_map(|(container, check)| Event::PebbleCheckRecovered { container, check }),
    ];
    let action = (text(), opt_nonempty()).prop_map(|(name, id)| Event::Action { name, id });
    // Unknown: a path that names no hook or action this contract knows.
    let unknown = prop_oneof![
        "[^/]{1,30}",
        "(other|charm|x)/.{0,30}",
        "hooks/collect-metrics",
        "hooks/",
    ]
    .prop_map(|path| Event::Unknown { path });
    prop_oneof![simple, relation, secret, storage, workload, action, unknown]
}

fn context() -> impl Strategy<Value = HookContext> {
    (
        "[^/]{0,30}",
        any::<u32>(),
        text(),
        text(),
        opt_nonempty(),
        event(),
        (opt_nonempty(), opt_nonempty(), opt_nonempty()),
    )
        .prop_map(
            |(app, n, model, uuid, version, event, (http, https, no_proxy))| {
                let unit = format!("{app}/{n}");
                let mut ctx = HookContext::new(&unit, &model, &uuid, version.as_deref(), event)
                    .unwrap_or_else(|e| panic!("{unit:?} is a valid unit name: {e}"));
                ctx.http_proxy = http;
                ctx.https_proxy = https;
                ctx.no_proxy = no_proxy;
                ctx
            },
        )
}

#[test]
fn hook_env_round_trip() {
    check("hook_env_round_trip", context(), |ctx| {
        let vars: BTreeMap<String, String> = ctx.to_env().into_iter().collect();
        let env = |k: &str| vars.get(k).cloned();
        let back = HookContext::from_env(&env);
        prop_assert!(
            back.as_ref() == Ok(&ctx),
            "{ctx:?}\n-> {vars:?}\n-> {back:?}"
        );
        Ok(())
    });
}

#[test]
fn relation_id_round_trip() {
    check(
        "relation_id_round_trip",
        (nonempty(), any::<u64>(), text()),
        |(endpoint, id, junk)| {
            let rel = RelationId { endpoint, id };
            prop_assert!(
                RelationId::parse(&rel.to_string()).as_ref() == Some(&rel),
                "{rel:?}"
            );
            if let Some(r) = RelationId::parse(&junk) {
                prop_assert!(!r.endpoint.is_empty(), "{junk:?} -> {r:?}");
            }
            Ok(())
        },
    );
}

#[test]
fn secret_uri_forms() {
    check("secret_uri_forms", text_or(VALUES), |uri| {
        let id = secret_id(&uri);
        prop_assert!(!id.contains('/'), "{uri:?} -> {id:?}");
        prop_assert!(secret_id(&secret_uri(&uri)) == id, "{uri:?}");
        prop_assert!(same_secret(&uri, &secret_uri(&uri)), "{uri:?}");
        Ok(())
    });
}
