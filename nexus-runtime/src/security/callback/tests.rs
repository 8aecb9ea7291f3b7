use super::*;

fn loopback() -> CallbackGuard {
    CallbackGuard::loopback()
}

fn refused(guard: &CallbackGuard, url: &str) -> CallbackRefusal {
    guard
        .check_url(url)
        .expect_err(&format!("{url} should be refused"))
}

#[test]
fn the_default_allows_public_https_only() {
    let guard = CallbackGuard::default();
    assert!(guard.check_url("https://caller.example.com/cb?x=1").is_ok());
    assert!(guard.check_url("https://8.8.8.8:8443/cb").is_ok());
    assert!(guard.check_url("https://[2606:4700::1111]/cb").is_ok());
    let e = refused(&guard, "http://caller.example.com/cb");
    assert_eq!(e.kind(), &RefusalKind::PlainHttp);
    assert!(e.message().contains("http://caller.example.com/cb"), "{e}");
}

#[test]
fn every_disguise_of_a_non_public_address_is_refused() {
    let guard = CallbackGuard::new(["http://*:*"]).unwrap();
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://127.0.0.1:22",
        "http://10.0.0.1",
        "http://0x7f000001/",
        "http://2130706433/",
        "http://127.1/",
        "http://0177.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::127.0.0.1]/",
        "http://127.0.0.1./",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://[::1]/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://%31%32%37.0.0.1/",
        "HTTP://0X7F.1/",
    ] {
        let e = refused(&guard, url);
        assert_eq!(e.kind(), &RefusalKind::NonPublic, "{url}: {e}");
        assert!(e.message().contains("callback URL `"), "{e}");
    }
}

#[test]
fn a_rule_naming_the_address_opens_it_and_only_it() {
    let guard = loopback();
    for url in [
        "http://127.0.0.1:7243/cb",
        "http://127.1:7243/cb",
        "http://2130706433:1/",
        "http://[::ffff:127.0.0.1]:80/",
        "https://localhost:8443/",
        "http://LOCALHOST./",
        "http://[::1]:9/",
    ] {
        assert!(guard.check_url(url).is_ok(), "{url}");
    }
    for url in [
        "http://127.0.0.2/",
        "http://10.0.0.1/",
        "http://169.254.169.254/",
    ] {
        assert_eq!(
            refused(&guard, url).kind(),
            &RefusalKind::NonPublic,
            "{url}"
        );
    }
    // Not a public host either: the loopback rules open nothing else.
    assert_eq!(
        refused(&guard, "https://example.com/").kind(),
        &RefusalKind::NotAllowed
    );
    let exact = CallbackGuard::new(["http://10.1.2.3:8080"]).unwrap();
    assert!(exact.check_url("http://10.1.2.3:8080/").is_ok());
    assert!(exact.check_url("http://10.1.2.3:8081/").is_err());
    assert!(exact.check_url("http://10.1.2.3/").is_err());
}

#[test]
fn urls_that_are_not_plain_http_targets_are_refused() {
    let guard = CallbackGuard::new(["http://*:*"]).unwrap();
    let cases = [
        ("not a url", RefusalKind::InvalidUrl),
        ("/relative", RefusalKind::InvalidUrl),
        ("ftp://example.com/", RefusalKind::InvalidUrl),
        ("file:///etc/passwd", RefusalKind::InvalidUrl),
        ("http://user:pw@example.com/", RefusalKind::Credentials),
        ("http://user@example.com/", RefusalKind::Credentials),
        ("http://:pw@example.com/", RefusalKind::Credentials),
        ("http://[::1/", RefusalKind::InvalidUrl),
    ];
    for (url, kind) in cases {
        assert_eq!(refused(&guard, url).kind(), &kind, "{url}");
    }
    let long = format!("https://example.com/{}", "a".repeat(MAX_CALLBACK_URL_BYTES));
    assert_eq!(refused(&guard, &long).kind(), &RefusalKind::InvalidUrl);
    assert!(refused(&guard, &long).message().len() < 600);
    assert_eq!(
        refused(&CallbackGuard::deny_all(), "https://example.com/").kind(),
        &RefusalKind::NotAllowed
    );
}

#[test]
fn ports_follow_the_rules() {
    let guard = CallbackGuard::new(["api.example.com", "*.example.org:8443"]).unwrap();
    assert!(guard.check_url("https://api.example.com/").is_ok());
    assert!(guard.check_url("https://api.example.com:443/").is_ok());
    assert!(guard.check_url("https://api.example.com:8443/").is_err());
    assert!(guard.check_url("https://a.example.org:8443/").is_ok());
    assert!(guard.check_url("https://example.org:8443/").is_err());
}

#[test]
fn resolved_addresses_are_checked_at_delivery() {
    let wildcard = CallbackGuard::new(["http://*:*"]).unwrap();
    let checked = wildcard.check_url("http://localhost:9000/cb").unwrap();
    assert!(checked.ip().is_none());
    let ip = "127.0.0.1".parse().unwrap();
    let e = wildcard.check_address(&checked, ip).unwrap_err();
    assert_eq!(e.kind(), &RefusalKind::NonPublic);
    assert!(
        e.message().contains("localhost resolves to 127.0.0.1"),
        "{e}"
    );
    assert!(
        wildcard
            .check_address(&checked, "8.8.8.8".parse().unwrap())
            .is_ok()
    );
    assert!(wildcard.check_resolved("localhost", ip).is_err());
    assert!(
        wildcard
            .check_resolved("example.com", "1.1.1.1".parse().unwrap())
            .is_ok()
    );

    // Named exactly: its non-public addresses are what the operator asked for.
    let named = CallbackGuard::new(["http://localhost:9000", "http://*:*"]).unwrap();
    let checked = named.check_url("http://localhost:9000/cb").unwrap();
    assert!(named.check_address(&checked, ip).is_ok());
    assert!(named.check_resolved("LocalHost.", ip).is_ok());
    // ... on the port it names only: another port goes through the wildcard.
    let other_port = named.check_url("http://localhost:9001/cb").unwrap();
    assert!(named.check_address(&other_port, ip).is_err());

    // A rule naming the address opens it for any name resolving to it, on its port.
    let by_address = CallbackGuard::new(["http://10.0.0.7:8080", "http://*:*"]).unwrap();
    let internal = by_address.check_url("http://svc.internal:8080/").unwrap();
    assert!(
        by_address
            .check_address(&internal, "10.0.0.7".parse().unwrap())
            .is_ok()
    );
    assert!(
        by_address
            .check_address(&internal, "10.0.0.8".parse().unwrap())
            .is_err()
    );
    let mapped = "::ffff:10.0.0.7".parse().unwrap();
    assert!(by_address.check_address(&internal, mapped).is_ok());
}

#[test]
fn framing_headers_are_refused_by_name() {
    let guard = loopback();
    let url = "http://127.0.0.1:1/cb";
    for name in [
        "Host",
        "content-length",
        "Content-Type",
        "Transfer-Encoding",
        "connection",
        "Upgrade",
        "TE",
        "Trailer",
        "Keep-Alive",
        "Proxy-Authorization",
        "proxy-connection",
        "Expect",
        "",
    ] {
        let e = guard.check_callback(url, [(name, "x")]).unwrap_err();
        assert_eq!(e.kind(), &RefusalKind::Header, "{name}");
        assert!(
            e.message().contains(&format!("`Nexus-Callback-{name}`")),
            "{e}"
        );
    }
    for name in [
        "Authorization",
        "Cookie",
        "Temporal-Callback-Token",
        "source",
    ] {
        assert!(guard.check_callback(url, [(name, "x")]).is_ok(), "{name}");
    }
    let big = "v".repeat(MAX_CALLBACK_HEADER_BYTES);
    let e = guard
        .check_callback(url, [("token", big.as_str())])
        .unwrap_err();
    assert_eq!(e.kind(), &RefusalKind::Header);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn guards() -> [CallbackGuard; 3] {
        [
            CallbackGuard::default(),
            CallbackGuard::loopback(),
            CallbackGuard::new(["http://*:*", "http://10.0.0.1:*", "*.example.com"]).unwrap(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            // Reproducible runs, and no regression files written into the tree.
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x6e65_7875),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn checks_never_panic_on_arbitrary_text(input in any::<String>()) {
            for guard in guards() {
                let _ = guard.check_url(&input);
                let _ = guard.check_resolved(&input, "127.0.0.1".parse().unwrap());
                let _ = guard.check_callback("https://example.com/", [(input.as_str(), "v")]);
            }
            let _ = CallbackRule::parse(&input);
        }

        #[test]
        fn checks_never_panic_on_url_shaped_input(
            scheme in "(https?|HTTP|ftp|)",
            userinfo in "([a-z:]{0,4}@)?",
            host in "[a-zA-Z0-9.:\\[\\]%*_-]{0,40}",
            port in "(:[0-9]{0,6})?",
            path in "(/[ -~]{0,20})?",
        ) {
            let url = format!("{scheme}://{userinfo}{host}{port}{path}");
            for guard in guards() {
                if let Ok(checked) = guard.check_url(&url) {
                    let _ = guard.check_address(&checked, "10.0.0.1".parse().unwrap());
                    let _ = guard.check_address(&checked, "::1".parse().unwrap());
                }
            }
            let _ = CallbackRule::parse(&format!("{scheme}://{host}{port}"));
        }

        #[test]
        fn any_ipv4_loopback_form_is_refused_by_a_wildcard(last in 0u8..=255, second in 0u8..=255) {
            let guard = CallbackGuard::new(["http://*:*"]).unwrap();
            let value = (127u32 << 24) | (u32::from(second) << 16) | u32::from(last);
            for host in [
                format!("127.{second}.0.{last}"),
                format!("{value}"),
                format!("{value:#x}"),
                format!("[::ffff:127.{second}.0.{last}]"),
            ] {
                let url = format!("http://{host}/");
                prop_assert!(guard.check_url(&url).is_err(), "{}", url);
            }
        }
    }
}
