//! Property tests for the hook tools' flag parser: any argv gives the parsed flags or a
//! usage error (never a panic), and an argv written from known flags and arguments
//! parses back to them. Cases per property: `PROPTEST_CASES` (default 2000; `make
//! fuzz` runs 100000).

#[path = "../../../tests/support/property.rs"]
mod property;

use std::collections::BTreeMap;

use jujulocal::flags::{boolean, parse, val, Flag};
use jujulocal::Error;
use proptest::prelude::*;

use property::{check, text_or};

/// Flags like those of `relation-get` and `secret-get`.
const SPEC: &[Flag] = &[
    val(&["r", "relation"]),
    val(&["format"]),
    val(&["label"]),
    boolean(&["app"]),
    boolean(&["refresh"]),
];

const WORDS: &[&str] = &[
    "-r",
    "--relation",
    "--relation=db:1",
    "-r=db:2",
    "--format=json",
    "--format",
    "--app",
    "--app=true",
    "--app=False",
    "--app=0",
    "--app=maybe",
    "--refresh",
    "--label",
    "--",
    "-",
    "---",
    "--=",
    "-=x",
    "--bogus",
    "db:1",
    "unit/0",
    "=",
];

#[test]
fn hook_tool_argv() {
    let argv = proptest::collection::vec(text_or(WORDS), 0..10);
    check("hook_tool_argv", argv, |argv| {
        match parse(&argv, SPEC) {
            Ok(p) => {
                // Arguments keep their order and are taken from argv.
                let mut it = argv.iter();
                for a in &p.args {
                    prop_assert!(it.any(|x| x == a), "{a:?} not in {argv:?}");
                }
                for k in p.flags.keys() {
                    prop_assert!(SPEC.iter().any(|f| f.names[0] == *k), "{k:?}");
                }
            }
            Err(Error::Usage(msg)) => prop_assert!(
                msg.starts_with("flag provided but not defined: ")
                    || msg.starts_with("flag needs an argument: ")
                    || msg.starts_with("invalid boolean value "),
                "{msg:?}"
            ),
            Err(e) => prop_assert!(false, "not a usage error: {e:?}"),
        }
        Ok(())
    });
}

#[derive(Debug, Clone)]
enum Item {
    Value(usize, bool, String), // flag of SPEC, long or first name, `=` form
    Bool(usize, Option<bool>),
    Arg(String),
}

/// Flags and arguments written every way gnuflag allows parse back to what was written.
#[test]
fn hook_tool_argv_round_trip() {
    let item = prop_oneof![
        (0..3usize, any::<bool>(), "[^\u{0}]{0,12}").prop_map(|(i, eq, v)| Item::Value(i, eq, v)),
        (3..5usize, proptest::option::of(any::<bool>())).prop_map(|(i, b)| Item::Bool(i, b)),
        "([^-].{0,12})?".prop_map(Item::Arg),
    ];
    check(
        "hook_tool_argv_round_trip",
        (
            proptest::collection::vec(item, 0..8),
            proptest::collection::vec(".{0,8}", 0..3),
        ),
        |(items, trailing)| {
            let mut argv = Vec::new();
            let mut flags = BTreeMap::new();
            let mut args = Vec::new();
            for item in &items {
                match item {
                    Item::Value(i, eq, v) => {
                        let names = SPEC[*i].names;
                        let name = names[names.len() - 1];
                        let dash = if name.len() == 1 { "-" } else { "--" };
                        if *eq || v.starts_with('-') {
                            argv.push(format!("{dash}{name}={v}"));
                        } else {
                            argv.push(format!("{dash}{name}"));
                            argv.push(v.clone());
                        }
                        flags.insert(names[0], v.clone());
                    }
                    Item::Bool(i, b) => {
                        let name = SPEC[*i].names[0];
                        argv.push(match b {
                            None => format!("--{name}"),
                            Some(b) => format!("--{name}={b}"),
                        });
                        flags.insert(name, b.unwrap_or(true).to_string());
                    }
                    Item::Arg(a) => {
                        // An empty argument is an argument too.
                        argv.push(a.clone());
                        args.push(a.clone());
                    }
                }
            }
            if !trailing.is_empty() {
                argv.push("--".into());
                argv.extend(trailing.iter().cloned());
                args.extend(trailing);
            }
            let p = parse(&argv, SPEC);
            prop_assert!(p.is_ok(), "{argv:?}: {p:?}");
            let Ok(p) = p else { return Ok(()) };
            prop_assert_eq!(&p.flags, &flags, "{:?}", argv);
            prop_assert_eq!(&p.args, &args, "{:?}", argv);
            Ok(())
        },
    );
}
