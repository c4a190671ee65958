//! An action's parameters: declared per action, read from the event by name and checked before any operation is
//! built, suggested when misspelt, and written into WeChat's body under their snake_case names.

use serde_json::{json, Map, Value};

use super::{Action, ACTIONS, AUTHORIZER_FIELD, AUTHORIZER_SNAKE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A non-empty string.
    Text,
    /// An integer from 1 to 2^32-1.
    Positive,
}

/// One parameter of an action: its two spellings, and what its value must be.
pub(super) struct Field {
    /// The cloud call's spelling, the one errors name.
    pub(super) camel: &'static str,
    /// WeChat's spelling, the one the body carries; callers may use it too.
    pub(super) snake: &'static str,
    kind: Kind,
}

impl Field {
    /// A parameter whose value is a non-empty string.
    pub(super) const fn text(camel: &'static str, snake: &'static str) -> Field {
        Field { camel, snake, kind: Kind::Text }
    }

    /// A parameter whose value is an integer from 1 to 2^32-1.
    pub(super) const fn positive(camel: &'static str, snake: &'static str) -> Field {
        Field { camel, snake, kind: Kind::Positive }
    }

    /// Whether `key` is this field in either spelling.
    fn named(&self, key: &str) -> bool {
        self.camel == key || self.snake == key
    }
}

/// `reason`: declared once because it is the same free text whether a mini program applies or a developer answers.
pub(super) const REASON: Field = Field::text("reason", "reason");

/// A value that passed its field's check, already in the type the operation keeps.
#[derive(Clone, Copy)]
enum Checked<'e> {
    Text(&'e str),
    Positive(u32),
}

struct Given<'e> {
    field: &'static Field,
    /// The spelling the event used, for the duplicate's error.
    key: &'e str,
    value: Checked<'e>,
}

/// An action's parameters as the event gave them, each checked against its declaration; an operation's parse reads
/// them by name.
pub(super) struct Fields<'e> {
    given: Vec<Given<'e>>,
}

impl<'e> Fields<'e> {
    /// Reads `action`'s parameters from `event` in the event's key order, refusing the first key that is unknown,
    /// repeated or of the wrong kind. Missing parameters are the parse's to refuse: it knows which it requires.
    pub(super) fn read(action: &Action, event: &'e Map<String, Value>) -> Result<Fields<'e>, String> {
        let mut given: Vec<Given<'e>> = Vec::with_capacity(action.fields.len());
        for (key, value) in event {
            if key == "action" || key == AUTHORIZER_FIELD || key == AUTHORIZER_SNAKE {
                continue;
            }
            let Some(field) = action.fields.iter().find(|f| f.named(key)) else {
                return Err(unknown_field(action, key));
            };
            if let Some(earlier) = given.iter().find(|g| g.field.camel == field.camel) {
                return Err(format!("fields {} and {key} name the same parameter: give one", earlier.key));
            }
            given.push(Given { field, key, value: check(field, key, value)? });
        }
        Ok(Fields { given })
    }

    /// A required text parameter.
    pub(super) fn text(&self, field: &Field) -> Result<String, String> {
        self.optional_text(field).ok_or_else(|| missing(field))
    }

    /// A text parameter the caller may leave out.
    pub(super) fn optional_text(&self, field: &Field) -> Option<String> {
        match self.get(field) {
            Some(Checked::Text(text)) => Some(text.to_owned()),
            _ => None,
        }
    }

    /// A required positive parameter.
    pub(super) fn positive(&self, field: &Field) -> Result<u32, String> {
        match self.get(field) {
            Some(Checked::Positive(n)) => Ok(n),
            _ => Err(missing(field)),
        }
    }

    fn get(&self, field: &Field) -> Option<Checked<'e>> {
        self.given.iter().find(|g| g.field.camel == field.camel).map(|g| g.value)
    }
}

fn missing(field: &Field) -> String {
    format!("missing field {}", field.camel)
}

fn check<'e>(field: &Field, key: &str, value: &'e Value) -> Result<Checked<'e>, String> {
    let checked = match (field.kind, value) {
        (Kind::Text, Value::String(text)) if !text.is_empty() => Some(Checked::Text(text)),
        (Kind::Text, _) => None,
        (Kind::Positive, _) => {
            value.as_u64().and_then(|n| u32::try_from(n).ok()).filter(|&n| n > 0).map(Checked::Positive)
        }
    };
    checked.ok_or_else(|| {
        let wanted = match field.kind {
            Kind::Text => "a non-empty string",
            Kind::Positive => "a positive integer",
        };
        format!("field {key} must be {wanted}, not {}", describe(value))
    })
}

fn unknown_field(action: &Action, key: &str) -> String {
    let mine: Vec<&str> = action.fields.iter().flat_map(|f| [f.camel, f.snake]).collect();
    if let Some(s) = suggestion(key, &mine) {
        return format!("unknown field {key}; did you mean {s}?");
    }
    if let Some(other) = ACTIONS.iter().find(|a| a.fields.iter().any(|f| f.named(key))) {
        return format!("field {key} is not a parameter of action {} (it belongs to {})", action.name, other.name);
    }
    let accepted: Vec<&str> = action.fields.iter().map(|f| f.camel).collect();
    match accepted.as_slice() {
        [] => format!("unknown field {key}: action {} takes no parameters", action.name),
        _ => format!("unknown field {key}: action {} takes {}", action.name, accepted.join(", ")),
    }
}

/// The closest candidate when `key` looks like a slip of it: another case, or one or two letters off.
pub(super) fn suggestion<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_ascii_lowercase();
    let squash = |s: &str| s.to_ascii_lowercase().replace('_', "");
    candidates
        .iter()
        .map(|c| {
            let distance = if c.to_ascii_lowercase() == lower || squash(c) == squash(key) {
                0
            } else {
                strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase())
            };
            (distance, *c)
        })
        .filter(|&(d, c)| d <= 2.min(c.len() / 3))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// WeChat's JSON body, in the order WeChat documents it: `action` first, then each given parameter under its
/// snake_case name.
pub(super) struct Body(Map<String, Value>);

impl Body {
    /// The body of `action`, before its parameters.
    pub(super) fn of(action: &Action) -> Body {
        let mut body = Map::new();
        body.insert("action".into(), json!(action.name));
        Body(body)
    }

    /// Adds a text parameter.
    pub(super) fn text(self, field: &Field, value: &str) -> Body {
        self.optional_text(field, Some(value))
    }

    /// Adds a text parameter if the caller gave it: WeChat is sent nothing in its place.
    pub(super) fn optional_text(self, field: &Field, value: Option<&str>) -> Body {
        match value {
            Some(value) => self.with(field, json!(value)),
            None => self,
        }
    }

    /// Adds a positive parameter.
    pub(super) fn positive(self, field: &Field, value: u32) -> Body {
        self.with(field, json!(value))
    }

    fn with(mut self, field: &Field, value: Value) -> Body {
        self.0.insert(field.snake.to_owned(), value);
        self
    }

    /// The body as it goes on the wire.
    pub(super) fn finish(self) -> Value {
        Value::Object(self.0)
    }
}

pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() => "an empty string".to_owned(),
        Value::Number(n) => format!("{n}"),
        other => type_name(other).to_owned(),
    }
}
