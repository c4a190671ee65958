//! What WeChat pushes to a third-party platform's authorisation-event URL: the component_verify_ticket every ten
//! minutes, and authorisation changes. Each push is checked (msg_signature), decrypted (WXBizMsgCrypt, with the
//! previous key during a key rotation) and parsed as plain XML: a document type (and so any entity) is refused.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::Reader;

use wechat_wire::crypt::{CryptError, MsgCrypt};

/// A push, read. Its Debug output leaves out the ticket and the authorisation code.
#[derive(Clone, PartialEq, Eq)]
pub enum Push {
    /// A new component_verify_ticket for the platform `component_appid`.
    Ticket {
        /// The platform's appid (`AppId`).
        component_appid: String,
        /// `ComponentVerifyTicket`: what buys the platform's component_access_token; WeChat keeps it good for 12 hours.
        ticket: String,
        /// `CreateTime`: when WeChat issued it, in unix seconds.
        create_time: i64,
    },
    /// A mini program authorised the platform (`updated`: changed its permission sets); the code buys its refresh
    /// token through api_query_auth.
    Authorized {
        /// The mini program's appid (`AuthorizerAppid`).
        authorizer_appid: String,
        /// `AuthorizationCode`: short-lived, so exchanged while the push is answered.
        code: String,
        /// `InfoType` was `updateauthorized`, not `authorized`.
        updated: bool,
    },
    /// A mini program withdrew its authorisation.
    Unauthorized {
        /// The mini program's appid (`AuthorizerAppid`).
        authorizer_appid: String,
    },
    /// Another event for the platform: answered, not acted on.
    Other {
        /// WeChat's `InfoType`.
        info_type: String,
    },
}

impl std::fmt::Debug for Push {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Push::Ticket { component_appid, create_time, .. } => f
                .debug_struct("Ticket")
                .field("component_appid", component_appid)
                .field("ticket", &"[REDACTED]")
                .field("create_time", create_time)
                .finish(),
            Push::Authorized { authorizer_appid, updated, .. } => f
                .debug_struct("Authorized")
                .field("authorizer_appid", authorizer_appid)
                .field("code", &"[REDACTED]")
                .field("updated", updated)
                .finish(),
            Push::Unauthorized { authorizer_appid } => {
                f.debug_struct("Unauthorized").field("authorizer_appid", authorizer_appid).finish()
            }
            Push::Other { info_type } => f.debug_struct("Other").field("info_type", info_type).finish(),
        }
    }
}

/// Why a push could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// Its signature does not match, or it does not decrypt to a message for this platform.
    #[error("the push does not verify or decrypt: {0}")]
    Crypt(#[from] CryptError),
    /// The envelope or the message is not plain, well-formed XML: what is wrong.
    #[error("the push is not acceptable XML: {0}")]
    Xml(String),
    /// A field it needs is absent or empty (or `CreateTime` is not a number): which one.
    #[error("the push lacks {0}")]
    Missing(&'static str),
}

/// The query parameters of a push that matter.
pub struct Signed<'a> {
    /// The SHA-1 signature over the platform's token, `timestamp`, `nonce` and the ciphertext.
    pub msg_signature: &'a str,
    /// Unix seconds, as text: signed as sent.
    pub timestamp: &'a str,
    /// WeChat's random string for this push.
    pub nonce: &'a str,
}

/// Opens `body` with the current key, or else the previous one (WeChat may push with either while the key rotates).
pub fn open(keys: &[&MsgCrypt], signed: &Signed<'_>, body: &str) -> Result<Push, PushError> {
    let envelope = fields(body)?;
    let encrypt = envelope.get("Encrypt").ok_or(PushError::Missing("Encrypt"))?;
    let mut last = CryptError::Signature;
    for crypt in keys {
        match crypt.open(signed.msg_signature, signed.timestamp, signed.nonce, encrypt) {
            Ok(message) => return read(&fields(&message)?),
            Err(e) => last = e,
        }
    }
    Err(last.into())
}

fn read(f: &HashMap<String, String>) -> Result<Push, PushError> {
    let get = |name: &'static str| f.get(name).filter(|v| !v.is_empty()).cloned().ok_or(PushError::Missing(name));
    let info_type = get("InfoType")?;
    Ok(match info_type.as_str() {
        "component_verify_ticket" => Push::Ticket {
            component_appid: get("AppId")?,
            ticket: get("ComponentVerifyTicket")?,
            create_time: get("CreateTime")?.trim().parse().map_err(|_| PushError::Missing("a numeric CreateTime"))?,
        },
        "authorized" | "updateauthorized" => Push::Authorized {
            authorizer_appid: get("AuthorizerAppid")?,
            code: get("AuthorizationCode")?,
            updated: info_type == "updateauthorized",
        },
        "unauthorized" => Push::Unauthorized { authorizer_appid: get("AuthorizerAppid")? },
        _ => Push::Other { info_type },
    })
}

/// The text of each child of the root element. Refuses a DOCTYPE (and with it any entity), a second root, and
/// anything that is not well-formed.
fn fields(xml: &str) -> Result<HashMap<String, String>, PushError> {
    let mut reader = Reader::from_str(xml);
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut current: Option<String> = None;
    let mut out = HashMap::new();
    loop {
        let event = reader.read_event().map_err(xml_error)?;
        match event {
            Event::DocType(_) => return Err(PushError::Xml("a DOCTYPE is not accepted".to_owned())),
            Event::Start(e) => {
                depth += 1;
                if depth == 1 {
                    roots += 1;
                } else if depth == 2 {
                    current = Some(String::from_utf8_lossy(e.name().as_ref()).into_owned());
                }
            }
            Event::Empty(e) if depth == 1 => {
                out.insert(String::from_utf8_lossy(e.name().as_ref()).into_owned(), String::new());
            }
            Event::End(_) => {
                if depth == 2 {
                    current = None;
                }
                depth = depth.checked_sub(1).ok_or_else(|| PushError::Xml("an unmatched end tag".to_owned()))?;
            }
            Event::Text(t) if depth == 2 => append(&mut out, &current, &t.decode().map_err(xml_error)?),
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(xml_error)?;
                let resolved =
                    reference(&name).ok_or_else(|| PushError::Xml(format!("entity &{name}; is not accepted")))?;
                if depth == 2 {
                    append(&mut out, &current, resolved.encode_utf8(&mut [0; 4]));
                }
            }
            Event::CData(c) if depth == 2 => append(&mut out, &current, &String::from_utf8_lossy(&c)),
            Event::Text(t) if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) => {
                return Err(PushError::Xml("text outside the root element".to_owned()))
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if roots != 1 || depth != 0 {
        return Err(PushError::Xml("not one well-formed root element".to_owned()));
    }
    Ok(out)
}

/// `text` added to the field being read, if any.
fn append(out: &mut HashMap<String, String>, current: &Option<String>, text: &str) {
    if let Some(name) = current {
        out.entry(name.clone()).or_default().push_str(text);
    }
}

fn xml_error(e: impl std::fmt::Display) -> PushError {
    PushError::Xml(e.to_string())
}

/// XML's five predefined entities and character references; nothing else.
fn reference(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    quick_xml::escape::resolve_predefined_entity(name)?.chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &str = "wx134c8103faa5a59e";
    const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const OLD_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    /// A push as WeChat builds it: the message encrypted, the envelope signed.
    fn push(crypt: &MsgCrypt, message: &str) -> (String, String) {
        let encrypt = crypt.encrypt(message);
        let signature = crypt.msg_signature("1713424427", "415670741", &encrypt);
        (
            format!("<xml><AppId><![CDATA[{COMPONENT}]]></AppId><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"),
            signature,
        )
    }

    fn signed(signature: &str) -> Signed<'_> {
        Signed { msg_signature: signature, timestamp: "1713424427", nonce: "415670741" }
    }

    #[test]
    fn a_ticket_push_is_read_with_or_without_cdata() {
        let crypt = MsgCrypt::new("token", KEY, COMPONENT).unwrap();
        for inner in [
            "<xml><AppId>wx134c8103faa5a59e</AppId><CreateTime>1413192605</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>ticket@@@abc</ComponentVerifyTicket></xml>",
            "<xml><AppId><![CDATA[wx134c8103faa5a59e]]></AppId><CreateTime>1413192605</CreateTime><InfoType><![CDATA[component_verify_ticket]]></InfoType><ComponentVerifyTicket><![CDATA[ticket@@@abc]]></ComponentVerifyTicket></xml>",
        ] {
            let (body, signature) = push(&crypt, inner);
            let read = open(&[&crypt], &signed(&signature), &body).unwrap();
            assert_eq!(
                read,
                Push::Ticket { component_appid: COMPONENT.into(), ticket: "ticket@@@abc".into(), create_time: 1413192605 }
            );
        }
    }

    #[test]
    fn authorisation_pushes_are_read() {
        let crypt = MsgCrypt::new("token", KEY, COMPONENT).unwrap();
        let event = |kind: &str, extra: &str| {
            format!("<xml><AppId>{COMPONENT}</AppId><CreateTime>1</CreateTime><InfoType>{kind}</InfoType><AuthorizerAppid>wxdemo0000000001</AuthorizerAppid>{extra}</xml>")
        };
        let code = "<AuthorizationCode>queryauthcode@@@x</AuthorizationCode><PreAuthCode>p</PreAuthCode>";
        let cases = [
            (
                event("authorized", code),
                Push::Authorized {
                    authorizer_appid: "wxdemo0000000001".into(),
                    code: "queryauthcode@@@x".into(),
                    updated: false,
                },
            ),
            (
                event("updateauthorized", code),
                Push::Authorized {
                    authorizer_appid: "wxdemo0000000001".into(),
                    code: "queryauthcode@@@x".into(),
                    updated: true,
                },
            ),
            (event("unauthorized", ""), Push::Unauthorized { authorizer_appid: "wxdemo0000000001".into() }),
            (event("notify_third_fasteregister", ""), Push::Other { info_type: "notify_third_fasteregister".into() }),
        ];
        for (message, expected) in cases {
            let (body, signature) = push(&crypt, &message);
            assert_eq!(open(&[&crypt], &signed(&signature), &body).unwrap(), expected);
        }
        let (body, signature) = push(&crypt, &event("authorized", ""));
        assert_eq!(open(&[&crypt], &signed(&signature), &body).unwrap_err(), PushError::Missing("AuthorizationCode"));
    }

    #[test]
    fn a_push_under_the_previous_key_is_accepted_during_rotation() {
        let old = MsgCrypt::new("token", OLD_KEY, COMPONENT).unwrap();
        let new = MsgCrypt::new("token", KEY, COMPONENT).unwrap();
        let ticket = "<xml><AppId>x</AppId><CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>t</ComponentVerifyTicket></xml>";
        let (body, signature) = push(&old, ticket);
        assert!(open(&[&new, &old], &signed(&signature), &body).is_ok());
        assert!(open(&[&new], &signed(&signature), &body).is_err(), "not without the previous key");
    }

    #[test]
    fn forged_foreign_doctype_and_non_xml_pushes_are_refused() {
        let crypt = MsgCrypt::new("token", KEY, COMPONENT).unwrap();
        let ticket = "<xml><AppId>x</AppId><CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>t</ComponentVerifyTicket></xml>";
        let (body, signature) = push(&crypt, ticket);
        let flipped = if signature.starts_with('0') { "1" } else { "0" };
        let forged = format!("{flipped}{}", &signature[1..]);
        assert_eq!(open(&[&crypt], &signed(&forged), &body).unwrap_err(), PushError::Crypt(CryptError::Signature));

        let foreign = MsgCrypt::new("token", KEY, "wxsomeoneelse0001").unwrap();
        let (body, signature) = push(&foreign, ticket);
        assert_eq!(open(&[&crypt], &signed(&signature), &body).unwrap_err(), PushError::Crypt(CryptError::AppId));

        let xxe = "<?xml version=\"1.0\"?><!DOCTYPE xml [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><AppId>&e;</AppId><CreateTime>1</CreateTime><InfoType>component_verify_ticket</InfoType><ComponentVerifyTicket>t</ComponentVerifyTicket></xml>";
        let (body, signature) = push(&crypt, xxe);
        assert!(
            matches!(open(&[&crypt], &signed(&signature), &body).unwrap_err(), PushError::Xml(e) if e.contains("DOCTYPE"))
        );
        let outer_doctype = "<!DOCTYPE xml><xml><Encrypt>x</Encrypt></xml>";
        assert!(matches!(open(&[&crypt], &signed(&signature), outer_doctype).unwrap_err(), PushError::Xml(_)));

        let entity = "<xml><Encrypt>&custom;</Encrypt></xml>";
        assert!(
            matches!(open(&[&crypt], &signed(&signature), entity).unwrap_err(), PushError::Xml(e) if e.contains("&custom;"))
        );
        for not_xml in ["", "success", "{\"Encrypt\":\"x\"}", "<xml><Encrypt>x</Encrypt>", "<a/><b/>"] {
            assert!(open(&[&crypt], &signed(&signature), not_xml).is_err(), "{not_xml:?}");
        }
    }
}
