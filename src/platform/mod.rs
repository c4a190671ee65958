//! Third-party platform mode (第三方平台): acting for the many mini programs that authorised the platform.
//!
//! The chain is ticket (pushed every 10 minutes) → component_access_token → authorizer_access_token (from the mini
//! program's durable refresh token) → the plugin call. The ticket and the refresh tokens live in a [`DurableStore`]
//! (never with a TTL); the two kinds of access token live in `TokenCell`s, with the token rules of an app token
//! (single flight, early refresh, compare-before-invalidate, shared by the fleet).
//!
//! By job: `receive` takes WeChat's pushes (`wechat_wire::crypt` is WXBizMsgCrypt, [`push`] reads the XML); `api` calls
//! the component endpoints; `tokens` buys and keeps the tokens; `storage` keeps the durable state.

mod api;
pub mod push;
mod receive;
mod storage;
mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{PlatformConfig, Secret};
use crate::error::{Error, TokenError};
use crate::token::{DurableStore, TokenCell, TokenStore};
pub(crate) use receive::{Handled, PushFailure};
pub(crate) use storage::stored;
use wechat_wire::crypt::MsgCrypt;

/// The permission set (权限集) of the plugin-management APIs.
pub const PLUGIN_PERMISSION_SET: u64 = 40;
/// Token cells kept for this many mini programs at most; past it, those without a token are dropped.
const MAX_CELLS: usize = 10_000;

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
    not_authorised: Mutex<HashMap<String, (Instant, TokenError)>>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").field("appid", &self.appid).finish_non_exhaustive()
    }
}

/// An authorisation exchanged for its refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The mini program that authorised the platform.
    pub authorizer_appid: String,
    /// Whether permission set 40 (plugin management) was granted: without it plugin calls answer 61007.
    pub plugin_permission: bool,
}

impl Platform {
    /// The platform of `config` (its secret already read: [`crate::config::Config::resolve`]), keeping its state
    /// in `durable` and its tokens in `shared` when the fleet has one.
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

    /// The token cell of `authorizer`, made on first use.
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::sdk_codes;
    use crate::token::MemoryStore;
    use crate::wechat::WeChatClient;
    use push::Signed;

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
        let e = e.unwrap_err().for_method("getPluginList");
        assert_eq!((e.kind(), e.err_code()), ("TokenError", sdk_codes::NO_TICKET), "{e}");
        assert!(e.to_string().contains("no component_verify_ticket"), "{e}");
    }
}
