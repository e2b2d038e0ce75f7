"""The outbound address policy: every spelling of a non-public address is what it is."""

from __future__ import annotations

import pytest

from helpfaster_box import net

SPELLINGS = [
    ("127.0.0.1", "loopback"),
    ("2130706433", "loopback"),  # decimal
    ("0177.0.0.1", "loopback"),  # octal
    ("0x7f.1", "loopback"),  # hex, short
    ("127.1", "loopback"),  # short form
    ("0", "unspecified"),
    ("0.0.0.0", "unspecified"),
    ("[::1]", "loopback"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:7f00:1", "loopback"),  # IPv4-mapped, hex
    ("::127.0.0.1", "loopback"),  # IPv4-compatible
    ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
    ("64:ff9b::a01:203", "private"),  # NAT64 of 10.1.2.3
    ("64:ff9b::a9fe:a9fe", "metadata"),  # NAT64 of 169.254.169.254
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:c0a8:1::1", "private"),  # 6to4 of 192.168.0.1
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "private"),  # carrier-grade NAT
    ("fd00::1", "private"),  # unique local
    ("169.254.169.254", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("169.254.1.1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("224.0.0.1", "multicast"),
    ("93.184.216.34", "public"),
    ("2606:2800:220:1:248:1893:25c8:1946", "public"),
]


@pytest.mark.parametrize(("host", "kind"), SPELLINGS)
def test_every_spelling_of_an_address_is_classified_by_what_it_reaches(host, kind):
    ip = net.literal_address(host)
    assert ip is not None, host
    assert net.classify(ip) == kind


@pytest.mark.parametrize("name", ["example.com", "intranet", "1.2.3.4.nip.io", "0x", "1.2.3.4.5", "08"])
def test_names_are_not_mistaken_for_literals(name):
    assert net.literal_address(name) is None


@pytest.mark.parametrize("host", ["169.254.169.254", "0", "224.0.0.1", "64:ff9b::a9fe:a9fe"])
def test_metadata_unspecified_and_multicast_are_refused_whatever_is_allowed(host):
    with pytest.raises(net.Refused, match="refused by this server"):
        net.pick_address(host, 80, allow={"private", "loopback", "link-local"}, setting="s")


def test_a_name_is_refused_when_any_of_its_addresses_is_private():
    with pytest.raises(net.Refused, match=r"localhost resolves to .*loopback"):
        net.pick_address("localhost", 80, allow=(), setting="s")
    assert str(net.pick_address("localhost", 80, allow={"loopback"}, setting="s")) in ("127.0.0.1", "::1")


def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(net.Refused, match="does not resolve"):
        net.pick_address("no-such-host.invalid", 80, allow=(), setting="s")
