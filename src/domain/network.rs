//! Addresses an API key may be used from, and the client address a per-address limit or
//! lockout counts.

use super::FieldError;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One entry of a key's `allowed_ips`: a single address or a CIDR network, kept in the
/// form it was given (`192.168.1.5` stays an address, `10.0.0.0/8` a network), so the
/// API echoes what the caller sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum AllowedIp {
    Addr(IpAddr),
    Net(IpNet),
}

impl AllowedIp {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(Self::Addr(addr));
        }
        s.parse::<IpNet>().map(Self::Net).map_err(|_| {
            FieldError::new("allowed_ips", format!("{s:?} is not an IP address or CIDR"))
        })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        // An IPv4 client reaching an IPv6 socket shows up as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(*ip),
            v4 => *v4,
        };
        match self {
            Self::Addr(a) => *a == ip,
            Self::Net(n) => n.contains(&ip),
        }
    }
}

impl fmt::Display for AllowedIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr(a) => a.fmt(f),
            Self::Net(n) => n.fmt(f),
        }
    }
}

impl FromStr for AllowedIp {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for AllowedIp {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}

impl From<AllowedIp> for String {
    fn from(a: AllowedIp) -> String {
        a.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_keep_the_form_they_were_given_and_match_their_addresses() {
        let one = AllowedIp::parse(" 192.168.1.5 ").unwrap();
        assert_eq!(one.to_string(), "192.168.1.5");
        assert!(one.contains(&"192.168.1.5".parse().unwrap()));
        assert!(!one.contains(&"192.168.1.6".parse().unwrap()));
        assert!(one.contains(&"::ffff:192.168.1.5".parse().unwrap()));
        let net = AllowedIp::parse("10.0.0.0/8").unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(&"10.200.1.1".parse().unwrap()));
        assert!(!net.contains(&"11.0.0.1".parse().unwrap()));
        let v6 = AllowedIp::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(&"2001:db8::1".parse().unwrap()));
        // Stored entries written as networks (`/32`) before still read back.
        let old: AllowedIp = serde_json::from_str("\"192.168.1.5/32\"").unwrap();
        assert!(old.contains(&"192.168.1.5".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "localhost", "1.2.3"] {
            assert!(AllowedIp::parse(bad).is_err(), "{bad}");
        }
    }
}

/// The client a per-address rate limit or `account_ip` lockout counter is keyed by: an IPv4
/// address as it is, an IPv6 address by its /64. One host is usually given a whole /64 and
/// can rotate through it, so counting each /128 apart would let it start afresh at will.
/// An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, a dual-stack listener) counts as its
/// IPv4 address.
pub fn client_bucket(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::client_bucket;

    #[test]
    fn ipv6_counts_by_its_64_and_ipv4_as_itself() {
        let b = |s: &str| client_bucket(s.parse().unwrap());
        assert_eq!(b("2001:db8:1:2::1"), b("2001:db8:1:2:ffff:0:0:9"));
        assert_eq!(b("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(b("2001:db8:1:2::1"), b("2001:db8:1:3::1"));
        assert_eq!(b("192.0.2.7"), "192.0.2.7");
        assert_eq!(b("::ffff:192.0.2.7"), "192.0.2.7");
    }
}
