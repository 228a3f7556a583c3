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

/// After a quantifier: whether Python still takes a `?` (lazy) or `+` (possessive).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    None,
    /// A greedy quantifier: `?` or `+` may follow once.
    Open,
    /// Lazy or possessive already, or a comment came between: any quantifier now is
    /// Python's "multiple repeat".
    Closed,
}

/// Rewrites the Python-only forms into ones `regex-syntax` parses (same validity).
fn rewrite(p: &str) -> Result<String, RegexError> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    let mut in_class = false;
    let mut repeat = Repeat::None;
    let mut groups = Groups::default();
    // Python 3.11 refuses global flags `(?i)` anywhere but at the start.
    let mut at_start = true;
    // `(?x)`: whitespace and `#` comments outside classes are ignored.
    let mut verbose = false;
    let multiple = || Err(RegexError("multiple repeat".into()));
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if in_class {
            match c {
                '\\' => match next {
                    Some('0'..='7') => {
                        // An octal escape (up to three digits) is a character.
                        let mut end = i + 2;
                        while end < i + 4 && chars.get(end).is_some_and(|c| ('0'..='7').contains(c))
                        {
                            end += 1;
                        }
                        octal_in_range(&chars[i + 1..end])?;
                        out.push('x');
                        i = end;
                        continue;
                    }
                    // A backspace in a class; any non-ASCII character escaped is itself.
                    Some('b') => {
                        out.push('x');
                        i += 2;
                        continue;
                    }
                    Some('p' | 'P') => return Err(RegexError("bad escape \\p".into())),
                    Some(n) if !n.is_ascii() => {
                        out.push(n);
                        i += 2;
                        continue;
                    }
                    Some(d @ ('8' | '9')) => return Err(RegexError(format!("bad escape \\{d}"))),
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                        i += 2;
                        continue;
                    }
                    None => out.push('\\'),
                },
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                // Python has no nested classes or set operations: literals (a `-`
                // after a `-` ends a range).
                '-' if out.ends_with('-') && !out.ends_with("\\-") => out.push_str("\\-"),
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        let is_quantifier =
            matches!(c, '*' | '+' | '?') || (c == '{' && quantifier_at(&chars, i).is_some());
        if is_quantifier {
            match (repeat, c) {
                (Repeat::Open, '?') => {
                    out.push('?');
                    repeat = Repeat::Closed;
                    i += 1;
                    continue;
                }
                (Repeat::Open, '+') => {
                    // Possessive (Python 3.11): the same validity as the greedy form.
                    repeat = Repeat::Closed;
                    i += 1;
                    continue;
                }
                (Repeat::Open | Repeat::Closed, _) => return multiple(),
                (Repeat::None, _) => {}
            }
        }
        if c == '\\' && next.is_some_and(|d| d.is_ascii_digit()) {
            i = digits(&chars, i + 1, &groups, &mut out)?;
            repeat = Repeat::None;
            at_start = false;
            continue;
        }
        if verbose && c.is_whitespace() {
            i += 1;
            continue;
        }
        if verbose && c == '#' {
            // A comment, to the end of the line.
            i = chars[i..]
                .iter()
                .position(|&ch| ch == '\n')
                .map_or(chars.len(), |e| i + e + 1);
            continue;
        }
        if c == '\\' {
            match next {
                Some('Z') => out.push_str("\\z"),
                Some('p' | 'P') => return Err(RegexError("bad escape \\p".into())),
                Some(n) if !n.is_ascii() => out.push(n),
                // Word boundaries in regex-syntax, literals in Python.
                Some('<' | '>') => out.push('x'),
                Some('z') => return Err(RegexError("bad escape \\z".into())),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
            i += 2;
            repeat = Repeat::None;
            at_start = false;
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
                repeat = Repeat::None;
                at_start = false;
                continue;
            }
            '(' if next == Some('?') => {
                let rest: String = chars[i + 2..].iter().take(2).collect();
                if rest.starts_with('#') {
                    // A comment: up to the next `)`; a quantifier after it repeats a
                    // repeat.
                    match chars[i..].iter().position(|&ch| ch == ')') {
                        Some(end) => i += end + 1,
                        None => return Err(RegexError("missing ), unterminated comment".into())),
                    }
                    if repeat == Repeat::Open {
                        repeat = Repeat::Closed;
                    }
                    continue;
                }
                if let Some(len) = global_flags(&chars[i..]) {
                    if !at_start {
                        return Err(RegexError(
                            "global flags not at the start of the expression".into(),
                        ));
                    }
                    chars[i..i + len].iter().for_each(|c| out.push(*c));
                    verbose |= chars[i..i + len].contains(&'x');
                    i += len;
                    repeat = Repeat::None;
                    continue;
                }
                if rest.starts_with('>') || rest.starts_with('=') || rest.starts_with('!') {
                    // Atomic groups and lookahead: parsed as plain groups.
                    out.push_str("(?:");
                    groups.open(false);
                    i += 3;
                } else if rest == "<=" || rest == "<!" {
                    // Lookbehind (its fixed-width rule is not checked).
                    out.push_str("(?:");
                    groups.open(false);
                    i += 4;
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
                    groups.open(rest.starts_with("P<"));
                    out.push_str("(?");
                    i += 2;
                }
                repeat = Repeat::None;
                at_start = false;
                continue;
            }
            '{' => match quantifier_at(&chars, i) {
                Some((body, len)) => {
                    // `{,n}` is `{0,n}` in Python.
                    let body = if body.starts_with(',') {
                        format!("0{body}")
                    } else {
                        body
                    };
                    out.push('{');
                    out.push_str(&body);
                    out.push('}');
                    i += len;
                    repeat = Repeat::Open;
                    continue;
                }
                // Otherwise Python reads `{` as a literal.
                None => out.push_str("\\{"),
            },
            '*' | '+' | '?' => {
                out.push(c);
                i += 1;
                repeat = Repeat::Open;
                continue;
            }
            '}' => out.push_str("\\}"),
            '(' => {
                groups.open(true);
                out.push('(');
            }
            ')' => {
                groups.close();
                out.push(')');
            }
            _ => out.push(c),
        }
        repeat = Repeat::None;
        at_start = false;
        i += 1;
    }
    Ok(out)
}

/// A `{m,n}` quantifier at `i`: its body and length.
fn quantifier_at(chars: &[char], i: usize) -> Option<(String, usize)> {
    let close = chars[i..].iter().position(|&ch| ch == '}')?;
    let body: String = chars[i + 1..i + close].iter().collect();
    is_quantifier(&body).then_some((body, close + 1))
}

/// The length of a global flags group `(?aiLmsux)` at the start of `chars`.
fn global_flags(chars: &[char]) -> Option<usize> {
    let close = chars.iter().position(|&c| c == ')')?;
    let flags = &chars[2..close];
    (!flags.is_empty() && flags.iter().all(|c| "aiLmsuxU".contains(*c))).then_some(close + 1)
}

/// The groups seen so far: how many capture, and which are still open.
#[derive(Default)]
struct Groups {
    captures: usize,
    /// Per open group: its capture number, if it captures.
    open: Vec<Option<usize>>,
}

impl Groups {
    fn open(&mut self, capture: bool) {
        if capture {
            self.captures += 1;
        }
        self.open.push(capture.then_some(self.captures));
    }

    fn close(&mut self) {
        self.open.pop();
    }
}

/// A backslash and digits at `start` outside a class: an octal escape or a group
/// reference, as Python reads them; written out as a literal. Returns the next index.
fn digits(
    chars: &[char],
    start: usize,
    groups: &Groups,
    out: &mut String,
) -> Result<usize, RegexError> {
    let octal = |i: usize| chars.get(i).is_some_and(|c| ('0'..='7').contains(c));
    let digit = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    if chars[start] == '0' {
        // `\0` and up to two more octal digits.
        let mut end = start + 1;
        while end < start + 3 && octal(end) {
            end += 1;
        }
        out.push('x');
        return Ok(end);
    }
    if octal(start) && octal(start + 1) && octal(start + 2) {
        octal_in_range(&chars[start..start + 3])?;
        out.push('x');
        return Ok(start + 3);
    }
    let end = if digit(start + 1) {
        start + 2
    } else {
        start + 1
    };
    let number: usize = chars[start..end]
        .iter()
        .collect::<String>()
        .parse()
        .unwrap_or(usize::MAX);
    if number > groups.captures {
        return Err(RegexError(format!("invalid group reference {number}")));
    }
    if groups.open.contains(&Some(number)) {
        return Err(RegexError("cannot refer to an open group".into()));
    }
    out.push('x');
    Ok(end)
}

/// An octal escape's value must fit a byte.
fn octal_in_range(digits: &[char]) -> Result<(), RegexError> {
    let value: String = digits.iter().collect();
    if u32::from_str_radix(&value, 8).unwrap_or(u32::MAX) > 0o377 {
        return Err(RegexError(format!(
            "octal escape value \\{value} outside of range 0-0o377"
        )));
    }
    Ok(())
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
