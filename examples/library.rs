//! The library without Lambda: plugin operations called from a Rust service of your own, with typed requests, a
//! token provider and wx-server-sdk's results.
//!
//! `cargo run --example library` runs it against the embedded WeChat emulator, so it runs anywhere. In a service of
//! yours, give `WeChatClient::new` `https://api.weixin.qq.com` (`DEFAULT_API_BASE`) and the provider your
//! mini program's appid and secret; share one `PluginCaller` across requests (it holds the connection pool and the token).

use std::time::{Duration, Instant};

use secrecy::SecretString;
use wechat_emulator::{Emulator, DEMO_APPID, DEMO_PLUGIN, DEMO_SECRET};
use wx_plugin_manager::{
    Apply, Error, Operation, PluginCaller, Request, TokenEndpoint, TokenProvider, TokenSource, Unbind, Usage,
    WeChatClient,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let wechat = Emulator::start()?;
    let client = WeChatClient::new(wechat.base_url())?;
    // No shared store: this process's cache. A fleet passes a Redis store so that it fetches one token, not one each.
    let provider = TokenProvider::new(TokenEndpoint::Stable, DEMO_APPID, SecretString::from(DEMO_SECRET), None);
    let caller = PluginCaller::new(client, TokenSource::Fetched(provider));
    let mut usage = Usage::default();
    // Each call is bounded: tokens, retries and WeChat's answer all fit before the deadline.
    let deadline = || Instant::now() + Duration::from_secs(5);
    let request = |operation| Request { operation, authorizer_appid: None };

    let reason = Some("we need it".to_owned());
    let apply = request(Operation::Apply(Apply { plugin_appid: DEMO_PLUGIN.to_owned(), reason }));
    let applied = caller.execute(&apply, deadline(), &mut usage).await?;
    println!("apply: {applied}");

    let list = caller.execute(&request(Operation::List), deadline(), &mut usage).await?;
    println!("list: {list}");

    // WeChat's refusals come back typed, its errcode and errmsg verbatim.
    let unknown = request(Operation::Unbind(Unbind { plugin_appid: "wxnotaplugin0001".to_owned() }));
    match caller.execute(&unknown, deadline(), &mut usage).await {
        Err(Error::WxApi { errcode, errmsg, .. }) => {
            println!("unbind an unknown plugin: WeChat says {errcode} {errmsg}")
        }
        other => return Err(format!("expected WeChat to refuse, got {other:?}").into()),
    }

    println!(
        "{} calls to WeChat, {} token fetched, {} taken from the cache",
        usage.wechat_calls, usage.token_fetches, usage.token_cache_hits
    );
    Ok(())
}
