//! The address a request comes from, behind the proxies the operator trusts.
//!
//! Rate limits for callers without credentials (and for failed
//! credentials), the delivery budget's share per sender and a shared
//! report's view log all count by address. Behind a proxy (the deployment's nginx,
//! a load balancer) every connection comes from the proxy, so all of them
//! would count as one visitor. A proxy says whom it serves in
//! `X-Forwarded-For`, appending the address it was connected from; anyone
//! can write the header, so only hops the operator names are believed.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The networks whose connections are proxies: `--trusted-proxies`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Networks (`10.0.0.0/8`) or single addresses (`10.0.0.5`, `::1`).
    pub fn parse(items: &[String]) -> Result<Self, String> {
        items
            .iter()
            .map(|item| item.trim())
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{item}` is neither an address nor a network (`10.0.0.0/8`)"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client of a request that arrived from `peer`. From a trusted
    /// proxy, it is the nearest hop of `X-Forwarded-For` (read from the
    /// right, where each proxy appends) that is not a trusted proxy itself:
    /// what lies further left was written by that client and proves
    /// nothing. A hop that is not an address ends the walk at the last one
    /// read. From anyone else the header is ignored.
    ///
    /// Each hop is read on its own: a proxy that appends writes the
    /// client's header and its own hop into one value, and a byte the
    /// client wrote must not hide the hop the proxy wrote.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .rev()
            .flat_map(|value| value.as_bytes().rsplit(|byte| *byte == b','));
        let mut client = peer;
        for hop in hops {
            let Some(address) = std::str::from_utf8(hop)
                .ok()
                .and_then(|hop| hop.trim().parse::<IpAddr>().ok())
            else {
                break;
            };
            client = address.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn proxies(items: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&items.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>()).expect("valid")
    }

    fn client(proxies: &TrustedProxies, peer: &str, forwarded: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).expect("a header value"));
        }
        proxies.client(peer.parse().expect("an address"), &headers).to_string()
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let none = TrustedProxies::default();
        assert_eq!(client(&none, "10.0.0.2", &["203.0.113.7"]), "10.0.0.2");
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(client(&trusted, "198.51.100.4", &["203.0.113.7"]), "198.51.100.4");
        assert_eq!(client(&trusted, "10.0.0.2", &["203.0.113.7"]), "203.0.113.7");
        assert_eq!(
            client(&trusted, "10.0.0.2", &[]),
            "10.0.0.2",
            "no header: the proxy itself"
        );
    }

    #[test]
    fn what_a_client_writes_left_of_its_own_address_is_ignored() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.1"]);
        // The client sent `1.1.1.1`; the outer proxy (192.0.2.1) appended the
        // client's address, the inner one (10.0.0.2's) the outer proxy's.
        assert_eq!(
            client(&trusted, "10.0.0.2", &["1.1.1.1, 203.0.113.7, 192.0.2.1"]),
            "203.0.113.7"
        );
        assert_eq!(
            client(&trusted, "10.0.0.2", &["1.1.1.1", "203.0.113.7,192.0.2.1"]),
            "203.0.113.7",
            "several headers read as one list, in order"
        );
        assert_eq!(
            client(&trusted, "10.0.0.2", &["10.0.0.9, 192.0.2.1"]),
            "10.0.0.9",
            "every hop trusted: the farthest"
        );
    }

    #[test]
    fn a_byte_the_client_wrote_does_not_hide_the_hop_the_proxy_wrote() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let mut headers = HeaderMap::new();
        headers.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.7").expect("a header value"),
        );
        let peer = "10.0.0.2".parse().expect("an address");
        assert_eq!(trusted.client(peer, &headers).to_string(), "203.0.113.7");
    }

    #[test]
    fn a_hop_that_is_not_an_address_ends_the_walk() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(client(&trusted, "10.0.0.2", &["203.0.113.7, unknown"]), "10.0.0.2");
        assert_eq!(client(&trusted, "10.0.0.2", &["junk, 10.0.0.3"]), "10.0.0.3");
        assert_eq!(
            client(&trusted, "10.0.0.2", &["203.0.113.7:4711"]),
            "10.0.0.2",
            "ports are not written by the proxies this reads"
        );
        assert_eq!(client(&trusted, "10.0.0.2", &[" 2001:db8::7 "]), "2001:db8::7");
    }

    #[test]
    fn mapped_addresses_are_compared_as_what_they_map() {
        let trusted = proxies(&["127.0.0.1"]);
        assert_eq!(client(&trusted, "::ffff:127.0.0.1", &["203.0.113.7"]), "203.0.113.7");
        assert_eq!(client(&trusted, "127.0.0.1", &["::ffff:203.0.113.7"]), "203.0.113.7");
    }

    #[test]
    fn parsing_takes_networks_and_addresses_and_names_what_it_refuses() {
        assert_eq!(proxies(&[" 10.0.0.0/8 ", "::1", ""]).0.len(), 2);
        let refused = TrustedProxies::parse(&["nginx".to_owned()]).expect_err("not an address");
        assert!(refused.contains("`nginx`"), "{refused}");
        assert!(TrustedProxies::parse(&["10.0.0.0/33".to_owned()]).is_err());
    }
}
