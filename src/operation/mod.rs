//! What a caller can ask for: the eight plugin-management operations, validated from the cloud call's camelCase
//! parameters before anything goes on the wire, and turned into WeChat's path and snake_case body.

use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::wechat::is_appid;

/// One validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `apply`: asks a plugin's developer to let this mini program use the plugin.
    Apply {
        /// The plugin's appid.
        plugin_appid: String,
        /// Why the mini program wants it, shown to the plugin's developer.
        reason: Option<String>,
    },
    /// `list`: the plugins this mini program has added or applied for, with their status.
    List,
    /// `unbind`: removes an added plugin from this mini program.
    Unbind {
        /// The plugin's appid.
        plugin_appid: String,
    },
    /// `update`: moves an added plugin to another version (WeChat's quick update, if that version allows it).
    Update {
        /// The plugin's appid.
        plugin_appid: String,
        /// The plugin version to move to, e.g. `1.0.2`.
        user_version: String,
    },
    /// `dev_apply_list`: for the plugin's developer, one page of the mini programs that applied to use it.
    DevApplyList {
        /// Which page, from 1.
        page: u32,
        /// Applications per page.
        num: u32,
    },
    /// `dev_agree`: for the plugin's developer, accepts a pending application.
    DevAgree {
        /// The applicant mini program's appid.
        appid: String,
        /// Sent to WeChat as given (WeChat's documentation asks for a reason only when refusing).
        reason: Option<String>,
    },
    /// `dev_refuse`: for the plugin's developer, refuses a pending application.
    DevRefuse {
        /// The applicant mini program's appid, when given.
        appid: Option<String>,
        /// Why it was refused, shown to the applicant.
        reason: Option<String>,
    },
    /// `dev_delete`: for the plugin's developer, deletes a refused or expired application.
    DevDelete {
        /// The applicant mini program's appid, when given.
        appid: Option<String>,
        /// Sent to WeChat as given (WeChat's documentation asks for a reason only when refusing).
        reason: Option<String>,
    },
}

/// An event read: the operation, and the mini program a third-party platform performs it for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// What to do, from the event's `action` and its fields.
    pub operation: Operation,
    /// `authorizerAppid`: required when the function acts as a platform, refused otherwise.
    pub authorizer_appid: Option<String>,
}

/// The event field naming the mini program a third-party platform acts for (also accepted in snake_case).
pub const AUTHORIZER_FIELD: &str = "authorizerAppid";
const AUTHORIZER_SNAKE: &str = "authorizer_appid";

impl Request {
    /// Reads an event: the operation's fields (see [`Operation::from_event`]) and `authorizerAppid`.
    pub fn from_event(event: &Value) -> Result<Request, Error> {
        let operation = Operation::from_event(event)?;
        let fail = |detail: String| Error::InvalidEvent { method: operation.method(), detail };
        let given: Vec<(&str, &Value)> = [AUTHORIZER_FIELD, AUTHORIZER_SNAKE]
            .into_iter()
            .filter_map(|key| event.get(key).map(|value| (key, value)))
            .collect();
        let authorizer_appid = match given.as_slice() {
            [] => None,
            [(_, Value::String(appid))] if is_appid(appid) => Some(appid.clone()),
            [(key, value)] => {
                return Err(fail(format!(
                    "field {key} must be an appid (letters, digits, _ and -), not {}",
                    describe(value)
                )))
            }
            _ => {
                return Err(fail(format!(
                    "fields {AUTHORIZER_FIELD} and {AUTHORIZER_SNAKE} name the same parameter: give one"
                )))
            }
        };
        Ok(Request { operation, authorizer_appid })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A non-empty string.
    Text,
    /// An integer from 1 to 2^32-1.
    Positive,
}

struct Field {
    camel: &'static str,
    snake: &'static str,
    kind: Kind,
    required: bool,
}

impl Field {
    /// Whether `key` is this field in either spelling.
    fn named(&self, key: &str) -> bool {
        self.camel == key || self.snake == key
    }
}

/// The action table: the one place that says, per action, the cloud method, WeChat's path, the fields and whether a
/// repeat is harmless.
struct Action {
    name: &'static str,
    method: &'static str,
    path: &'static str,
    fields: &'static [Field],
    read_only: bool,
    /// The operation from the checked field values, in `fields` order.
    build: fn(&Values) -> Operation,
}

const PLUGIN_APPID: Field = Field { camel: "pluginAppid", snake: "plugin_appid", kind: Kind::Text, required: true };
const REASON: Field = Field { camel: "reason", snake: "reason", kind: Kind::Text, required: false };
const APPLICANT: Field = Field { camel: "appid", snake: "appid", kind: Kind::Text, required: false };

const ACTIONS: &[Action] = &[
    Action {
        name: "apply",
        method: "applyPlugin",
        path: PLUGIN,
        fields: &[PLUGIN_APPID, REASON],
        read_only: false,
        build: |v| Operation::Apply { plugin_appid: text(v, 0), reason: optional_text(v, 1) },
    },
    Action {
        name: "list",
        method: "getPluginList",
        path: PLUGIN,
        fields: &[],
        read_only: true,
        build: |_| Operation::List,
    },
    Action {
        name: "unbind",
        method: "unbindPlugin",
        path: PLUGIN,
        fields: &[PLUGIN_APPID],
        read_only: false,
        build: |v| Operation::Unbind { plugin_appid: text(v, 0) },
    },
    Action {
        name: "update",
        method: "applyPlugin",
        path: PLUGIN,
        fields: &[
            PLUGIN_APPID,
            Field { camel: "userVersion", snake: "user_version", kind: Kind::Text, required: true },
        ],
        read_only: false,
        build: |v| Operation::Update { plugin_appid: text(v, 0), user_version: text(v, 1) },
    },
    Action {
        name: "dev_apply_list",
        method: "getPluginDevApplyList",
        path: DEV_PLUGIN,
        fields: &[
            Field { camel: "page", snake: "page", kind: Kind::Positive, required: true },
            Field { camel: "num", snake: "num", kind: Kind::Positive, required: true },
        ],
        read_only: true,
        build: |v| Operation::DevApplyList { page: positive(v, 0), num: positive(v, 1) },
    },
    Action {
        name: "dev_agree",
        method: "setDevPluginApplyStatus",
        path: DEV_PLUGIN,
        fields: &[Field { required: true, ..APPLICANT }, REASON],
        read_only: false,
        build: |v| Operation::DevAgree { appid: text(v, 0), reason: optional_text(v, 1) },
    },
    Action {
        name: "dev_refuse",
        method: "setDevPluginApplyStatus",
        path: DEV_PLUGIN,
        fields: &[APPLICANT, REASON],
        read_only: false,
        build: |v| Operation::DevRefuse { appid: optional_text(v, 0), reason: optional_text(v, 1) },
    },
    Action {
        name: "dev_delete",
        method: "setDevPluginApplyStatus",
        path: DEV_PLUGIN,
        fields: &[APPLICANT, REASON],
        read_only: false,
        build: |v| Operation::DevDelete { appid: optional_text(v, 0), reason: optional_text(v, 1) },
    },
];

const PLUGIN: &str = "/wxa/plugin";
const DEV_PLUGIN: &str = "/wxa/devplugin";

/// The `<method>` of errMsg when the action itself could not be read.
pub const NO_METHOD: &str = "";

fn action_named(name: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.name == name)
}

impl Operation {
    /// Reads a direct-invocation event. Anything doubtful is refused, naming the field.
    pub fn from_event(event: &Value) -> Result<Operation, Error> {
        let fail = |method: &'static str, detail: String| Error::InvalidEvent { method, detail };
        let Value::Object(event) = event else {
            return Err(fail(NO_METHOD, format!("the event must be a JSON object, not {}", type_name(event))));
        };
        let name = match event.get("action") {
            Some(Value::String(name)) => name,
            Some(other) => {
                return Err(fail(NO_METHOD, format!("field action must be a string, not {}", type_name(other))))
            }
            None => return Err(fail(NO_METHOD, "missing field action".to_owned())),
        };
        let action = action_named(name).ok_or_else(|| {
            let names: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
            let hint = suggestion(name, &names).map(|s| format!("; did you mean {s}?")).unwrap_or_default();
            fail(NO_METHOD, format!("unknown action {name:?}{hint} (expected one of {})", names.join(", ")))
        })?;
        let values = read_fields(action, event).map_err(|detail| fail(action.method, detail))?;
        Ok((action.build)(&values))
    }

    fn action(&self) -> &'static Action {
        let name = match self {
            Operation::Apply { .. } => "apply",
            Operation::List => "list",
            Operation::Unbind { .. } => "unbind",
            Operation::Update { .. } => "update",
            Operation::DevApplyList { .. } => "dev_apply_list",
            Operation::DevAgree { .. } => "dev_agree",
            Operation::DevRefuse { .. } => "dev_refuse",
            Operation::DevDelete { .. } => "dev_delete",
        };
        action_named(name).expect("every operation is in the action table")
    }

    /// The event's `action`.
    pub fn name(&self) -> &'static str {
        self.action().name
    }

    /// The `openapi.pluginManager.<method>` this operation answers as.
    pub fn method(&self) -> &'static str {
        self.action().method
    }

    /// WeChat's path.
    pub fn path(&self) -> &'static str {
        self.action().path
    }

    /// Whether sending it twice is harmless (only then is a `-1` retried).
    pub fn is_read_only(&self) -> bool {
        self.action().read_only
    }

    /// WeChat's JSON body: the action, then each given field under its snake_case name from the action table.
    pub fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("action".into(), json!(self.name()));
        for (field, value) in self.action().fields.iter().zip(self.values()) {
            if let Some(value) = value {
                body.insert(field.snake.to_owned(), value);
            }
        }
        Value::Object(body)
    }

    /// The field values, in the action table's order.
    fn values(&self) -> [Option<Value>; 2] {
        let text = |s: &String| Some(json!(s));
        let maybe = |s: &Option<String>| s.as_ref().map(|s| json!(s));
        match self {
            Operation::List => [None, None],
            Operation::Apply { plugin_appid, reason } => [text(plugin_appid), maybe(reason)],
            Operation::Unbind { plugin_appid } => [text(plugin_appid), None],
            Operation::Update { plugin_appid, user_version } => [text(plugin_appid), text(user_version)],
            Operation::DevApplyList { page, num } => [Some(json!(page)), Some(json!(num))],
            Operation::DevAgree { appid, reason } => [text(appid), maybe(reason)],
            Operation::DevRefuse { appid, reason } | Operation::DevDelete { appid, reason } => {
                [maybe(appid), maybe(reason)]
            }
        }
    }
}

/// The checked values of an action's fields, in the table's order.
type Values = Vec<Option<Value>>;

fn read_fields(action: &Action, event: &Map<String, Value>) -> Result<Values, String> {
    let mut values: Values = vec![None; action.fields.len()];
    let mut spelled: Vec<&str> = vec![""; action.fields.len()];
    for (key, value) in event {
        if key == "action" || key == AUTHORIZER_FIELD || key == AUTHORIZER_SNAKE {
            continue;
        }
        let Some(i) = action.fields.iter().position(|f| f.named(key)) else {
            return Err(unknown_field(action, key));
        };
        let field = &action.fields[i];
        if values[i].is_some() {
            return Err(format!("fields {} and {} name the same parameter: give one", spelled[i], key));
        }
        check(field, key, value)?;
        values[i] = Some(value.clone());
        spelled[i] = key;
    }
    if let Some(missing) = action.fields.iter().zip(&values).find(|(f, v)| f.required && v.is_none()) {
        return Err(format!("missing field {}", missing.0.camel));
    }
    Ok(values)
}

fn check(field: &Field, key: &str, value: &Value) -> Result<(), String> {
    let ok = match field.kind {
        Kind::Text => matches!(value, Value::String(s) if !s.is_empty()),
        Kind::Positive => value.as_u64().is_some_and(|n| (1..=u64::from(u32::MAX)).contains(&n)),
    };
    if ok {
        return Ok(());
    }
    let wanted = match field.kind {
        Kind::Text => "a non-empty string",
        Kind::Positive => "a positive integer",
    };
    Err(format!("field {key} must be {wanted}, not {}", describe(value)))
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
fn suggestion<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
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

/// A required field's text; `read_fields` has checked that it is there.
fn text(values: &Values, i: usize) -> String {
    optional_text(values, i).unwrap_or_default()
}

fn optional_text(values: &Values, i: usize) -> Option<String> {
    values[i].as_ref().and_then(Value::as_str).map(str::to_owned)
}

/// A required positive field; `read_fields` has checked that it fits.
fn positive(values: &Values, i: usize) -> u32 {
    values[i].as_ref().and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).unwrap_or_default()
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) if s.is_empty() => "an empty string".to_owned(),
        Value::Number(n) => format!("{n}"),
        other => type_name(other).to_owned(),
    }
}

#[cfg(test)]
mod tests;
