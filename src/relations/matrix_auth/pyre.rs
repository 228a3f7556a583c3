//! Is a pattern valid for Python's `re` module, the dialect Synapse compiles appservice
//! namespaces with (`re.compile`)? Pure, never panics.
//!
//! The pattern is parsed with `regex-syntax` (syntax only, no Unicode tables), after
//! a pass that turns the Python-only forms it does not know into equivalents of the
//! same validity (`\Z`, `(?>…)`, `(?#…)`, `(?P=name)`, possessive quantifiers, `{,n}`);
//! lookaround and backreferences, which it refuses but Python has, are accepted.
//! Forms `regex-syntax` accepts but Python refuses are refused: `\p{…}`/`\P{…}`, `\z`,
//! `\x{…}`, `(?<name>…)`, the flags `U` and `R`. What this does not model (documented
//! in docs/reference/matrix-auth.md): `\N{…}`, the flags `a` and `L`, conditionals
//! `(?(1)…)`, whether a backreference names an existing group, and look-behind width.

use regex_syntax::ast::{self, Ast, ClassSetItem, ErrorKind};

/// Why Python would refuse the pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegexError(pub String);

/// Checks `pattern` as Python's `re.compile` would.
pub fn check(pattern: &str) -> Result<(), RegexError> {
    let rewritten = rewrite(pattern)?;
    let parsed = ast::parse::ParserBuilder::new()
        .nest_limit(100)
        .build()
        .parse(&rewritten);
    match parsed {
        Ok(tree) => ast::visit(&tree, PythonOnly),
        Err(e) => match e.kind() {
            ErrorKind::UnsupportedLookAround | ErrorKind::UnsupportedBackreference => Ok(()),
            kind => Err(RegexError(kind.to_string())),
        },
    }
}

/// Rewrites the Python-only forms into ones `regex-syntax` parses (same validity).
fn rewrite(p: &str) -> Result<String, RegexError> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    let mut in_class = false;
    // Whether the last thing outside a class was a quantifier (for possessive `+`).
    let mut after_quantifier = false;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\\' {
            match next {
                Some('Z') if !in_class => out.push_str("\\z"),
                Some('z') => return Err(RegexError("bad escape \\z".into())),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            i += 2;
            after_quantifier = false;
            continue;
        }
        if in_class {
            if c == ']' {
                in_class = false;
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                // A `]` (after an optional `^`) first in a class is a literal.
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                after_quantifier = false;
                continue;
            }
            '+' if after_quantifier => {
                // Possessive (Python 3.11): the same validity as the greedy form.
                after_quantifier = false;
                i += 1;
                continue;
            }
            '(' if next == Some('?') => {
                let rest: String = chars[i + 2..].iter().take(2).collect();
                if rest.starts_with('>') {
                    out.push_str("(?:");
                    i += 3;
                } else if rest.starts_with('#') {
                    // A comment: up to the next `)`.
                    match chars[i..].iter().position(|&ch| ch == ')') {
                        Some(end) => i += end + 1,
                        None => return Err(RegexError("missing ), unterminated comment".into())),
                    }
                } else if rest.starts_with("P=") {
                    match chars[i..].iter().position(|&ch| ch == ')') {
                        Some(end) => {
                            let name: String = chars[i + 4..i + end].iter().collect();
                            if !is_identifier(&name) {
                                return Err(RegexError(format!(
                                    "bad character in group name {name:?}"
                                )));
                            }
                            out.push_str("(?:)");
                            i += end + 1;
                        }
                        None => return Err(RegexError("missing ), unterminated name".into())),
                    }
                } else {
                    out.push_str("(?");
                    i += 2;
                }
                after_quantifier = false;
                continue;
            }
            '{' => {
                // `{,n}` is `{0,n}` in Python.
                let close = chars[i..].iter().position(|&ch| ch == '}');
                let body: Option<String> = close.map(|e| chars[i + 1..i + e].iter().collect());
                match (close, body) {
                    (Some(e), Some(b)) if is_quantifier(&b) => {
                        let b = if b.starts_with(',') {
                            format!("0{b}")
                        } else {
                            b
                        };
                        out.push('{');
                        out.push_str(&b);
                        out.push('}');
                        i += e + 1;
                        after_quantifier = true;
                    }
                    // Otherwise Python reads `{` as a literal.
                    _ => {
                        out.push_str("\\{");
                        i += 1;
                        after_quantifier = false;
                    }
                }
                continue;
            }
            '*' | '+' | '?' => {
                // A `?` after a quantifier makes it lazy, and ends it.
                after_quantifier = !(c == '?' && after_quantifier);
                out.push(c);
                i += 1;
                continue;
            }
            '}' => out.push_str("\\}"),
            _ => out.push(c),
        }
        after_quantifier = false;
        i += 1;
    }
    Ok(out)
}

/// `m`, `m,`, `,n` or `m,n` with decimal digits: a Python repeat.
fn is_quantifier(body: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    match body.split_once(',') {
        None => digits(body),
        Some((a, b)) => {
            (a.is_empty() || digits(a))
                && (b.is_empty() || digits(b))
                && !(a.is_empty() && b.is_empty())
        }
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// Refuses what `regex-syntax` accepts and Python does not.
struct PythonOnly;

impl ast::Visitor for PythonOnly {
    type Output = ();
    type Err = RegexError;

    fn finish(self) -> Result<(), RegexError> {
        Ok(())
    }

    fn visit_pre(&mut self, node: &Ast) -> Result<(), RegexError> {
        match node {
            Ast::ClassUnicode(_) => Err(RegexError("bad escape \\p".into())),
            Ast::Literal(l) => literal(l),
            Ast::Group(g) => match &g.kind {
                ast::GroupKind::CaptureName {
                    starts_with_p: false,
                    ..
                } => Err(RegexError("unknown extension ?<n".into())),
                ast::GroupKind::NonCapturing(flags) => flags_ok(flags),
                _ => Ok(()),
            },
            Ast::Flags(f) => flags_ok(&f.flags),
            Ast::Repetition(r) => match &*r.ast {
                Ast::Assertion(_) | Ast::Empty(_) | Ast::Flags(_) => {
                    Err(RegexError("nothing to repeat".into()))
                }
                Ast::Repetition(_) => Err(RegexError("multiple repeat".into())),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn visit_class_set_item_pre(&mut self, item: &ClassSetItem) -> Result<(), RegexError> {
        match item {
            ClassSetItem::Unicode(_) => Err(RegexError("bad escape \\p".into())),
            ClassSetItem::Literal(l) => literal(l),
            ClassSetItem::Range(r) => literal(&r.start).and_then(|_| literal(&r.end)),
            _ => Ok(()),
        }
    }
}

fn literal(l: &ast::Literal) -> Result<(), RegexError> {
    match l.kind {
        ast::LiteralKind::HexBrace(_) => Err(RegexError("bad escape \\x{".into())),
        _ => Ok(()),
    }
}

fn flags_ok(flags: &ast::Flags) -> Result<(), RegexError> {
    for item in &flags.items {
        if let ast::FlagsItemKind::Flag(ast::Flag::SwapGreed | ast::Flag::CRLF) = item.kind {
            return Err(RegexError("unknown flag".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_what_python_accepts() {
        for p in [
            "@irc_.*:example\\.com",
            "#telegram_.+",
            "",
            "a{,3}",
            "a{2,}b{3}",
            "x{",
            "a{x}",
            "(?=a)b",
            "(?<!a)b",
            "(a)\\1",
            "(?P<n>a)(?P=n)",
            "a*+b++",
            "(?>ab)",
            "(?#a comment)x",
            "\\Aab\\Z",
            "[]a]",
            "[^]a]",
            "[[:alpha:]]",
            "(?i)abc",
            "(?s:.)",
            "[\\w.-]+",
            "\\x41\\u0041",
            "\\@\\-",
            "}",
        ] {
            assert_eq!(check(p), Ok(()), "{p:?}");
        }
    }

    #[test]
    fn refuses_what_python_refuses() {
        for (p, why) in [
            ("[", "unclosed character class"),
            ("(abc", "unclosed group"),
            ("abc)", "unopened group"),
            ("*a", "repetition operator missing expression"),
            ("a**", ""),
            ("\\p{L}", ""),
            ("\\pL", "bad escape \\p"),
            ("a\\z", "bad escape \\z"),
            ("\\x{41}", "bad escape \\x{"),
            ("(?<n>a)", "unknown extension ?<n"),
            ("(?U)a", "unknown flag"),
            ("[z-a]", ""),
            ("\\q", ""),
            ("(?#unclosed", "missing ), unterminated comment"),
            ("a{3,2}", ""),
            ("^*", ""),
            ("a*?+", ""),
            ("(?P<n>a)(?P<n>b)", ""),
            ("(?i", ""),
        ] {
            let err = check(p).expect_err(p);
            assert!(err.0.contains(why), "{p:?}: {err}");
        }
    }
}
