//! What a caller can ask for: the eight plugin-management operations, one type each, checked from the cloud call's
//! camelCase parameters before anything goes on the wire.
//!
//! Each type ([`Apply`], [`DevAgree`], …) declares its action once (name, cloud method, WeChat path, parameters),
//! parses itself from the event's parameters by name, and writes its own snake_case body. They are grouped by WeChat's
//! endpoint: `plugin.rs` for `/wxa/plugin`, `dev.rs` for `/wxa/devplugin`; `fields.rs` reads and checks the
//! parameters and suggests the name meant. [`Operation`] is one of them, [`Request`] adds the mini program a
//! third-party platform acts for.

mod dev;
mod fields;
mod plugin;

use serde_json::Value;

pub use dev::{DevAgree, DevApplyList, DevDelete, DevRefuse};
use fields::{describe, suggestion, type_name, Field, Fields};
use plugin::List;
pub use plugin::{Apply, Unbind, Update};

use crate::error::Error;
use crate::present::NO_METHOD;
use crate::wechat::is_appid;

/// One validated request: an action's type, which knows its own parameters and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `apply`: asks a plugin's developer to let this mini program use the plugin.
    Apply(Apply),
    /// `list`: the plugins this mini program has added or applied for, with their status. It has no parameters,
    /// so the variant carries nothing.
    List,
    /// `unbind`: removes an added plugin from this mini program.
    Unbind(Unbind),
    /// `update`: moves an added plugin to another version (WeChat's quick update, if that version allows it).
    Update(Update),
    /// `dev_apply_list`: for the plugin's developer, one page of the mini programs that applied to use it.
    DevApplyList(DevApplyList),
    /// `dev_agree`: for the plugin's developer, accepts a pending application.
    DevAgree(DevAgree),
    /// `dev_refuse`: for the plugin's developer, refuses a pending application.
    DevRefuse(DevRefuse),
    /// `dev_delete`: for the plugin's developer, deletes a refused or expired application.
    DevDelete(DevDelete),
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
pub(crate) const AUTHORIZER_FIELD: &str = "authorizerAppid";
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

/// What the cloud call knows one action by, declared once by the action's type.
struct Action {
    /// The event's `action`, and the body's.
    name: &'static str,
    /// The `openapi.pluginManager.<method>` it answers as.
    method: &'static str,
    /// Its parameters, in the order errors list them.
    fields: &'static [Field],
    parse: Parse,
}

/// An action's parse: the operation, from the checked parameters.
type Parse = fn(&Fields) -> Result<Operation, String>;

/// Every action, in the order errors list them and the first to claim a field is named as its owner.
const ACTIONS: [&Action; 8] = [
    &Apply::ACTION,
    &List::ACTION,
    &Unbind::ACTION,
    &Update::ACTION,
    &DevApplyList::ACTION,
    &DevAgree::ACTION,
    &DevRefuse::ACTION,
    &DevDelete::ACTION,
];

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
        let action = ACTIONS.iter().find(|a| a.name == name).ok_or_else(|| fail(NO_METHOD, unknown_action(name)))?;
        let fields = Fields::read(action, event).map_err(|detail| fail(action.method, detail))?;
        (action.parse)(&fields).map_err(|detail| fail(action.method, detail))
    }

    fn action(&self) -> &'static Action {
        match self {
            Operation::Apply(_) => &Apply::ACTION,
            Operation::List => &List::ACTION,
            Operation::Unbind(_) => &Unbind::ACTION,
            Operation::Update(_) => &Update::ACTION,
            Operation::DevApplyList(_) => &DevApplyList::ACTION,
            Operation::DevAgree(_) => &DevAgree::ACTION,
            Operation::DevRefuse(_) => &DevRefuse::ACTION,
            Operation::DevDelete(_) => &DevDelete::ACTION,
        }
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
        match self {
            Operation::Apply(_) | Operation::List | Operation::Unbind(_) | Operation::Update(_) => plugin::PATH,
            Operation::DevApplyList(_) | Operation::DevAgree(_) | Operation::DevRefuse(_) | Operation::DevDelete(_) => {
                dev::PATH
            }
        }
    }

    /// Whether sending it twice is harmless (only then is a `-1` retried).
    pub fn is_read_only(&self) -> bool {
        matches!(self, Operation::List | Operation::DevApplyList(_))
    }

    /// WeChat's JSON body: the action, then each given parameter under its snake_case name.
    pub fn body(&self) -> Value {
        match self {
            Operation::Apply(apply) => apply.body(),
            Operation::List => List.body(),
            Operation::Unbind(unbind) => unbind.body(),
            Operation::Update(update) => update.body(),
            Operation::DevApplyList(list) => list.body(),
            Operation::DevAgree(agree) => agree.body(),
            Operation::DevRefuse(refuse) => refuse.body(),
            Operation::DevDelete(delete) => delete.body(),
        }
    }
}

fn unknown_action(name: &str) -> String {
    let names: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
    let hint = suggestion(name, &names).map(|s| format!("; did you mean {s}?")).unwrap_or_default();
    format!("unknown action {name:?}{hint} (expected one of {})", names.join(", "))
}

#[cfg(test)]
mod tests;
