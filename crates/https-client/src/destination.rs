//! Where plain http is acceptable: only to this machine.

/// Whether `host` (a URL's host: a name, an IPv4 address or a bracketed IPv6 address) is this
/// machine — `localhost` or a loopback address — the only place Custos sends anything over plain http.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_localhost_and_loopback_addresses_are_this_machine() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.8.9.10",
            "[::1]",
            "::1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "localhost.example.com",
            "10.0.0.1",
            "[::2]",
            "0.0.0.0",
            "127.0.0.1.nip.io",
            "example.com",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
