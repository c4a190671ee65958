//! The open platform's side of the emulator's state: per platform the tickets pushed, the authorisations and the
//! pending authorisation codes; the component tokens; and which platform minted which authorizer token. The changes
//! to it are in `platform` (scripted events) and `component_api` (WeChat's endpoints), since they touch the access
//! tokens too.

use std::collections::{BTreeMap, HashMap};

use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Map, Value};

use super::population::Authorization;

/// The permission set (权限集) both plugin endpoints belong to.
pub const PLUGIN_FUNC_SET: u32 = 40;

/// The platform side of the emulator's state: reset with the rest.
#[derive(Debug, Default)]
pub(crate) struct ComponentDesk {
    pub(crate) components: HashMap<String, ComponentState>,
    /// Live and dead component tokens: component appid and expiry.
    pub(crate) component_tokens: HashMap<String, (String, i64)>,
    /// Which platform and mini program each authorizer token minted through the platform belongs to.
    pub(crate) minted: HashMap<String, (String, String)>,
}

#[derive(Debug, Default)]
pub(crate) struct ComponentState {
    /// Oldest first.
    pub(crate) tickets: Vec<PushedTicket>,
    /// Changed only through `grant` and `withdraw`, which keep `live_order` in step.
    authorizations: BTreeMap<String, Grant>,
    /// The live authorisations by auth time, then appid: `api_get_authorizer_list` pages it by index, so a page
    /// costs its own length however many mini programs authorised.
    live_order: Vec<(i64, String)>,
    pub(crate) codes: HashMap<String, AuthCode>,
}

impl ComponentState {
    /// `authorizer` authorises (again): its grant replaces any earlier one and moves to its auth time's place.
    pub(crate) fn grant(&mut self, authorizer: &str, grant: Grant) {
        self.unlist(authorizer);
        let key = (grant.auth_time, authorizer.to_owned());
        let at = self.live_order.partition_point(|k| *k < key);
        self.live_order.insert(at, key);
        self.authorizations.insert(authorizer.to_owned(), grant);
    }

    /// `authorizer` withdraws: the grant stays known (revoked), its rotated refresh token dies at once.
    pub(crate) fn withdraw(&mut self, authorizer: &str) {
        self.unlist(authorizer);
        if let Some(a) = self.authorizations.get_mut(authorizer) {
            a.revoked = true;
            a.previous_refresh = None;
        }
    }

    fn unlist(&mut self, authorizer: &str) {
        let Some(a) = self.authorizations.get(authorizer).filter(|a| !a.revoked) else {
            return;
        };
        if let Ok(at) = self.live_order.binary_search(&(a.auth_time, authorizer.to_owned())) {
            self.live_order.remove(at);
        }
    }

    /// `authorizer`'s grant, live or revoked, to change its refresh token (never its auth time or revocation).
    pub(crate) fn grant_mut(&mut self, authorizer: &str) -> Option<&mut Grant> {
        self.authorizations.get_mut(authorizer)
    }

    /// How many authorisations are live.
    pub(crate) fn live_count(&self) -> usize {
        self.live_order.len()
    }

    /// The live authorisations from `offset`, at most `count`, oldest first.
    pub(crate) fn live_page(&self, offset: usize, count: usize) -> impl Iterator<Item = (&str, &Grant)> {
        let from = offset.min(self.live_order.len());
        let to = from.saturating_add(count).min(self.live_order.len());
        self.live_order[from..to].iter().filter_map(|(_, who)| Some((who.as_str(), self.authorizations.get(who)?)))
    }
}

#[derive(Debug)]
pub(crate) struct PushedTicket {
    pub(crate) value: String,
    pub(crate) issued_at: i64,
}

/// One mini program's authorisation of one platform.
#[derive(Debug)]
pub(crate) struct Grant {
    pub(crate) refresh_token: String,
    /// A rotated refresh token and the moment it stops working.
    pub(crate) previous_refresh: Option<(String, i64)>,
    pub(crate) func_ids: Vec<u32>,
    pub(crate) auth_time: i64,
    pub(crate) revoked: bool,
}

impl Grant {
    /// A fresh authorisation at `auth_time`, with a new refresh token.
    pub(crate) fn new(func_ids: Vec<u32>, auth_time: i64) -> Grant {
        Grant {
            refresh_token: random("refreshtoken@@@", 64),
            previous_refresh: None,
            func_ids,
            auth_time,
            revoked: false,
        }
    }

    pub(crate) fn accepts(&self, refresh_token: &str, now: i64) -> bool {
        self.refresh_token == refresh_token
            || self.previous_refresh.as_ref().is_some_and(|(old, until)| old == refresh_token && now < *until)
    }
}

#[derive(Debug)]
pub(crate) struct AuthCode {
    pub(crate) authorizer: String,
    pub(crate) expires_at: i64,
}

pub(crate) fn random(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", Alphanumeric.sample_string(&mut rand::rng(), len))
}

impl ComponentDesk {
    /// The authorisations a world starts with, each granted at `now` with a new refresh token.
    pub(crate) fn with_authorizations(authorizations: &[Authorization], now: i64) -> ComponentDesk {
        let mut desk = ComponentDesk::default();
        for a in authorizations {
            let cs = desk.components.entry(a.component.clone()).or_default();
            cs.authorizations.insert(a.authorizer.clone(), Grant::new(a.func_ids.clone(), now));
            cs.live_order.push((now, a.authorizer.clone()));
        }
        // Sorted once: inserting thousands one by one in order would move the list each time.
        for cs in desk.components.values_mut() {
            cs.live_order.sort_unstable();
        }
        desk
    }

    /// `authorizer`'s authorisation of `component_appid`, unless withdrawn.
    pub(crate) fn live(&self, component_appid: &str, authorizer: &str) -> Option<&Grant> {
        self.components.get(component_appid)?.authorizations.get(authorizer).filter(|a| !a.revoked)
    }

    /// The newest ticket pushed to `component_appid`, young or not.
    pub(crate) fn current_ticket(&self, component_appid: &str) -> Option<String> {
        self.components.get(component_appid)?.tickets.last().map(|t| t.value.clone())
    }

    /// A summary for the state dump: per platform, its ticket count and newest ticket, and its authorisations
    /// (refresh tokens, permission sets, revocation).
    pub(crate) fn snapshot(&self) -> Value {
        let mut out = Map::new();
        let mut appids: Vec<&String> = self.components.keys().collect();
        appids.sort();
        for appid in appids {
            let cs = &self.components[appid];
            let authorizations: Map<String, Value> = cs
                .authorizations
                .iter()
                .map(|(who, a)| {
                    let summary = json!({
                        "refresh_token": a.refresh_token,
                        "func_ids": a.func_ids,
                        "auth_time": a.auth_time,
                        "revoked": a.revoked,
                    });
                    (who.clone(), summary)
                })
                .collect();
            let summary = json!({
                "tickets_pushed": cs.tickets.len(),
                "current_ticket": cs.tickets.last().map(|t| &t.value),
                "authorizations": authorizations,
                "pending_codes": cs.codes.len(),
            });
            out.insert(appid.clone(), summary);
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_refresh_token_is_accepted_strictly_before_its_grace_ends() {
        let a = Grant {
            refresh_token: "new".into(),
            previous_refresh: Some(("old".into(), 1_300)),
            func_ids: vec![PLUGIN_FUNC_SET],
            auth_time: 1_000,
            revoked: false,
        };
        assert!(a.accepts("new", 5_000));
        assert!(a.accepts("old", 1_299));
        assert!(!a.accepts("old", 1_300));
        assert!(!a.accepts("", 1_000));
    }
}
