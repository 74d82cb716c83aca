//! Layered configuration: defaults, then a TOML file (with `${NAME}` references to environment
//! variables), then `CLICKSTREAM_<SECTION>__<KEY>` environment variables, then
//! `--set section.key=value` flags; and the key listing.

use std::path::Path;

use serde::{de::DeserializeOwned, Serialize};
use toml::{Table, Value};

/// Prefix of every environment override.
pub const ENV_PREFIX: &str = "CLICKSTREAM_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse { path: String, source: toml::de::Error },
    #[error("override {0:?} must look like section.key=value")]
    BadOverride(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("config file {path}: {key} refers to ${{{name}}}, but no environment variable {name} is set")]
    MissingVariable { path: String, key: String, name: String },
    #[error("config file {path}: {key} has an unterminated \"${{\" (write \"$${{\" for a literal \"${{\")")]
    UnterminatedReference { path: String, key: String },
}

/// Builds a config from its defaults and each layer in turn; later layers win.
pub fn load<T>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[String],
) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut tree = defaults_tree(&T::default())?;
    let env: Vec<(String, String)> = env.into_iter().collect();
    if let Some(path) = file {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        let mut file_tree: Table =
            toml::from_str(&text).map_err(|source| ConfigError::Parse { path: shown.clone(), source })?;
        expand_table(&mut file_tree, &env, &shown, "")?;
        merge(&mut tree, file_tree);
    }
    for (name, raw) in &env {
        if let Some(rest) = name.strip_prefix(ENV_PREFIX) {
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            // A one-part name sets a top-level scalar (`sources_file`), never a section or list.
            if path.len() >= 2 || tree.get(&path[0]).is_some_and(is_scalar) {
                set_path(&mut tree, &path, raw);
            }
        }
    }
    for item in overrides {
        let (key, raw) = item.split_once('=').ok_or_else(|| ConfigError::BadOverride(item.clone()))?;
        // `section.key`, or `section.map.any.dotted.key` for maps such as `kafka.properties`,
        // whose keys are librdkafka names with dots in them.
        let path: Vec<String> = key.trim().splitn(3, '.').map(str::to_owned).collect();
        if path.len() < 2 {
            return Err(ConfigError::BadOverride(item.clone()));
        }
        set_path(&mut tree, &path, raw.trim());
    }
    Value::Table(tree).try_into().map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_owned()))
}

/// Replaces `${NAME}` in the file's text values with the variable's value, so a secret can live
/// in the environment (a Kubernetes Secret) while the file sits in a ConfigMap. Only the file
/// layer is expanded: env and flag values are taken literally.
fn expand_table(table: &mut Table, vars: &[(String, String)], path: &str, prefix: &str) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        let dotted = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        expand_value(value, vars, path, &dotted)?;
    }
    Ok(())
}

fn expand_value(value: &mut Value, vars: &[(String, String)], path: &str, key: &str) -> Result<(), ConfigError> {
    match value {
        Value::String(text) if text.contains('$') => *text = expand_text(text, vars, path, key)?,
        Value::Table(inner) => expand_table(inner, vars, path, key)?,
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(item, vars, path, &format!("{key}[{i}]"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `${NAME}` becomes the variable's value and `$${` a literal `${`; any other `$` is kept.
fn expand_text(text: &str, vars: &[(String, String)], path: &str, key: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| ConfigError::UnterminatedReference { path: path.to_owned(), key: key.to_owned() })?;
            let name = &tail[..end];
            let found = vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).ok_or_else(|| {
                ConfigError::MissingVariable { path: path.to_owned(), key: key.to_owned(), name: name.to_owned() }
            })?;
            out.push_str(found);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Table(_) | Value::Array(_))
}

fn defaults_tree<T: Serialize>(defaults: &T) -> Result<Table, ConfigError> {
    Table::try_from(defaults).map_err(|e| ConfigError::Invalid(format!("defaults do not serialize: {e}")))
}

fn merge(base: &mut Table, layer: Table) {
    for (key, value) in layer {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(inner)), Value::Table(layer_inner)) => merge(inner, layer_inner),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets one key from text, reading the text as the type the key already has, so that a
/// numeric-looking write key stays a string and `8080` stays a number.
fn set_path(tree: &mut Table, path: &[String], raw: &str) {
    let (last, sections) = path.split_last().unwrap_or_else(|| unreachable!("paths have two parts"));
    let mut table = tree;
    for section in sections {
        let entry = table.entry(section.clone()).or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(inner) = entry else { unreachable!("just made a table") };
        table = inner;
    }
    let value = match table.get(last) {
        Some(Value::String(_)) => Value::String(raw.to_owned()),
        Some(Value::Array(_)) if !raw.trim_start().starts_with('[') => Value::Array(
            raw.split(',').map(|s| Value::String(s.trim().to_owned())).filter(|v| v.as_str() != Some("")).collect(),
        ),
        // A key the defaults lack is a map entry (librdkafka properties) or an unset option;
        // both take text, and `linger.ms=5` must stay the string librdkafka expects.
        None => Value::String(raw.to_owned()),
        _ => parse_literal(raw),
    };
    table.insert(last.clone(), value);
}

fn parse_literal(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

/// One settable key, for `clickstream config keys` and the reference in docs/configuration.md.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigKey {
    /// Dotted name used in TOML and `--set`.
    pub key: String,
    /// Environment variable that overrides it.
    pub env: String,
    /// Default value, as TOML.
    pub default: String,
    /// The field's doc comment.
    pub doc: String,
}

/// Every key of a config type with its env name, default and documentation, in declaration order.
pub fn keys<T: Serialize + Default + schemars::JsonSchema>() -> Vec<ConfigKey> {
    let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default();
    let defaults = defaults_tree(&T::default()).unwrap_or_default();
    let mut out = Vec::new();
    walk(&schema, &schema, &defaults, &mut Vec::new(), &mut out);
    out
}

fn walk(
    root: &serde_json::Value,
    node: &serde_json::Value,
    defaults: &Table,
    path: &mut Vec<String>,
    out: &mut Vec<ConfigKey>,
) {
    let Some(properties) = resolve(root, node).get("properties").and_then(|p| p.as_object()) else { return };
    for (name, property) in properties {
        path.push(name.clone());
        let doc = property.get("description").or_else(|| resolve(root, property).get("description"));
        let doc = doc.and_then(|d| d.as_str()).unwrap_or_default().replace('\n', " ");
        let property = resolve(root, property);
        let default = defaults.get(name);
        match default {
            Some(Value::Table(inner)) if property.get("properties").is_some() => walk(root, property, inner, path, out),
            Some(Value::Table(_)) => out.push(ConfigKey {
                key: path.join("."),
                env: format!("(file, or --set {}.KEY=VALUE)", path.join(".")),
                default: "{}".to_owned(),
                doc,
            }),
            _ => out.push(ConfigKey {
                key: path.join("."),
                env: if path.len() >= 2 || default.is_some_and(is_scalar) {
                    format!("{ENV_PREFIX}{}", path.join("__").to_ascii_uppercase())
                } else {
                    "(file only)".to_owned()
                },
                default: default.map_or_else(|| "unset".to_owned(), |v| v.to_string()),
                doc,
            }),
        }
        path.pop();
    }
}

/// Follows `$ref` and single-entry `allOf`/`anyOf` wrappers to the schema that has the content.
fn resolve<'a>(root: &'a serde_json::Value, node: &'a serde_json::Value) -> &'a serde_json::Value {
    if let Some(reference) = node.get("$ref").and_then(|r| r.as_str()) {
        let pointer = reference.trim_start_matches('#');
        if let Some(target) = root.pointer(pointer) {
            return resolve(root, target);
        }
    }
    for wrapper in ["allOf", "anyOf"] {
        if let Some(first) = node.get(wrapper).and_then(|a| a.as_array()).and_then(|a| a.first()) {
            if node.get("properties").is_none() {
                return resolve(root, first);
            }
        }
    }
    node
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
