//! The one table of WeChat `errcode`s this project knows: what each means to a caller, and the text WeChat sends
//! with it. The client classifies answers with it; the emulator answers with it.

/// How a caller should treat an errcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Ok,
    /// WeChat was busy; the request may or may not have been processed.
    Busy,
    /// The access token is no longer good: refresh it and retry once.
    StaleToken,
    /// The credentials or the network position of the caller are wrong: no retry helps.
    Config,
    /// A quota was reached.
    Quota,
    /// The request itself was malformed.
    BadRequest,
    /// A business refusal of the plugin API.
    Refused,
    /// The mini program or the plugin was not found.
    NotFound,
    /// The application or plugin is not in a state that allows the change.
    WrongState,
    /// Anything this table does not name.
    Other,
}

pub const OK: i64 = 0;
pub const SYSTEM_BUSY: i64 = -1;
pub const INVALID_CREDENTIAL: i64 = 40001;
pub const INVALID_GRANT_TYPE: i64 = 40002;
pub const INVALID_APPID: i64 = 40013;
pub const INVALID_ACCESS_TOKEN: i64 = 40014;
pub const INVALID_APPSECRET: i64 = 40125;
pub const IP_NOT_WHITELISTED: i64 = 40164;
pub const SECRET_FROZEN: i64 = 40243;
pub const ACCESS_TOKEN_MISSING: i64 = 41001;
pub const APPID_MISSING: i64 = 41002;
pub const APPSECRET_MISSING: i64 = 41004;
pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
pub const REQUIRE_GET: i64 = 43001;
pub const REQUIRE_POST: i64 = 43002;
pub const EMPTY_POST_DATA: i64 = 44002;
pub const DAILY_QUOTA: i64 = 45009;
pub const MINUTE_QUOTA: i64 = 45011;
pub const DATA_FORMAT_ERROR: i64 = 47001;
pub const API_UNAUTHORIZED: i64 = 48001;
pub const COMPONENT_NOT_AUTHORIZED: i64 = 61003;
pub const COMPONENT_IP_NOT_REGISTERED: i64 = 61004;
pub const COMPONENT_TICKET_EXPIRED: i64 = 61005;
pub const COMPONENT_TICKET_INVALID: i64 = 61006;
pub const API_UNAUTHORIZED_TO_COMPONENT: i64 = 61007;
pub const AUTH_CODE_INVALID: i64 = 61009;
pub const AUTH_CODE_EXPIRED: i64 = 61010;
pub const INVALID_COMPONENT: i64 = 61011;
pub const REFRESH_TOKEN_INVALID: i64 = 61023;
pub const MUST_USE_COMPONENT_TOKEN: i64 = 61024;
pub const PLUGIN_NOT_FOUND_MP: i64 = 89044;
pub const PLUGIN_CANNOT_APPLY: i64 = 89236;
pub const PLUGIN_ALREADY_ADDED: i64 = 89237;
pub const PLUGIN_LIMIT: i64 = 89238;
pub const PLUGIN_DOES_NOT_EXIST: i64 = 89239;
pub const ONLY_PENDING_CAN_BE_DECIDED: i64 = 89240;
pub const ONLY_CLOSED_CAN_BE_DELETED: i64 = 89241;
pub const APPID_NOT_IN_APPLY_LIST: i64 = 89242;
pub const PENDING_CANNOT_BE_REMOVED: i64 = 89243;
pub const PLUGIN_NOT_FOUND: i64 = 89244;
pub const NOT_AUTHORIZER_TOKEN: i64 = 89256;
pub const NO_QUICK_UPDATE: i64 = 89257;
pub const GRAY_RELEASE_IN_PROGRESS: i64 = 89258;

struct Entry {
    code: i64,
    class: Class,
    /// WeChat's own text for the code (before the ` rid: …` suffix it appends).
    errmsg: &'static str,
}

const TABLE: &[Entry] = &[
    Entry { code: OK, class: Class::Ok, errmsg: "ok" },
    Entry { code: SYSTEM_BUSY, class: Class::Busy, errmsg: "system error" },
    Entry {
        code: INVALID_CREDENTIAL,
        class: Class::StaleToken,
        errmsg: "invalid credential, access_token is invalid or not latest",
    },
    Entry { code: INVALID_GRANT_TYPE, class: Class::BadRequest, errmsg: "invalid grant_type" },
    Entry { code: INVALID_APPID, class: Class::Config, errmsg: "invalid appid" },
    Entry { code: INVALID_ACCESS_TOKEN, class: Class::StaleToken, errmsg: "invalid access_token" },
    Entry { code: INVALID_APPSECRET, class: Class::Config, errmsg: "invalid appsecret" },
    Entry { code: IP_NOT_WHITELISTED, class: Class::Config, errmsg: "invalid ip, not in whitelist" },
    Entry { code: SECRET_FROZEN, class: Class::Config, errmsg: "AppSecret is frozen" },
    Entry { code: ACCESS_TOKEN_MISSING, class: Class::BadRequest, errmsg: "access_token missing" },
    Entry { code: APPID_MISSING, class: Class::Config, errmsg: "appid missing" },
    Entry { code: APPSECRET_MISSING, class: Class::Config, errmsg: "appsecret missing" },
    Entry { code: ACCESS_TOKEN_EXPIRED, class: Class::StaleToken, errmsg: "access_token expired" },
    Entry { code: REQUIRE_GET, class: Class::BadRequest, errmsg: "require GET method" },
    Entry { code: REQUIRE_POST, class: Class::BadRequest, errmsg: "require POST method" },
    Entry { code: EMPTY_POST_DATA, class: Class::BadRequest, errmsg: "empty post data" },
    Entry { code: DAILY_QUOTA, class: Class::Quota, errmsg: "reach max api daily quota limit" },
    Entry {
        code: MINUTE_QUOTA,
        class: Class::Quota,
        errmsg: "api minute-quota reach limit  mustslower  retry next minute",
    },
    Entry { code: DATA_FORMAT_ERROR, class: Class::BadRequest, errmsg: "data format error" },
    Entry { code: API_UNAUTHORIZED, class: Class::Refused, errmsg: "api unauthorized" },
    Entry {
        code: COMPONENT_NOT_AUTHORIZED,
        class: Class::Refused,
        errmsg: "component is not authorized by this account",
    },
    Entry { code: COMPONENT_IP_NOT_REGISTERED, class: Class::Config, errmsg: "access clientip is not registered" },
    Entry { code: COMPONENT_TICKET_EXPIRED, class: Class::Config, errmsg: "component ticket is expired" },
    Entry { code: COMPONENT_TICKET_INVALID, class: Class::Config, errmsg: "component ticket is invalid" },
    Entry { code: API_UNAUTHORIZED_TO_COMPONENT, class: Class::Refused, errmsg: "api is unauthorized to component" },
    Entry { code: AUTH_CODE_INVALID, class: Class::BadRequest, errmsg: "invalid authorization code" },
    Entry { code: AUTH_CODE_EXPIRED, class: Class::BadRequest, errmsg: "authorization code is expired" },
    Entry { code: INVALID_COMPONENT, class: Class::Config, errmsg: "invalid component" },
    Entry { code: REFRESH_TOKEN_INVALID, class: Class::Refused, errmsg: "refresh_token is invalid" },
    Entry {
        code: MUST_USE_COMPONENT_TOKEN,
        class: Class::Config,
        errmsg: "must use api(api_component_token) to get token for component acct",
    },
    Entry { code: PLUGIN_NOT_FOUND_MP, class: Class::NotFound, errmsg: "plugin appid not exist" },
    Entry { code: PLUGIN_CANNOT_APPLY, class: Class::Refused, errmsg: "plugin can not be applied" },
    Entry { code: PLUGIN_ALREADY_ADDED, class: Class::WrongState, errmsg: "plugin has been added" },
    Entry { code: PLUGIN_LIMIT, class: Class::Quota, errmsg: "applied plugins reach limit" },
    Entry { code: PLUGIN_DOES_NOT_EXIST, class: Class::NotFound, errmsg: "plugin does not exist" },
    Entry {
        code: ONLY_PENDING_CAN_BE_DECIDED,
        class: Class::WrongState,
        errmsg: "only applying status can be agreed or refused",
    },
    Entry {
        code: ONLY_CLOSED_CAN_BE_DELETED,
        class: Class::WrongState,
        errmsg: "only refused or expired status can be deleted",
    },
    Entry { code: APPID_NOT_IN_APPLY_LIST, class: Class::NotFound, errmsg: "appid not in apply list" },
    Entry { code: PENDING_CANNOT_BE_REMOVED, class: Class::WrongState, errmsg: "applying plugin can not be unbound" },
    Entry { code: PLUGIN_NOT_FOUND, class: Class::NotFound, errmsg: "plugin appid not exist" },
    Entry { code: NOT_AUTHORIZER_TOKEN, class: Class::Refused, errmsg: "no component info" },
    Entry { code: NO_QUICK_UPDATE, class: Class::Refused, errmsg: "this plugin version does not support quick update" },
    Entry {
        code: GRAY_RELEASE_IN_PROGRESS,
        class: Class::WrongState,
        errmsg: "gray release in progress, quick update not allowed",
    },
];

fn entry(code: i64) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.code == code)
}

/// How a caller should treat `code`.
pub fn class(code: i64) -> Class {
    entry(code).map_or(Class::Other, |e| e.class)
}

/// WeChat's own text for `code`, or `"unknown error"` for a code outside the table.
pub fn errmsg(code: i64) -> &'static str {
    entry(code).map_or("unknown error", |e| e.errmsg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_appears_once() {
        for (i, a) in TABLE.iter().enumerate() {
            assert!(TABLE[i + 1..].iter().all(|b| b.code != a.code), "{} twice", a.code);
        }
    }

    #[test]
    fn token_codes_ask_for_a_refresh() {
        for code in [40001, 40014, 42001] {
            assert_eq!(class(code), Class::StaleToken, "{code}");
        }
        assert_eq!(class(40013), Class::Config);
        assert_eq!(class(123456), Class::Other);
        assert_eq!(errmsg(123456), "unknown error");
    }
}
