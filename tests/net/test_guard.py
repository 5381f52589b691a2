"""The outgoing-URL guard: which addresses and URLs are refused, and how the operator opens
exceptions."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable

import pytest

from wakecall.errors import InvalidInput, UnsafeURL
from wakecall.net import OutboundPolicy, check_address, check_url, guard, parse_ipv4_literal

DEFAULT = OutboundPolicy()


def teredo(client: str) -> str:
    """A Teredo address (server 1.2.3.4) for a client IPv4 address."""
    obfuscated = ~int(ipaddress.IPv4Address(client)) & 0xFFFFFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (0x01020304 << 64) | obfuscated))


BLOCKED = [
    ("127.0.0.1", "loopback", "--allow-outbound loopback"),
    ("127.255.0.9", "loopback", "--allow-outbound loopback"),
    ("::1", "loopback", "--allow-outbound loopback"),
    ("10.1.2.3", "private", "--allow-outbound 10.0.0.0/8"),
    ("172.16.0.1", "private", "--allow-outbound 172.16.0.0/12"),
    ("172.31.255.254", "private", "--allow-outbound 172.16.0.0/12"),
    ("192.168.1.20", "private", "--allow-outbound 192.168.0.0/16"),
    ("fc00::1", "unique local", "--allow-outbound fc00::/7"),
    ("fd12:3456::1", "unique local", "--allow-outbound fc00::/7"),
    ("169.254.1.1", "link-local", "--allow-outbound 169.254.0.0/16"),
    ("169.254.169.254", "metadata", "--allow-outbound 169.254.169.254/32"),
    ("fe80::1", "link-local", "--allow-outbound fe80::/10"),
    ("100.64.0.1", "carrier-grade NAT", "--allow-outbound 100.64.0.0/10"),
    ("224.0.0.1", "multicast", "--allow-outbound 224.0.0.1/32"),
    ("ff02::1", "multicast", "--allow-outbound ff02::1/128"),
    ("0.0.0.0", "unspecified", "--allow-outbound 0.0.0.0/32"),
    ("::", "unspecified", "--allow-outbound ::/128"),
    ("240.0.0.1", "reserved", "--allow-outbound"),
    ("255.255.255.255", "broadcast", "--allow-outbound"),
    ("192.0.2.1", "documentation", "--allow-outbound"),
    ("198.51.100.7", "documentation", "--allow-outbound"),
    ("203.0.113.9", "documentation", "--allow-outbound"),
    ("2001:db8::1", "documentation", "--allow-outbound"),
    ("198.18.0.1", "benchmarking", "--allow-outbound"),
    ("100::1", "discard", "--allow-outbound"),
    ("::ffff:127.0.0.1", "loopback", "--allow-outbound loopback"),
    ("::ffff:10.0.0.1", "private", "--allow-outbound 10.0.0.0/8"),
    ("::ffff:169.254.169.254", "metadata", "--allow-outbound 169.254.169.254/32"),
    ("::127.0.0.1", "loopback", "--allow-outbound loopback"),
    ("64:ff9b::a00:1", "private", "--allow-outbound 10.0.0.0/8"),
    ("2002:a00:1::1", "private", "--allow-outbound 10.0.0.0/8"),
    (teredo("192.168.0.1"), "private", "--allow-outbound 192.168.0.0/16"),
]


@pytest.mark.parametrize(("address", "why", "how"), BLOCKED)
def test_addresses_outside_the_public_internet_are_refused_with_the_reason_and_the_remedy(
    address: str, why: str, how: str
) -> None:
    with pytest.raises(UnsafeURL) as caught:
        check_address(address, DEFAULT)
    message = str(caught.value)
    assert str(ipaddress.ip_address(address)) in message
    assert why in message
    assert how in message


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "2606:4700:4700::1111",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
        teredo("8.8.4.4"),
    ],
)
def test_global_unicast_addresses_are_accepted(address: str) -> None:
    check_address(address, DEFAULT)
    check_address(ipaddress.ip_address(address), DEFAULT)


@pytest.mark.parametrize(
    ("url", "allow"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://localhost:8080/", "loopback"),
        ("http://10.0.0.1/", "10.0.0.0/8"),
        ("http://192.0.2.1/", "192.0.2.1/32"),
    ],
)
def test_a_refusal_names_the_server_setting_that_would_allow_it(url: str, allow: str) -> None:
    # Refusals reach agents through tools and people through `wakecall tasks add` or a task
    # file: the remedy is the server's setting, not a flag of the command that failed.
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, DEFAULT)
    assert str(caught.value).endswith(
        "the operator can allow it with the server setting allow_outbound "
        f"(`wakecall serve --allow-outbound {allow}`, or WAKECALL_ALLOW_OUTBOUND={allow}). "
        "Example: https://example.com/hooks/wakecall"
    )
    assert OutboundPolicy.parse_allow([allow]) != DEFAULT
    check_url(url, OutboundPolicy.parse_allow([allow]))


def test_the_host_name_appears_next_to_the_address_it_resolved_to() -> None:
    with pytest.raises(UnsafeURL, match=r"refusing to connect to internal\.example at 10\.0\.0\.7"):
        check_address("10.0.0.7", DEFAULT, host="internal.example")


def test_an_allowed_cidr_opens_that_range_and_nothing_else() -> None:
    policy = OutboundPolicy.parse_allow(["10.0.0.0/8"])
    check_address("10.1.2.3", policy)
    check_address("::ffff:10.1.2.3", policy)
    with pytest.raises(UnsafeURL):
        check_address("192.168.1.1", policy)
    with pytest.raises(UnsafeURL):
        check_address("127.0.0.1", policy)


def test_the_loopback_allowance_opens_loopback_in_every_spelling_and_nothing_else() -> None:
    policy = OutboundPolicy.parse_allow(["loopback"])
    assert policy.allow_loopback
    for address in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        check_address(address, policy)
    with pytest.raises(UnsafeURL):
        check_address("10.0.0.1", policy)
    with pytest.raises(UnsafeURL):
        check_address("169.254.169.254", policy)


def test_allow_values_accept_ipv6_cidrs_and_single_addresses() -> None:
    policy = OutboundPolicy.parse_allow(["fd00::/8", " 192.168.1.20 ", "LOOPBACK"])
    assert policy.allow_loopback
    check_address("fd00::1", policy)
    check_address("192.168.1.20", policy)
    with pytest.raises(UnsafeURL):
        check_address("192.168.1.21", policy)


def test_an_allow_value_that_is_no_cidr_is_refused_with_an_example() -> None:
    with pytest.raises(InvalidInput) as caught:
        OutboundPolicy.parse_allow(["intranet"])
    assert str(caught.value) == (
        "allow_outbound: 'intranet' is neither a CIDR nor the word 'loopback'. "
        "Example: --allow-outbound 10.0.0.0/8,loopback"
    )


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://2130706433/", "127.0.0.1"),
        ("http://0177.0.0.1/", "127.0.0.1"),
        ("http://0x7f.0.0.1/", "127.0.0.1"),
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://017700000001/", "127.0.0.1"),
        ("http://127.1/", "127.0.0.1"),
        ("http://127.0.0.1/", "127.0.0.1"),
        ("http://127.0.0.1./", "127.0.0.1"),
        ("http://[::1]:8080/", "::1"),
        ("http://[::ffff:127.0.0.1]/", "127.0.0.1"),
        ("http://[0:0:0:0:0:ffff:7f00:1]/", "127.0.0.1"),
        ("http://10.0.0.1/", "10.0.0.1"),
        ("http://10.1/", "10.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://0xa9fea9fe/", "169.254.169.254"),
        ("http://[fe80::1%25eth0]/", "fe80::1"),
        ("http://localhost/", "localhost"),
        ("http://LOCALHOST./", "LOCALHOST."),
        ("http://api.localhost:9000/", "api.localhost"),
    ],
)
def test_hosts_written_as_blocked_addresses_are_refused_in_every_literal_form(
    url: str, address: str
) -> None:
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, DEFAULT)
    message = str(caught.value)
    assert address.lower() in message.lower()
    assert "--allow-outbound" in message


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("", "empty"),
        ("ftp://example.com/file", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("http://user:secret@example.com/", "credentials"),
        ("http://example.com:0/", "port 0"),
        ("http://example.com:70000/", "port 70000"),
        ("http:///path", "no host"),
        ("http://exa mple.com/", "spaces"),
        ("http://example.com/\n", "control characters"),
        ("http://a..b/", "not a valid host name"),
        ("http://exa$mple.com/", "not a valid host name"),
        ("https://example.com/" + "a" * 2100, "at most 2048"),
        ("http://134744072/", "write it as 8.8.8.8"),
        ("http://[::1/", "not a valid URL"),
        ("http://[zz]/", "not a valid URL"),
        ("http://a:b:c/", "not a valid URL"),
        ("http://%zz/", "not a valid host name"),
        ("//example.com/", "has no scheme"),
    ],
)
def test_malformed_urls_are_refused_with_an_example_of_a_valid_one(
    url: str, complaint: str
) -> None:
    with pytest.raises(UnsafeURL) as caught:
        check_url(url, DEFAULT)
    message = str(caught.value)
    assert complaint in message
    assert "Example: https://example.com/hooks/wakecall" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hooks/wakecall",
        "http://example.com:8080/x?y=1#z",
        "https://8.8.8.8/",
        "https://[2606:4700:4700::1111]:8443/",
        "https://bücher.example/",
        "https://hooks.example.com./run",
        "https://under_score.example.com/",
    ],
)
def test_public_urls_are_accepted(url: str) -> None:
    check_url(url, DEFAULT)


def test_the_policy_admits_literal_addresses_it_allows() -> None:
    policy = OutboundPolicy.parse_allow(["10.0.0.0/8", "loopback"])
    for url in ("http://10.0.0.5:8080/hook", "http://localhost:8000/", "http://[::1]/"):
        check_url(url, policy)
        with pytest.raises(UnsafeURL):
            check_url(url, DEFAULT)


def _outcome(
    check: Callable[[str, OutboundPolicy], None], url: str, policy: OutboundPolicy
) -> str | None:
    try:
        check(url, policy)
    except UnsafeURL as exc:
        return str(exc)
    return None


def _plain_urls(count: int) -> list[str]:
    """URLs of the plain form `check_url` judges without a full parse, with the characters
    most likely to trip a parser in their path, query and fragment."""
    rng = random.Random(17)
    tricky = "/?#%@:;[]{}|\\^`\"<>'!$&()*+,=~.-_0123456789aZ"
    hosts = ["example.com", "a", "x-1.b2.example", "localhost", "api.localhost", "0x7f.example",
             "1.2.3.example", "a" * 63 + ".com", "xn--bcher-kva.example"]  # fmt: skip
    urls = []
    for _ in range(count):
        tail = "".join(rng.choice(tricky) for _ in range(rng.randrange(0, 12)))
        port = rng.choice(["", ":1", ":80", ":65535", ":65536", ":0", ":99999"])
        scheme = rng.choice(["http", "https"])
        urls.append(f"{scheme}://{rng.choice(hosts)}{port}{rng.choice('/?#')}{tail}")
    return urls


@pytest.mark.parametrize("policy", [DEFAULT, OutboundPolicy.parse_allow(["loopback"])])
def test_plain_urls_are_judged_as_the_full_parse_judges_them(policy: OutboundPolicy) -> None:
    urls = _plain_urls(3000)
    assert sum(1 for url in urls if guard._PLAIN_URL.fullmatch(url)) > 2000
    for url in urls:
        fast = _outcome(check_url, url, policy)
        full = _outcome(lambda u, p: guard._check_parsed_url(u, p, None), url, policy)
        assert fast == full, url


def test_a_refusal_names_the_field_it_is_about() -> None:
    with pytest.raises(UnsafeURL) as caught:
        check_url("http://10.0.0.1/", DEFAULT, field="callback_url")
    assert str(caught.value).startswith("callback_url: ")
    assert caught.value.field == "callback_url"
    assert isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("10.0.1", "10.0.0.1"),
        ("0", "0.0.0.0"),
        ("1.2.3.4.", "1.2.3.4"),
        ("example.com", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("1.16777216", None),
        ("4294967296", None),
        ("08.1.1.1", None),
        ("0xdead.com", None),
        ("1e100.net", None),
    ],
)
def test_numeric_hosts_are_read_the_way_resolvers_read_them(host: str, address: str | None) -> None:
    parsed = parse_ipv4_literal(host)
    assert (None if parsed is None else str(parsed)) == address
