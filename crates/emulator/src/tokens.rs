//! Access tokens as WeChat issues and checks them: the stable endpoint (one shared token, renewed 5 minutes early,
//! with an overlap), the classic endpoint (each call a new token, the previous one alive 5 more minutes), expiry,
//! invalidation, and the endpoints' quotas.

use std::collections::HashMap;

use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;

use super::wire::WxError;
use super::world::Settings;
use wechat_wire::codes;

/// How long a superseded token keeps working, and how early the stable endpoint renews.
pub const OVERLAP_SECS: i64 = 300;
const DAY_SECS: i64 = 86_400;

/// Which kind of token made a call: plain mini-program tokens cannot quick-update (89256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Caller {
    /// A mini program's or plugin's own token, from `stable_token` or `token`.
    Plain,
    /// A third-party platform's authorizer token: the only kind `update` accepts.
    Authorizer,
}

/// Which way an access token was issued; each way has its own renewal rules and quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// From `/cgi-bin/stable_token`: one shared token per appid, renewed 5 minutes early with an overlap.
    Stable,
    /// From `/cgi-bin/token`: a new token per call, the previous one dying 5 minutes later (40001).
    Classic,
    /// An authorizer token (`api_query_auth`, `api_authorizer_token` or `Emulator::authorizer_token`).
    Authorizer,
}

/// What the emulator knows of one access token it issued ([`Emulator::token_record`](super::Emulator::token_record)).
#[derive(Debug, Clone, Serialize)]
pub struct TokenRecord {
    /// The appid the token acts for (a mini program or a plugin).
    pub appid: String,
    /// Which way it was issued.
    pub kind: TokenKind,
    /// How plugin calls treat it: only an authorizer token gets past `update`'s 89256.
    pub caller: Caller,
    /// When it was issued, in virtual unix seconds.
    pub issued_at: i64,
    /// When its `expires_in` runs out (42001 from then on), in virtual unix seconds.
    pub expires_at: i64,
    /// When the token stopped working before its expiry (force refresh, a newer classic token, a test's order).
    pub revoked_at: Option<i64>,
}

/// A token as handed out: the value and its remaining seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The token, as in WeChat's `access_token` field.
    pub access_token: String,
    /// Seconds it has left, as in WeChat's `expires_in` field (`token_ttl_secs` when new).
    pub expires_in: i64,
}

#[derive(Debug, Default)]
pub struct TokenLedger {
    records: HashMap<String, TokenRecord>,
    /// Every token ever issued, oldest first (tests scan output for them).
    issued: Vec<String>,
    stable_current: HashMap<String, String>,
    classic_current: HashMap<String, String>,
    force_refreshes: HashMap<String, Vec<i64>>,
    quota: HashMap<(String, TokenKind), Windows>,
    serial: u64,
}

/// Calls counted in the current minute and the current day.
#[derive(Debug, Default)]
struct Windows {
    minute: (i64, u32),
    day: (i64, u32),
}

impl Windows {
    fn count(&mut self, now: i64) -> (u32, u32) {
        for (window, len) in [(&mut self.minute, 60), (&mut self.day, DAY_SECS)] {
            let start = now - now.rem_euclid(len);
            if window.0 != start {
                *window = (start, 0);
            }
            window.1 += 1;
        }
        (self.minute.1, self.day.1)
    }
}

impl TokenLedger {
    fn mint(&mut self, appid: &str, kind: TokenKind, now: i64, ttl: i64) -> String {
        let caller = if kind == TokenKind::Authorizer { Caller::Authorizer } else { Caller::Plain };
        self.serial += 1;
        // Shaped like WeChat's: a short numeric prefix, then opaque characters.
        let value = format!("{}_{}", 80 + self.serial % 20, Alphanumeric.sample_string(&mut rand::rng(), 126));
        self.records.insert(
            value.clone(),
            TokenRecord {
                appid: appid.to_owned(),
                kind,
                caller,
                issued_at: now,
                expires_at: now + ttl,
                revoked_at: None,
            },
        );
        self.issued.push(value.clone());
        value
    }

    fn live(&self, value: &str, now: i64) -> Option<&TokenRecord> {
        self.records.get(value).filter(|r| r.revoked_at.is_none_or(|t| t > now) && r.expires_at > now)
    }

    /// `/cgi-bin/stable_token` for an authenticated appid.
    pub fn stable(
        &mut self,
        appid: &str,
        force_refresh: bool,
        now: i64,
        settings: &Settings,
    ) -> Result<Issued, WxError> {
        let (per_minute, per_day) = self.quota.entry((appid.to_owned(), TokenKind::Stable)).or_default().count(now);
        if per_day > settings.stable_daily_quota {
            return Err(WxError::new(codes::DAILY_QUOTA));
        }
        if per_minute > settings.stable_minute_quota {
            return Err(WxError::new(codes::MINUTE_QUOTA));
        }
        if force_refresh {
            let log = self.force_refreshes.entry(appid.to_owned()).or_default();
            log.retain(|&t| now - t < DAY_SECS);
            if log.len() >= settings.force_refresh_daily_quota as usize {
                return Err(WxError::hinted(codes::DAILY_QUOTA, "force_refresh is limited per day"));
            }
            if log.last().is_some_and(|&t| now - t < settings.force_refresh_spacing_secs) {
                return Err(WxError::hinted(codes::MINUTE_QUOTA, "force_refresh calls must be 30 s apart"));
            }
            log.push(now);
            // Every earlier stable token dies, the one still in its overlap too.
            for old in self.records.values_mut().filter(|r| r.appid == appid && r.kind == TokenKind::Stable) {
                old.revoked_at.get_or_insert(now);
            }
        } else if let Some(current) = self.stable_current.get(appid) {
            if let Some(r) = self.live(current, now) {
                if r.expires_at - now > OVERLAP_SECS {
                    return Ok(Issued { access_token: current.clone(), expires_in: r.expires_at - now });
                }
            }
        }
        // Normal-mode renewal leaves the old token alive until its own expiry: that is the overlap.
        let value = self.mint(appid, TokenKind::Stable, now, settings.token_ttl_secs);
        self.stable_current.insert(appid.to_owned(), value.clone());
        Ok(Issued { access_token: value, expires_in: settings.token_ttl_secs })
    }

    /// `/cgi-bin/token` for an authenticated appid.
    pub fn classic(&mut self, appid: &str, now: i64, settings: &Settings) -> Result<Issued, WxError> {
        let (_, per_day) = self.quota.entry((appid.to_owned(), TokenKind::Classic)).or_default().count(now);
        if per_day > settings.classic_daily_quota {
            return Err(WxError::new(codes::DAILY_QUOTA));
        }
        if let Some(old) = self.classic_current.get(appid).and_then(|v| self.records.get_mut(v)) {
            // WeChat calls a superseded token "not latest" (40001), not expired.
            let dies = now + OVERLAP_SECS;
            old.revoked_at = Some(old.revoked_at.map_or(dies, |t| t.min(dies)));
        }
        let value = self.mint(appid, TokenKind::Classic, now, settings.token_ttl_secs);
        self.classic_current.insert(appid.to_owned(), value.clone());
        Ok(Issued { access_token: value, expires_in: settings.token_ttl_secs })
    }

    /// Who a token on a plugin call belongs to, or the code WeChat answers for it.
    pub fn check(&self, token: Option<&str>, now: i64) -> Result<(String, Caller), WxError> {
        let token = match token {
            None | Some("") => return Err(WxError::new(codes::ACCESS_TOKEN_MISSING)),
            Some(t) => t,
        };
        if !well_formed(token) {
            return Err(WxError::new(codes::INVALID_ACCESS_TOKEN));
        }
        let record = self.records.get(token).ok_or(WxError::new(codes::INVALID_CREDENTIAL))?;
        if record.revoked_at.is_some_and(|t| t <= now) {
            return Err(WxError::new(codes::INVALID_CREDENTIAL));
        }
        if record.expires_at <= now {
            return Err(WxError::new(codes::ACCESS_TOKEN_EXPIRED));
        }
        Ok((record.appid.clone(), record.caller))
    }

    pub fn mint_authorizer(&mut self, appid: &str, now: i64, ttl: i64) -> String {
        self.mint(appid, TokenKind::Authorizer, now, ttl)
    }

    /// Makes one token fail with 40001 from now on (a third-party platform lost the authorisation behind it).
    pub fn revoke(&mut self, token: &str, now: i64) {
        if let Some(r) = self.records.get_mut(token) {
            r.revoked_at = Some(r.revoked_at.map_or(now, |t| t.min(now)));
        }
    }

    /// Lists a token issued elsewhere (a component token), so that tests scanning output for tokens see it too.
    pub fn note_issued(&mut self, token: &str) {
        self.issued.push(token.to_owned());
    }

    /// Makes every live token of `appid` fail with 40001 from now on, as when another party force-refreshes.
    pub fn invalidate(&mut self, appid: &str, now: i64) -> usize {
        let mut n = 0;
        for r in self.records.values_mut().filter(|r| r.appid == appid) {
            if r.revoked_at.is_none() && r.expires_at > now {
                r.revoked_at = Some(now);
                n += 1;
            }
        }
        n
    }

    pub fn issued(&self) -> &[String] {
        &self.issued
    }

    pub fn record(&self, token: &str) -> Option<&TokenRecord> {
        self.records.get(token)
    }
}

/// Whether `token` has the shape of a WeChat access token (else 40014).
pub(crate) fn well_formed(token: &str) -> bool {
    token.len() >= 16 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_renews_five_minutes_early_and_keeps_the_old_token_alive() {
        let (mut t, s) = (TokenLedger::default(), Settings::default());
        let first = t.stable("wxa", false, 0, &s).unwrap();
        assert_eq!(first.expires_in, 7200);
        assert_eq!(t.stable("wxa", false, 6899, &s).unwrap().access_token, first.access_token);
        let second = t.stable("wxa", false, 6900, &s).unwrap();
        assert_ne!(second.access_token, first.access_token);
        assert!(t.check(Some(&first.access_token), 7199).is_ok());
        assert_eq!(t.check(Some(&first.access_token), 7200).unwrap_err().code, 42001);
    }

    #[test]
    fn classic_supersedes_after_five_minutes() {
        let (mut t, s) = (TokenLedger::default(), Settings::default());
        let a = t.classic("wxa", 0, &s).unwrap().access_token;
        let b = t.classic("wxa", 100, &s).unwrap().access_token;
        assert!(t.check(Some(&a), 399).is_ok());
        assert_eq!(t.check(Some(&a), 400).unwrap_err().code, 40001);
        assert!(t.check(Some(&b), 400).is_ok());
    }
}
