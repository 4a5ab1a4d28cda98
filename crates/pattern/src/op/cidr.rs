//! `cidr`: an IPv4 or IPv6 network; matches string values that are addresses inside it.

use crate::error::PatternError;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    pub(crate) fn parse(path: &str, text: &str) -> Result<Cidr, PatternError> {
        let mut parts = text.split('/');
        let (Some(address), Some(mask), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(PatternError::invalid(
                path,
                "Malformed CIDR, one '/' required",
            ));
        };
        let Ok(prefix_len) = mask.parse::<u8>() else {
            return Err(PatternError::invalid(
                path,
                "Malformed CIDR, mask bits must be an integer",
            ));
        };
        let Ok(network) = address.parse::<IpAddr>() else {
            return Err(PatternError::invalid(
                path,
                format!("Nonstandard IP address: {address}"),
            ));
        };
        let max_len = if network.is_ipv4() { 32 } else { 128 };
        if prefix_len > max_len {
            return Err(PatternError::invalid(
                path,
                format!("Malformed CIDR, mask bits must be between 0 and {max_len}"),
            ));
        }
        Ok(Cidr {
            network,
            prefix_len,
        })
    }

    /// Whether `value` is an address (of the same family) inside this network.
    pub fn contains_str(&self, value: &str) -> bool {
        value
            .parse::<IpAddr>()
            .is_ok_and(|address| self.contains(address))
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
    fn v4_and_v6_membership() {
        assert!(cidr("10.0.0.0/24").contains_str("10.0.0.255"));
        assert!(!cidr("10.0.0.0/24").contains_str("10.0.1.0"));
        assert!(cidr("0.0.0.0/0").contains_str("192.0.2.1"));
        assert!(cidr("10.1.2.3/32").contains_str("10.1.2.3"));
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
        assert_eq!(
            reason("xxxx:db8:1234:1a00::/64"),
            "Nonstandard IP address: xxxx:db8:1234:1a00::"
        );
    }
}
