//! Key conversion between the cloud call's camelCase and WeChat's snake_case, as wx-server-sdk does it: keys only,
//! recursively through objects and arrays, values untouched.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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

/// [`convert_keys`] for an object already out of its [`Value`]: the keys at every depth converted.
pub fn convert_map(map: Map<String, Value>, convert: fn(&str) -> String) -> Map<String, Value> {
    map.into_iter().map(|(k, v)| (convert(&k), convert_keys(v, convert))).collect()
}

/// A key as [`snake_to_camel`] gives it, without a copy when it has no underscore (most keys).
fn camel_key(key: String) -> String {
    if key.contains('_') {
        snake_to_camel(&key)
    } else {
        key
    }
}

/// Reads JSON into a [`Value`] whose keys are already camelCase, as [`convert_keys`] would give them: one pass and
/// one map per object, where reading and then converting would build every map twice.
#[derive(Debug, Clone, Copy)]
pub struct CamelKeys;

impl<'de> DeserializeSeed<'de> for CamelKeys {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CamelKeys {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element_seed(CamelKeys)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            let value = entries.next_value_seed(CamelKeys)?;
            map.insert(camel_key(key), value);
        }
        Ok(Value::Object(map))
    }
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

    #[test]
    fn reading_into_camel_keys_equals_reading_then_converting() {
        let text = r#"{"errcode":0,"plugin_list":[{"app_id":"a","extra_field":{"deep_key":[1,-2,3.5,null,true]},"x__y":"_a"}],
            "apply_list":[],"total_num":18446744073709551615,"big":1e400,"dup_key":1,"dupKey":2,"_lead":0,"trail_":""}"#;
        let read: Value = text.parse::<Value>().map(|v| convert_keys(v, snake_to_camel)).unwrap_or(Value::Null);
        let mut de = serde_json::Deserializer::from_str(text);
        let direct = CamelKeys.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
        // 1e400 is out of f64's range: both ways refuse it.
        assert!(direct.is_err() && read.is_null());
        let text = text.replace("1e400", "1e300");
        let read = convert_keys(text.parse().unwrap(), snake_to_camel);
        let direct = CamelKeys.deserialize(&mut serde_json::Deserializer::from_str(&text)).unwrap();
        assert_eq!(direct, read);
        assert_eq!(serde_json::to_string(&direct).unwrap(), serde_json::to_string(&read).unwrap(), "same key order");
    }
}
