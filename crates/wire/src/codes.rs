//! The one table of WeChat `errcode`s this project knows: what each means to a caller, and the text WeChat sends
//! with it. The function classifies WeChat's answers with it (its call path, its gateway, its platform mode); the
//! emulator answers with it.

/// How a caller should treat an errcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `0`: the call succeeded.
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

struct Entry {
    code: i64,
    class: Class,
    /// WeChat's own text for the code (before the ` rid: …` suffix it appends).
    errmsg: &'static str,
}

/// Declares each code once: its constant, documented with WeChat's text and its [`Class`], and its [`TABLE`] entry.
macro_rules! codes {
    ($($name:ident = $code:literal, $class:ident, $errmsg:literal;)*) => {
        $(
            #[doc = concat!("`", stringify!($code), "`: \"", $errmsg, "\" ([`Class::", stringify!($class), "`]).")]
            pub const $name: i64 = $code;
        )*

        /// Every code above: how a caller treats it and what WeChat says with it.
        const TABLE: &[Entry] = &[$(Entry { code: $name, class: Class::$class, errmsg: $errmsg }),*];
    };
}

codes! {
    OK = 0, Ok, "ok";
    SYSTEM_BUSY = -1, Busy, "system error";
    INVALID_CREDENTIAL = 40001, StaleToken, "invalid credential, access_token is invalid or not latest";
    INVALID_GRANT_TYPE = 40002, BadRequest, "invalid grant_type";
    INVALID_APPID = 40013, Config, "invalid appid";
    INVALID_ACCESS_TOKEN = 40014, StaleToken, "invalid access_token";
    INVALID_APPSECRET = 40125, Config, "invalid appsecret";
    IP_NOT_WHITELISTED = 40164, Config, "invalid ip, not in whitelist";
    API_SECURITY_MISSING_SERIAL = 40230, BadRequest, "missing Wechatmp-Serial";
    API_SECURITY_MISSING_TIMESTAMP = 40231, BadRequest, "missing Wechatmp-TimeStamp";
    API_SECURITY_MISSING_SIGNATURE = 40232, BadRequest, "missing Wechatmp-Signature";
    API_SECURITY_MISSING_APPID = 40233, BadRequest, "missing Wechatmp-Appid";
    API_SECURITY_INVALID_SIGNATURE = 40234, Config, "invalid signature";
    API_SECURITY_INVALID_ENCRYPT = 40235, Config, "invalid encrypt data";
    API_SECURITY_INVALID_APPID = 40236, Config, "invalid Wechatmp-Appid";
    API_SECURITY_APPID_MISMATCH = 40237, Config, "invalid Wechatmp-Appid match request";
    API_SECURITY_NO_SYM_KEY = 40238, Config, "developer secret sym serial not existed";
    API_SECURITY_NO_ASYM_KEY = 40239, Config, "developer secret asym serial not existed";
    API_SECURITY_EXPIRED_TIMESTAMP = 40240, Config, "expired Wechatmp-TimeStamp";
    SECRET_FROZEN = 40243, Config, "AppSecret is frozen";
    ACCESS_TOKEN_MISSING = 41001, BadRequest, "access_token missing";
    APPID_MISSING = 41002, Config, "appid missing";
    APPSECRET_MISSING = 41004, Config, "appsecret missing";
    ACCESS_TOKEN_EXPIRED = 42001, StaleToken, "access_token expired";
    REQUIRE_GET = 43001, BadRequest, "require GET method";
    REQUIRE_POST = 43002, BadRequest, "require POST method";
    EMPTY_POST_DATA = 44002, BadRequest, "empty post data";
    DAILY_QUOTA = 45009, Quota, "reach max api daily quota limit";
    MINUTE_QUOTA = 45011, Quota, "api minute-quota reach limit  mustslower  retry next minute";
    DATA_FORMAT_ERROR = 47001, BadRequest, "data format error";
    API_UNAUTHORIZED = 48001, Refused, "api unauthorized";
    COMPONENT_NOT_AUTHORIZED = 61003, Refused, "component is not authorized by this account";
    COMPONENT_IP_NOT_REGISTERED = 61004, Config, "access clientip is not registered";
    COMPONENT_TICKET_EXPIRED = 61005, Config, "component ticket is expired";
    COMPONENT_TICKET_INVALID = 61006, Config, "component ticket is invalid";
    API_UNAUTHORIZED_TO_COMPONENT = 61007, Refused, "api is unauthorized to component";
    AUTH_CODE_INVALID = 61009, BadRequest, "invalid authorization code";
    AUTH_CODE_EXPIRED = 61010, BadRequest, "authorization code is expired";
    INVALID_COMPONENT = 61011, Config, "invalid component";
    REFRESH_TOKEN_INVALID = 61023, Refused, "refresh_token is invalid";
    MUST_USE_COMPONENT_TOKEN = 61024, Config, "must use api(api_component_token) to get token for component acct";
    PLUGIN_NOT_FOUND_MP = 89044, NotFound, "plugin appid not exist";
    PLUGIN_CANNOT_APPLY = 89236, Refused, "plugin can not be applied";
    PLUGIN_ALREADY_ADDED = 89237, WrongState, "plugin has been added";
    PLUGIN_LIMIT = 89238, Quota, "applied plugins reach limit";
    PLUGIN_DOES_NOT_EXIST = 89239, NotFound, "plugin does not exist";
    ONLY_PENDING_CAN_BE_DECIDED = 89240, WrongState, "only applying status can be agreed or refused";
    ONLY_CLOSED_CAN_BE_DELETED = 89241, WrongState, "only refused or expired status can be deleted";
    APPID_NOT_IN_APPLY_LIST = 89242, NotFound, "appid not in apply list";
    PENDING_CANNOT_BE_REMOVED = 89243, WrongState, "applying plugin can not be unbound";
    PLUGIN_NOT_FOUND = 89244, NotFound, "plugin appid not exist";
    NOT_AUTHORIZER_TOKEN = 89256, Refused, "no component info";
    NO_QUICK_UPDATE = 89257, Refused, "this plugin version does not support quick update";
    GRAY_RELEASE_IN_PROGRESS = 89258, WrongState, "gray release in progress, quick update not allowed";
}

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
