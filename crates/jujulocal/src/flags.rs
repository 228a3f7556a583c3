//! Argument parsing in the style of Juju's hook tools (Go `gnuflag`):
//! `--name=value`, `--name value`, `-r value`, `-r=value`, booleans as `--app`
//! or `--app=true`, and `--` to end the flags. An unknown flag is an error.

use std::collections::BTreeMap;

use crate::Error;

/// One flag: its names (without dashes) and whether it takes a value.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub names: &'static [&'static str],
    pub takes_value: bool,
}

pub const fn val(names: &'static [&'static str]) -> Flag {
    Flag {
        names,
        takes_value: true,
    }
}
pub const fn boolean(names: &'static [&'static str]) -> Flag {
    Flag {
        names,
        takes_value: false,
    }
}

#[derive(Debug, Default)]
pub struct Parsed {
    /// Keyed by the flag's first name.
    pub flags: BTreeMap<&'static str, String>,
    pub args: Vec<String>,
}

impl Parsed {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }
    pub fn bool(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true") | Some("True") | Some("1"))
    }
}

pub fn parse(args: &[String], spec: &[Flag]) -> Result<Parsed, Error> {
    let mut out = Parsed::default();
    let mut i = 0;
    let mut flags_done = false;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if flags_done || !a.starts_with('-') || a == "-" {
            out.args.push(a.clone());
            continue;
        }
        if a == "--" {
            flags_done = true;
            continue;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let flag = spec
            .iter()
            .find(|f| f.names.contains(&name))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "flag provided but not defined: {}",
                    a.split('=').next().unwrap_or(a)
                ))
            })?;
        let key = flag.names[0];
        if flag.takes_value {
            let v = match inline {
                Some(v) => v,
                None => {
                    let v = args
                        .get(i)
                        .ok_or_else(|| Error::Usage(format!("flag needs an argument: {a}")))?;
                    i += 1;
                    v.clone()
                }
            };
            out.flags.insert(key, v);
        } else {
            let v = match inline.as_deref() {
                None | Some("true") | Some("True") | Some("1") => "true",
                Some("false") | Some("False") | Some("0") => "false",
                Some(other) => {
                    return Err(Error::Usage(format!(
                        "invalid boolean value {other:?} for -{name}"
                    )))
                }
            };
            out.flags.insert(key, v.to_string());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn forms() {
        let spec = [val(&["r", "relation"]), boolean(&["app"]), val(&["format"])];
        let p = parse(
            &s(&["--format=json", "-r", "db:1", "--app", "-", "x/0"]),
            &spec,
        )
        .unwrap();
        assert_eq!(p.get("format"), Some("json"));
        assert_eq!(p.get("r"), Some("db:1"));
        assert!(p.bool("app"));
        assert_eq!(p.args, s(&["-", "x/0"]));
        let p = parse(
            &s(&["--relation=db:2", "--app=False", "--", "--not-a-flag"]),
            &spec,
        )
        .unwrap();
        assert_eq!(p.get("r"), Some("db:2"));
        assert!(!p.bool("app"));
        assert_eq!(p.args, s(&["--not-a-flag"]));
        let e = parse(&s(&["--bogus"]), &spec).unwrap_err();
        assert_eq!(e.to_string(), "flag provided but not defined: --bogus");
        assert!(parse(&s(&["-r"]), &spec).is_err());
    }
}
