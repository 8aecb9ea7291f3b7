//! Which IP addresses are public. The others (loopback, private, link-local, cloud metadata,
//! multicast, ...) receive callbacks only when a rule names them exactly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `ip` with an IPv4 address carried in IPv6 (IPv4-mapped `::ffff:a.b.c.d`, or the deprecated
/// IPv4-compatible `::a.b.c.d`) written as that IPv4 address: the form rules and checks compare.
///
/// ```
/// use std::net::IpAddr;
/// use nexus_runtime::security::canonical_ip;
/// let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
/// assert_eq!(canonical_ip(mapped), "127.0.0.1".parse::<IpAddr>().unwrap());
/// ```
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match carried_v4(v6) {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

/// The IPv4 address an IPv4-mapped or IPv4-compatible IPv6 address stands for (`::` and `::1`
/// are IPv6's own unspecified and loopback addresses).
fn carried_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let compatible = s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1);
    compatible.then(|| low_v4(v6))
}

fn low_v4(v6: Ipv6Addr) -> Ipv4Addr {
    let o = v6.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

/// Ranges that are not the public internet, most specific first: (network, prefix length, what).
const V4_RANGES: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(169, 254, 169, 254), 32, "cloud metadata"),
    (
        Ipv4Addr::new(168, 63, 129, 16),
        32,
        "cloud platform (Azure)",
    ),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "broadcast"),
    (Ipv4Addr::new(0, 0, 0, 0), 8, "unspecified (this network)"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared (carrier-grade NAT)",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignment"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
];

/// `a:b:c::d`, for the table below.
const fn v6(a: u16, b: u16, c: u16, d: u16) -> Ipv6Addr {
    Ipv6Addr::new(a, b, c, 0, 0, 0, 0, d)
}

const V6_RANGES: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (v6(0xfd00, 0xec2, 0, 0x254), 128, "cloud metadata"),
    (v6(0x64, 0xff9b, 1, 0), 48, "local NAT64"),
    (v6(0x100, 0, 0, 0), 64, "discard-only"),
    (v6(0x2001, 0xdb8, 0, 0), 32, "documentation"),
    (v6(0x2001, 0, 0, 0), 23, "IETF protocol assignment"),
    (v6(0x3fff, 0, 0, 0), 20, "documentation"),
    (v6(0x5f00, 0, 0, 0), 16, "segment routing"),
    (v6(0xfc00, 0, 0, 0), 7, "unique local (private)"),
    (v6(0xfe80, 0, 0, 0), 10, "link-local"),
    (v6(0xfec0, 0, 0, 0), 10, "site-local"),
    (v6(0xff00, 0, 0, 0), 8, "multicast"),
];

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

/// What kind of non-public address `ip` is (`"loopback"`, `"private"`, `"cloud metadata"`, ...),
/// or `None` for a public address. IPv6 forms that lead to an IPv4 address (mapped, compatible,
/// NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that IPv4 address.
///
/// ```
/// use nexus_runtime::security::non_public_kind;
/// assert_eq!(non_public_kind("169.254.169.254".parse().unwrap()), Some("cloud metadata"));
/// assert_eq!(non_public_kind("fd00:ec2::254".parse().unwrap()), Some("cloud metadata"));
/// assert_eq!(non_public_kind("::ffff:10.1.2.3".parse().unwrap()), Some("private"));
/// assert_eq!(non_public_kind("93.184.215.14".parse().unwrap()), None);
/// ```
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return v4_kind(low_v4(v6));
            }
            if segments[0] == 0x2002 {
                let [a, b] = segments[1].to_be_bytes();
                let [c, d] = segments[2].to_be_bytes();
                return v4_kind(Ipv4Addr::new(a, b, c, d));
            }
            V6_RANGES
                .iter()
                .find(|(net, len, _)| in_v6(v6, *net, *len))
                .map(|(_, _, kind)| *kind)
        }
    }
}

fn v4_kind(v4: Ipv4Addr) -> Option<&'static str> {
    V4_RANGES
        .iter()
        .find(|(net, len, _)| in_v4(v4, *net, *len))
        .map(|(_, _, kind)| *kind)
}

/// Whether `ip` is on the public internet (see [`non_public_kind`]).
pub fn is_public(ip: IpAddr) -> bool {
    non_public_kind(ip).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<&'static str> {
        non_public_kind(s.parse().unwrap())
    }

    #[test]
    fn classifies_the_non_public_ranges() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("::1", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("fc00::1", "unique local (private)"),
            ("fd12:3456::1", "unique local (private)"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("fe80::1", "link-local"),
            ("fd00:ec2::254", "cloud metadata"),
            ("0.0.0.0", "unspecified (this network)"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("100.127.255.255", "shared (carrier-grade NAT)"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("2002:7f00:1::1", "loopback"),
            ("2001:db8::1", "documentation"),
            ("240.0.0.1", "reserved"),
        ];
        for (ip, expected) in cases {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "11.0.0.1",
        ] {
            assert_eq!(kind(public), None, "{public}");
        }
    }

    #[test]
    fn canonical_form_unwraps_ipv4_in_ipv6() {
        let c = |s: &str| canonical_ip(s.parse().unwrap()).to_string();
        assert_eq!(c("::ffff:7f00:1"), "127.0.0.1");
        assert_eq!(c("::a00:1"), "10.0.0.1");
        assert_eq!(c("::1"), "::1");
        assert_eq!(c("::"), "::");
        assert_eq!(c("2001:db8::1"), "2001:db8::1");
    }
}
