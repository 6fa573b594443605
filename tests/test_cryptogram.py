"""Tests for checkout_kit.cryptogram: layouts, parsing, decryption, no leaks.

Vectors live in tests/vectors/packets.json. Packets carry random RSA padding, so tests
check what build() makes by decrypting it or by reading its layout, never byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout_kit import cryptogram
from checkout_kit.cryptogram import (
    DecryptedPacket,
    KeyRegistry,
    PacketFormat,
    PacketHeader,
    build,
    build_cvv,
    decrypt,
    parse,
)
from checkout_kit.errors import (
    CardError,
    CryptogramError,
    DecryptionError,
    MalformedPacketError,
    UnknownKeyVersionError,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "packets.json").read_text("utf-8"))
PACKETS: list[dict[str, Any]] = VECTORS["packets"]
TEST_KEY_PEM: str = VECTORS["test_private_key_pem"]
TEST_KEY = cryptogram.load_private_key(TEST_KEY_PEM)
PID = "test_api_00000000000000000000002"
CVV_FORMATS = (PacketFormat.CVV, PacketFormat.CVV_V02)
HEADER_FIELDS = {"format", "first_six", "last_four", "exp_month", "exp_year", "key_version"}


def vector_build(spec: dict[str, Any]) -> str:
    kwargs: dict[str, Any] = {"key_version": spec["key_version"]}
    if spec["key"] == "test":
        kwargs["key"] = TEST_KEY_PEM
    if spec["format"] == "03":
        return build_cvv(spec["cvv"], **kwargs)
    return build(
        spec["card_number"],
        spec["exp"],
        spec["cvv"],
        spec["public_id"],
        format=spec["format"],
        **kwargs,
    )


def raw_rsa_open(packet: str, key: rsa.RSAPrivateKey) -> bytes:
    """Textbook RSA on the packet's ciphertext: the padded block, unchecked."""
    numbers = key.private_numbers()
    k = key.key_size // 8
    c = int.from_bytes(parse(packet).ciphertext, "big")
    return pow(c, numbers.d, numbers.public_numbers.n).to_bytes(k, "big")


@pytest.fixture(scope="module")
def key_pair() -> tuple[bytes, bytes]:
    return cryptogram.generate_key_pair(2048)


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize("version", [4, 2])
def test_published_key_fingerprints_match_the_reference(version: int) -> None:
    expected = VECTORS["published_key_fingerprints"][f"{version:02d}"]
    key = serialization.load_pem_public_key(cryptogram.PUBLISHED_KEYS[version].encode())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert hashlib.sha256(der).hexdigest() == expected
    assert cryptogram.key_fingerprint(cryptogram.PUBLISHED_KEYS[version]) == expected
    assert cryptogram.PUBLISHED_KEY_FINGERPRINTS[version] == expected
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    assert key.public_numbers().e == 65537


def test_published_registry() -> None:
    registry = KeyRegistry.published()
    assert registry.versions() == (2, 4)
    assert registry.default_version == 4
    assert 4 in registry and 1 not in registry
    with pytest.raises(UnknownKeyVersionError) as info:
        registry.get(1)
    assert info.value.version == 1 and info.value.code == "unknown_key_version"
    # Each call is a fresh registry: adding to one does not change build()'s default.
    registry.add(9, cryptogram.PUBLISHED_KEYS[2])
    assert 9 not in KeyRegistry.published()


def test_registry_takes_pem_str_bytes_and_objects(key_pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = key_pair
    private = serialization.load_pem_private_key(private_pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    registry = KeyRegistry({3: public_pem.decode(), 5: public_pem})
    registry.add(8, private.public_key())
    registry.add(11, private)  # a private key stands for its public half
    assert registry.versions() == (3, 5, 8, 11)
    assert registry.default_version == 11
    assert KeyRegistry({3: public_pem}, default_version=3).default_version == 3
    fingerprint = cryptogram.key_fingerprint(public_pem)
    assert all(cryptogram.key_fingerprint(registry.get(v)) == fingerprint for v in (3, 5, 8, 11))
    with pytest.raises(CryptogramError):
        _ = KeyRegistry().default_version


@pytest.mark.parametrize(
    "bad",
    [
        "not a key",
        b"\x30\x03\x02\x01\x01",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        12345,
    ],
)
def test_unreadable_keys_are_typed_errors(bad: Any) -> None:
    with pytest.raises(CryptogramError) as info:
        cryptogram.load_public_key(bad)
    assert info.value.code == "bad_key"


def test_non_rsa_and_odd_sized_keys_are_refused() -> None:
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(CryptogramError, match="RSA"):
        KeyRegistry({4: ec_public})  # type: ignore[dict-item]
    small = rsa.generate_private_key(public_exponent=65537, key_size=1536)
    with pytest.raises(CryptogramError) as info:
        cryptogram.load_public_key(small.public_key())
    assert info.value.code == "bad_key"
    with pytest.raises(CryptogramError):
        cryptogram.generate_key_pair(1536)


def test_generate_key_pair_pems() -> None:
    private_pem, public_pem = cryptogram.generate_key_pair(1024)
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    packet = build("4242424242424242", "12/30", "123", PID, key=public_pem, key_version=1)
    assert len(packet) == 18 + 172  # 128-byte ciphertext
    assert decrypt(packet, private_pem).card_number == "4242424242424242"


# --------------------------------------------------------------------------- vectors


@pytest.mark.parametrize("vector", PACKETS, ids=[v["id"] for v in PACKETS])
def test_vector_header(vector: dict[str, Any]) -> None:
    header = parse(vector["packet"])
    assert {**header.to_dict(), "paddings": list(header.paddings)} == vector["header"]
    assert set(header.to_dict()) == HEADER_FIELDS
    assert parse("  " + vector["packet"] + "\n") == header


@pytest.mark.parametrize("vector", [v for v in PACKETS if "plaintext" in v], ids=lambda v: v["id"])
def test_vector_decrypts(vector: dict[str, Any]) -> None:
    opened = decrypt(vector["packet"], TEST_KEY_PEM)
    plain = vector["plaintext"]
    assert opened.card_number == plain["card_number"]
    assert opened.exp_month == plain["exp_month"]
    assert opened.exp_year == plain["exp_year"]
    assert opened.cvv == plain["cvv"]
    assert opened.public_id == plain["public_id"]
    assert opened.padding == plain["padding"]
    assert opened.header == parse(vector["packet"])
    by_version = decrypt(vector["packet"], {vector["header"]["key_version"]: TEST_KEY})
    assert by_version == opened


@pytest.mark.parametrize("vector", [v for v in PACKETS if "build" in v], ids=lambda v: v["id"])
def test_vector_build_makes_the_same_header_and_content(vector: dict[str, Any]) -> None:
    expected = vector.get("full_packet", vector["packet"])
    packet = vector_build(vector["build"])
    assert parse(packet).to_dict() == parse(expected).to_dict()
    if packet.startswith("ey"):  # CloudCard: the same JSON but for the ciphertext
        built, fixed = _json_of(packet)[1], _json_of(expected)[1]
        assert {**built, "Value": ""} == {**fixed, "Value": ""}
    else:  # header formats: the same text up to the base64
        cut = len(expected) - len(expected.lstrip(string.digits))
        assert packet[:cut] == expected[:cut]
    if vector["build"]["key"] == "test":
        assert decrypt(packet, TEST_KEY).to_dict(reveal=True) == decrypt(
            expected, TEST_KEY
        ).to_dict(reveal=True)


@pytest.mark.parametrize("fmt", [f for f in PacketFormat])
def test_built_blocks_have_the_padding_layout(fmt: PacketFormat) -> None:
    """Open the RSA block without unpadding and check it against RFC 8017."""
    packet = build("4242424242424242", "12/30", "123", PID, format=fmt,
                   key=TEST_KEY_PEM, key_version=7)
    block = raw_rsa_open(packet, TEST_KEY)
    message = b"123" if fmt in (PacketFormat.CVV, PacketFormat.CVV_V02) else (
        f"4242424242424242@3012@123@{PID}".encode()
    )
    if cryptogram.FORMAT_PADDING[fmt] == "pkcs1":
        # 00 02, at least eight non-zero filler bytes, 00, the message.
        filler = block[2 : len(block) - len(message) - 1]
        assert block[:2] == b"\x00\x02" and len(filler) >= 8 and 0 not in filler
        assert block[-len(message) - 1 :] == b"\x00" + message
    else:
        # OAEP: a leading zero, then a masked seed and data block that unmask to the
        # SHA-1 of the empty label, zeros, 01 and the message.
        assert block[0] == 0
        masked_seed, masked_db = block[1:21], block[21:]
        seed = bytes(a ^ b for a, b in zip(masked_seed, _mgf1(masked_db, 20), strict=True))
        db = bytes(a ^ b for a, b in zip(masked_db, _mgf1(seed, len(masked_db)), strict=True))
        assert db[:20] == hashlib.sha1(b"").digest()
        assert db[20:].lstrip(b"\x00") == b"\x01" + message


def _mgf1(seed: bytes, length: int) -> bytes:
    blocks = range(length // 20 + 1)
    out = b"".join(hashlib.sha1(seed + i.to_bytes(4, "big")).digest() for i in blocks)
    return out[:length]


@pytest.mark.parametrize(
    "case", VECTORS["malformed"], ids=[f"{c['code']}:{c['comment']}" for c in VECTORS["malformed"]]
)
def test_malformed_packets(case: dict[str, str]) -> None:
    with pytest.raises(MalformedPacketError) as info:
        parse(case["packet"])
    assert info.value.code == case["code"]


def test_docs_example_header() -> None:
    docs = next(v for v in PACKETS if v["id"] == "docs-example")
    packet = docs["packet"]
    assert packet.startswith("01492500008719030128")
    header = parse(packet)
    assert header.format is PacketFormat.V01
    assert (header.first_six, header.last_four) == ("492500", "0087")
    assert (header.exp_month, header.exp_year, header.yymm) == (3, 2019, "1903")
    assert header.key_version == 1
    assert len(header.ciphertext) == 256
    assert header.padding == "pkcs1"
    # Version 01's key is unknown, so opening it by version fails cleanly.
    with pytest.raises(UnknownKeyVersionError):
        decrypt(packet, {4: TEST_KEY})


def test_worked_header_with_the_published_key() -> None:
    packet = build("4242424242424242", "12/30", "123", PID)
    assert packet.startswith("014242424242301204")
    assert len(packet) == 362
    assert len(base64.b64decode(packet[18:], validate=True)) == 256
    assert "\n" not in packet


def test_short_ciphertexts_are_accepted_and_never_emitted() -> None:
    vector = next(v for v in PACKETS if v["id"] == "short-ciphertext-255")
    short, full = vector["packet"], vector["full_packet"]
    assert len(short) == 358 and len(short[18:]) == 340
    assert len(parse(short).ciphertext) == 255
    assert len(parse(full).ciphertext) == 256 and parse(full).ciphertext[0] == 0
    assert decrypt(short, TEST_KEY) == DecryptedPacket(
        parse(short), "4000000000000002", 11, 2029, "555", PID, "pkcs1"
    )
    opened = decrypt(short, TEST_KEY)
    assert {**opened.to_dict(reveal=True), "paddings": ["pkcs1"], "padding": opened.padding} == {
        **vector["header"],
        **vector["plaintext"],
    }
    # Two dropped zero bytes (1 in 65536 for JSEncrypt) are tolerated as well.
    two_short = short[:18] + base64.b64encode(bytes(254)).decode()
    assert len(parse(two_short).ciphertext) == 254


def test_every_format_marker_and_padding() -> None:
    expected = {
        "01": ("01", "pkcs1"),
        "02": ("02", "oaep-sha1"),
        "03": ("03", "pkcs1"),
        "02-cvv": ("02", "oaep-sha1"),
        "cloudcard": ("ey", "pkcs1"),
        "cloudcard-ios": ("ey", "pkcs1"),
    }
    for fmt, (prefix, scheme) in expected.items():
        packet = build("4242424242424242", "12/30", "123", PID, format=fmt)
        assert packet.startswith(prefix)
        header = parse(packet)
        assert header.format == fmt
        assert header.padding == scheme
        assert header.key_version == 4


# --------------------------------------------------------------------------- JSON


def _json_of(packet: str) -> tuple[str, dict[str, Any]]:
    text = base64.b64decode(packet, validate=True).decode("utf-8")
    return text, json.loads(text)


def test_cloudcard_android_layout() -> None:
    packet = build("4242424242424242", "12/30", "123", PID, format="cloudcard")
    text, doc = _json_of(packet)
    assert list(doc) == ["Type", "BrowserInfoBase64", "CardInfo", "KeyVersion", "Format", "Value"]
    assert list(doc["CardInfo"]) == [
        "FirstSixDigits",
        "LastFourDigits",
        "ExpDateYear",
        "ExpDateMonth",
    ]
    assert doc["Type"] == "CloudCard" and doc["BrowserInfoBase64"] == ""
    assert doc["CardInfo"] == {
        "FirstSixDigits": "424242",
        "LastFourDigits": "4242",
        "ExpDateYear": "30",
        "ExpDateMonth": "12",
    }
    assert doc["KeyVersion"] == "04" and doc["Format"] == 1
    assert len(base64.b64decode(doc["Value"], validate=True)) == 256
    assert " " not in text and "\\u003d" not in text and "\\/" not in text
    assert text.startswith('{"Type":"CloudCard","BrowserInfoBase64":"","CardInfo":{')
    assert "\n" not in packet


def test_cloudcard_ios_layout() -> None:
    packet = build("4242424242424242", "12/30", "123", PID, format=PacketFormat.CLOUDCARD_IOS)
    text, doc = _json_of(packet)
    assert list(doc) == ["Type", "CardInfo", "KeyVersion", "Value", "Format"]
    assert list(doc["CardInfo"]) == [
        "FirstSixDigits",
        "LastFourDigits",
        "ExpDateMonth",
        "ExpDateYear",
    ]
    assert doc["KeyVersion"] == "4" and doc["Format"] == 1
    assert text.startswith('{"Type":"CloudCard","CardInfo":{"FirstSixDigits":"424242"')
    # JSONEncoder's default escapes slashes; base64 has them in all but ~1 in 2^40 cases.
    assert "/" not in text.replace("\\/", "")


@pytest.mark.parametrize(
    ("fmt", "version", "shown"),
    [
        ("cloudcard", 4, "04"),
        ("cloudcard", 12, "12"),
        ("cloudcard", 123, "0123"),
        ("cloudcard-ios", 4, "4"),
        ("cloudcard-ios", 123, "123"),
    ],
)
def test_cloudcard_key_version_text(
    key_pair: tuple[bytes, bytes], fmt: str, version: int, shown: str
) -> None:
    private_pem, public_pem = key_pair
    packet = build(
        "4242424242424242", "12/30", "", PID, format=fmt, key=public_pem, key_version=version
    )
    assert _json_of(packet)[1]["KeyVersion"] == shown
    assert parse(packet).key_version == version
    assert decrypt(packet, {version: private_pem}).cvv == ""


def test_cloudcard_parse_tolerates_order_and_numeric_version() -> None:
    value = base64.b64encode(bytes(256)).decode()
    doc = {
        "Format": 1,
        "Value": value,
        "KeyVersion": 4,
        "Type": "CloudCard",
        "CardInfo": {
            "ExpDateYear": "2031",
            "ExpDateMonth": "01",
            "LastFourDigits": "1111",
            "FirstSixDigits": "555555",
        },
    }
    packet = base64.b64encode(json.dumps(doc, indent=2).encode()).decode()
    header = parse(packet)
    assert header.to_dict() == {
        "format": "cloudcard-ios",
        "first_six": "555555",
        "last_four": "1111",
        "exp_month": 1,
        "exp_year": 2031,
        "key_version": 4,
    }


# --------------------------------------------------------------------------- build inputs


@pytest.mark.parametrize(
    ("number", "exp", "parts"),
    [
        ("4242 4242 4242 4242", "12/30", None),
        ("4242-4242-4242-4242", "1230", None),
        ("4242424242424242", "12/2030", None),
        ("4242424242424242", None, ("12", "30")),
        ("4242424242424242", None, (12, 2030)),
    ],
)
def test_input_forms_give_the_same_header(
    number: str, exp: str | None, parts: tuple[Any, Any] | None
) -> None:
    month, year = parts or (None, None)
    packet = build(number, exp, "123", PID, exp_month=month, exp_year=year)
    assert packet[:18] == "014242424242301204"


@pytest.mark.parametrize(
    ("kwargs", "field", "code"),
    [
        ({"card_number": ""}, "cardNumber", "CardNumber_Empty"),
        ({"card_number": "4242 4242 4242 424x"}, "cardNumber", "CardNumber_Invalid"),
        ({"card_number": "4242424242424241"}, "cardNumber", "CardNumber_Invalid"),
        ({"card_number": "42424242424"}, "cardNumber", "CardNumber_Invalid"),
        ({"card_number": "42424242424242424242"}, "cardNumber", "CardNumber_Invalid"),
        ({"card_number": "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢"}, "cardNumber", "CardNumber_Invalid"),
        ({"exp": "13/30"}, None, None),
        ({"exp": "00/30"}, None, None),
        ({"exp": ""}, None, None),
        ({"exp": None}, "expDateMonthYear", "ExpDateMonthYear_Empty"),
        ({"exp": None, "exp_month": 12}, "expDateYear", "ExpDateYear_Empty"),
        ({"exp": None, "exp_year": 30}, "expDateMonth", "ExpDateMonth_Empty"),
        ({"cvv": "12a"}, "cvv", "Cvv_Invalid"),
        ({"cvv": "12345"}, "cvv", "Cvv_Invalid"),
        ({"cvv": "١٢٣"}, "cvv", "Cvv_Invalid"),
    ],
)
def test_bad_card_input_is_a_card_error(
    kwargs: dict[str, Any], field: str | None, code: str | None
) -> None:
    args: dict[str, Any] = {
        "card_number": "4242424242424242",
        "exp": "12/30",
        "cvv": "123",
        "public_id": PID,
        **kwargs,
    }
    with pytest.raises(CardError) as info:
        build(**args)
    assert info.value.errors
    if field is not None:
        assert info.value.errors == {field: code}


def test_check_luhn_false_builds_deliberately_bad_numbers() -> None:
    packet = build("4242424242424241", "12/30", "123", PID, check_luhn=False)
    assert parse(packet).last_four == "4241"


def test_other_build_errors() -> None:
    with pytest.raises(TypeError):
        build("4242424242424242", "12/30", "123", PID, exp_month=12)
    with pytest.raises(CryptogramError) as info:
        build("4242424242424242", "12/30", "123", "пк_1")
    assert info.value.code == "bad_public_id"
    with pytest.raises(CryptogramError) as info:
        build("4242424242424242", "12/30", "123", PID, format="04")
    assert info.value.code == "unknown_format"
    with pytest.raises(UnknownKeyVersionError):
        build("4242424242424242", "12/30", "123", PID, key_version=1)
    with pytest.raises(CryptogramError) as info:
        build(
            "4242424242424242",
            "12/30",
            "123",
            PID,
            key_version=-1,
            key=cryptogram.PUBLISHED_KEYS[4],
        )
    assert info.value.code == "bad_key_version"
    with pytest.raises(CryptogramError) as info:
        build("4242424242424242", "12/30", "123", "x" * 300)
    assert info.value.code == "plaintext_too_long"


def test_key_version_defaults(key_pair: tuple[bytes, bytes]) -> None:
    # A published key is recognised; a custom one needs its version.
    assert build("4242424242424242", "12/30", key=cryptogram.PUBLISHED_KEYS[2])[16:18] == "02"
    with pytest.raises(CryptogramError) as info:
        build("4242424242424242", "12/30", key=key_pair[1])
    assert info.value.code == "key_version_required"
    with pytest.raises(CryptogramError) as info:
        build("4242424242424242", "12/30", key=key_pair[1], key_version=100)
    assert info.value.code == "bad_key_version"
    registry = KeyRegistry({5: key_pair[1], 6: key_pair[1]})
    assert parse(build("4242424242424242", "12/30", registry=registry)).key_version == 6
    assert parse(build_cvv("123", registry=registry, key_version=5)).key_version == 5


def test_format_aliases() -> None:
    for alias, fmt in [
        ("1", "01"),
        ("CLOUDCARD", "cloudcard"),
        (" json ", "cloudcard"),
        ("cvv", "03"),
        (PacketFormat.V02, "02"),
    ]:
        assert parse(build("4242424242424242", "12/30", "123", PID, format=alias)).format == fmt


def test_build_cvv() -> None:
    packet = build_cvv("1234")
    assert packet.startswith("0304") and len(packet) == 4 + 344
    assert build("4242424242424242", "12/30", "987", format="03")[:4] == "0304"
    with pytest.raises(CardError) as info:
        build_cvv("")
    assert info.value.errors == {"cvv": "Cvv_Empty"}
    for bad in ("12", "12345", "12a"):
        with pytest.raises(CardError) as info:
            build_cvv(bad)
        assert info.value.errors == {"cvv": "Cvv_Invalid"}


def test_two_builds_of_one_card_differ_and_open_alike(key_pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = key_pair
    for fmt in PacketFormat:
        one, two = (
            build("4242424242424242", "12/30", "123", PID, format=fmt,
                  key=public_pem, key_version=7)
            for _ in range(2)
        )
        assert one != two
        assert decrypt(one, private_pem).to_dict(reveal=True) == decrypt(
            two, private_pem
        ).to_dict(reveal=True)


# --------------------------------------------------------------------------- decrypt


def test_wrong_key_is_a_decryption_error(key_pair: tuple[bytes, bytes]) -> None:
    # OpenSSL's implicit rejection turns a bad PKCS#1 v1.5 block into random bytes;
    # the plaintext check must catch every one of them.
    private_pem, _ = key_pair
    for fmt in PacketFormat:
        for _ in range(5):
            packet = build(
                "4242424242424242", "12/30", "123", PID, format=fmt, key=TEST_KEY, key_version=7
            )
            with pytest.raises(DecryptionError) as info:
                decrypt(packet, private_pem)
            assert info.value.code in {"decryption_failed", "not_a_card_packet"}


def test_tampered_header_is_detected(key_pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = key_pair
    packet = build("4242424242424242", "12/30", "123", PID, key=public_pem, key_version=7)
    for tampered in (
        packet[:2] + "555555" + packet[8:],  # first six
        packet[:8] + "4444" + packet[12:],  # last four
        packet[:12] + "3112" + packet[16:],  # expiry
    ):
        with pytest.raises(DecryptionError) as info:
            decrypt(tampered, private_pem)
        assert info.value.code == "header_mismatch"
    _, doc = _json_of(
        build(
            "4242424242424242",
            "12/30",
            "123",
            PID,
            format="cloudcard",
            key=public_pem,
            key_version=7,
        )
    )
    doc["CardInfo"]["ExpDateYear"] = "31"
    with pytest.raises(DecryptionError) as info:
        decrypt(base64.b64encode(json.dumps(doc).encode()).decode(), private_pem)
    assert info.value.code == "header_mismatch"


def test_marker_decides_the_padding(key_pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = key_pair
    oaep = build(
        "4242424242424242", "12/30", "123", PID, format="02", key=public_pem, key_version=7
    )
    assert decrypt(oaep, private_pem).card_number == "4242424242424242"
    with pytest.raises(DecryptionError):
        decrypt("01" + oaep[2:], private_pem)
    pkcs = build("4242424242424242", "12/30", "123", PID, key=public_pem, key_version=7)
    with pytest.raises(DecryptionError):
        decrypt("02" + pkcs[2:], private_pem)


def test_decrypt_key_selection(key_pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = key_pair
    packet = build("4242424242424242", "12/30", "123", PID, key=public_pem, key_version=7)
    assert decrypt(packet, {7: private_pem, 4: TEST_KEY}).cvv == "123"
    with pytest.raises(UnknownKeyVersionError):
        decrypt(packet, {4: private_pem})
    with pytest.raises(CryptogramError) as info:
        decrypt(packet, "not a key")
    assert info.value.code == "bad_key"
    small_private, _ = cryptogram.generate_key_pair(1024)
    with pytest.raises(DecryptionError) as info:
        decrypt(packet, small_private)
    assert info.value.code == "ciphertext_too_long"


def test_parse_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        parse(b"01424242")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- no leaks

SECRET_PAN = "4111111111111111"
SECRET_CVV = "9731"


def _assert_no_leak(text: str) -> None:
    assert SECRET_PAN not in text
    assert SECRET_PAN[6:12] not in text  # the hidden middle digits
    assert SECRET_CVV not in text


def test_repr_masks_card_and_cvv(key_pair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = key_pair
    packet = build(SECRET_PAN, "12/30", SECRET_CVV, PID, key=public_pem, key_version=7)
    opened = decrypt(packet, private_pem)
    assert opened.card_number == SECRET_PAN and opened.cvv == SECRET_CVV
    for text in (repr(opened), str(opened), repr(opened.header), str(opened.to_dict())):
        _assert_no_leak(text)
    assert "411111******1111" in repr(opened)
    assert opened.to_dict(reveal=True)["card_number"] == SECRET_PAN
    assert set(opened.to_dict()) == HEADER_FIELDS
    assert set(opened.to_dict(reveal=True)) == HEADER_FIELDS | {"card_number", "cvv", "public_id"}
    cvv_only = decrypt(build_cvv(SECRET_CVV, key=public_pem, key_version=7), private_pem)
    _assert_no_leak(repr(cvv_only))
    assert cvv_only.cvv == SECRET_CVV and cvv_only.card_number is None


def _errors_from_secret_input(key_pair: tuple[bytes, bytes]) -> list[Exception]:
    private_pem, public_pem = key_pair
    caught: list[Exception] = []
    bad_luhn = SECRET_PAN[:-1] + "2"
    attempts: list[Callable[[], object]] = [
        lambda: build(bad_luhn, "12/30", SECRET_CVV, PID),
        lambda: build(SECRET_PAN + "x", "12/30", SECRET_CVV, PID),
        lambda: build(SECRET_PAN, "13/30", SECRET_CVV, PID),
        lambda: build(SECRET_PAN, "12/30", SECRET_CVV + "7", PID),
        lambda: build(SECRET_PAN, "12/30", SECRET_CVV, PID, key=public_pem),
        lambda: build(SECRET_PAN, "12/30", SECRET_CVV, "x" * 300),
        lambda: build_cvv(SECRET_CVV + "1"),
        lambda: parse(SECRET_PAN),
        lambda: parse(SECRET_PAN + "@1230@" + SECRET_CVV),
    ]
    packet = build(SECRET_PAN, "12/30", SECRET_CVV, PID, key=public_pem, key_version=7)
    attempts += [
        lambda: decrypt(packet[:12] + "3112" + packet[16:], private_pem),
        lambda: decrypt(packet, TEST_KEY),
        lambda: decrypt(packet, {1: private_pem}),
    ]
    for attempt in attempts:
        with pytest.raises(Exception) as info:  # each is checked below
            attempt()
        caught.append(info.value)
    return caught


def test_errors_never_show_card_or_cvv(key_pair: tuple[bytes, bytes]) -> None:
    errors = _errors_from_secret_input(key_pair)
    assert len(errors) == 12
    for error in errors:
        assert isinstance(error, CardError | CryptogramError)
        _assert_no_leak(str(error))
        _assert_no_leak(repr(error))
        _assert_no_leak(repr(error.args))
        if error.__cause__ is not None:
            _assert_no_leak(str(error.__cause__))


# --------------------------------------------------------------------------- properties


def _luhn_complete(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str(-total % 10)


card_numbers = st.builds(
    _luhn_complete,
    st.text(alphabet="0123456789", min_size=11, max_size=18).filter(lambda s: s.strip("0")),
)
public_ids = st.text(alphabet=string.ascii_letters + string.digits + "_-. ", max_size=40)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    number=card_numbers,
    month=st.integers(1, 12),
    year=st.integers(2000, 2099),
    cvv=st.text(alphabet="0123456789", max_size=4),
    public_id=public_ids,
    fmt=st.sampled_from([f for f in PacketFormat if f not in CVV_FORMATS]),
    version=st.integers(0, 99),
    exp_style=st.sampled_from(["mm/yy", "mmyy", "mm/yyyy", "parts"]),
)
def test_round_trip_card_formats(
    number: str,
    month: int,
    year: int,
    cvv: str,
    public_id: str,
    fmt: PacketFormat,
    version: int,
    exp_style: str,
) -> None:
    exp = {
        "mm/yy": f"{month:02d}/{year % 100:02d}",
        "mmyy": f"{month:02d}{year % 100:02d}",
        "mm/yyyy": f"{month:02d}/{year}",
        "parts": None,
    }[exp_style]
    packet = build(
        number,
        exp,
        cvv,
        public_id,
        exp_month=month if exp is None else None,
        exp_year=year if exp is None else None,
        format=fmt,
        key=TEST_KEY,
        key_version=version,
    )
    header = parse(packet)
    assert header == PacketHeader(
        fmt, number[:6], number[-4:], month, year, version, header.ciphertext
    )
    assert len(header.ciphertext) == 256
    opened = decrypt(packet, {version: TEST_KEY})
    assert (
        opened.card_number,
        opened.exp_month,
        opened.exp_year,
        opened.cvv,
        opened.public_id,
    ) == (number, month, year, cvv, public_id)
    assert opened.header == header


@settings(max_examples=30, deadline=None)
@given(
    cvv=st.text(alphabet="0123456789", min_size=3, max_size=4),
    version=st.integers(0, 99),
)
def test_round_trip_cvv_format(cvv: str, version: int) -> None:
    packet = build_cvv(cvv, key=TEST_KEY, key_version=version)
    assert packet[:4] == f"03{version:02d}" and len(packet) == 348
    opened = decrypt(packet, TEST_KEY)
    assert opened.cvv == cvv and opened.header.key_version == version
    assert opened.card_number is None and opened.public_id is None


#: Every CVV-only layout and padding the SDKs have sent (docs/gateway.md §1.6),
#: as (marker, padding name, padding), made here with cryptography alone.
CVV_LAYOUTS = [
    ("03", "pkcs1", padding.PKCS1v15()),
    ("03", "oaep-sha1", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)),
    ("02", "oaep-sha1", padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)),
]


def cvv_packet_by_cryptography(marker: str, pad: padding.AsymmetricPadding, cvv: str,
                               version: int) -> str:
    ciphertext = TEST_KEY.public_key().encrypt(cvv.encode("ascii"), pad)
    return f"{marker}{version:02d}{base64.b64encode(ciphertext).decode()}"


@settings(max_examples=30, deadline=None)
@given(
    layout=st.sampled_from(CVV_LAYOUTS),
    cvv=st.text(alphabet="0123456789", min_size=3, max_size=4),
    version=st.integers(0, 99),
)
def test_cvv_packets_of_every_sdk_open(
    layout: tuple[str, str, padding.AsymmetricPadding], cvv: str, version: int
) -> None:
    marker, scheme, pad = layout
    packet = cvv_packet_by_cryptography(marker, pad, cvv, version)
    header = parse(packet)
    expected_format = PacketFormat.CVV if marker == "03" else PacketFormat.CVV_V02
    assert header == PacketHeader(expected_format, None, None, None, None, version,
                                  header.ciphertext)
    opened = decrypt(packet, {version: TEST_KEY})
    assert (opened.cvv, opened.padding, opened.card_number) == (cvv, scheme, None)
    # A short ciphertext (leading zero bytes dropped) opens the same.
    block = header.ciphertext
    if block[0] == 0:
        short = f"{marker}{version:02d}{base64.b64encode(block[1:]).decode()}"
        assert decrypt(short, TEST_KEY).cvv == cvv


def _with_plaintext(packet: str, plain: bytes, pad: padding.AsymmetricPadding) -> str:
    """``packet`` with its ciphertext replaced by ``plain`` sealed under TEST_KEY."""
    sealed = base64.b64encode(parse(packet).ciphertext).decode()
    assert packet.endswith(sealed)
    ciphertext = TEST_KEY.public_key().encrypt(plain, pad)
    return packet[: -len(sealed)] + base64.b64encode(ciphertext).decode()


@pytest.mark.parametrize("cvv", ["a123b", "12345", "1@234", "№123", "1234"])
def test_the_legacy_scripts_cvvs_open_as_typed(cvv: str) -> None:
    # The legacy script only asks for three consecutive digits and encrypts the CVV as
    # typed, in UTF-8 (docs/gateway.md §1.2, §2.5, §7.4): its packets open.
    packet = build("4242424242424242", "12/30", "123", PID, format="01", key=TEST_KEY,
                   key_version=7)
    legacy = _with_plaintext(packet, f"4242424242424242@3012@{cvv}@{PID}".encode(),
                             padding.PKCS1v15())
    opened = decrypt(legacy, TEST_KEY)
    assert (opened.cvv, opened.public_id, opened.card_number) == (cvv, PID, "4242424242424242")
    only = cvv_packet_by_cryptography("03", padding.PKCS1v15(), "", 7)
    only = _with_plaintext(only, cvv.encode(), padding.PKCS1v15())  # its mode "cvv"
    assert decrypt(only, TEST_KEY).cvv == cvv


@pytest.mark.parametrize("cvv", ["abc", "12a", "1\t234", "12\x00345"])
def test_cvvs_no_script_sends_are_refused(cvv: str) -> None:
    packet = build("4242424242424242", "12/30", "123", PID, format="01", key=TEST_KEY,
                   key_version=7)
    bad = _with_plaintext(packet, f"4242424242424242@3012@{cvv}@{PID}".encode(),
                          padding.PKCS1v15())
    with pytest.raises(DecryptionError) as info:
        decrypt(bad, TEST_KEY)
    assert info.value.code == "not_a_card_packet"
    only = _with_plaintext(bad, cvv.encode(), padding.PKCS1v15())
    with pytest.raises(DecryptionError):  # a card header on a CVV: not a card either
        decrypt(only, TEST_KEY)
    cvv_only = _with_plaintext(cvv_packet_by_cryptography("03", padding.PKCS1v15(), "", 7),
                               cvv.encode(), padding.PKCS1v15())
    with pytest.raises(DecryptionError) as info:
        decrypt(cvv_only, TEST_KEY)
    assert info.value.code == "not_a_card_packet"


def test_a_public_id_with_the_separator_is_refused() -> None:
    with pytest.raises(CryptogramError) as info:
        build("4242424242424242", "12/30", "123", "pk@1")
    assert info.value.code == "bad_public_id"


@settings(max_examples=150, deadline=None)
@given(
    layout=st.sampled_from(CVV_LAYOUTS),
    cvv=st.text(alphabet="0123456789", min_size=3, max_size=4),
    mutation=st.sampled_from(["cut_text", "char", "ciphertext_bit", "cut_ciphertext"]),
    data=st.data(),
)
def test_mutated_cvv_packets_give_a_typed_error_or_the_right_cvv(
    layout: tuple[str, str, padding.AsymmetricPadding], cvv: str, mutation: str,
    data: st.DataObject,
) -> None:
    """``02``-CVV and ``03`` packets (both paddings), truncated or changed anywhere:
    ``parse`` and ``decrypt`` answer a typed error or the CVV that was sealed, never
    another CVV (OpenSSL answers a bad PKCS#1 v1.5 block with random bytes) and never
    an untyped exception."""
    marker, _, pad = layout
    packet = cvv_packet_by_cryptography(marker, pad, cvv, 7)
    if mutation == "cut_text":
        mutated = packet[: data.draw(st.integers(0, len(packet) - 1))]
    elif mutation == "char":
        at = data.draw(st.integers(0, len(packet) - 1))
        new = data.draw(st.sampled_from(string.ascii_letters + string.digits + "+/=@ \x00é"))
        mutated = packet[:at] + new + packet[at + 1:]
    else:
        block = bytearray(parse(packet).ciphertext)
        if mutation == "ciphertext_bit":
            bit = data.draw(st.integers(0, len(block) * 8 - 1))
            block[bit // 8] ^= 1 << (bit % 8)
        else:
            del block[data.draw(st.integers(1, len(block) - 1)):]
        mutated = packet[:4] + base64.b64encode(bytes(block)).decode()
    try:
        parse(mutated)
        opened = decrypt(mutated, TEST_KEY)
    except CryptogramError as exc:
        assert type(exc) in {MalformedPacketError, DecryptionError}, type(exc)
        assert exc.code
    else:
        assert opened.cvv == cvv, (mutation, mutated)


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=400))
def test_parse_never_fails_untyped(text: str) -> None:
    try:
        header = parse(text)
    except MalformedPacketError as exc:
        assert exc.code in {
            "empty",
            "bad_length",
            "bad_base64",
            "unknown_marker",
            "bad_header",
            "bad_expiry",
            "bad_json",
        }
    else:
        assert isinstance(header, PacketHeader)
