//! Allowed hosts, matched as Extism matches them.

use url::Url;

use super::super::policy::AllowedHosts;
use super::server::{Server, reply};
use super::*;

fn allows(entries: &[&str], url: &str) -> bool {
    let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
    AllowedHosts::new(&entries).allows(&Url::parse(url).unwrap())
}

#[test]
fn no_entries_allow_nothing() {
    assert!(!allows(&[], "http://example.com/"));
    let none = HttpPolicy::new(None, None);
    assert!(
        !none
            .allowed_hosts
            .allows(&Url::parse("http://127.0.0.1/").unwrap())
    );
}

#[test]
fn an_exact_entry_matches_the_host_whatever_its_case_and_port() {
    assert!(allows(&["example.com"], "http://example.com/path"));
    // The url crate lowercases domains, and the port is not part of the host.
    assert!(allows(&["example.com"], "http://EXAMPLE.Com:8080/"));
    assert!(!allows(&["example.com"], "http://sub.example.com/"));
    assert!(!allows(&["example.com"], "http://example.com.evil.net/"));
    // An entry with a port or capitals never matches: Extism compares the host alone, as
    // the url crate writes it.
    assert!(!allows(&["example.com:8080"], "http://example.com:8080/"));
    assert!(!allows(&["Example.com"], "http://example.com/"));
}

#[test]
fn a_wildcard_matches_subdomains_only() {
    let wildcard = ["*.example.com"];
    assert!(allows(&wildcard, "http://api.example.com/"));
    assert!(allows(&wildcard, "http://a.b.example.com/"));
    assert!(!allows(&wildcard, "http://example.com/"));
    // The suffix matches textually, but not after a dot.
    assert!(!allows(&wildcard, "http://evilexample.com/"));
    assert!(!allows(&wildcard, "http://api.example.com.evil.net/"));
    assert!(allows(&["*"], "http://anything.at.all/"));
    assert!(allows(&["api-?.example.com"], "http://api-1.example.com/"));
    assert!(!allows(
        &["api-?.example.com"],
        "http://api-10.example.com/"
    ));
}

#[test]
fn addresses_match_as_the_url_crate_writes_them() {
    assert!(allows(&["127.0.0.*"], "http://127.0.0.1:1234/"));
    assert!(allows(&["10.0.0.[1-5]"], "http://10.0.0.3/"));
    assert!(!allows(&["10.0.0.[1-5]"], "http://10.0.0.6/"));
    // Another spelling of 127.0.0.1 is 127.0.0.1.
    assert!(allows(&["127.0.0.1"], "http://2130706433/"));
    assert!(allows(&["127.0.0.1"], "http://0x7f.1/"));
    // An IPv6 host is written in brackets, which a pattern reads as a character class:
    // under Extism too, `[::1]` allows no host, and the brackets must be escaped.
    assert!(!allows(&["[::1]"], "http://[::1]/"));
    assert!(allows(&["[[]::1[]]"], "http://[::1]/"));
}

#[test]
fn an_entry_that_is_no_pattern_matches_only_itself() {
    // `**` inside a name is not a valid glob pattern: compared as it is.
    assert!(allows(&["a**.example.com"], "http://a**.example.com/"));
    assert!(!allows(&["a**.example.com"], "http://abc.example.com/"));
}

#[tokio::test]
async fn a_refused_host_is_never_contacted() {
    let mut server = Server::start(|_| reply("200 OK", &[], b"hello")).await;
    let url = server.url("/");
    for hosts in [&[][..], &["localhost"], &["127.0.0.2"], &["127.0.0.1:*"]] {
        let refused = err(get(&url), &policy(hosts, None)).await;
        assert!(
            matches!(&refused, HttpError::NotAllowed { url: u } if *u == url),
            "{refused}"
        );
        assert_eq!(
            refused.to_string(),
            format!("HTTP request to {url} is not allowed")
        );
    }
    // No allowed hosts at all, as a manifest without `allowed_hosts` has.
    let refused = err(get(&url), &HttpPolicy::new(None, None)).await;
    assert!(matches!(refused, HttpError::NotAllowed { .. }));
    assert!(server.untouched());
    // The same server, allowed.
    assert_eq!(
        ok(get(&url), &policy(&["127.0.0.*"], None)).await.body,
        b"hello"
    );
}
