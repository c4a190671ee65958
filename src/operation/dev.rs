//! What a plugin's developer does with the applications to use the plugin, at WeChat's `/wxa/devplugin`: list them,
//! agree, refuse, delete.

use serde_json::Value;

use super::fields::{Body, Field, Fields, REASON};
use super::{Action, Operation, Parse};

/// WeChat's path for every operation here.
pub(super) const PATH: &str = wechat_wire::paths::DEV_PLUGIN;
const PAGE: Field = Field::positive("page", "page");
const NUM: Field = Field::positive("num", "num");
/// The applicant mini program.
const APPLICANT: Field = Field::text("appid", "appid");

/// `dev_apply_list`: for the plugin's developer, one page of the mini programs that applied to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevApplyList {
    /// Which page, from 1.
    pub page: u32,
    /// Applications per page.
    pub num: u32,
}

impl DevApplyList {
    pub(super) const ACTION: Action = Action {
        name: "dev_apply_list",
        method: "getPluginDevApplyList",
        fields: &[PAGE, NUM],
        parse: |fields| DevApplyList::parse(fields).map(Operation::DevApplyList),
    };

    fn parse(fields: &Fields) -> Result<DevApplyList, String> {
        Ok(DevApplyList { page: fields.positive(&PAGE)?, num: fields.positive(&NUM)? })
    }

    pub(super) fn body(&self) -> Value {
        Body::of(&Self::ACTION).positive(&PAGE, self.page).positive(&NUM, self.num).finish()
    }
}

/// `dev_agree`: for the plugin's developer, accepts a pending application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevAgree {
    /// The applicant mini program's appid.
    pub appid: String,
    /// Sent to WeChat as given (WeChat's documentation asks for a reason only when refusing).
    pub reason: Option<String>,
}

impl DevAgree {
    pub(super) const ACTION: Action =
        answer_action("dev_agree", |fields| DevAgree::parse(fields).map(Operation::DevAgree));

    fn parse(fields: &Fields) -> Result<DevAgree, String> {
        Ok(DevAgree { appid: fields.text(&APPLICANT)?, reason: fields.optional_text(&REASON) })
    }

    pub(super) fn body(&self) -> Value {
        answer_body(&Self::ACTION, Some(&self.appid), self.reason.as_deref())
    }
}

/// `dev_refuse`: for the plugin's developer, refuses a pending application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevRefuse {
    /// The applicant mini program's appid, when given.
    pub appid: Option<String>,
    /// Why it was refused, shown to the applicant.
    pub reason: Option<String>,
}

impl DevRefuse {
    pub(super) const ACTION: Action =
        answer_action("dev_refuse", |fields| DevRefuse::parse(fields).map(Operation::DevRefuse));

    fn parse(fields: &Fields) -> Result<DevRefuse, String> {
        Ok(DevRefuse { appid: fields.optional_text(&APPLICANT), reason: fields.optional_text(&REASON) })
    }

    pub(super) fn body(&self) -> Value {
        answer_body(&Self::ACTION, self.appid.as_deref(), self.reason.as_deref())
    }
}

/// `dev_delete`: for the plugin's developer, deletes a refused or expired application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevDelete {
    /// The applicant mini program's appid, when given.
    pub appid: Option<String>,
    /// Sent to WeChat as given (WeChat's documentation asks for a reason only when refusing).
    pub reason: Option<String>,
}

impl DevDelete {
    pub(super) const ACTION: Action =
        answer_action("dev_delete", |fields| DevDelete::parse(fields).map(Operation::DevDelete));

    fn parse(fields: &Fields) -> Result<DevDelete, String> {
        Ok(DevDelete { appid: fields.optional_text(&APPLICANT), reason: fields.optional_text(&REASON) })
    }

    pub(super) fn body(&self) -> Value {
        answer_body(&Self::ACTION, self.appid.as_deref(), self.reason.as_deref())
    }
}

/// An answer to an application: WeChat has one method for all three and the action says which; they take the same
/// parameters, and the parse says which it requires.
const fn answer_action(name: &'static str, parse: Parse) -> Action {
    Action { name, method: "setDevPluginApplyStatus", fields: &[APPLICANT, REASON], parse }
}

/// The body of an answer to an application: the three answers differ only in their action and in which parameters
/// they require.
fn answer_body(action: &Action, appid: Option<&str>, reason: Option<&str>) -> Value {
    Body::of(action).optional_text(&APPLICANT, appid).optional_text(&REASON, reason).finish()
}
