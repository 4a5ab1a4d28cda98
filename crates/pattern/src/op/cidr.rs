//! `cidr`: an IPv4 or IPv6 network; matches string values that are addresses inside it.

use crate::error::PatternError;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// Parses `address/bits` with AWS's rules and messages (which are event-ruler's: a
    /// trailing `/` is ignored, leading zeros are decimal, and a full-length mask such as
    /// `/32` is refused).
    pub(crate) fn parse(path: &str, text: &str) -> Result<Cidr, PatternError> {
        let invalid = |reason: String| PatternError::invalid(path, reason);
        // Java's `split` drops trailing empty pieces.
        let mut parts: Vec<&str> = text.split('/').collect();
        while parts.len() > 1 && parts.last() == Some(&"") {
            parts.pop();
        }
        let [address, mask] = parts[..] else {
            return Err(invalid("Malformed CIDR, one '/' required".into()));
        };
        let Ok(prefix_len) = mask.parse::<i32>() else {
            return Err(invalid(
                "Malformed CIDR, mask bits must be an integer".into(),
            ));
        };
        if prefix_len < 0 {
            return Err(invalid(
                "Malformed CIDR, mask bits must not be negative".into(),
            ));
        }
        let network = match parse_address(address) {
            Parsed::Address(network) => network,
            Parsed::Nonstandard => {
                return Err(invalid(format!("Nonstandard IP address: {address}")));
            }
            Parsed::Invalid => return Err(invalid(format!("Invalid IP address: {address}"))),
        };
        let (family, width) = if network.is_ipv4() {
            ("IPv4", 32)
        } else {
            ("IPv6", 128)
        };
        if prefix_len >= width {
            return Err(invalid(format!("{family} mask bits must be < {width}")));
        }
        Ok(Cidr {
            network,
            prefix_len: prefix_len as u8,
        })
    }

    /// Whether `value` is an address (of the same family) inside this network.
    pub fn contains_str(&self, value: &str) -> bool {
        match parse_address(value) {
            Parsed::Address(address) => self.contains(address),
            Parsed::Nonstandard | Parsed::Invalid => false,
        }
    }

    /// The network's prefix: (IPv6?, prefix length, the prefix bits). Every address inside
    /// the network has the same one, through [`prefix_of`], so networks can be hashed.
    pub(crate) fn prefix(&self) -> (bool, u8, u128) {
        prefix_of(self.network, self.prefix_len)
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => same_prefix(
                u32::from(net).into(),
                u32::from(addr).into(),
                32,
                self.prefix_len,
            ),
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                same_prefix(u128::from(net), u128::from(addr), 128, self.prefix_len)
            }
            _ => false,
        }
    }
}

pub(crate) enum Parsed {
    Address(IpAddr),
    /// Not shaped like an address at all.
    Nonstandard,
    /// Shaped like one, but not one (`1.2.3.256`).
    Invalid,
}

/// An IP address as AWS reads one: four dot-separated decimal numbers (leading zeros
/// allowed), or hex digits and colons. Runs for every value of a field a `cidr` leaf
/// names, so it is a plain byte scan that allocates nothing.
pub(crate) fn parse_address(text: &str) -> Parsed {
    if let Some(octets) = dotted_quad(text.as_bytes()) {
        return match octets {
            [Some(a), Some(b), Some(c), Some(d)] => Parsed::Address(IpAddr::from([a, b, c, d])),
            _ => Parsed::Invalid,
        };
    }
    if text.contains(':') && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
        return match text.parse::<std::net::Ipv6Addr>() {
            Ok(address) => Parsed::Address(IpAddr::V6(address)),
            Err(_) => Parsed::Invalid,
        };
    }
    Parsed::Nonstandard
}

/// The four numbers of `text` if it is shaped as four dot-separated runs of decimal
/// digits (leading zeros are padding, not octal); each is `None` when above 255.
fn dotted_quad(text: &[u8]) -> Option<[Option<u8>; 4]> {
    let mut octets = [None; 4];
    let mut done = 0;
    // Saturates at 256, which is out of range however many digits follow.
    let mut value = 0u32;
    let mut digits = 0;
    for &byte in text {
        match byte {
            b'0'..=b'9' => {
                value = (value * 10 + u32::from(byte - b'0')).min(256);
                digits += 1;
            }
            b'.' if digits > 0 && done < 3 => {
                octets[done] = u8::try_from(value).ok();
                done += 1;
                value = 0;
                digits = 0;
            }
            _ => return None,
        }
    }
    if digits == 0 || done < 3 {
        return None;
    }
    octets[3] = u8::try_from(value).ok();
    Some(octets)
}

/// The first `prefix_len` bits of an address (at most the family's width), with its family
/// and that length.
pub(crate) fn prefix_of(address: IpAddr, prefix_len: u8) -> (bool, u8, u128) {
    let (is_v6, bits, width) = match address {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4)), 32u32),
        IpAddr::V6(v6) => (true, u128::from(v6), 128),
    };
    let host_bits = width.saturating_sub(u32::from(prefix_len));
    (is_v6, prefix_len, bits.checked_shr(host_bits).unwrap_or(0))
}

fn same_prefix(net: u128, addr: u128, width: u32, prefix_len: u8) -> bool {
    let host_bits = width - u32::from(prefix_len);
    (net ^ addr).checked_shr(host_bits).unwrap_or(0) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        Cidr::parse("ip", text).expect("valid cidr")
    }

    #[test]
    fn dotted_quads_are_read_as_aws_reads_them() {
        assert_eq!(
            dotted_quad(b"10.0.0.1"),
            Some([Some(10), Some(0), Some(0), Some(1)])
        );
        assert_eq!(
            dotted_quad(b"010.000.0255.1"),
            Some([Some(10), Some(0), Some(255), Some(1)])
        );
        assert_eq!(
            dotted_quad(b"1.2.3.256"),
            Some([Some(1), Some(2), Some(3), None])
        );
        assert_eq!(
            dotted_quad(b"1.2.3.99999999999"),
            Some([Some(1), Some(2), Some(3), None])
        );
        for shapeless in [
            "1.2.3",
            "1.2.3.4.5",
            "1..3.4",
            "1.2.3.",
            ".1.2.3",
            "1.2.3.x",
            "",
            "a",
        ] {
            assert_eq!(dotted_quad(shapeless.as_bytes()), None, "{shapeless}");
        }
    }

    #[test]
    fn addresses_inside_a_network_share_its_prefix() {
        let address = |text| match parse_address(text) {
            Parsed::Address(address) => address,
            _ => panic!("{text} is an address"),
        };
        for (network, inside, outside) in [
            ("10.1.2.3/8", "10.200.0.1", "11.0.0.1"),
            ("0.0.0.0/0", "192.0.2.1", "::1"),
            ("10.1.2.0/31", "10.1.2.1", "10.1.2.2"),
            (
                "2001:db8:1234:1a00::/64",
                "2001:db8:1234:1a00::1",
                "2001:db8:1234:1a01::1",
            ),
        ] {
            let cidr = cidr(network);
            let (is_v6, prefix_len, _) = cidr.prefix();
            let prefix = |text| {
                let address = address(text);
                (address.is_ipv6() == is_v6).then(|| prefix_of(address, prefix_len))
            };
            assert_eq!(prefix(inside), Some(cidr.prefix()), "{inside} in {network}");
            assert_ne!(
                prefix(outside),
                Some(cidr.prefix()),
                "{outside} in {network}"
            );
        }
    }

    #[test]
    fn v4_and_v6_membership() {
        assert!(cidr("10.0.0.0/24").contains_str("10.0.0.255"));
        assert!(!cidr("10.0.0.0/24").contains_str("10.0.1.0"));
        assert!(cidr("0.0.0.0/0").contains_str("192.0.2.1"));
        assert!(cidr("10.1.2.0/31").contains_str("10.1.2.1"));
        assert!(cidr("10.0.0.0/8").contains_str("010.0.0.1"));
        assert!(cidr("10.0.0.0/8/").contains_str("10.9.9.9"));
        assert!(cidr("2001:db8:1234:1a00::/64").contains_str("2001:db8:1234:1a00::1"));
        assert!(!cidr("2001:db8:1234:1a00::/64").contains_str("2001:db8:1234:1a01::1"));
        assert!(!cidr("10.0.0.0/8").contains_str("::ffff:10.0.0.1"));
        assert!(!cidr("10.0.0.0/8").contains_str("not an ip"));
    }

    #[test]
    fn malformed_cidrs_are_rejected_as_aws_does() {
        let reason = |text| {
            Cidr::parse("ip", text)
                .expect_err("invalid")
                .reason()
                .to_owned()
        };
        assert_eq!(reason("bad-filter"), "Malformed CIDR, one '/' required");
        assert_eq!(reason("xx.11.xx/8"), "Nonstandard IP address: xx.11.xx");
        assert_eq!(
            reason("bad-/64filter"),
            "Malformed CIDR, mask bits must be an integer"
        );
        assert_eq!(reason("10.1.2.3/32"), "IPv4 mask bits must be < 32");
        assert_eq!(reason("::1/128"), "IPv6 mask bits must be < 128");
        assert_eq!(reason("1.2.3.256/24"), "Invalid IP address: 1.2.3.256");
        assert_eq!(
            reason("1.2.3.0/-1"),
            "Malformed CIDR, mask bits must not be negative"
        );
        assert_eq!(reason("a//24"), "Malformed CIDR, one '/' required");
        assert_eq!(
            reason("xxxx:db8:1234:1a00::/64"),
            "Nonstandard IP address: xxxx:db8:1234:1a00::"
        );
    }
}
