use super::*;
use serde_json::json;

fn refused(event: Value) -> String {
    match Operation::from_event(&event) {
        Err(Error::InvalidEvent { detail, .. }) => detail,
        other => panic!("{event} was not refused: {other:?}"),
    }
}

#[test]
fn each_action_reads_its_fields_and_builds_wechats_body() {
    let cases = [
        (
            json!({"action":"apply","pluginAppid":"wxp","reason":"r"}),
            json!({"action":"apply","plugin_appid":"wxp","reason":"r"}),
        ),
        (json!({"action":"apply","plugin_appid":"wxp"}), json!({"action":"apply","plugin_appid":"wxp"})),
        (json!({"action":"list"}), json!({"action":"list"})),
        (json!({"action":"unbind","pluginAppid":"wxp"}), json!({"action":"unbind","plugin_appid":"wxp"})),
        (
            json!({"action":"update","pluginAppid":"wxp","user_version":"1.0.1"}),
            json!({"action":"update","plugin_appid":"wxp","user_version":"1.0.1"}),
        ),
        (json!({"action":"dev_apply_list","page":2,"num":20}), json!({"action":"dev_apply_list","page":2,"num":20})),
        (json!({"action":"dev_agree","appid":"wxa"}), json!({"action":"dev_agree","appid":"wxa"})),
        (
            json!({"action":"dev_refuse","appid":"wxa","reason":"no"}),
            json!({"action":"dev_refuse","appid":"wxa","reason":"no"}),
        ),
        (json!({"action":"dev_refuse"}), json!({"action":"dev_refuse"})),
        (json!({"action":"dev_delete","appid":"wxa"}), json!({"action":"dev_delete","appid":"wxa"})),
    ];
    for (event, body) in cases {
        let op = Operation::from_event(&event).unwrap_or_else(|e| panic!("{event}: {e}"));
        assert_eq!(op.body(), body, "{event}");
    }
}

#[test]
fn actions_map_to_wechat_paths_and_cloud_methods() {
    let op = |e: Value| Operation::from_event(&e).unwrap();
    let update = op(json!({"action":"update","pluginAppid":"p","userVersion":"1"}));
    assert_eq!((update.path(), update.method(), update.is_read_only()), ("/wxa/plugin", "applyPlugin", false));
    let list = op(json!({"action":"list"}));
    assert_eq!((list.path(), list.method(), list.is_read_only()), ("/wxa/plugin", "getPluginList", true));
    let apply_list = op(json!({"action":"dev_apply_list","page":1,"num":1}));
    assert_eq!((apply_list.path(), apply_list.method()), ("/wxa/devplugin", "getPluginDevApplyList"));
    assert!(apply_list.is_read_only());
    let delete = op(json!({"action":"dev_delete"}));
    assert_eq!(
        (delete.path(), delete.method(), delete.is_read_only()),
        ("/wxa/devplugin", "setDevPluginApplyStatus", false)
    );
}

#[test]
fn bad_events_are_refused_naming_the_field() {
    assert_eq!(
        refused(json!({"action":"unbind","pluginAppId":"wxp"})),
        "unknown field pluginAppId; did you mean pluginAppid?"
    );
    assert_eq!(
        refused(json!({"action":"update","pluginAppid":"p","userversion":"1"})),
        "unknown field userversion; did you mean userVersion?"
    );
    assert_eq!(
        refused(json!({"action":"unbind","plugin_app_id":"p"})),
        "unknown field plugin_app_id; did you mean pluginAppid?"
    );
    assert_eq!(refused(json!({"action":"unbind"})), "missing field pluginAppid");
    assert_eq!(
        refused(json!({"action":"unbind","pluginAppid":""})),
        "field pluginAppid must be a non-empty string, not an empty string"
    );
    assert_eq!(
        refused(json!({"action":"unbind","pluginAppid":7})),
        "field pluginAppid must be a non-empty string, not 7"
    );
    assert_eq!(
        refused(json!({"action":"unbind","pluginAppid":null})),
        "field pluginAppid must be a non-empty string, not null"
    );
    assert_eq!(
        refused(json!({"action":"unbind","pluginAppid":"a","plugin_appid":"a"})),
        "fields pluginAppid and plugin_appid name the same parameter: give one"
    );
    assert_eq!(
        refused(json!({"action":"dev_apply_list","page":0,"num":1})),
        "field page must be a positive integer, not 0"
    );
    assert_eq!(
        refused(json!({"action":"dev_apply_list","page":1.5,"num":1})),
        "field page must be a positive integer, not 1.5"
    );
    assert_eq!(
        refused(json!({"action":"dev_apply_list","page":"1","num":1})),
        "field page must be a positive integer, not a string"
    );
    assert_eq!(
        refused(json!({"action":"dev_apply_list","page":4294967296u64,"num":1})),
        "field page must be a positive integer, not 4294967296"
    );
    assert_eq!(refused(json!({"action":"dev_apply_list","num":1})), "missing field page");
    assert_eq!(refused(json!({"action":"dev_agree"})), "missing field appid");
    assert_eq!(
        refused(json!({"action":"list","page":1})),
        "field page is not a parameter of action list (it belongs to dev_apply_list)"
    );
    assert_eq!(refused(json!({"action":"list","foo":1})), "unknown field foo: action list takes no parameters");
    assert_eq!(
        refused(json!({"action":"unbind","pluginAppid":"p","zzz":1})),
        "unknown field zzz: action unbind takes pluginAppid"
    );
    assert_eq!(refused(json!({"pluginAppid":"p"})), "missing field action");
    assert_eq!(refused(json!({"action":7})), "field action must be a string, not a number");
    assert!(refused(json!({"action":"unbnd"})).starts_with("unknown action \"unbnd\"; did you mean unbind?"));
    assert!(refused(json!({"action":"Dev_Agree"})).starts_with("unknown action \"Dev_Agree\"; did you mean dev_agree?"));
    assert!(refused(json!({"action":"getPluginList"})).contains("expected one of apply, list, unbind, update"));
    assert_eq!(refused(json!(["list"])), "the event must be a JSON object, not an array");
    assert_eq!(refused(json!("list")), "the event must be a JSON object, not a string");
    assert_eq!(refused(Value::Null), "the event must be a JSON object, not null");
}

#[test]
fn refusals_name_the_method_once_the_action_is_known() {
    let e = Operation::from_event(&json!({"action":"unbind"})).unwrap_err();
    assert_eq!(e.err_msg(), "openapi.pluginManager.unbindPlugin:fail invalid parameters: missing field pluginAppid");
    let e = Operation::from_event(&json!({"action":"nope"})).unwrap_err();
    assert!(e.err_msg().starts_with("openapi.pluginManager:fail invalid parameters: unknown action"));
}

#[test]
fn authorizer_appid_is_read_in_either_spelling_and_checked() {
    let read = |v: Value| Request::from_event(&v);
    let r = read(json!({"action":"list","authorizerAppid":"wxbuyer0000000001"})).unwrap();
    assert_eq!((r.operation, r.authorizer_appid.as_deref()), (Operation::List, Some("wxbuyer0000000001")));
    let r = read(json!({"action":"list","authorizer_appid":"wxbuyer0000000001"})).unwrap();
    assert_eq!(r.authorizer_appid.as_deref(), Some("wxbuyer0000000001"));
    assert_eq!(read(json!({"action":"list"})).unwrap().authorizer_appid, None);
    let detail = |v: Value| match read(v) {
        Err(Error::InvalidEvent { detail, .. }) => detail,
        other => panic!("{other:?}"),
    };
    assert!(detail(json!({"action":"list","authorizerAppid":7})).contains("must be an appid"));
    assert!(detail(json!({"action":"list","authorizerAppid":"wx a"})).contains("must be an appid"));
    let both = detail(json!({"action":"list","authorizerAppid":"wxa","authorizer_appid":"wxa"}));
    assert!(both.contains("name the same parameter"), "{both}");
}

#[test]
fn bodies_go_on_the_wire_in_wechats_order_whatever_the_events_order() {
    let wire = |event: Value| serde_json::to_string(&Operation::from_event(&event).unwrap().body()).unwrap();
    let cases = [
        (
            json!({"reason":"r","pluginAppid":"p","action":"apply"}),
            r#"{"action":"apply","plugin_appid":"p","reason":"r"}"#,
        ),
        (
            json!({"userVersion":"1.0.1","action":"update","plugin_appid":"p"}),
            r#"{"action":"update","plugin_appid":"p","user_version":"1.0.1"}"#,
        ),
        (json!({"num":20,"page":2,"action":"dev_apply_list"}), r#"{"action":"dev_apply_list","page":2,"num":20}"#),
        (
            json!({"reason":"ok","appid":"a","action":"dev_agree"}),
            r#"{"action":"dev_agree","appid":"a","reason":"ok"}"#,
        ),
        (
            json!({"action":"dev_refuse","reason":"no","appid":"a"}),
            r#"{"action":"dev_refuse","appid":"a","reason":"no"}"#,
        ),
        (json!({"action":"dev_delete","reason":"gone"}), r#"{"action":"dev_delete","reason":"gone"}"#),
        (json!({"authorizerAppid":"wxa","action":"list"}), r#"{"action":"list"}"#),
    ];
    for (event, body) in cases {
        assert_eq!(wire(event.clone()), body, "{event}");
    }
}

/// Each event refused with exactly this detail.
fn assert_refused(cases: &[(Value, &str)]) {
    for (event, detail) in cases {
        assert_eq!(refused(event.clone()), *detail, "{event}");
    }
}

#[test]
fn refusals_follow_the_events_key_order_then_the_declared_order_of_missing_fields() {
    assert_refused(&[
        (json!({"action":"update"}), "missing field pluginAppid"),
        (json!({"action":"update","userVersion":"1"}), "missing field pluginAppid"),
        (json!({"action":"update","pluginAppid":"p"}), "missing field userVersion"),
        (json!({"action":"dev_apply_list"}), "missing field page"),
        (json!({"action":"dev_apply_list","page":1}), "missing field num"),
        (
            json!({"action":"update","userVersion":""}),
            "field userVersion must be a non-empty string, not an empty string",
        ),
        (
            json!({"zzz":1,"action":"update","pluginAppid":7}),
            "unknown field zzz: action update takes pluginAppid, userVersion",
        ),
        (json!({"action":"update","pluginAppid":7,"zzz":1}), "field pluginAppid must be a non-empty string, not 7"),
        (
            json!({"action":"unbind","plugin_appid":"a","pluginAppid":""}),
            "fields plugin_appid and pluginAppid name the same parameter: give one",
        ),
        (json!({"action":"dev_apply_list","page":-1,"num":true}), "field page must be a positive integer, not -1"),
        (json!({"action":"dev_apply_list","page":1,"num":true}), "field num must be a positive integer, not a boolean"),
        (json!({"action":"dev_agree","appid":{}}), "field appid must be a non-empty string, not an object"),
    ]);
}

#[test]
fn a_stray_field_is_named_with_the_first_action_it_belongs_to() {
    assert_refused(&[
        (json!({"action":"list","reason":"x"}), "field reason is not a parameter of action list (it belongs to apply)"),
        (
            json!({"action":"apply","pluginAppid":"p","appid":"x"}),
            "field appid is not a parameter of action apply (it belongs to dev_agree)",
        ),
        (
            json!({"action":"dev_refuse","plugin_appid":"p"}),
            "field plugin_appid is not a parameter of action dev_refuse (it belongs to apply)",
        ),
        (
            json!({"action":"unbind","pluginAppid":"p","user_version":"1"}),
            "field user_version is not a parameter of action unbind (it belongs to update)",
        ),
        (json!({"action":"dev_agree","appid":"a","Reason":"r"}), "unknown field Reason; did you mean reason?"),
        (json!({"action":"list","x":[]}), "unknown field x: action list takes no parameters"),
        (json!({"action":"dev_delete","q":1}), "unknown field q: action dev_delete takes appid, reason"),
    ]);
}

#[test]
fn an_unknown_action_lists_every_action_in_order() {
    let all = "apply, list, unbind, update, dev_apply_list, dev_agree, dev_refuse, dev_delete";
    assert_refused(&[
        (json!({"action":"nope"}), &format!("unknown action \"nope\" (expected one of {all})")),
        (
            json!({"action":"devagree"}),
            &format!("unknown action \"devagree\"; did you mean dev_agree? (expected one of {all})"),
        ),
    ]);
}

#[test]
fn every_action_answers_as_its_cloud_method_at_its_path() {
    let table = [
        (json!({"action":"apply","pluginAppid":"p"}), "apply", "applyPlugin", "/wxa/plugin", false),
        (json!({"action":"list"}), "list", "getPluginList", "/wxa/plugin", true),
        (json!({"action":"unbind","pluginAppid":"p"}), "unbind", "unbindPlugin", "/wxa/plugin", false),
        (json!({"action":"update","pluginAppid":"p","userVersion":"1"}), "update", "applyPlugin", "/wxa/plugin", false),
        (
            json!({"action":"dev_apply_list","page":1,"num":1}),
            "dev_apply_list",
            "getPluginDevApplyList",
            "/wxa/devplugin",
            true,
        ),
        (json!({"action":"dev_agree","appid":"a"}), "dev_agree", "setDevPluginApplyStatus", "/wxa/devplugin", false),
        (json!({"action":"dev_refuse"}), "dev_refuse", "setDevPluginApplyStatus", "/wxa/devplugin", false),
        (json!({"action":"dev_delete"}), "dev_delete", "setDevPluginApplyStatus", "/wxa/devplugin", false),
    ];
    for (event, name, method, path, read_only) in table {
        let op = Operation::from_event(&event).unwrap();
        assert_eq!((op.name(), op.method(), op.path(), op.is_read_only()), (name, method, path, read_only), "{event}");
    }
}
