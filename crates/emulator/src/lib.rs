//! A stateful stand-in for `api.weixin.qq.com`: the plugin-management endpoints (`/wxa/plugin`, `/wxa/devplugin`),
//! the token endpoints (`/cgi-bin/stable_token`, `/cgi-bin/token`) and the third-party platform's (`/cgi-bin/component/
//! api_component_token`, `api_query_auth`, `api_authorizer_token`, `api_get_authorizer_list`,
//! `api_start_push_ticket`), answering as WeChat does (HTTP 200, WeChat's JSON, a ` rid: …` suffix on every errmsg).
//! As the open platform it also pushes, encrypted and signed, the component_verify_ticket and authorisation events
//! ([`PlatformPush`]) to a platform's `push_url`.
//! The plugin endpoints also speak WeChat's server API security (服务端API安全: AES-256-GCM bodies, RSASSA-PSS
//! signatures both ways) for accounts and platforms whose [`AppApiSecurity`] is switched on; the keys of the built-in
//! state are demo material, switched off.
//!
//! Use it three ways:
//! - from Rust tests: [`Emulator::start`] serves the built-in state on an ephemeral loopback port on a thread of its
//!   own (so it works from sync and async tests alike); script it, move its clock, read its log and counters;
//! - behind `wxpm invoke`, as the default when no credentials are configured;
//! - standalone: `wxpm emulator --port 8088 [--state FILE]`, driven by plain HTTP, with a control endpoint under
//!   `/__emulator/` answered only to loopback peers (`GET state|requests|counters|changes`,
//!   `POST faults|fault_rates|clock|invalidate|reset`, `DELETE faults|fault_rates`, and
//!   `POST platform/push_ticket|platform/authorize|platform/revoke` with `{"component", "authorizer", "func_ids"}`,
//!   answering the push as `{"query", "body"}`).
//!
//! A crate of its own: it shares only the wire with the function (`wechat_wire`: the errcode table, the API-security
//! envelope, WXBizMsgCrypt), and the function's deployed dependency tree never holds it (CI checks).
//!
//! # Where WeChat's documents disagree or are silent, the emulator chooses
//! - **89044 / 89244** for unbinding a plugin the mini program has not added: the emulator answers **89244** (the
//!   third-party platform page); WeChat's mini-program pages say 89044. Clients must accept both.
//! - **`reason` with `apply`** is accepted and kept; it is what the plugin owner sees as the application's `reason` in
//!   `dev_apply_list`. **`reason` with `dev_refuse`** is optional and kept as the refusal reason, shown in the
//!   undocumented `reason` field of each `list` item.
//! - **`appid` on `dev_refuse` / `dev_delete`**: documented only for `dev_agree`; the emulator needs it for all three
//!   (without it no application is named) and answers 89242 when it is missing.
//! - **Who may call `/wxa/devplugin`**: WeChat issues it the plugin's own token. The emulator also accepts the token of
//!   the account that develops exactly one plugin, so the README's one set of demo credentials shows both sides.
//! - **Missing or wrongly typed fields, unknown actions**: 47001 `data format error` with a `hint: [...]` naming the
//!   field.
//! - **Unbinding** removes an approved, refused or timed-out plugin (the platform page: "包括已通过和已拒绝"); a
//!   pending one answers 89243 and one never applied for answers 89244.
//! - **Re-applying** after a refusal or a timeout starts a new pending application; applying while pending or
//!   approved answers 89237.
//! - **Timeouts**: a pending application becomes status 4 after `settings.pending_timeout_secs` (7 days).
//! - **Superseded classic tokens** die 5 minutes after the next `/cgi-bin/token` call with 40001 ("not latest");
//!   tokens past their `expires_in` answer 42001; a token of the wrong shape answers 40014.
//! - **`/cgi-bin/token` or `stable_token` with a platform's appid** answers 61024.
//! - **`force_refresh` limits** (20 a day, 30 s apart) count over a rolling 24 h; breaking them answers 45009 / 45011.
//! - **`update`** (quick update) answers 89256 to every plain mini-program token, as WeChat does; only a third-party
//!   authorizer token gets past that check (from `api_query_auth` or `api_authorizer_token`, or minted directly with
//!   [`Emulator::authorizer_token`]). Then: the plugin must be approved (else 89244), the version listed in the plugin's
//!   `quick_update_versions` (else 89257), and no gray release in progress (else 89258).
//! - **`force_refresh`** revokes every live stable token of the appid, the one still in its overlap included.
//!
//! ## The third-party platform
//! - **Tickets are pushed only on demand** ([`Emulator::push_ticket`], the control endpoint, `api_start_push_ticket`),
//!   never on a ten-minute timer, so tests decide when a ticket arrives. Each push carries a new ticket
//!   (`ticket@@@…`); every ticket younger than 12 virtual hours mints component tokens, older ones answer 61005.
//!   A missing, `null`, unknown or other platform's ticket answers 61006.
//! - **`api_start_push_ticket` pushes a ticket at once** (WeChat's documents do not say when the restarted service
//!   pushes) and answers `{"errcode":0,"errmsg":"ok"}`, never `in a normal state`.
//! - **A new component token leaves the previous ones alive** until their own expiry (7200 s): spec §13 Q7 (does a
//!   new one kill the old?) is unsettled, and an overlap is what `stable_token` does. The same holds for authorizer
//!   tokens from `api_authorizer_token` (§13 Q3).
//! - **The component token's query name**: both `component_access_token` (the SDKs) and `access_token` (the new
//!   documents) are accepted, the former first. Missing 41001, malformed 40014, unknown 40001, expired 42001; a
//!   token of another platform than the body's `component_appid` answers 40001.
//! - **`component_appid`** missing or not shaped like an appid (`wx` and 14 to 16 alphanumerics) answers 40013; an
//!   appid that is not a platform answers 61011. The IP whitelist (61004) is checked on every component endpoint:
//!   after the secret on `api_component_token` and `api_start_push_ticket`, after the token on the others.
//! - **Authorisation codes** live 3600 virtual seconds (`AuthorizationCodeExpiredTime`) and are single-use: a used,
//!   never-issued or superseded code (only an authorizer's newest code works) answers 61009, an expired one 61010.
//! - **The refresh token** is made at authorisation and does not change on refresh; `api_authorizer_token` returns
//!   the current one. Re-authorisation replaces it at once (the old one answers 61023); a rotation
//!   ([`Emulator::rotate_refresh_token`]) leaves the old one 5 virtual minutes. A `null`, missing, wrong or
//!   non-string one answers 61023; a mini program that never authorised the platform or withdrew answers 61003
//!   (checked first); a missing `authorizer_appid` answers 47001.
//! - **Revocation and re-authorisation kill the authorizer's access tokens** (40001), the ones minted through the
//!   platform; tokens from [`Emulator::authorizer_token`] stand outside any authorisation.
//! - **Permission set 40** (plugin management) is needed for `/wxa/plugin` and `/wxa/devplugin` with a token minted
//!   through the platform, else 61007; `func_ids` of the control endpoint default to `[40]`.
//! - **`api_get_authorizer_list`** wants an integer `offset` ≥ 0 and `count` from 1 to 500 (else 47001), and lists
//!   live authorisations oldest first with their current refresh token.
//! - **Pushes** are POSTed with `Content-Type: text/xml` and `User-Agent: Mozilla/4.0`, a 5 s timeout, and an answer
//!   other than `success` only logged to stderr (no retry). The decrypted XML uses CDATA for every string field.
//!
//! ## Rollouts over thousands of mini programs
//! - **Generated worlds** ([`World::with_authorizers`]) draw from the seed with SplitMix64, written out in the crate
//!   so a seed gives the same appids, secrets and plugin states whatever the dependencies' versions. Their
//!   authorisations ([`Authorization`], a state file's `authorizations`) are granted when the emulator starts (or is
//!   reset), at the clock's start, with refresh tokens made then (random, not from the seed).
//! - **`api_get_authorizer_list`'s order** is by auth time, then appid (a generated world's programs all share one
//!   auth time). A re-authorisation moves the program to the end and a withdrawal removes it, so offset paging across
//!   such a change may skip or repeat a program, as offset paging over a changing list does.
//! - **Fault rates** ([`FaultRates`], [`Emulator::set_fault_rates`]): every call to `/wxa/plugin` or
//!   `/wxa/devplugin` takes one uniform draw of the seed's sequence, in the order calls reach the emulator (the token
//!   and component endpoints never do). The draw falls in the 5xx band (500, 502, 503, 504 a quarter each, an HTML
//!   body), then the timeout band, then the busy band (`{"errcode":-1,"errmsg":"system error rid: …"}`), or past
//!   them. 5xx and busy calls are not processed. A fault scripted for the same call wins; the draw is still taken.
//! - **Timeout after apply** ([`Fault::TimeoutAfterApply`], the rates' timeout band): the call is processed to the
//!   end, the change made and counted, then the answer is held `timeout_ms` (30 s by default) and the connection
//!   closed without one. Held rather than dropped at once, so a client meets its own deadline, as against WeChat;
//!   one with a longer deadline, or none, sees the connection closed.
//! - **The plugin quota** (`settings.plugin_daily_quota`, [`Emulator::set_plugin_daily_quota`], off by default)
//!   counts per appid and per endpoint every call past the token, API security and permission checks; a call over
//!   the quota answers 45009 (secured for a secured call), changes nothing and is not counted. Its days turn at 00:00
//!   China Standard Time (UTC+8), when WeChat resets daily quotas; the token endpoints' quotas count UTC days.
//! - **Changes** ([`Emulator::changes`]): a successful `apply`, `unbind` or `update` counts as `applied` when the
//!   program's application for the plugin differs after the call, else as `unchanged` (an `update` to the version
//!   already set). The plugin owner's `/wxa/devplugin` decisions are not counted.
//!
//! ## API security (服务端API安全)
//! - **`enforcement`**: `off` (the console switch is off: a secured call answers 40238, as for an account without
//!   keys), `optional` (plain calls answered plain, secured calls checked and answered secured) or `required` (a plain
//!   call answers **40233** `missing Wechatmp-Appid`, the code of the first header a secured call would carry).
//! - **A request is secured** when it carries any of `Wechatmp-Appid`, `Wechatmp-TimeStamp`, `Wechatmp-Signature`.
//!   Missing ones answer 40233 (appid), 40231 (timestamp, also for one that is not a decimal number), 40232
//!   (signature), in that order. `Wechatmp-Serial` is accepted and ignored.
//! - **Order of the checks**: the access token first (its errors stay as they are), then the headers, the appid
//!   (unknown 40236, not the token's owner 40237), the keys (40238), the timestamp (more than 300 s from the virtual
//!   clock, either way: 40240), the signature (40234), the envelope (40235: not an envelope, not decrypting, not a
//!   JSON object, `_appid` not the header's or `_timestamp` not the header's as a number). Permission set 40 (61007)
//!   and the business rules come after, so their errors are answered secured.
//! - **`urlpath`** is the world's `api_security.signing_origin` (default `https://api.weixin.qq.com`) and the request
//!   path, whatever host the emulator was called on: the client is configured with the same origin.
//! - **Third-party mode**: with an authorizer token the protocol appid and keys are the platform's (component's). A
//!   token minted through a platform belongs to that platform; one from [`Emulator::authorizer_token`] stands outside
//!   any platform, so every platform of the world may speak for it (and no platform's `required` applies to it).
//! - **Business errors** (errcode ≠ 0) of a secured call are answered secured, like successes.
//! - **Scripted spoilings** of a secured answer ([`Fault::TamperedEnvelope`], [`Fault::UnknownCertificate`],
//!   [`Fault::ForeignAppid`], [`Fault::StaleTimestamp`]) process the request normally; met by a plain answer, they
//!   leave it alone.
//! - **The keys** ([`AppApiSecurity`] per account and platform, [`PlatformApiSecurity`] for the world) are checked
//!   when the emulator starts: a key or certificate that does not parse, a certificate whose key is not its own, or
//!   an account whose settings need a certificate the world lacks is a start-up error naming the field.

mod api_security;
mod checks;
mod component_api;
mod control;
mod demo;
mod desk;
mod emulator;
mod invalid;
mod platform;
mod plugins;
mod population;
mod pushes;
mod rates;
mod scale;
mod security_settings;
mod seeded;
mod server;
mod state;
mod token_api;
mod tokens;
mod usage;
mod wire;
mod world;

pub use api_security::{FOREIGN_APPID, STALE_BY_SECS, TIMESTAMP_WINDOW_SECS};
pub use component_api::MAX_LIST_COUNT;
pub use demo::{
    DEMO_APPID, DEMO_COMPONENT_AES_KEY, DEMO_COMPONENT_APPID, DEMO_COMPONENT_SECRET, DEMO_COMPONENT_TOKEN, DEMO_PLUGIN,
    DEMO_SECRET,
};
pub use desk::PLUGIN_FUNC_SET;
pub use emulator::Emulator;
pub use platform::{AUTH_CODE_TTL_SECS, REFRESH_GRACE_SECS, TICKET_TTL_SECS};
pub use population::Authorization;
pub use pushes::PlatformPush;
pub use rates::FaultRates;
pub use security_settings::{
    AppApiSecurity, Enforcement, PlatformApiSecurity, PlatformCertKeys, DEFAULT_SIGNING_ORIGIN,
};
pub use state::{Fault, LoggedRequest};
pub use tokens::{Issued, TokenKind, TokenRecord, OVERLAP_SECS};
pub use usage::Changes;
pub use world::{Account, Application, Category, Component, PluginInfo, Settings, Status, World};
