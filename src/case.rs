//! Key conversion between the cloud call's camelCase and WeChat's snake_case, as wx-server-sdk does it: keys only,
//! recursively through objects and arrays, values untouched.

use serde_json::{Map, Value};

/// `pluginAppid` → `plugin_appid`: every capital letter becomes `_` and its lower case.
pub fn camel_to_snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `plugin_list` → `pluginList`: every `_` before a lower-case letter is dropped and the letter raised. Other
/// underscores (before a digit, doubled, trailing) are kept, so the conversion never loses a key.
pub fn snake_to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match chars.peek() {
            Some(&next) if c == '_' && next.is_ascii_lowercase() => {
                out.push(next.to_ascii_uppercase());
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// Converts every key of `value` (recursively) with `convert`.
pub fn convert_keys(value: Value, convert: fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(convert_map(map, convert)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| convert_keys(v, convert)).collect()),
        other => other,
    }
}

pub fn convert_map(map: Map<String, Value>, convert: fn(&str) -> String) -> Map<String, Value> {
    map.into_iter().map(|(k, v)| (convert(&k), convert_keys(v, convert))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn camel_to_snake_follows_wx_server_sdk() {
        assert_eq!(camel_to_snake("pluginAppid"), "plugin_appid");
        assert_eq!(camel_to_snake("userVersion"), "user_version");
        assert_eq!(camel_to_snake("pluginAppId"), "plugin_app_id");
        assert_eq!(camel_to_snake("page"), "page");
    }

    #[test]
    fn snake_to_camel_converts_wechat_keys_and_keeps_odd_underscores() {
        assert_eq!(snake_to_camel("plugin_list"), "pluginList");
        assert_eq!(snake_to_camel("create_time"), "createTime");
        assert_eq!(snake_to_camel("apply_url"), "applyUrl");
        assert_eq!(snake_to_camel("headimgurl"), "headimgurl");
        assert_eq!(snake_to_camel("a_1"), "a_1");
        assert_eq!(snake_to_camel("trailing_"), "trailing_");
        assert_eq!(snake_to_camel("double__x"), "double_X");
    }

    #[test]
    fn conversion_reaches_nested_keys_and_leaves_values_alone() {
        let wechat = json!({"apply_list":[{"create_time":"1","categories":[{"first":"a_b"}]}],"user_version":"x_y"});
        let camel = convert_keys(wechat, snake_to_camel);
        assert_eq!(camel, json!({"applyList":[{"createTime":"1","categories":[{"first":"a_b"}]}],"userVersion":"x_y"}));
    }
}
