"""Who a web request comes from: the peer, or behind a trusted reverse proxy, the client it names."""

from __future__ import annotations

import ipaddress

from digest.errors import ConfigError

Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def trusted_networks(setting: str) -> Networks:
    """``web.trusted_proxies`` as networks; :class:`ConfigError` names an entry that is not one."""
    try:
        return [ipaddress.ip_network(part.strip(), strict=False) for part in setting.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(
            f"web.trusted_proxies expects addresses or networks such as 10.0.0.0/8, found {exc}"
        ) from None


def _within(address: str, networks: Networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(remote: str, forwarded: str, proxies: Networks) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the last hop of
    ``X-Forwarded-For`` that is not itself a trusted proxy (earlier hops are the client's to write)."""
    if not _within(remote, proxies):
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return next((hop for hop in reversed(hops) if not _within(hop, proxies)), remote)
