//! Key conversion between the cloud call's camelCase and WeChat's snake_case, as wx-server-sdk does it: keys only,
//! recursively through objects and arrays, values untouched, and each object's keys in the order wx-server-sdk leaves
//! them (the keys it renames after the others, at every depth), so that a result's JSON text is wx-server-sdk's.

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
pub(crate) fn convert_keys(value: Value, convert: fn(&str) -> String) -> Value {
    match value {
        Value::Object(map) => Value::Object(convert_map(map, convert)),
        Value::Array(items) => Value::Array(items.into_iter().map(|v| convert_keys(v, convert)).collect()),
        other => other,
    }
}

/// [`convert_keys`] for an object already out of its [`Value`]: the keys at every depth converted.
pub(crate) fn convert_map(map: Map<String, Value>, convert: fn(&str) -> String) -> Map<String, Value> {
    let mut object = Renaming::with_capacity(map.len());
    for (key, value) in map {
        let renamed = Some(convert(&key)).filter(|renamed| *renamed != key);
        object.push(key, renamed, convert_keys(value, convert));
    }
    object.finish()
}

/// One object's keys renamed in the order wx-server-sdk's conversion leaves them. It copies the object, then for each
/// key assigns the value under the converted key and deletes the old key when the two differ; an assignment to a key
/// the object lacks appends it. So the keys the conversion leaves alone keep their places, the renamed ones follow in
/// the order they came, and a renamed key meeting one already spelled that way gives it its value in its place. A
/// JavaScript object also puts integer keys (`"0"`, `"42"`) before all others, in ascending order.
struct Renaming {
    kept: Map<String, Value>,
    moved: Map<String, Value>,
}

impl Renaming {
    fn with_capacity(n: usize) -> Renaming {
        Renaming { kept: Map::with_capacity(n), moved: Map::new() }
    }

    /// A key as it came, its new spelling if the conversion changes it, and its (converted) value. A key seen twice
    /// keeps its first place and its last value, as JSON.parse leaves it.
    fn push(&mut self, key: String, renamed: Option<String>, value: Value) {
        match renamed {
            None => self.kept.insert(key, value),
            Some(renamed) => self.moved.insert(renamed, value),
        };
    }

    fn finish(self) -> Map<String, Value> {
        let Renaming { mut kept, moved } = self;
        // Map::insert replaces in place a key already there and appends a new one, as the assignment does.
        for (key, value) in moved {
            kept.insert(key, value);
        }
        if !kept.keys().any(|k| array_index(k).is_some()) {
            return kept;
        }
        let (mut indexed, named): (Vec<_>, Vec<_>) = kept.into_iter().partition(|(k, _)| array_index(k).is_some());
        indexed.sort_by_key(|(k, _)| array_index(k));
        indexed.into_iter().chain(named).collect()
    }
}

/// The key as a JavaScript array index (`0` to 2³²−2, written without a sign or leading zero), which an object
/// orders before its other keys.
fn array_index(key: &str) -> Option<u32> {
    let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()));
    key.parse::<u32>().ok().filter(|&n| canonical && n < u32::MAX)
}

/// Reads JSON into a [`Value`] whose keys are already camelCase, in the same order, as [`convert_keys`] would give
/// them: one pass, where reading and then converting would build every map twice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CamelKeys;

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
        let mut object = Renaming::with_capacity(entries.size_hint().unwrap_or(0));
        while let Some(key) = entries.next_key::<String>()? {
            let value = entries.next_value_seed(CamelKeys)?;
            // Most keys have no underscore and need no conversion.
            let renamed =
                if key.contains('_') { Some(snake_to_camel(&key)).filter(|renamed| *renamed != key) } else { None };
            object.push(key, renamed, value);
        }
        Ok(Value::Object(object.finish()))
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

    /// What wx-server-sdk 4.0.2's own conversion returned for these answers (run on them, errcode and errmsg left
    /// out): at every depth, the keys it leaves alone first, then the renamed ones; integer keys before both.
    const WX_SERVER_SDK_ORDER: [(&str, &str); 2] = [
        (
            r#"{"apply_list":[{"appid":"wxa","status":1,"nickname":"n","headimgurl":"h","categories":[{"first":"IT","second":"x"}],"create_time":"1","apply_url":"u","reason":"r"}]}"#,
            r#"{"applyList":[{"appid":"wxa","status":1,"nickname":"n","headimgurl":"h","categories":[{"first":"IT","second":"x"}],"reason":"r","createTime":"1","applyUrl":"u"}]}"#,
        ),
        (
            r#"{"x_y":{"b_c":1,"a":2},"k":[{"d_e":1,"f":[{"g_h":1,"i":2}],"j":[[{"l_m":1,"n":2}]]}],"dup_key":"snake","dupKey":"camel","otherKey":"camel","other_key":"snake","2":"two","10":"ten","01":"zero-one","4294967295":"not an index","z":0}"#,
            r#"{"2":"two","10":"ten","k":[{"f":[{"i":2,"gH":1}],"j":[[{"n":2,"lM":1}]],"dE":1}],"dupKey":"snake","otherKey":"snake","01":"zero-one","4294967295":"not an index","z":0,"xY":{"a":2,"bC":1}}"#,
        ),
    ];

    #[test]
    fn keys_come_in_wx_server_sdk_order() {
        for (wechat, expected) in WX_SERVER_SDK_ORDER {
            let read = CamelKeys.deserialize(&mut serde_json::Deserializer::from_str(wechat)).unwrap();
            assert_eq!(read.to_string(), expected, "read into camel keys");
            let converted = convert_keys(wechat.parse().unwrap(), snake_to_camel);
            assert_eq!(converted.to_string(), expected, "converted after reading");
        }
    }

    #[test]
    fn array_indices_are_javascripts() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("4294967294"), Some(u32::MAX - 1));
        for not_index in ["4294967295", "01", "-1", "+1", "1.0", "", " 1", "1e3", "x1"] {
            assert_eq!(array_index(not_index), None, "{not_index}");
        }
    }
}
