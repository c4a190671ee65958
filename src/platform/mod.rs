//! Third-party platform mode (第三方平台): acting for the many mini programs that authorised the platform.
//!
//! The chain is ticket (pushed every 10 minutes) → component_access_token → authorizer_access_token (from the mini
//! program's durable refresh token) → the plugin call. The ticket and the refresh tokens live in a [`DurableStore`]
//! (never with a TTL); the two kinds of access token live in [`TokenCell`]s, with the token rules of an app token
//! (single flight, early refresh, compare-before-invalidate, shared by the fleet).
//!
//! [`crypt`] is WXBizMsgCrypt; [`push`] reads what WeChat pushes to the authorisation-event URL.

pub mod crypt;
pub mod push;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::config::{PlatformConfig, Secret};
use crate::error::{sdk_codes, Error, Failure};
use crate::token::{now_ms, parse_token, within, Acquired, CachedToken, DurableStore, TokenCell, TokenStore};
use crate::wechat::codes::{self, Class};
use crate::wechat::{errcode, errmsg, Answer, WeChatClient};
use crypt::MsgCrypt;
use push::{Push, PushError, Signed};

/// WeChat gives up on a push after 5 s; its work is done within this, whatever the invocation's deadline.
pub const PUSH_BUDGET: Duration = Duration::from_millis(4500);
/// The permission set (权限集) of the plugin-management APIs.
pub const PLUGIN_PERMISSION_SET: u64 = 40;
/// How far a ticket's CreateTime may be ahead of this clock (skew) before the push is refused.
const MAX_CLOCK_AHEAD_SECS: i64 = 600;
/// How long "not authorised" is remembered for a mini program, so repeated calls do not each scan WeChat's list.
const NOT_AUTHORISED_MEMORY: Duration = Duration::from_secs(60);
/// Token cells kept for this many mini programs at most; past it, those without a token are dropped.
const MAX_CELLS: usize = 10_000;
/// `api_get_authorizer_list` gives at most this many per page.
const LIST_PAGE: usize = 500;
/// Pages read while recovering one refresh token (100,000 mini programs), so a broken answer cannot loop.
const LIST_PAGES: usize = 200;

const COMPONENT_TOKEN: &str = "/cgi-bin/component/api_component_token";
const QUERY_AUTH: &str = "/cgi-bin/component/api_query_auth";
const AUTHORIZER_TOKEN: &str = "/cgi-bin/component/api_authorizer_token";
const AUTHORIZER_LIST: &str = "/cgi-bin/component/api_get_authorizer_list";
const START_PUSH: &str = "/cgi-bin/component/api_start_push_ticket";

/// One third-party platform: its keys, its durable state and its tokens.
pub struct Platform {
    appid: String,
    secret: SecretString,
    /// The current key first, then the previous one during a rotation.
    keys: Vec<MsgCrypt>,
    durable: Arc<dyn DurableStore>,
    shared: Option<Arc<dyn TokenStore>>,
    component: TokenCell,
    authorizers: Mutex<HashMap<String, Arc<TokenCell>>>,
    /// Mini programs found not to have authorised the platform, and when that was found.
    not_authorised: Mutex<HashMap<String, (Instant, Error)>>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").field("appid", &self.appid).finish_non_exhaustive()
    }
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A ticket; `newest` is false when a newer one was already stored (pushes can arrive out of order).
    Ticket { newest: bool },
    /// A mini program (re-)authorised the platform and its refresh token is stored.
    Authorized(Authorization),
    /// A mini program authorised the platform but WeChat would not exchange the code (`err_code`): its refresh token
    /// is recovered from WeChat's list on first use.
    Unexchanged { authorizer_appid: String, err_code: i64 },
    /// A mini program withdrew; what was stored for it is gone.
    Unauthorized { authorizer_appid: String },
    /// Another event: acknowledged only.
    Other { info_type: String },
}

/// An authorisation exchanged for its refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub authorizer_appid: String,
    /// Whether permission set 40 (plugin management) was granted: without it plugin calls answer 61007.
    pub plugin_permission: bool,
}

/// Why a push was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushFailure {
    /// Not from WeChat for this platform, or not readable: refused, nothing changed.
    #[error(transparent)]
    Refused(#[from] PushError),
    /// A ticket for another platform (the trailer matched, the AppId inside did not).
    #[error("the push is for platform {0}, not this one")]
    OtherPlatform(String),
    /// Verified, but it could not be kept: WeChat must not be told `success`.
    #[error("the push could not be stored: {0}")]
    Unstored(String),
}

impl PushFailure {
    /// The HTTP status WeChat is answered with: 401 for a signature that does not verify, 503 when the push could
    /// not be kept, 400 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            PushFailure::Refused(PushError::Crypt(crypt::CryptError::Signature)) => 401,
            PushFailure::Unstored(_) => 503,
            _ => 400,
        }
    }

    /// The sample library's code for a refusal (−40001 a bad signature …), or −503 when the store failed.
    pub fn code(&self) -> i64 {
        match self {
            PushFailure::Refused(PushError::Crypt(e)) => e.code(),
            // The samples' ParseXml.
            PushFailure::Refused(_) => -40002,
            PushFailure::OtherPlatform(_) => crypt::CryptError::AppId.code(),
            PushFailure::Unstored(_) => -503,
        }
    }
}

/// Why an authorisation code bought nothing.
enum Exchange {
    /// WeChat refused the code or failed.
    WeChat(Error),
    /// The refresh token came back but could not be stored.
    Unstored(String),
}

/// A stored ticket, kept as `<CreateTime>|<ticket>` so the newest wins.
struct Ticket {
    create_time: i64,
    value: String,
}

impl Ticket {
    fn parse(stored: &str) -> Option<Ticket> {
        let (time, value) = stored.split_once('|')?;
        Some(Ticket { create_time: time.parse().ok()?, value: value.to_owned() })
    }

    fn encode(&self) -> String {
        format!("{}|{}", self.create_time, self.value)
    }
}

/// A store operation within the deadline, its failure said in words.
async fn stored<T, E: std::fmt::Debug>(
    deadline: Instant,
    op: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match within(deadline, op).await {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(format!("{e:?}")),
        None => Err("no time left".to_owned()),
    }
}

fn store_error(why: String) -> Error {
    Error::Token {
        method: "",
        errcode: sdk_codes::STORE_UNAVAILABLE,
        errmsg: format!("the platform's store is unavailable: {why}"),
    }
}

/// The error that says a mini program must authorise the platform again: WeChat's code when WeChat said so.
fn reauthorise(authorizer: &str, component: &str, errcode: i64, why: &str) -> Error {
    let errmsg = format!(
        "mini program {authorizer} must authorise platform {component} again ({why}); until it does, nothing can be \
         done for it"
    );
    Error::Token { method: "", errcode, errmsg }
}

impl Platform {
    /// The platform of `config` (its secret already read: [`crate::Config::resolve`]), keeping its state in
    /// `durable` and its tokens in `shared` when the fleet has one.
    pub fn new(
        config: &PlatformConfig,
        durable: Arc<dyn DurableStore>,
        shared: Option<Arc<dyn TokenStore>>,
    ) -> Result<Platform, Error> {
        let secret = match &config.secret {
            Secret::Given(secret) => secret.clone(),
            Secret::Stored(stored) => {
                return Err(Error::Config(format!("{} has not been read yet (Config::resolve)", stored.variable())))
            }
        };
        let key = |name: &str, key: &SecretString| {
            MsgCrypt::new(config.token.expose_secret(), key.expose_secret(), &config.appid)
                .map_err(|e| Error::Config(format!("{name}: {e}")))
        };
        let mut keys = vec![key("WX_COMPONENT_AES_KEY", &config.aes_key)?];
        if let Some(previous) = &config.previous_aes_key {
            keys.push(key("WX_COMPONENT_AES_KEY_PREVIOUS", previous)?);
        }
        let component = TokenCell::new(format!("wx:token:component:{}", config.appid), shared.clone());
        Ok(Platform {
            appid: config.appid.clone(),
            secret,
            keys,
            durable,
            shared,
            component,
            authorizers: Mutex::default(),
            not_authorised: Mutex::default(),
        })
    }

    /// The platform's (component's) appid.
    pub fn appid(&self) -> &str {
        &self.appid
    }

    fn ticket_key(&self) -> String {
        format!("wx:platform:{}:ticket", self.appid)
    }

    fn refresh_prefix(&self) -> String {
        format!("wx:platform:{}:refresh:", self.appid)
    }

    fn refresh_key(&self, authorizer: &str) -> String {
        format!("{}{authorizer}", self.refresh_prefix())
    }

    fn cell(&self, authorizer: &str) -> Arc<TokenCell> {
        let mut cells = self.authorizers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if cells.len() >= MAX_CELLS && !cells.contains_key(authorizer) {
            cells.retain(|_, cell| cell.holds_token());
        }
        let key = || format!("wx:token:authorizer:{}:{authorizer}", self.appid);
        cells
            .entry(authorizer.to_owned())
            .or_insert_with(|| Arc::new(TokenCell::new(key(), self.shared.clone())))
            .clone()
    }

    // ---- pushes -------------------------------------------------------------------------------------------------

    /// Verifies, decrypts and acts on one push to the authorisation-event URL. Nothing changes unless the push
    /// verifies; `Unstored` means it verified but could not be kept.
    pub async fn receive(
        &self,
        client: &WeChatClient,
        signed: &Signed<'_>,
        body: &str,
        deadline: Instant,
    ) -> Result<Handled, PushFailure> {
        let deadline = deadline.min(Instant::now() + PUSH_BUDGET);
        let keys: Vec<&MsgCrypt> = self.keys.iter().collect();
        match push::open(&keys, signed, body)? {
            Push::Ticket { component_appid, .. } if component_appid != self.appid => {
                Err(PushFailure::OtherPlatform(component_appid))
            }
            Push::Ticket { create_time, .. } if create_time > (now_ms() / 1000) as i64 + MAX_CLOCK_AHEAD_SECS => {
                // Newest-wins would let one ticket from the future block every real one for good.
                Err(PushFailure::Refused(PushError::Missing("a CreateTime that is not in the future")))
            }
            Push::Ticket { ticket, create_time, .. } => {
                let newest = self
                    .store_ticket(&Ticket { create_time, value: ticket }, deadline)
                    .await
                    .map_err(PushFailure::Unstored)?;
                tracing::debug!(component = %self.appid, create_time, newest, "component_verify_ticket received");
                Ok(Handled::Ticket { newest })
            }
            Push::Authorized { authorizer_appid, code, updated } => {
                tracing::debug!(component = %self.appid, authorizer = %authorizer_appid, updated, "authorised");
                match self.exchange(client, &code, deadline).await {
                    Ok(authorization) => Ok(Handled::Authorized(authorization)),
                    Err(Exchange::Unstored(why)) => Err(PushFailure::Unstored(why)),
                    // WeChat refused or failed: the refresh token can still be recovered through
                    // api_get_authorizer_list on first use, so WeChat is told `success` all the same.
                    Err(Exchange::WeChat(e)) => {
                        tracing::error!(
                            authorizer = %authorizer_appid,
                            err_code = e.err_code(),
                            err_msg = %e,
                            "could not exchange the authorisation code; the refresh token will be recovered on first use"
                        );
                        Ok(Handled::Unexchanged { authorizer_appid, err_code: e.err_code() })
                    }
                }
            }
            Push::Unauthorized { authorizer_appid } => {
                self.forget(&authorizer_appid, deadline).await.map_err(PushFailure::Unstored)?;
                tracing::debug!(component = %self.appid, authorizer = %authorizer_appid, "authorisation withdrawn");
                Ok(Handled::Unauthorized { authorizer_appid })
            }
            Push::Other { info_type } => {
                tracing::debug!(component = %self.appid, info_type = %info_type, "platform event acknowledged");
                Ok(Handled::Other { info_type })
            }
        }
    }

    /// Keeps `ticket` unless a newer one is stored; says whether it is now the newest.
    async fn store_ticket(&self, ticket: &Ticket, deadline: Instant) -> Result<bool, String> {
        let newer_stored =
            |current: Option<&str>| current.and_then(Ticket::parse).is_some_and(|c| c.create_time > ticket.create_time);
        let encoded = ticket.encode();
        self.replace(&self.ticket_key(), |current| (!newer_stored(current)).then_some(encoded.as_str()), deadline).await
    }

    /// Sets `key` to `value`, whatever it held.
    async fn put(&self, key: &str, value: &str, deadline: Instant) -> Result<(), String> {
        self.replace(key, |_| Some(value), deadline).await.map(|_| ())
    }

    /// Sets `key` to what `choose` makes of its current value (`None`: leave it); says whether it was set. Another
    /// instance may write between our read and our swap: then it reads again, a few times.
    async fn replace<'v>(
        &self,
        key: &str,
        choose: impl Fn(Option<&str>) -> Option<&'v str>,
        deadline: Instant,
    ) -> Result<bool, String> {
        for _ in 0..3 {
            let current = stored(deadline, self.durable.get(key)).await?;
            let Some(value) = choose(current.as_deref()) else { return Ok(false) };
            if stored(deadline, self.durable.swap(key, current.as_deref(), value)).await? {
                return Ok(true);
            }
        }
        Err(format!("{key} kept changing under us"))
    }

    /// Forgets a mini program that withdrew: its refresh token and its access token.
    async fn forget(&self, authorizer: &str, deadline: Instant) -> Result<(), String> {
        let key = self.refresh_key(authorizer);
        if let Some(current) = stored(deadline, self.durable.get(&key)).await? {
            stored(deadline, self.durable.delete_if(&key, &current)).await?;
        }
        self.cell(authorizer).forget(deadline).await;
        Ok(())
    }

    // ---- WeChat's platform endpoints ----------------------------------------------------------------------------

    /// Exchanges an authorisation code (from the `authorized` push or the authorisation page's redirect) for the
    /// mini program's refresh token, which is stored, and its first access token, which is kept.
    pub async fn exchange_code(
        &self,
        client: &WeChatClient,
        code: &str,
        deadline: Instant,
    ) -> Result<Authorization, Error> {
        self.exchange(client, code, deadline).await.map_err(|e| match e {
            Exchange::WeChat(e) => e,
            Exchange::Unstored(why) => store_error(why),
        })
    }

    async fn exchange(&self, client: &WeChatClient, code: &str, deadline: Instant) -> Result<Authorization, Exchange> {
        let body = json!({ "component_appid": self.appid, "authorization_code": code });
        let answer = self.component_call(client, QUERY_AUTH, &body, deadline).await.map_err(|e| {
            // Without the store there is no ticket to buy the component token with, and nowhere to keep the answer.
            match e.err_code() {
                sdk_codes::STORE_UNAVAILABLE => Exchange::Unstored(e.to_string()),
                _ => Exchange::WeChat(e),
            }
        })?;
        let unreadable = |what: &str| {
            Exchange::WeChat(Error::token_failure(Failure::InvalidJson(format!(
                "(api_query_auth's answer, withheld: {what})"
            ))))
        };
        let info = answer.get("authorization_info").and_then(Value::as_object).ok_or_else(|| unreadable("no info"))?;
        let text = |name: &str| info.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
        let (Some(authorizer), Some(refresh)) = (text("authorizer_appid"), text("authorizer_refresh_token")) else {
            return Err(unreadable("no authorizer_appid or authorizer_refresh_token"));
        };
        if !crate::wechat::is_appid(authorizer) {
            return Err(unreadable("no valid authorizer_appid"));
        }
        self.put(&self.refresh_key(authorizer), refresh, deadline).await.map_err(Exchange::Unstored)?;
        self.not_authorised.lock().unwrap_or_else(|p| p.into_inner()).remove(authorizer);
        // Re-authorisation voids the previous access token at once: replace whatever is cached.
        let cell = self.cell(authorizer);
        cell.forget(deadline).await;
        if let Ok(token) = parse_token(info, "authorizer_access_token", now_ms()) {
            cell.offer(&token, deadline).await;
        }
        let granted = info.get("func_info").and_then(Value::as_array).into_iter().flatten();
        let plugin_permission = granted
            .filter_map(|f| f.pointer("/funcscope_category/id").and_then(Value::as_u64))
            .any(|id| id == PLUGIN_PERMISSION_SET);
        if !plugin_permission {
            tracing::warn!(
                authorizer = %authorizer,
                "the mini program did not grant permission set 40 (plugin management): its plugin calls will answer 61007"
            );
        }
        Ok(Authorization { authorizer_appid: authorizer.to_owned(), plugin_permission })
    }

    /// The authorised mini programs this platform holds a refresh token for.
    pub async fn authorized(&self, deadline: Instant) -> Result<Vec<String>, Error> {
        let prefix = self.refresh_prefix();
        let keys = stored(deadline, self.durable.keys(&prefix)).await.map_err(store_error)?;
        Ok(keys.into_iter().filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned)).collect())
    }

    /// Asks WeChat to (re)start the ticket pushes; gives WeChat's errmsg (`ok`, or `in a normal state`).
    pub async fn start_push(&self, client: &WeChatClient, deadline: Instant) -> Result<String, Error> {
        let body = json!({ "component_appid": self.appid, "component_secret": self.secret.expose_secret() });
        let answer = client.component(START_PUSH, None, &body, deadline).await.map_err(Error::token_failure)?;
        match errcode(&answer) {
            codes::OK => Ok(errmsg(&answer)),
            code => Err(Error::Token { method: "", errcode: code, errmsg: errmsg(&answer) }),
        }
    }

    // ---- tokens -------------------------------------------------------------------------------------------------

    /// The mini program `authorizer`'s access token, for plugin calls made on its behalf.
    pub async fn authorizer_token(
        &self,
        client: &WeChatClient,
        authorizer: &str,
        deadline: Instant,
    ) -> Result<(SecretString, Acquired), Error> {
        {
            let mut known = self.not_authorised.lock().unwrap_or_else(|p| p.into_inner());
            known.retain(|_, (at, _)| at.elapsed() < NOT_AUTHORISED_MEMORY);
            if let Some((_, e)) = known.get(authorizer) {
                return Err(e.clone());
            }
        }
        let got =
            self.cell(authorizer).get(deadline, || self.fetch_authorizer_token(client, authorizer, deadline)).await;
        if let Err(e) = &got {
            if matches!(e.err_code(), sdk_codes::NOT_AUTHORISED | codes::COMPONENT_NOT_AUTHORIZED) {
                let mut known = self.not_authorised.lock().unwrap_or_else(|p| p.into_inner());
                known.insert(authorizer.to_owned(), (Instant::now(), e.clone()));
            }
        }
        got
    }

    /// After WeChat refused `stale` for `authorizer`: see [`TokenCell::invalidate`].
    pub async fn invalidate_authorizer_token(&self, authorizer: &str, stale: &SecretString, deadline: Instant) {
        self.cell(authorizer).invalidate(stale, deadline).await
    }

    async fn component_token(&self, client: &WeChatClient, deadline: Instant) -> Result<SecretString, Error> {
        Ok(self.component.get(deadline, || self.fetch_component_token(client, deadline)).await?.0)
    }

    async fn fetch_component_token(&self, client: &WeChatClient, deadline: Instant) -> Result<CachedToken, Error> {
        let ticket = stored(deadline, self.durable.get(&self.ticket_key())).await.map_err(store_error)?;
        // Never ask without a ticket: WeChat answers a missing or `null` one with 61006, and counts the call.
        let Some(ticket) = ticket.as_deref().and_then(Ticket::parse) else {
            return Err(Error::Token {
                method: "",
                errcode: sdk_codes::NO_TICKET,
                errmsg: format!(
                    "no component_verify_ticket for platform {} yet: WeChat pushes one every 10 minutes to the \
                     authorisation-event URL (`wxpm platform start-push` asks it to resume)",
                    self.appid
                ),
            });
        };
        let body = json!({
            "component_appid": self.appid,
            "component_appsecret": self.secret.expose_secret(),
            "component_verify_ticket": ticket.value,
        });
        let answer = client.component(COMPONENT_TOKEN, None, &body, deadline).await.map_err(Error::token_failure)?;
        parse_token(&answer, "component_access_token", now_ms())
    }

    /// `path` with the component token, fetched again and the call repeated once if WeChat refused the token.
    async fn component_call(
        &self,
        client: &WeChatClient,
        path: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Answer, Error> {
        let mut refreshed = false;
        loop {
            let token = self.component_token(client, deadline).await?;
            let answer = client.component(path, Some(&token), body, deadline).await.map_err(Error::token_failure)?;
            let code = errcode(&answer);
            if codes::class(code) == Class::StaleToken && !refreshed {
                refreshed = true;
                self.component.invalidate(&token, deadline).await;
                continue;
            }
            return match code {
                codes::OK => Ok(answer),
                code => Err(Error::Token { method: "", errcode: code, errmsg: errmsg(&answer) }),
            };
        }
    }

    /// An authorizer token from the stored refresh token. On 61023 the store is read again (another instance may
    /// have stored a newer one), then WeChat's own list is asked; only then is re-authorisation required.
    async fn fetch_authorizer_token(
        &self,
        client: &WeChatClient,
        authorizer: &str,
        deadline: Instant,
    ) -> Result<CachedToken, Error> {
        let key = self.refresh_key(authorizer);
        let mut tried: Vec<String> = Vec::new();
        let mut listed = false;
        loop {
            let stored_now = stored(deadline, self.durable.get(&key)).await.map_err(store_error)?;
            let refresh = match stored_now.filter(|r| !tried.contains(r)) {
                Some(refresh) => refresh,
                None if !listed => {
                    listed = true;
                    match self.recover_refresh_token(client, authorizer, deadline).await? {
                        Some(refresh) if !tried.contains(&refresh) => refresh,
                        _ => return Err(self.not_authorised(authorizer, tried.is_empty())),
                    }
                }
                None => return Err(self.not_authorised(authorizer, tried.is_empty())),
            };
            tried.push(refresh.clone());
            let body = json!({
                "component_appid": self.appid,
                "authorizer_appid": authorizer,
                "authorizer_refresh_token": refresh,
            });
            let answer = match self.component_call(client, AUTHORIZER_TOKEN, &body, deadline).await {
                Ok(answer) => answer,
                Err(e) if e.err_code() == codes::REFRESH_TOKEN_INVALID => {
                    tracing::warn!(authorizer, "refresh token refused (61023); reading the store, then WeChat's list");
                    continue;
                }
                Err(Error::Token { errcode: codes::COMPONENT_NOT_AUTHORIZED, errmsg, .. }) => {
                    return Err(reauthorise(authorizer, &self.appid, codes::COMPONENT_NOT_AUTHORIZED, &errmsg))
                }
                Err(e) => return Err(e),
            };
            let token = parse_token(&answer, "authorizer_access_token", now_ms())?;
            let returned = answer.get("authorizer_refresh_token").and_then(Value::as_str).filter(|r| !r.is_empty());
            if let Some(rotated) = returned.filter(|r| *r != refresh) {
                // Stored before the old one is let go (it still works for a while); unless another instance has
                // stored something newer meanwhile.
                let why = match stored(deadline, self.durable.swap(&key, Some(&refresh), rotated)).await {
                    Ok(true) => None,
                    Ok(false) => Some("the store holds another already (a re-authorisation?); keeping that".into()),
                    Err(why) => Some(format!("could not store it ({why}); the list recovers it when the old one dies")),
                };
                match why {
                    None => tracing::debug!(authorizer, "WeChat rotated the refresh token; the new one is stored"),
                    Some(why) => tracing::warn!(authorizer, why, "WeChat rotated the refresh token"),
                }
            }
            return Ok(token);
        }
    }

    fn not_authorised(&self, authorizer: &str, never_held: bool) -> Error {
        if never_held {
            reauthorise(
                authorizer,
                &self.appid,
                sdk_codes::NOT_AUTHORISED,
                "no refresh token is stored for it and WeChat does not list it as authorised",
            )
        } else {
            reauthorise(
                authorizer,
                &self.appid,
                codes::REFRESH_TOKEN_INVALID,
                "WeChat refuses its refresh token (61023), and lists no other",
            )
        }
    }

    /// The refresh token WeChat lists for `authorizer` (stored when found): the way back from a lost one.
    async fn recover_refresh_token(
        &self,
        client: &WeChatClient,
        authorizer: &str,
        deadline: Instant,
    ) -> Result<Option<String>, Error> {
        let mut offset = 0usize;
        for _ in 0..LIST_PAGES {
            let body = json!({ "component_appid": self.appid, "offset": offset, "count": LIST_PAGE });
            let answer = self.component_call(client, AUTHORIZER_LIST, &body, deadline).await?;
            let list = answer.get("list").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let found =
                list.iter().find(|item| item.get("authorizer_appid").and_then(Value::as_str) == Some(authorizer));
            if let Some(item) = found {
                let Some(refresh) = item.get("refresh_token").and_then(Value::as_str).filter(|r| !r.is_empty()) else {
                    return Ok(None);
                };
                self.put(&self.refresh_key(authorizer), refresh, deadline).await.map_err(store_error)?;
                tracing::info!(authorizer, "refresh token recovered from api_get_authorizer_list");
                return Ok(Some(refresh.to_owned()));
            }
            offset += list.len();
            let total = answer.get("total_count").and_then(Value::as_u64).unwrap_or(0) as usize;
            if list.is_empty() || offset >= total {
                return Ok(None);
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::MemoryStore;

    const APPID: &str = "wxcomponent0000001";
    const TOKEN: &str = "platform-token";
    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

    fn platform(store: Arc<MemoryStore>) -> Platform {
        let config = PlatformConfig {
            appid: APPID.to_owned(),
            secret: Secret::Given("component-secret".to_owned().into()),
            token: TOKEN.to_owned().into(),
            aes_key: KEY.to_owned().into(),
            previous_aes_key: None,
        };
        Platform::new(&config, store, None).unwrap()
    }

    /// A push as WeChat would send it: the query's three values and the body.
    fn sealed(inner: &str, appid: &str) -> ([String; 3], String) {
        let crypt = MsgCrypt::new(TOKEN, KEY, appid).unwrap();
        let encrypt = crypt.encrypt(inner);
        let (timestamp, nonce) = ("1763800000".to_owned(), "12345".to_owned());
        let signature = crypt.msg_signature(&timestamp, &nonce, &encrypt);
        let body = format!("<xml><AppId><![CDATA[{appid}]]></AppId><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>");
        ([signature, timestamp, nonce], body)
    }

    fn ticket_xml(appid: &str, ticket: &str, time: i64) -> String {
        format!(
            "<xml><AppId><![CDATA[{appid}]]></AppId><CreateTime>{time}</CreateTime>\
             <InfoType><![CDATA[component_verify_ticket]]></InfoType>\
             <ComponentVerifyTicket><![CDATA[{ticket}]]></ComponentVerifyTicket></xml>"
        )
    }

    async fn deliver(p: &Platform, (q, body): ([String; 3], String)) -> Result<Handled, PushFailure> {
        let client = WeChatClient::new("http://127.0.0.1:9").unwrap();
        let signed = Signed { msg_signature: &q[0], timestamp: &q[1], nonce: &q[2] };
        p.receive(&client, &signed, &body, Instant::now() + Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn the_newest_ticket_wins_whatever_order_the_pushes_arrive_in() {
        let store = Arc::new(MemoryStore::default());
        let p = platform(store.clone());
        let newest = deliver(&p, sealed(&ticket_xml(APPID, "ticket@@@b", 200), APPID)).await.unwrap();
        assert_eq!(newest, Handled::Ticket { newest: true });
        let late = deliver(&p, sealed(&ticket_xml(APPID, "ticket@@@a", 100), APPID)).await.unwrap();
        assert_eq!(late, Handled::Ticket { newest: false });
        assert_eq!(store.get(&p.ticket_key()).await.unwrap().as_deref(), Some("200|ticket@@@b"));
    }

    #[tokio::test]
    async fn refused_pushes_change_nothing() {
        let store = Arc::new(MemoryStore::default());
        let p = platform(store.clone());
        let (mut query, body) = sealed(&ticket_xml(APPID, "ticket@@@forged", 1), APPID);
        query[0] = "0".repeat(40);
        assert_eq!(deliver(&p, (query, body)).await.unwrap_err().code(), -40001);
        let for_another = deliver(&p, sealed(&ticket_xml(APPID, "t", 1), "wxanother00000001")).await;
        assert_eq!(for_another.unwrap_err().code(), -40005);
        let inner_other = deliver(&p, sealed(&ticket_xml("wxanother00000001", "t", 1), APPID)).await;
        assert!(matches!(inner_other, Err(PushFailure::OtherPlatform(ref a)) if a == "wxanother00000001"));
        let doctype = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY t \"x\">]><xml><AppId>&t;</AppId></xml>";
        assert_eq!(deliver(&p, sealed(doctype, APPID)).await.unwrap_err().code(), -40002);
        assert_eq!(store.get(&p.ticket_key()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn withdrawal_forgets_the_refresh_token() {
        let store = Arc::new(MemoryStore::default());
        let p = platform(store.clone());
        let key = p.refresh_key("wxbuyer0000000001");
        assert!(store.swap(&key, None, "refresh@@@1").await.unwrap());
        let inner = "<xml><AppId><![CDATA[wxcomponent0000001]]></AppId><CreateTime>1</CreateTime>\
                     <InfoType><![CDATA[unauthorized]]></InfoType>\
                     <AuthorizerAppid><![CDATA[wxbuyer0000000001]]></AuthorizerAppid></xml>";
        let handled = deliver(&p, sealed(inner, APPID)).await.unwrap();
        assert_eq!(handled, Handled::Unauthorized { authorizer_appid: "wxbuyer0000000001".into() });
        assert_eq!(store.get(&key).await.unwrap(), None);
        assert!(p.authorized(Instant::now() + Duration::from_secs(1)).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn no_ticket_means_no_call_to_wechat() {
        let p = platform(Arc::new(MemoryStore::default()));
        // Port 9 (discard) on loopback: a call would fail as a network error, not as NO_TICKET.
        let client = WeChatClient::new("http://127.0.0.1:9").unwrap();
        let e = p.authorizer_token(&client, "wxbuyer0000000001", Instant::now() + Duration::from_secs(2)).await;
        let e = e.unwrap_err();
        assert_eq!((e.kind(), e.err_code()), ("TokenError", sdk_codes::NO_TICKET), "{e}");
        assert!(e.to_string().contains("no component_verify_ticket"), "{e}");
    }
}
