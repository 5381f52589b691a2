"""The outgoing-URL guard: which addresses and URLs wakecall refuses to call.

- `check_url` when a URL is accepted: syntax (http or https, a host, no credentials, a valid
  port) and hosts written as IP literals, in every form a resolver accepts (`2130706433`,
  `0177.0.0.1`, `0x7f.1`, `[::ffff:127.0.0.1]`), judged as the address they stand for.
- `check_host` at connect time (called by `wakecall.net.backend`): the host is resolved by
  wakecall itself and every address it resolves to is judged by `check_address`.

The operator opens exceptions with an `OutboundPolicy` (the server setting `allow_outbound`:
`wakecall serve --allow-outbound 10.0.0.0/8,loopback`, or `WAKECALL_ALLOW_OUTBOUND`).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpx2

from wakecall.errors import InvalidInput, UnsafeURL

__all__ = [
    "EXAMPLE_URL",
    "MAX_URL_LENGTH",
    "IPAddress",
    "IPNetwork",
    "OutboundPolicy",
    "Resolver",
    "check_address",
    "check_host",
    "check_url",
    "operator_remedy",
    "parse_ipv4_literal",
    "resolve_host",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Resolves a host name and port to the addresses to connect to, in preference order.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

EXAMPLE_URL = "https://example.com/hooks/wakecall"
MAX_URL_LENGTH = 2048

LOOPBACK_WORD = "loopback"


# --- policy --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Which addresses outside the public internet the operator lets wakecall call."""

    allow_loopback: bool = False
    allow_cidrs: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse_allow(cls, values: Iterable[str]) -> OutboundPolicy:
        """A policy from `--allow-outbound` values: CIDRs (`10.0.0.0/8`, `fd00::/8`), single
        addresses (`192.168.1.20`), and the word `loopback`."""
        allow_loopback = False
        cidrs: list[IPNetwork] = []
        for raw in values:
            value = raw.strip()
            if value.lower() == LOOPBACK_WORD:
                allow_loopback = True
                continue
            try:
                cidrs.append(ipaddress.ip_network(value, strict=False))
            except ValueError:
                raise InvalidInput(
                    f"{raw!r} is neither a CIDR nor the word 'loopback'",
                    field="allow_outbound",
                    example="--allow-outbound 10.0.0.0/8,loopback",
                ) from None
        return cls(allow_loopback=allow_loopback, allow_cidrs=tuple(cidrs))

    def allows(self, ip: IPAddress) -> bool:
        if self.allow_loopback and ip.is_loopback:
            return True
        return any(ip.version == net.version and ip in net for net in self.allow_cidrs)


# --- addresses -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Range:
    network: IPNetwork
    why: str
    suggest: str | None = None  # what to pass to --allow-outbound; None: the address itself


def _ranges(*rows: tuple[str, str] | tuple[str, str, str]) -> tuple[_Range, ...]:
    return tuple(_Range(ipaddress.ip_network(row[0]), *row[1:]) for row in rows)


_PRIVATE = "a private address"

# Judged in order, first match wins; anything else must also be `is_global` to pass.
_V4_BLOCKED = _ranges(
    ("169.254.169.254/32", "the cloud metadata address"),
    ("255.255.255.255/32", "the broadcast address"),
    ("0.0.0.0/8", "an unspecified ('this network') address"),
    ("10.0.0.0/8", _PRIVATE, "10.0.0.0/8"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address", "100.64.0.0/10"),
    ("127.0.0.0/8", "a loopback address (this machine)", LOOPBACK_WORD),
    ("169.254.0.0/16", "a link-local address", "169.254.0.0/16"),
    ("172.16.0.0/12", _PRIVATE, "172.16.0.0/12"),
    ("192.0.0.0/24", "an IETF protocol assignment"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a reserved (6to4 relay) address"),
    ("192.168.0.0/16", _PRIVATE, "192.168.0.0/16"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
)

_V6_BLOCKED = _ranges(
    ("::/128", "the unspecified address"),
    ("::1/128", "the loopback address (this machine)", LOOPBACK_WORD),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("100::/64", "a discard-only address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("fc00::/7", "a unique local (private) address", "fc00::/7"),
    ("fec0::/10", "a site-local (private) address"),
    ("fe80::/10", "a link-local address", "fe80::/10"),
    ("ff00::/8", "a multicast address"),
)

_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_v4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address stands for or tunnels to, and how it embeds it."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _V4_COMPATIBLE and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "IPv4-compatible"
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip.teredo is not None:
        return ip.teredo[1], "Teredo"
    return None


def _blocked_range(ip: IPAddress) -> _Range | None:
    table = _V4_BLOCKED if ip.version == 4 else _V6_BLOCKED
    for row in table:
        if ip in row.network:
            return row
    if ip.version == 6 and ip not in _V6_GLOBAL_UNICAST:
        return _Range(ipaddress.ip_network(f"{ip}/128"), "a reserved address")
    if not ip.is_global:
        return _Range(ipaddress.ip_network(f"{ip}/{ip.max_prefixlen}"), "a reserved address")
    return None


def operator_remedy(allow: str) -> str:
    """How the operator lets wakecall call what was refused: `allow` is the value of the
    server setting `allow_outbound` that admits it (a CIDR or `loopback`).

    Named as a server setting, not as a flag of the command that failed: the refusal reaches
    agents through tools, and people through `wakecall tasks add` or a task file, none of
    which take the setting themselves.
    """
    return (
        f"the operator can allow it with the server setting allow_outbound "
        f"(`wakecall serve --allow-outbound {allow}`, or WAKECALL_ALLOW_OUTBOUND={allow})"
    )


def _as_ip(value: IPAddress | str) -> IPAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    return ipaddress.ip_address(value)


def check_address(ip: IPAddress | str, policy: OutboundPolicy, *, host: str | None = None) -> None:
    """Raise `UnsafeURL` unless `ip` is a global unicast address or the policy allows it.

    An IPv6 address that stands for an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`,
    IPv4-compatible, NAT64) or tunnels to one (6to4, Teredo) is judged by that IPv4 address.
    `host` names the host the address belongs to, for the message.
    """
    address = _as_ip(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    if policy.allows(address):
        return
    judged: IPAddress = address
    via = ""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_v4(address)
        if embedded is not None:
            judged, kind = embedded
            if policy.allows(judged):
                return
            via = f" ({kind}, stands for {judged})"
    row = _blocked_range(judged)
    if row is None:
        return
    suggest = row.suggest or (f"{judged}/32" if judged.version == 4 else f"{judged}/128")
    where = f"{host} at {address}" if host and host != str(address) else str(address)
    raise UnsafeURL(
        f"refusing to connect to {where}{via}: {row.why}, not a public internet address; "
        f"{operator_remedy(suggest)}"
    )


# --- URLs ----------------------------------------------------------------------------------

_IPV4_PART = re.compile(r"^(0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*)$", re.IGNORECASE)
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_LOCALHOST_NAMES = ("localhost", ".localhost")


def parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host written as numbers stands for, as `inet_aton` (and so most
    resolvers) reads it: one to four parts, each decimal, octal (leading 0) or hex (0x), the
    last part filling the remaining bytes (`127.1`, `2130706433`, `0x7f.0.0.1`,
    `0177.0.0.1`). None when `host` is not written that way (a host name)."""
    text = host[:-1] if host.endswith(".") else host
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.match(p) for p in parts):
        return None
    numbers: list[int] = []
    for part in parts:
        if part[:2].lower() == "0x":
            numbers.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            numbers.append(int(part, 8))
        else:
            numbers.append(int(part))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _refuse(message: str, field: str | None) -> UnsafeURL:
    return UnsafeURL(message, field=field, example=EXAMPLE_URL)


def _judge_name(host: str, policy: OutboundPolicy, field: str | None) -> bool:
    """Judge a host name that names this machine (`localhost` and its subdomains); whether
    it was one."""
    lowered = host.lower().rstrip(".")
    if lowered == "localhost" or lowered.endswith(_LOCALHOST_NAMES[1]):
        if not policy.allow_loopback:
            raise UnsafeURL(
                f"refusing to connect to {host}: it names this machine (loopback); "
                f"{operator_remedy(LOOPBACK_WORD)}",
                field=field,
                example=EXAMPLE_URL,
            )
        return True
    return False


def _judge_literal(host: str, policy: OutboundPolicy, field: str | None) -> None:
    """Judge a host written as an IP literal or a localhost name; host names pass."""
    if _judge_name(host, policy, field):
        return
    if ":" in host:  # an IPv6 literal, possibly with a %25-encoded zone
        try:
            ip: IPAddress = ipaddress.IPv6Address(host.replace("%25", "%"))
        except ValueError:
            raise _refuse(f"{host!r} is not a valid IPv6 address", field) from None
        _check(ip, policy, field)
        return
    ipv4 = parse_ipv4_literal(host)
    if ipv4 is None:
        return
    _check(ipv4, policy, field)
    if host != str(ipv4):
        raise _refuse(
            f"host {host!r} is the IPv4 address {ipv4} written in a short, octal, hex or "
            f"integer form; write it as {ipv4}",
            field,
        )


def _check(ip: IPAddress, policy: OutboundPolicy, field: str | None) -> None:
    try:
        check_address(ip, policy)
    except UnsafeURL as exc:
        raise UnsafeURL(str(exc), field=field, example=EXAMPLE_URL) from None


#: A URL in the plain form most are written in: http(s), a lower-case host name whose last
#: label starts with a letter (so it is no IP literal in any form), an optional port, and a
#: path, query and fragment of printable ASCII. `check_url` judges these without a full parse.
_PLAIN_URL = re.compile(
    r"https?://((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?)"
    r"(?::([0-9]{1,5}))?(?:[/?#][!-~]*)?",
    re.ASCII,
)


def check_url(url: str, policy: OutboundPolicy, *, field: str | None = None) -> None:
    """Check an outgoing URL before it is stored.

    Checks the syntax (http or https, a host, no credentials, a port in 1..65535) and judges a
    host written as an IP literal, in any form, with `check_address`; `localhost` counts as
    loopback. Host names are not resolved here: that happens, and is judged again, every
    time wakecall connects. Raises `UnsafeURL` (naming `field` when given) with an example.
    """
    plain = _PLAIN_URL.fullmatch(url) if isinstance(url, str) else None
    if (
        plain is not None
        and len(url) <= MAX_URL_LENGTH
        and len(plain.group(1)) <= 253
        and (plain.group(2) is None or 1 <= int(plain.group(2)) <= 65535)
    ):
        # Its last label starts with a letter, so it is no IP literal; only a name of this
        # machine (`localhost` and its subdomains) is judged.
        _judge_name(plain.group(1), policy, field)
        return
    _check_parsed_url(url, policy, field)


def _check_parsed_url(url: str, policy: OutboundPolicy, field: str | None) -> None:
    """`check_url` for any URL: parsed as the HTTP client will parse it."""
    if not isinstance(url, str) or not url:
        raise _refuse("the URL is empty", field)
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(f"the URL is {len(url)} characters long; at most {MAX_URL_LENGTH}", field)
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise _refuse("the URL contains spaces or control characters; percent-encode them", field)
    try:
        parsed = httpx2.URL(url)
    except httpx2.InvalidURL as exc:
        # httpx2 refuses some numeric hosts that resolvers accept (`0177.0.0.1`): judge
        # the address first so the message says what it is.
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            host = ""
        if host:
            _judge_literal(host, policy, field)
        raise _refuse(f"{url!r} is not a valid URL ({exc})", field) from None
    if parsed.scheme not in ("http", "https"):
        found = f"not {parsed.scheme}://" if parsed.scheme else "and has no scheme"
        raise _refuse(f"the URL must start with http:// or https://, {found}", field)
    if parsed.userinfo:
        raise _refuse(
            "the URL carries credentials (user:password@); send them in a header such as "
            "Authorization instead",
            field,
        )
    host = parsed.host
    if not host:
        raise _refuse(f"{url!r} has no host", field)
    port = parsed.port
    if port is not None and not 1 <= port <= 65535:
        raise _refuse(f"port {port} is out of range; use 1 to 65535", field)
    _judge_literal(host, policy, field)
    raw_host = parsed.raw_host.decode("ascii").lower()
    if ":" not in raw_host and not _is_host_name(raw_host):
        raise _refuse(f"{host!r} is not a valid host name", field)


def _is_host_name(name: str) -> bool:
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return len(name) <= 254 and all(_HOST_LABEL.match(label) for label in labels)


# --- connect-time guard --------------------------------------------------------------------


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to for TCP, in the resolver's order, without repeats."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, IPAddress] = {}
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0])
        seen.setdefault(text, ipaddress.ip_address(text.split("%", 1)[0]))
    return list(seen.values())


async def check_host(
    host: str, port: int, policy: OutboundPolicy, *, resolver: Resolver | None = None
) -> list[IPAddress]:
    """Resolve `host` and judge every address it resolves to; return them all.

    Refuses the host (`UnsafeURL`) when any one address is refused: a name that answers with
    one public and one private address is not safe to call.
    """
    addresses = await (resolver or resolve_host)(host, port)
    for ip in addresses:
        check_address(ip, policy, host=host)
    return addresses
