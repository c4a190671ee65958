//! The function's own work per invocation, without the network: reading an event into WeChat's request, and turning
//! WeChat's answer into wx-server-sdk's result. Plus one whole invocation against the emulator on loopback, for scale.

#[path = "../tests/support/demo.rs"]
#[allow(dead_code)]
mod demo;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use demo::demo_config;
use serde_json::{json, Value};
use wechat_emulator::Emulator;
use wx_plugin_manager::edge::handle;
use wx_plugin_manager::observe::Usage;
use wx_plugin_manager::present;
use wx_plugin_manager::{App, Operation, Request};

fn event_to_request(c: &mut Criterion) {
    let events = [
        ("list", json!({"action":"list"})),
        ("apply", json!({"action":"apply","pluginAppid":"wxpluginshop0001","reason":"We want the storefront kit"})),
        ("dev_apply_list", json!({"action":"dev_apply_list","page":1,"num":10})),
    ];
    let mut group = c.benchmark_group("event_to_request");
    for (name, event) in events {
        group.bench_function(name, |b| {
            b.iter(|| {
                let op = Operation::from_event(std::hint::black_box(&event)).unwrap();
                serde_json::to_vec(&op.body()).unwrap()
            })
        });
    }
    group.finish();
}

fn wechat_answer(items: usize) -> Vec<u8> {
    let apply_list: Vec<Value> = (0..items)
        .map(|i| {
            json!({
                "appid": format!("wxbuyer{i:09}"), "status": 1, "nickname": "Corner Bakery",
                "headimgurl": "http://wx.qlogo.cn/mmhead/buyer/0", "categories": [{"first":"餐饮","second":"烘焙"}],
                "create_time": "1763600000", "apply_url": "https://mp.weixin.qq.com/wxopen/plugindevapply?x=1",
                "reason": "We want maps in our store locator",
            })
        })
        .collect();
    serde_json::to_vec(&json!({"errcode":0,"errmsg":"ok","apply_list":apply_list})).unwrap()
}

fn response_to_result(c: &mut Criterion) {
    let mut group = c.benchmark_group("response_to_result");
    for (name, body) in [("ok_only", br#"{"errcode":0,"errmsg":"ok"}"#.to_vec()), ("apply_list_10", wechat_answer(10))]
    {
        group.bench_function(name, |b| {
            b.iter(|| {
                let answer = present::camel_object(std::hint::black_box(&body)).unwrap();
                serde_json::to_vec(&present::success("getPluginDevApplyList", answer)).unwrap()
            })
        });
    }
    group.finish();
}

fn whole_invocation_on_loopback(c: &mut Criterion) {
    let emulator = Emulator::start().unwrap();
    let config = demo_config(&emulator, &[("WX_METRICS", "off")]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let app = App::new(&config).unwrap();
    let event = json!({"action":"list"});
    c.bench_function("invocation_list_via_emulator", |b| {
        b.iter_batched(
            || Instant::now() + Duration::from_secs(10),
            |deadline| {
                let request = Request::from_event(&event).unwrap();
                runtime.block_on(app.caller.execute(&request, deadline, &mut Usage::default())).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
}

/// A third-party platform's work: a ticket push taken through the gateway (verify, decrypt, read, store, `success`),
/// and an invocation for an authorised mini program with its authorizer token cached.
fn platform(c: &mut Criterion) {
    use wechat_emulator::{
        DEMO_APPID, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET, DEMO_COMPONENT_TOKEN,
    };
    let emulator = Emulator::start().unwrap();
    let base = emulator.base_url().to_owned();
    let config = wx_plugin_manager::Config::from_lookup(|name| {
        let value = match name {
            "WX_COMPONENT_APPID" => DEMO_COMPONENT_APPID,
            "WX_COMPONENT_SECRET" => DEMO_COMPONENT_SECRET,
            "WX_COMPONENT_TOKEN" => DEMO_COMPONENT_TOKEN,
            "WX_COMPONENT_AES_KEY" => DEMO_COMPONENT_AES_KEY,
            "WX_API_BASE" => &base,
            "WX_METRICS" => "off",
            _ => return None,
        };
        Some(value.to_owned())
    })
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let app = runtime.block_on(async { App::new(&config) }).unwrap();
    let deadline = || Instant::now() + Duration::from_secs(10);
    let ticket = emulator.push_ticket(DEMO_COMPONENT_APPID).http_api_event();
    let authorized = emulator.authorize(DEMO_COMPONENT_APPID, DEMO_APPID, &[40]).http_api_event();
    for event in [&ticket, &authorized] {
        let reply = runtime.block_on(handle(&app, event.clone(), deadline(), "bench")).unwrap();
        assert_eq!(reply["body"], "success", "{reply}");
    }
    c.bench_function("platform_ticket_push", |b| {
        b.iter_batched(
            || ticket.clone(),
            |event| runtime.block_on(handle(&app, event, deadline(), "bench")).unwrap(),
            BatchSize::SmallInput,
        )
    });
    let list = json!({"action":"list","authorizerAppid":DEMO_APPID});
    c.bench_function("platform_invocation_list_via_emulator", |b| {
        b.iter_batched(
            || list.clone(),
            |event| runtime.block_on(handle(&app, event, deadline(), "bench")).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, event_to_request, response_to_result, whole_invocation_on_loopback, platform);
criterion_main!(benches);
