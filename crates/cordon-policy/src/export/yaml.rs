//! A small YAML writer for JSON values: block mappings and sequences, and
//! scalars quoted whenever YAML could read them as anything but a string.

use serde_json::Value;

fn plain_ok(s: &str) -> bool {
    if s.is_empty() || s.trim() != s {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if "-?:,[]{}#&*!|>'\"%@`~".contains(first)
        || first.is_ascii_digit()
        || first == '.'
        || first == '+'
    {
        return false;
    }
    if matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
    ) {
        return false;
    }
    !s.contains(": ")
        && !s.contains(" #")
        && !s.ends_with(':')
        && s.chars().all(|c| !c.is_control())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if plain_ok(s) => s.clone(),
        // JSON strings are valid YAML double-quoted scalars.
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(_) | Value::Object(_) => String::new(),
    }
}

fn empty(v: &Value) -> Option<&'static str> {
    match v {
        Value::Array(a) if a.is_empty() => Some("[]"),
        Value::Object(o) if o.is_empty() => Some("{}"),
        _ => None,
    }
}

fn write(out: &mut String, v: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                let key = scalar(&Value::String(k.clone()));
                if let Some(e) = empty(val) {
                    out.push_str(&format!("{pad}{key}: {e}\n"));
                } else if val.is_object() || val.is_array() {
                    out.push_str(&format!("{pad}{key}:\n"));
                    let inner = if val.is_array() { indent } else { indent + 2 };
                    write(out, val, inner);
                } else {
                    out.push_str(&format!("{pad}{key}: {}\n", scalar(val)));
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Some(e) = empty(item) {
                    out.push_str(&format!("{pad}- {e}\n"));
                } else if item.is_object() {
                    let mut inner = String::new();
                    write(&mut inner, item, indent + 2);
                    // The first key goes on the dash's line.
                    let trimmed = inner.get(indent + 2..).unwrap_or("");
                    out.push_str(&format!("{pad}- {trimmed}"));
                } else if item.is_array() {
                    out.push_str(&format!("{pad}-\n"));
                    write(out, item, indent + 2);
                } else {
                    out.push_str(&format!("{pad}- {}\n", scalar(item)));
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

/// `docs` as a YAML stream, one document each.
pub fn documents(docs: &[Value]) -> String {
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        write(&mut out, d, 0);
    }
    out
}
