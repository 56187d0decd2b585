//! A small block-style YAML emitter for JSON values, safe for YAML 1.1
//! readers. cloud-init and curtin read YAML with PyYAML, which follows YAML
//! 1.1: there an unquoted `52:54:00:12:34:01` is a base-60 integer and
//! `on`/`yes` are booleans. General-purpose emitters follow YAML 1.2 and
//! leave such strings bare, so every string that is not plainly a string in
//! both versions is double-quoted here (JSON escapes are valid YAML
//! double-quoted escapes). Multi-line strings become literal blocks, so
//! embedded cloud-configs stay readable, as in MAAS's output.

use std::fmt::Write;

use serde_json::Value;

/// Emits `v` as a YAML document (block style, keys in map order).
pub fn emit(v: &Value) -> String {
    let mut out = String::with_capacity(1024);
    match v {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => seq(&mut out, a, 0),
        other => {
            inline(&mut out, other, 0);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn map(out: &mut String, m: &serde_json::Map<String, Value>, ind: usize) {
    let mut first = true;
    for (k, v) in m {
        if !first {
            indent(out, ind);
        }
        first = false;
        scalar(out, k, ind);
        out.push(':');
        value_after_key(out, v, ind);
    }
}

fn value_after_key(out: &mut String, v: &Value, ind: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            indent(out, ind + 2);
            map(out, m, ind + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            indent(out, ind);
            seq(out, a, ind);
        }
        other => {
            out.push(' ');
            inline(out, other, ind);
            out.push('\n');
        }
    }
}

fn seq(out: &mut String, a: &[Value], ind: usize) {
    let mut first = true;
    for v in a {
        if !first {
            indent(out, ind);
        }
        first = false;
        out.push_str("- ");
        match v {
            Value::Object(m) if !m.is_empty() => map(out, m, ind + 2),
            Value::Array(inner) if !inner.is_empty() => seq(out, inner, ind + 2),
            other => {
                inline(out, other, ind);
                out.push('\n');
            }
        }
    }
}

/// A scalar or empty collection on the current line (block scalars run on
/// to the following lines, indented under `ind`).
fn inline(out: &mut String, v: &Value, ind: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => scalar(out, s, ind),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn scalar(out: &mut String, s: &str, ind: usize) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else if literal_ok(s) {
        out.push_str(if s.ends_with('\n') { "|" } else { "|-" });
        for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
            out.push('\n');
            if !line.is_empty() {
                indent(out, ind + 2);
                out.push_str(line);
            }
        }
    } else {
        double_quoted(out, s);
    }
}

/// Characters YAML readers treat as line breaks or markers even though
/// JSON leaves them raw.
fn yaml_special(c: char) -> bool {
    matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}') || c.is_control()
}

fn double_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if yaml_special(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Words YAML 1.1 resolves to booleans or null.
const YAML11_WORDS: [&str; 12] = [
    "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~", "=", "<<",
];

/// ASCII bytes allowed in a plain scalar (a table: this runs for every key
/// and string of large documents).
const PLAIN: [bool; 128] = {
    let mut t = [false; 128];
    let mut i = 0;
    while i < 128 {
        let c = i as u8;
        t[i] = c.is_ascii_alphanumeric();
        i += 1;
    }
    let extra = b" _-./:=+@,~$!()%^";
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
};

/// Whether `s` reads back as the same string, unquoted, under YAML 1.1 and
/// 1.2. Deliberately narrow: anything unusual is quoted.
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_' || first == '$') {
        // Digits, signs and dots start numbers, dates, times and .inf/.nan.
        return false;
    }
    if s.ends_with([' ', ':']) || s.contains(": ") || s.contains(" #") {
        return false;
    }
    if !s.bytes().all(|b| PLAIN[usize::from(b & 0x7f)] && b < 0x80) {
        return false;
    }
    s.len() > 5 || !YAML11_WORDS.iter().any(|w| w.eq_ignore_ascii_case(s))
}

/// Whether `s` can be a literal block scalar: multi-line, printable, no
/// leading blank, no trailing spaces on lines, at most one final newline.
fn literal_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n', '\t'])
        && !s.ends_with("\n\n")
        && s.split('\n').all(|l| !l.ends_with([' ', '\t']))
        && s.chars()
            .all(|c| c == '\n' || c == '\t' || !yaml_special(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn quotes_what_yaml11_would_misread() {
        let y = emit(&json!({
            "mac": "52:54:00:12:34:01",
            "on": "on",
            "ver": "22.04",
            "url": "http://10.0.0.1:5248/MAAS/metadata/",
            "cmd": "test ! -e /tmp/block-reboot",
            "n": 3,
        }));
        assert_eq!(
            y,
            "cmd: test ! -e /tmp/block-reboot\nmac: \"52:54:00:12:34:01\"\n\"n\": 3\n\
             \"on\": \"on\"\nurl: http://10.0.0.1:5248/MAAS/metadata/\nver: \"22.04\"\n"
        );
    }

    #[test]
    fn nests_and_blocks() {
        let y = emit(&json!({
            "a": [{"b": 1, "c": [1, 2]}, [3, 4], {}],
            "doc": "#cloud-config\nfoo: bar\n",
            "e": [],
        }));
        assert_eq!(
            y,
            "a:\n- b: 1\n  c:\n  - 1\n  - 2\n- - 3\n  - 4\n- {}\ndoc: |\n  #cloud-config\n  foo: bar\ne: []\n"
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "\\PC{0,20}".prop_map(Value::String),
            "[a-z0-9: #\\n.-]{0,20}".prop_map(Value::String),
            prop_oneof![
                Just("yes"),
                Just("No"),
                Just("01:02"),
                Just("1e3"),
                Just("- x")
            ]
            .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map("\\PC{0,8}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn round_trips_through_a_yaml_parser(v in arb_json()) {
            let y = emit(&v);
            let back: Value = serde_norway::from_str(&y)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{y}")))?;
            prop_assert_eq!(back, v, "{}", y);
        }
    }
}
