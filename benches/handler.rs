//! The function's own work per invocation, without the network: reading an event into WeChat's request, and turning
//! WeChat's answer into wx-server-sdk's result. Plus one whole invocation against the emulator on loopback, for scale.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use serde_json::{json, Value};
use wx_plugin_manager::emulator::Emulator;
use wx_plugin_manager::wechat::Answer;
use wx_plugin_manager::{success, App, Operation, Request, Usage};

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
                let answer: Answer = serde_json::from_slice(std::hint::black_box(&body)).unwrap();
                serde_json::to_vec(&success("getPluginDevApplyList", answer)).unwrap()
            })
        });
    }
    group.finish();
}

fn whole_invocation_on_loopback(c: &mut Criterion) {
    let emulator = Emulator::start().unwrap();
    let config = emulator.demo_config(&[("WX_METRICS", "off")]).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let app = App::new(&config).unwrap();
    let event = json!({"action":"list"});
    c.bench_function("invocation_list_via_emulator", |b| {
        b.iter_batched(
            || Instant::now() + Duration::from_secs(10),
            |deadline| {
                let request = Request::from_event(&event).unwrap();
                runtime.block_on(app.execute(&request, deadline, &mut Usage::default())).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, event_to_request, response_to_result, whole_invocation_on_loopback);
criterion_main!(benches);
