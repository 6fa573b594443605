"""Where a payer's IP address is, for the ``Ip*`` fields (docs/gateway.md §3.4, §5.4).

The gateway fills ``IpCountry``, ``IpCity``, ``IpRegion``, ``IpDistrict``,
``IpLatitude`` and ``IpLongitude`` from its own geolocation database. The sandbox
reads a small offline table, ``ip_geo.json`` next to this module, that places only
loopback and the documentation ranges (``192.0.2.0/24``, ``198.51.100.0/24``,
``203.0.113.0/24``, ``2001:db8::/32``): tests choose where a payer is by choosing
the address, and no real address is ever looked up. Any other address is not placed
(the fields stay ``null``).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

from ... import jsoncodec

__all__ = ["IpLocation", "locate"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class IpLocation:
    """One row of the table."""

    country: str
    region: str | None
    city: str | None
    district: str | None
    latitude: Decimal
    longitude: Decimal


@functools.cache
def _table() -> tuple[tuple[_Network, IpLocation], ...]:
    text = resources.files(__package__).joinpath("ip_geo.json").read_text("utf-8")
    rows = []
    for row in jsoncodec.loads(text)["networks"]:
        rows.append((ipaddress.ip_network(row["network"]), IpLocation(
            country=row["country"], region=row["region"], city=row["city"],
            district=row["district"], latitude=Decimal(row["latitude"]),
            longitude=Decimal(row["longitude"]),
        )))
    return tuple(rows)


def locate(address: str | None) -> IpLocation | None:
    """The table's place for ``address``; ``None`` for an address it does not place
    (or text that is not an address)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is the IPv4 loopback
    for network, place in _table():
        if ip.version == network.version and ip in network:
            return place
    return None
