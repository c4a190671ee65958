//! What a mini program does with the plugins it uses, at WeChat's `/wxa/plugin`: apply, list, unbind, update.

use serde_json::Value;

use super::fields::{Body, Field, Fields, REASON};
use super::{Action, Operation};

/// WeChat's path for every operation here.
pub(super) const PATH: &str = wechat_wire::paths::PLUGIN;
const PLUGIN_APPID: Field = Field::text("pluginAppid", "plugin_appid");
const USER_VERSION: Field = Field::text("userVersion", "user_version");

/// `apply`: asks a plugin's developer to let this mini program use the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    /// The plugin's appid.
    pub plugin_appid: String,
    /// Why the mini program wants it, shown to the plugin's developer.
    pub reason: Option<String>,
}

impl Apply {
    pub(super) const ACTION: Action = Action {
        name: "apply",
        method: "applyPlugin",
        fields: &[PLUGIN_APPID, REASON],
        parse: |fields| Apply::parse(fields).map(Operation::Apply),
    };

    fn parse(fields: &Fields) -> Result<Apply, String> {
        Ok(Apply { plugin_appid: fields.text(&PLUGIN_APPID)?, reason: fields.optional_text(&REASON) })
    }

    pub(super) fn body(&self) -> Value {
        let body = Body::of(&Self::ACTION).text(&PLUGIN_APPID, &self.plugin_appid);
        body.optional_text(&REASON, self.reason.as_deref()).finish()
    }
}

/// `list`: the plugins this mini program has added or applied for, with their status.
///
/// Not public: it carries nothing, so [`Operation::List`] carries no `List` either.
pub(super) struct List;

impl List {
    pub(super) const ACTION: Action =
        Action { name: "list", method: "getPluginList", fields: &[], parse: |_| Ok(Operation::List) };

    pub(super) fn body(&self) -> Value {
        Body::of(&Self::ACTION).finish()
    }
}

/// `unbind`: removes an added plugin from this mini program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unbind {
    /// The plugin's appid.
    pub plugin_appid: String,
}

impl Unbind {
    pub(super) const ACTION: Action = Action {
        name: "unbind",
        method: "unbindPlugin",
        fields: &[PLUGIN_APPID],
        parse: |fields| Unbind::parse(fields).map(Operation::Unbind),
    };

    fn parse(fields: &Fields) -> Result<Unbind, String> {
        Ok(Unbind { plugin_appid: fields.text(&PLUGIN_APPID)? })
    }

    pub(super) fn body(&self) -> Value {
        Body::of(&Self::ACTION).text(&PLUGIN_APPID, &self.plugin_appid).finish()
    }
}

/// `update`: moves an added plugin to another version (WeChat's quick update, if that version allows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The plugin's appid.
    pub plugin_appid: String,
    /// The plugin version to move to, e.g. `1.0.2`.
    pub user_version: String,
}

impl Update {
    pub(super) const ACTION: Action = Action {
        name: "update",
        method: "applyPlugin",
        fields: &[PLUGIN_APPID, USER_VERSION],
        parse: |fields| Update::parse(fields).map(Operation::Update),
    };

    fn parse(fields: &Fields) -> Result<Update, String> {
        Ok(Update { plugin_appid: fields.text(&PLUGIN_APPID)?, user_version: fields.text(&USER_VERSION)? })
    }

    pub(super) fn body(&self) -> Value {
        let body = Body::of(&Self::ACTION).text(&PLUGIN_APPID, &self.plugin_appid);
        body.text(&USER_VERSION, &self.user_version).finish()
    }
}
