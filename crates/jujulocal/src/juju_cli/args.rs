//! Argument parsing as the `juju` client does it (Go `gnuflag`): `--name value`,
//! `--name=value`, `-n value`, booleans as `--trust` or `--trust=true`, flags mixed
//! with positional arguments, `--` ending the flags, and repeatable flags
//! (`--config`, `--resource`). An unknown flag is an error, with Juju's message.

use crate::Error;

// The same flag shapes as the hook tools' (both follow Go's `gnuflag`).
pub use crate::flags::{boolean, val, Flag};

/// Flags every command accepts (Juju's global and model options).
pub const GLOBAL: &[Flag] = &[
    val(&["model", "m"]),
    boolean(&["debug"]),
    boolean(&["verbose"]),
    boolean(&["quiet"]),
    boolean(&["show-log"]),
    boolean(&["no-color"]),
    boolean(&["no-browser-login", "B"]),
    val(&["logging-config"]),
];

/// Parsed arguments: flags by their first name, in order, and positional arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub flags: Vec<(&'static str, String)>,
    pub pos: Vec<String>,
}

impl Args {
    /// The last value given for a flag.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for a repeatable flag, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.flags
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a boolean flag is set (`--x`, `--x=true`).
    pub fn has(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| matches!(v, "true" | "True" | "1"))
    }
}

/// Parses `args` against the command's flags and [`GLOBAL`]. With `stop_at_positional`
/// = n, everything from the positional argument after the first n on is positional
/// (`juju ssh UNIT ls -l`, `juju exec --unit U ls -l`).
pub fn parse(
    args: &[String],
    spec: &[Flag],
    stop_at_positional: Option<usize>,
) -> Result<Args, Error> {
    let mut out = Args::default();
    let mut i = 0;
    let mut done = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if done || !a.starts_with('-') || a == "-" {
            // The command line of `exec`/`ssh` starts here: its flags are its own.
            if stop_at_positional.is_some_and(|n| out.pos.len() >= n) {
                done = true;
            }
            out.pos.push(a.clone());
            continue;
        }
        if a == "--" {
            done = true;
            continue;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let flag = spec
            .iter()
            .chain(GLOBAL)
            .find(|f| f.names.contains(&name))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "option provided but not defined: {}",
                    a.split('=').next().unwrap_or(a)
                ))
            })?;
        let value = if flag.takes_value {
            match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| Error::Usage(format!("option needs an argument: {a}")))?;
                    i += 1;
                    v.clone()
                }
            }
        } else {
            match inline.as_deref() {
                None => "true".to_string(),
                Some(v @ ("true" | "false" | "1" | "0" | "True" | "False")) => v.to_string(),
                Some(v) => {
                    return Err(Error::Usage(format!(
                        "invalid value {v:?} for flag {}: parse error",
                        a.split('=').next().unwrap_or(a)
                    )))
                }
            }
        };
        out.flags.push((flag.names[0], value));
    }
    Ok(out)
}

/// `key=value` pairs (the value may contain `=`).
pub fn key_values<'a>(
    items: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<(String, String)>, Error> {
    items
        .into_iter()
        .map(|s| {
            s.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| Error::Usage(format!("expected \"key=value\", got {s:?}")))
        })
        .collect()
}

/// A model reference `[controller:][user/]name`: the name.
pub fn model_name(reference: &str) -> &str {
    let s = reference.rsplit(':').next().unwrap_or(reference);
    s.rsplit('/').next().unwrap_or(s)
}

/// Juju's durations for `--wait`/`--timeout` (`60s`, `5m`, `1h`, `1.5s`), in seconds.
pub fn duration_secs(s: &str) -> Result<f64, Error> {
    let bad = || Error::Usage(format!("invalid duration {s:?}"));
    let split = s.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().map_err(|_| bad())?;
    let mult = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    Ok(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const DEPLOY: &[Flag] = &[
        val(&["config"]),
        val(&["resource"]),
        val(&["num-units", "n"]),
        boolean(&["trust"]),
    ];

    #[test]
    fn flags_mixed_with_positionals_repeat_and_inline() {
        let a = parse(
            &s(&[
                "./charm",
                "--model",
                "m1",
                "app",
                "--config",
                "a=1",
                "--config=b=2",
                "-n",
                "3",
                "--trust",
                "--resource",
                "img=x",
            ]),
            DEPLOY,
            None,
        )
        .unwrap();
        assert_eq!(a.pos, s(&["./charm", "app"]));
        assert_eq!(a.all("config"), vec!["a=1", "b=2"]);
        assert_eq!(a.get("num-units"), Some("3"));
        assert_eq!(a.get("model"), Some("m1"));
        assert!(a.has("trust"));
        assert_eq!(a.all("resource"), vec!["img=x"]);
    }

    #[test]
    fn unknown_flags_and_missing_values_fail_like_juju() {
        let e = parse(&s(&["x", "--bogus"]), DEPLOY, None).unwrap_err();
        assert_eq!(e.to_string(), "option provided but not defined: --bogus");
        assert_eq!(e.exit_code(), 2);
        let e = parse(&s(&["x", "--config"]), DEPLOY, None).unwrap_err();
        assert!(e.to_string().contains("needs an argument"), "{e}");
        assert!(parse(&s(&["--trust=maybe"]), DEPLOY, None).is_err());
    }

    #[test]
    fn double_dash_and_stop_at_positional_keep_the_command_intact() {
        let a = parse(
            &s(&["--unit", "a/0", "--", "ls", "-l"]),
            &[val(&["unit"])],
            None,
        )
        .unwrap();
        assert_eq!(a.pos, s(&["ls", "-l"]));
        let a = parse(
            &s(&["--container", "c", "a/0", "ls", "-l", "--x"]),
            &[val(&["container"])],
            Some(1),
        )
        .unwrap();
        assert_eq!(a.get("container"), Some("c"));
        assert_eq!(a.pos, s(&["a/0", "ls", "-l", "--x"]));
    }

    #[test]
    fn key_values_model_refs_and_durations() {
        let kv = key_values(&s(&["a=1", "b=x=y"])).unwrap();
        assert_eq!(kv[1], ("b".to_string(), "x=y".to_string()));
        assert!(key_values(&s(&["novalue"])).is_err());
        assert!(key_values(&s(&["=v"])).is_err());
        assert_eq!(model_name("ctl:admin/test"), "test");
        assert_eq!(model_name("test"), "test");
        assert_eq!(duration_secs("60s").unwrap(), 60.0);
        assert_eq!(duration_secs("5m").unwrap(), 300.0);
        assert_eq!(duration_secs("1.5s").unwrap(), 1.5);
        assert!(duration_secs("10").is_err());
    }
}
