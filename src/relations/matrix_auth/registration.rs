//! An appservice registration as Synapse loads it (`app_service_config_files`), checked
//! before Synapse sees it: Synapse refuses to start on a registration it cannot load,
//! so one bad bridge would take every user down. Pure.
//!
//! The checks follow Synapse's loader: `id`, `as_token`, `hs_token` and
//! `sender_localpart` are strings (here also non-empty, tokens without whitespace or
//! control characters, the localpart in the characters URL quoting leaves alone);
//! `url` is a string (here: an `http`/`https` URL) or an explicit null; `namespaces`
//! is a mapping whose `users`, `aliases` and `rooms` are lists of `{regex, exclusive}`
//! with a string Python's `re` compiles and a boolean; the optional flags are booleans
//! and `protocols` a list of strings. Across registrations: no shared `id`, `as_token`
//! or `sender_localpart`, and no exclusive namespace regex claimed twice.

use serde_json::{Map, Value};

use super::pyre;

/// The namespace kinds Synapse knows.
pub const NAMESPACES: [&str; 3] = ["users", "aliases", "rooms"];

/// A field of a registration and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A registration Synapse can load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub id: String,
    pub as_token: String,
    pub sender_localpart: String,
    /// `(namespace kind, regex)` of each exclusive namespace.
    pub exclusive: Vec<(String, String)>,
    /// What Synapse reads: the checked document, written back as JSON (which YAML
    /// loaders read as it is), so Synapse loads exactly what was checked.
    pub text: String,
}

impl Registration {
    /// Parses and checks a registration document (YAML, as the requirer wrote it).
    pub fn parse(text: &str) -> Result<Self, FieldError> {
        let doc: Value = serde_saphyr::from_str(text).map_err(|e| {
            bad(
                "registration",
                format!("not a YAML document: {}", first_line(&e.to_string())),
            )
        })?;
        let Value::Object(map) = &doc else {
            return Err(bad("registration", "not a YAML mapping"));
        };
        let id = required(map, "id")?;
        if id.chars().any(char::is_control) {
            return Err(bad("id", "contains control characters"));
        }
        let as_token = token(map, "as_token")?;
        token(map, "hs_token")?;
        let sender_localpart = required(map, "sender_localpart")?;
        if let Some(c) = sender_localpart
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_.-~/".contains(*c)))
        {
            return Err(bad(
                "sender_localpart",
                format!("{c:?} is not allowed (letters, digits and _ . - ~ / only)"),
            ));
        }
        match map.get("url") {
            Some(Value::Null) => {}
            Some(Value::String(u)) => url(u)?,
            None => return Err(bad("url", "missing (a URL, or null for no pushes)")),
            Some(_) => return Err(bad("url", "not a string or null")),
        }
        let exclusive = namespaces(map.get("namespaces"))?;
        for flag in [
            "rate_limited",
            "receive_ephemeral",
            "de.sorunome.msc2409.push_ephemeral",
            "org.matrix.msc3202",
            "io.element.msc4190",
        ] {
            if map
                .get(flag)
                .is_some_and(|v| !v.is_boolean() && !v.is_null())
            {
                return Err(bad(flag, "not true or false"));
            }
        }
        match map.get("protocols") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
            Some(_) => return Err(bad("protocols", "not a list of strings")),
        }
        let text =
            serde_json::to_string_pretty(&doc).map_err(|e| bad("registration", e.to_string()))?;
        Ok(Self {
            id,
            as_token,
            sender_localpart,
            exclusive,
            text: format!("{text}\n"),
        })
    }

    /// The first way `self` clashes with `other`, naming the field.
    pub fn clash(&self, other: &Registration) -> Option<FieldError> {
        if self.id == other.id {
            return Some(bad("id", format!("{:?} is already used", self.id)));
        }
        if self.sender_localpart == other.sender_localpart {
            return Some(bad(
                "sender_localpart",
                format!("{:?} is already used", self.sender_localpart),
            ));
        }
        if self.as_token == other.as_token {
            return Some(bad("as_token", "already used"));
        }
        let theirs: Vec<&(String, String)> = other.exclusive.iter().collect();
        self.exclusive
            .iter()
            .find(|ns| theirs.contains(ns))
            .map(|(kind, re)| {
                bad(
                    format!("namespaces.{kind}"),
                    format!("exclusive regex {re:?} is already claimed"),
                )
            })
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

fn required(map: &Map<String, Value>, field: &str) -> Result<String, FieldError> {
    match map.get(field) {
        None | Some(Value::Null) => Err(bad(field, "missing")),
        Some(Value::String(s)) if s.trim().is_empty() => Err(bad(field, "empty")),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(bad(field, "not a string")),
    }
}

fn token(map: &Map<String, Value>, field: &str) -> Result<String, FieldError> {
    let t = required(map, field)?;
    if t.chars()
        .any(|c| c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return Err(bad(field, "must be printable ASCII without spaces"));
    }
    Ok(t)
}

fn url(u: &str) -> Result<(), FieldError> {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"))
        .ok_or_else(|| bad("url", format!("{u:?} is not an http:// or https:// URL")))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("url", format!("{u:?} has no host or contains spaces")));
    }
    Ok(())
}

fn namespaces(value: Option<&Value>) -> Result<Vec<(String, String)>, FieldError> {
    let Some(Value::Object(ns)) = value else {
        return Err(bad("namespaces", "missing or not a mapping"));
    };
    let mut exclusive = vec![];
    for kind in NAMESPACES {
        let entries = match ns.get(kind) {
            None | Some(Value::Null) => continue,
            Some(Value::Array(a)) => a,
            Some(_) => return Err(bad(format!("namespaces.{kind}"), "not a list")),
        };
        for (i, entry) in entries.iter().enumerate() {
            let field = format!("namespaces.{kind}[{i}]");
            let Value::Object(entry) = entry else {
                return Err(bad(field, "not a mapping with regex and exclusive"));
            };
            let Some(Value::String(re)) = entry.get("regex") else {
                return Err(bad(format!("{field}.regex"), "missing or not a string"));
            };
            pyre::check(re).map_err(|e| {
                bad(
                    format!("{field}.regex"),
                    format!("{re:?} is not a valid regex: {e}"),
                )
            })?;
            match entry.get("exclusive") {
                Some(Value::Bool(true)) => exclusive.push((kind.to_string(), re.clone())),
                Some(Value::Bool(false)) => {}
                _ => {
                    return Err(bad(
                        format!("{field}.exclusive"),
                        "missing or not true or false",
                    ))
                }
            }
        }
    }
    Ok(exclusive)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const GOOD: &str = "id: irc\nurl: http://10.0.0.5:9000\nas_token: at-1\nhs_token: ht-1\nsender_localpart: ircbot\nrate_limited: false\nnamespaces:\n  users:\n    - exclusive: true\n      regex: '@irc_.*:example\\.com'\n  aliases: []\n  rooms: []\n";

    #[test]
    fn a_good_registration_is_written_back_as_checked() {
        let r = Registration::parse(GOOD).unwrap();
        assert_eq!(r.id, "irc");
        assert_eq!(
            r.exclusive,
            vec![("users".into(), "@irc_.*:example\\.com".into())]
        );
        let back: Value = serde_json::from_str(&r.text).unwrap();
        assert_eq!(back["url"], "http://10.0.0.5:9000");
        assert_eq!(back["namespaces"]["users"][0]["exclusive"], true);
    }

    fn with(from: &str, to: &str) -> Result<Registration, FieldError> {
        assert!(GOOD.contains(from), "{from}");
        Registration::parse(&GOOD.replace(from, to))
    }

    #[test]
    fn each_bad_field_is_named() {
        for (from, to, field) in [
            ("id: irc\n", "", "id"),
            ("id: irc", "id: ''", "id"),
            ("id: irc", "id: [1]", "id"),
            ("url: http://10.0.0.5:9000", "url: ftp://x", "url"),
            ("url: http://10.0.0.5:9000\n", "", "url"),
            ("as_token: at-1", "as_token: 'a b'", "as_token"),
            ("hs_token: ht-1\n", "", "hs_token"),
            (
                "sender_localpart: ircbot",
                "sender_localpart: 'irc bot'",
                "sender_localpart",
            ),
            ("rate_limited: false", "rate_limited: 3", "rate_limited"),
            (
                "'@irc_.*:example\\.com'",
                "'@irc_(.*'",
                "namespaces.users[0].regex",
            ),
            (
                "exclusive: true",
                "exclusive: 'yes please'",
                "namespaces.users[0].exclusive",
            ),
            ("  aliases: []", "  aliases: 3", "namespaces.aliases"),
            ("namespaces:", "namespace:", "namespaces"),
        ] {
            let err = with(from, to).expect_err(to);
            assert_eq!(err.field, field, "{to}: {err}");
        }
        assert_eq!(
            Registration::parse("[1, 2]").unwrap_err().field,
            "registration"
        );
        assert_eq!(
            Registration::parse("a: [").unwrap_err().field,
            "registration"
        );
    }

    #[test]
    fn null_url_is_allowed() {
        assert!(with("url: http://10.0.0.5:9000", "url: null").is_ok());
    }

    #[test]
    fn clashes_name_the_field() {
        let a = Registration::parse(GOOD).unwrap();
        let other = |s: &str| Registration::parse(s).unwrap();
        let b = other(&GOOD.replace("at-1", "at-2").replace("ircbot", "bot2"));
        assert_eq!(a.clash(&b).unwrap().field, "id");
        let c = other(&GOOD.replace("id: irc", "id: two").replace("at-1", "at-2"));
        assert_eq!(c.clash(&a).unwrap().field, "sender_localpart");
        let d = other(&GOOD.replace("id: irc", "id: two").replace("ircbot", "bot2"));
        assert_eq!(d.clash(&a).unwrap().field, "as_token");
        let e = other(
            &GOOD
                .replace("id: irc", "id: two")
                .replace("ircbot", "bot2")
                .replace("at-1", "at-2"),
        );
        assert_eq!(
            e.clash(&a).unwrap().to_string(),
            "namespaces.users: exclusive regex \"@irc_.*:example\\\\.com\" is already claimed"
        );
        let f = other(
            &GOOD
                .replace("id: irc", "id: two")
                .replace("ircbot", "bot2")
                .replace("at-1", "at-2")
                .replace("exclusive: true", "exclusive: false"),
        );
        assert_eq!(f.clash(&a), None);
    }
}
