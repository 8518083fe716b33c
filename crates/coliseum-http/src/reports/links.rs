//! The secrets and traces of share links: report ids, link tokens, and
//! what a view log keeps of a visitor (a hash of their network, the family
//! of their browser), never who they are.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A report's id: 128 random bits (ids are checked against their owner;
/// random ones also say nothing about how many reports exist).
pub fn new_report_id() -> String {
    let bytes: [u8; 16] = rand::random();
    format!("rep_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A link's token: 256 random bits, URL-safe.
pub fn new_share_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `text` can be a token at all (43 URL-safe characters), checked
/// before the store is asked.
pub fn looks_like_token(text: &str) -> bool {
    text.len() == 43
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A visitor's network, hashed with the link's token: the address is cut
/// to its network first (IPv4 /24, IPv6 /48), as analytics tools
/// anonymise addresses, so that not even the hash's owner can brute-force
/// it back to a person; within one link, repeat visits from one network
/// share a hash.
pub fn address_hash(token: &str, address: Option<std::net::IpAddr>) -> String {
    let network = match address {
        Some(std::net::IpAddr::V4(v4)) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        Some(std::net::IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
        None => "unknown".to_owned(),
    };
    let mut hasher = Sha256::new();
    hasher.update(b"coliseum share view v1\0");
    hasher.update(token.as_bytes());
    hasher.update(b"\0");
    hasher.update(network.as_bytes());
    let digest = hasher.finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The family of the browser or tool a user agent names.
pub fn agent_family(user_agent: Option<&str>) -> &'static str {
    let Some(agent) = user_agent else {
        return "Unknown";
    };
    let lower = agent.to_ascii_lowercase();
    // Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari".
    const FAMILIES: &[(&str, &str)] = &[
        ("bot", "Bot"),
        ("crawler", "Bot"),
        ("spider", "Bot"),
        ("edg/", "Edge"),
        ("opr/", "Opera"),
        ("firefox/", "Firefox"),
        ("chrome/", "Chrome"),
        ("chromium/", "Chrome"),
        ("safari/", "Safari"),
        ("curl/", "curl"),
        ("wget/", "Wget"),
        ("python", "Python"),
        ("okhttp", "Android app"),
    ];
    FAMILIES
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map_or("Other", |(_, family)| family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let (a, b) = (new_share_token(), new_share_token());
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        assert!(!looks_like_token("short"));
        assert!(!looks_like_token(&format!("{}/", &a[..42])));
        assert!(new_report_id().starts_with("rep_"));
    }

    #[test]
    fn a_visitor_is_known_by_their_network_within_one_link_only() {
        let ip = |text: &str| Some(text.parse().expect("an address"));
        let one = address_hash("token-a", ip("203.0.113.7"));
        assert_eq!(one, address_hash("token-a", ip("203.0.113.200")), "same /24");
        assert_ne!(one, address_hash("token-a", ip("203.0.114.7")));
        assert_ne!(one, address_hash("token-b", ip("203.0.113.7")), "another link");
        assert_eq!(one.len(), 16);
        assert!(!one.contains("203"));
    }

    #[test]
    fn agents_are_named_by_family() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36";
        assert_eq!(agent_family(Some(chrome)), "Chrome");
        assert_eq!(agent_family(Some("Mozilla/5.0 ... Chrome/1 Safari/1 Edg/1")), "Edge");
        assert_eq!(agent_family(Some("curl/8.5.0")), "curl");
        assert_eq!(agent_family(Some("Slackbot-LinkExpanding 1.0")), "Bot");
        assert_eq!(agent_family(None), "Unknown");
    }
}
