"""Card cryptogram packets (``CardCryptogramPacket``), laid out as the official SDKs do.

A packet carries a card to the gateway encrypted with the gateway's RSA public key.
Every layout the official mobile SDKs and checkout.js have produced is supported
(docs/gateway.md §1):

========================  =============  ==============================================
format                    RSA padding    layout
========================  =============  ==============================================
``01`` (default)          PKCS#1 v1.5    ``01`` + first6 + last4 + YYMM + key version(2)
                                         + base64(ciphertext)
``02`` (legacy)           OAEP SHA-1     same as ``01`` with marker ``02``
``03`` (CVV only)         PKCS#1 v1.5,   ``03`` + key version(2) + base64(RSA(CVV));
                          or OAEP SHA-1  OAEP from the 2019–2020 Android SDK
``02-cvv`` (CVV only)     OAEP SHA-1     ``02`` + key version(2) + base64(RSA(CVV)),
                                         from the 2019 Android SDK
``cloudcard``             PKCS#1 v1.5    base64 of the Android SDK's JSON
``cloudcard-ios``         PKCS#1 v1.5    base64 of the iOS SDK's JSON
========================  =============  ==============================================

The encrypted plaintext of every card format is ``PAN@YYMM@CVV@PublicId``.

:func:`build` makes packets, :func:`parse` reads a packet's clear header without a
key, and :func:`decrypt` opens one with a private key (the sandbox and tests need it).

Building cryptograms outside the payer's browser or phone puts that code in full PCI
DSS card-data scope: use :func:`build` for tests, the sandbox and server-to-server
integrations that are already in scope, never to collect cards on a web server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any, Final, TypeAlias

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from . import cards, jsoncodec
from .errors import (
    CardError,
    CryptogramError,
    DecryptionError,
    JSONCodecError,
    MalformedPacketError,
    UnknownKeyVersionError,
)

__all__ = [
    "DEFAULT_KEY_VERSION",
    "FORMAT_PADDING",
    "FORMAT_PADDINGS",
    "PAN_LENGTHS",
    "PUBLISHED_KEYS",
    "PUBLISHED_KEY_FINGERPRINTS",
    "SUPPORTED_KEY_SIZES",
    "DecryptedPacket",
    "KeyRegistry",
    "PacketFormat",
    "PacketHeader",
    "build",
    "build_cvv",
    "decrypt",
    "generate_key_pair",
    "key_fingerprint",
    "load_private_key",
    "load_public_key",
    "parse",
]

PublicKeyLike: TypeAlias = "str | bytes | RSAPublicKey | RSAPrivateKey"
PrivateKeyLike: TypeAlias = "str | bytes | RSAPrivateKey"

# --------------------------------------------------------------------------- keys

#: The gateway's published public keys by key version (docs/gateway.md §1.8).
#: 04 is hard-coded in every mobile SDK; 02 in the legacy checkout script.
PUBLISHED_KEYS: Final[dict[int, str]] = {
    4: (
        "-----BEGIN PUBLIC KEY-----\n"
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEArBZ1NNjvszen6BNWsgyD\n"
        "UJvDUZDtvR4jKNQtEwW1iW7hqJr0TdD8hgTxw3DfH+Hi/7ZjSNdH5EfChvgVW9wt\n"
        "TxrvUXCOyJndReq7qNMo94lHpoSIVW82dp4rcDB4kU+q+ekh5rj9Oj6EReCTuXr3\n"
        "foLLBVpH0/z1vtgcCfQzsLlGkSTwgLqASTUsuzfI8viVUbxE1a+600hN0uBh/CYK\n"
        "oMnCp/EhxV8g7eUmNsWjZyiUrV8AA/5DgZUCB+jqGQT/Dhc8e21tAkQ3qan/jQ5i\n"
        "/QYocA/4jW3WQAldMLj0PA36kINEbuDKq8qRh25v+k4qyjb7Xp4W2DywmNtG3Q20\n"
        "MQIDAQAB\n"
        "-----END PUBLIC KEY-----\n"
    ),
    2: (
        "-----BEGIN PUBLIC KEY-----\n"
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAjU/bq6YZD2H0DUhbtEBg\n"
        "JIyiurM8eX3aH02/ZWr6VZ27WF93ylWC4cGAe50sSgiA8NCW0G/UL77kAkebJQrJ\n"
        "jVdt7SvDypSPk1mXNK0i9cI9DrdmAHLGLlYJx7eeY6h4JShLhOBnKRghi0S4uL5N\n"
        "L7W4OUgCeUlGWcmz8ssNEQ5w17rfUF9TxYEFVKFMGN/SSaYNUr4znGt2r97YPsPy\n"
        "0Sk4dGHhMXr1QGR05UQeVuU43OuRAFxA71YbuCRUYg5ENwKM/1RnNcu8v7kXFA4L\n"
        "qGV9AncHLIZEOqWgY+4balVXlKIcMVN6W+PXKJpowOyB9QIq1Ec3OMaJ3sGpOppx\n"
        "KQIDAQAB\n"
        "-----END PUBLIC KEY-----\n"
    ),
}

#: SHA-256 of each published key's DER SubjectPublicKeyInfo, as docs/gateway.md §1.8 gives it.
PUBLISHED_KEY_FINGERPRINTS: Final[dict[int, str]] = {
    4: "16faeda79e3169ca3f8294ee8bbc7d0ee2a5b6f6588d679e08efb1e7da774829",
    2: "9c7c1b22d381ebeda46358f342d355901f437d203417d7704597d4b9e76e85b9",
}

#: The key version the mobile SDKs use; the default for :func:`build`.
DEFAULT_KEY_VERSION: Final = 4

#: RSA modulus sizes (bits) that packets may use. The gateway's keys are 2048-bit;
#: the others are for custom test keys.
SUPPORTED_KEY_SIZES: Final = (1024, 2048, 3072, 4096)

# A JavaScript encoder (JSEncrypt) drops leading zero bytes of the ciphertext, so a
# packet may carry up to two bytes fewer than the modulus (1 in 256, 1 in 65536).
_MAX_DROPPED_BYTES: Final = 2
_CIPHERTEXT_SIZES: Final = frozenset(
    size // 8 - dropped for size in SUPPORTED_KEY_SIZES for dropped in range(_MAX_DROPPED_BYTES + 1)
)


def _check_key_size(key_size: int) -> None:
    if key_size not in SUPPORTED_KEY_SIZES:
        raise CryptogramError(
            "bad_key", f"RSA key size {key_size} is not one of {SUPPORTED_KEY_SIZES}"
        )


def _check_rsa_public(key: object) -> RSAPublicKey:
    if not isinstance(key, RSAPublicKey):
        raise CryptogramError("bad_key", "the key is not an RSA key")
    _check_key_size(key.key_size)
    return key


@lru_cache(maxsize=32)
def _load_public_bytes(data: bytes) -> RSAPublicKey:
    if b"PRIVATE KEY-----" in data:
        # A private key PEM stands for its public half (handy for tests and the CLI).
        return _load_private_bytes(data).public_key()
    try:
        if data.lstrip().startswith(b"-----"):
            loaded: object = serialization.load_pem_public_key(data)
        else:
            loaded = serialization.load_der_public_key(data)
    except ValueError as exc:
        raise CryptogramError("bad_key", "cannot read the public key (PEM or DER)") from exc
    return _check_rsa_public(loaded)


@lru_cache(maxsize=32)
def _load_private_bytes(data: bytes) -> RSAPrivateKey:
    try:
        if data.lstrip().startswith(b"-----"):
            loaded: object = serialization.load_pem_private_key(data, password=None)
        else:
            loaded = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CryptogramError(
            "bad_key", "cannot read the private key (unencrypted PEM or DER)"
        ) from exc
    if not isinstance(loaded, RSAPrivateKey):
        raise CryptogramError("bad_key", "the private key is not an RSA key")
    _check_key_size(loaded.key_size)
    return loaded


def _key_bytes(key: object, kind: str) -> bytes:
    if isinstance(key, str):
        return key.encode("ascii", "replace")
    if isinstance(key, bytes):
        return key
    raise CryptogramError("bad_key", f"cannot use a {type(key).__name__} as an RSA {kind} key")


def load_public_key(key: PublicKeyLike) -> RSAPublicKey:
    """An RSA public key from PEM/DER (``str`` or ``bytes``), a key object, or the
    public half of a private key (object or PEM). Raises :class:`CryptogramError`
    (``bad_key``)."""
    if isinstance(key, RSAPublicKey):
        return _check_rsa_public(key)
    if isinstance(key, RSAPrivateKey):
        return _check_rsa_public(key.public_key())
    return _load_public_bytes(_key_bytes(key, "public"))


def load_private_key(key: PrivateKeyLike) -> RSAPrivateKey:
    """An RSA private key from unencrypted PEM/DER (``str`` or ``bytes``) or a key
    object. Raises :class:`CryptogramError` (``bad_key``)."""
    if isinstance(key, RSAPrivateKey):
        # the private key knows its size: no public half to build on every decryption
        _check_key_size(key.key_size)
        return key
    return _load_private_bytes(_key_bytes(key, "private"))


def key_fingerprint(key: PublicKeyLike) -> str:
    """SHA-256 (hex) of the key's DER SubjectPublicKeyInfo, as docs/gateway.md §1.8 lists it."""
    der = load_public_key(key).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def generate_key_pair(key_size: int = 2048) -> tuple[bytes, bytes]:
    """A fresh RSA key pair for tests and the sandbox: ``(private PEM, public PEM)``.

    The private key is unencrypted PKCS#8; the public key is SubjectPublicKeyInfo
    (``BEGIN PUBLIC KEY``), the form the gateway publishes.
    """
    if key_size not in SUPPORTED_KEY_SIZES:
        raise CryptogramError("bad_key", f"key_size must be one of {SUPPORTED_KEY_SIZES}")
    private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def _check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise CryptogramError("bad_key_version", "a key version is a non-negative integer")
    return version


class KeyRegistry:
    """Public keys by key version.

    ``KeyRegistry.published()`` holds the gateway's keys 04 and 02. Custom keys (a
    sandbox's own pair, a key fetched from ``/payments/publickey``) are added as PEM,
    DER or key objects. ``default_version`` is the version :func:`build` uses when
    none is given; left as ``None`` it is the highest registered version.
    """

    def __init__(
        self,
        keys: Mapping[int, PublicKeyLike] | None = None,
        default_version: int | None = None,
    ) -> None:
        self._keys: dict[int, RSAPublicKey] = {}
        for version, key in (keys or {}).items():
            self.add(version, key)
        self._default = None if default_version is None else _check_version(default_version)

    @classmethod
    def published(cls) -> KeyRegistry:
        """A new registry with the gateway's published keys, defaulting to version 04."""
        return cls(PUBLISHED_KEYS, default_version=DEFAULT_KEY_VERSION)

    def add(self, version: int, key: PublicKeyLike) -> None:
        """Register (or replace) the key for ``version``."""
        self._keys[_check_version(version)] = load_public_key(key)

    def get(self, version: int) -> RSAPublicKey:
        """The key for ``version``; :class:`UnknownKeyVersionError` if there is none."""
        try:
            return self._keys[version]
        except KeyError:
            raise UnknownKeyVersionError(version) from None

    @property
    def default_version(self) -> int:
        """The version used when :func:`build` is given none."""
        if self._default is not None:
            return self._default
        if not self._keys:
            raise CryptogramError("unknown_key_version", "the key registry is empty")
        return max(self._keys)

    def versions(self) -> tuple[int, ...]:
        """Registered versions, ascending."""
        return tuple(sorted(self._keys))

    def __contains__(self, version: object) -> bool:
        return version in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        listed = ", ".join(f"{v:02d}" for v in self.versions())
        return f"KeyRegistry(versions=[{listed}], default={self._default})"


@lru_cache(maxsize=1)
def _published_registry() -> KeyRegistry:
    # Private so that nobody's ``add`` changes what ``build`` uses by default.
    return KeyRegistry.published()


def _version_for_key(key: RSAPublicKey) -> int:
    fingerprint = key_fingerprint(key)
    for version, published in PUBLISHED_KEY_FINGERPRINTS.items():
        if published == fingerprint:
            return version
    raise CryptogramError(
        "key_version_required",
        "give key_version with a custom key (it goes into the packet header)",
    )


# --------------------------------------------------------------------------- formats


class PacketFormat(StrEnum):
    """The packet layouts (docs/gateway.md §1.1, §1.6)."""

    V01 = "01"
    V02 = "02"
    CVV = "03"
    #: The 2019–2020 Android SDK's CVV-only packet: marker ``02``, CVV layout, OAEP-SHA1.
    CVV_V02 = "02-cvv"
    CLOUDCARD = "cloudcard"
    CLOUDCARD_IOS = "cloudcard-ios"


_PKCS1: Final = "pkcs1"
_OAEP_SHA1: Final = "oaep-sha1"

#: The RSA padding :func:`build` uses for each format (docs/gateway.md §1.1, §1.3).
FORMAT_PADDING: Final[dict[PacketFormat, str]] = {
    PacketFormat.V01: _PKCS1,
    PacketFormat.V02: _OAEP_SHA1,
    PacketFormat.CVV: _PKCS1,
    PacketFormat.CVV_V02: _OAEP_SHA1,
    PacketFormat.CLOUDCARD: _PKCS1,
    PacketFormat.CLOUDCARD_IOS: _PKCS1,
}

#: The paddings :func:`decrypt` tries for each format, in order. A ``03`` packet was
#: OAEP-SHA1 in the 2019–2020 Android SDK and is PKCS#1 v1.5 since (docs/gateway.md
#: §1.6). OAEP goes first: OpenSSL 3 answers a PKCS#1 v1.5 decryption of an OAEP block
#: with random bytes instead of an error (implicit rejection), while an OAEP
#: decryption of a PKCS#1 v1.5 block always fails.
FORMAT_PADDINGS: Final[dict[PacketFormat, tuple[str, ...]]] = {
    **{fmt: (scheme,) for fmt, scheme in FORMAT_PADDING.items()},
    PacketFormat.CVV: (_OAEP_SHA1, _PKCS1),
}

_PADDINGS: Final[dict[str, padding.AsymmetricPadding]] = {
    _PKCS1: padding.PKCS1v15(),
    _OAEP_SHA1: padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA1()),  # noqa: S303 - the SDKs' OAEP is SHA-1
        algorithm=hashes.SHA1(),  # noqa: S303
        label=None,
    ),
}

_FORMAT_ALIASES: Final[dict[str, PacketFormat]] = {
    **{f.value: f for f in PacketFormat},
    "1": PacketFormat.V01,
    "2": PacketFormat.V02,
    "3": PacketFormat.CVV,
    "cvv": PacketFormat.CVV,
    "json": PacketFormat.CLOUDCARD,
    "cloudcard-android": PacketFormat.CLOUDCARD,
}

#: Marker of the header formats.
_MARKERS: Final[dict[PacketFormat, str]] = {
    PacketFormat.V01: "01",
    PacketFormat.V02: "02",
    PacketFormat.CVV: "03",
    PacketFormat.CVV_V02: "02",
}

#: The formats whose packet holds only a CVV.
_CVV_FORMATS: Final = frozenset({PacketFormat.CVV, PacketFormat.CVV_V02})


def _resolve_format(value: PacketFormat | str) -> PacketFormat:
    if isinstance(value, str):
        found = _FORMAT_ALIASES.get(value.strip().lower())
        if found is not None:
            return found
    known = ", ".join(f.value for f in PacketFormat)
    raise CryptogramError("unknown_format", f"unknown packet format; use one of {known}")


# --------------------------------------------------------------------------- headers


@dataclass(frozen=True)
class PacketHeader:
    """What a packet shows without a key.

    ``first_six``, ``last_four`` and the expiry are ``None`` for the CVV-only formats.
    ``exp_year`` has four digits (packets carry two; the century is taken as 20xx).
    ``ciphertext`` is the RSA block as carried, possibly shorter than the modulus.
    """

    format: PacketFormat
    first_six: str | None
    last_four: str | None
    exp_month: int | None
    exp_year: int | None
    key_version: int
    ciphertext: bytes = field(default=b"", repr=False)

    @property
    def padding(self) -> str:
        """``"pkcs1"`` or ``"oaep-sha1"``: the RSA padding current builders of this
        format use (what :func:`build` writes)."""
        return FORMAT_PADDING[self.format]

    @property
    def paddings(self) -> tuple[str, ...]:
        """The paddings this format has been sent with, in the order :func:`decrypt`
        tries them (``03``: OAEP-SHA1, then PKCS#1 v1.5)."""
        return FORMAT_PADDINGS[self.format]

    @property
    def yymm(self) -> str | None:
        """The expiry as the packet carries it (``3012``), or ``None``."""
        if self.exp_month is None or self.exp_year is None:
            return None
        return f"{self.exp_year % 100:02d}{self.exp_month:02d}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able header fields: ``format, first_six, last_four, exp_month,
        exp_year, key_version``."""
        return {
            "format": self.format.value,
            "first_six": self.first_six,
            "last_four": self.last_four,
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "key_version": self.key_version,
        }


@dataclass(frozen=True, repr=False)
class DecryptedPacket:
    """An opened packet. Its ``repr`` shows the card masked and never the CVV.

    ``card_number``, the expiry and ``public_id`` are ``None`` for a CVV-only packet.
    ``padding`` is the RSA padding that opened it.
    """

    header: PacketHeader
    card_number: str | None
    exp_month: int | None
    exp_year: int | None
    cvv: str
    public_id: str | None
    padding: str

    def __repr__(self) -> str:
        masked = None if self.card_number is None else cards.mask_number(self.card_number)
        return (
            f"DecryptedPacket(format={self.header.format.value!r}, card_number={masked!r}, "
            f"exp_month={self.exp_month!r}, exp_year={self.exp_year!r}, cvv='***', "
            f"public_id={self.public_id!r}, key_version={self.header.key_version}, "
            f"padding={self.padding!r})"
        )

    __str__ = __repr__

    @property
    def expiry(self) -> cards.Expiry | None:
        """The expiry as a :class:`checkout_kit.cards.Expiry`, or ``None``."""
        if self.exp_month is None or self.exp_year is None:
            return None
        return cards.Expiry(year=self.exp_year, month=self.exp_month)

    def to_dict(self, reveal: bool = False) -> dict[str, Any]:
        """The header fields; with ``reveal=True`` also ``card_number``, ``cvv`` and
        ``public_id`` in clear (for the sandbox and tests only)."""
        data = self.header.to_dict()
        if reveal:
            data.update(card_number=self.card_number, cvv=self.cvv, public_id=self.public_id)
        return data


# --------------------------------------------------------------------------- RSA


def _encrypt(key: RSAPublicKey, message: bytes, scheme: str) -> bytes:
    try:
        return key.encrypt(message, _PADDINGS[scheme])
    except ValueError as exc:  # cryptography's answer to a message longer than the key takes
        raise CryptogramError(
            "plaintext_too_long", f"the packet content is too long for a {key.key_size}-bit key"
        ) from exc


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


# --------------------------------------------------------------------------- build

#: Card-number lengths a packet may carry; :func:`build` and :func:`decrypt` both use
#: them (the shortest Maestro to the longest number ISO/IEC 7812 allows).
PAN_LENGTHS: Final = range(12, 20)
#: A CVV-only packet's content: three or four digits.
_CVV_ONLY = re.compile(r"[0-9]{3,4}")
#: The CVV inside a card packet: as typed, up to four digits, possibly none.
_TYPED_CVV = re.compile(r"[0-9]{0,4}")


def _normalize_pan(card_number: object) -> str:
    if not isinstance(card_number, str):
        raise CardError({"cardNumber": "CardNumber_Invalid"}, "card number must be a str")
    if not card_number.strip():
        raise CardError({"cardNumber": "CardNumber_Empty"}, "card number is empty")
    pan = cards.normalize_number(card_number)
    if len(pan) not in PAN_LENGTHS:
        raise CardError(
            {"cardNumber": "CardNumber_Invalid"},
            f"card number must have {PAN_LENGTHS.start}-{PAN_LENGTHS.stop - 1} digits",
        )
    return pan


def _expiry_yymm(exp: str | None, month: str | int | None, year: str | int | None) -> str:
    if exp is not None:
        if month is not None or year is not None:
            raise TypeError("give either exp or exp_month/exp_year, not both")
        return cards.parse_expiry(exp).yymm()
    if month is None and year is None:
        raise CardError({"expDateMonthYear": "ExpDateMonthYear_Empty"}, "expiry is missing")
    if month is None:
        raise CardError({"expDateMonth": "ExpDateMonth_Empty"}, "expiry month is missing")
    if year is None:
        raise CardError({"expDateYear": "ExpDateYear_Empty"}, "expiry year is missing")
    return cards.expiry_from_parts(month, year).yymm()


def _resolve_key(
    key: PublicKeyLike | None, key_version: int | None, registry: KeyRegistry | None
) -> tuple[RSAPublicKey, int]:
    if key is not None:
        public = load_public_key(key)
        version = _version_for_key(public) if key_version is None else key_version
        return public, _check_version(version)
    reg = _published_registry() if registry is None else registry
    version = reg.default_version if key_version is None else key_version
    return reg.get(version), version


def _header_version(version: int) -> str:
    if version > 99:
        raise CryptogramError(
            "bad_key_version", "header formats carry a two-digit key version (0-99)"
        )
    return f"{version:02d}"


def _json_android(pan: str, yy: str, mm: str, version: int, value: str) -> str:
    text = str(version)
    # Android renders the version padded to an even number of digits: 4 -> "04".
    doc = {
        "Type": "CloudCard",
        "BrowserInfoBase64": "",
        "CardInfo": {
            "FirstSixDigits": pan[:6],
            "LastFourDigits": pan[-4:],
            "ExpDateYear": yy,
            "ExpDateMonth": mm,
        },
        "KeyVersion": "0" + text if len(text) % 2 else text,
        "Format": 1,
        "Value": value,
    }
    # Gson with HTML escaping disabled: compact, nothing escaped beyond JSON's rules.
    return jsoncodec.dumps(doc)


def _json_ios(pan: str, yy: str, mm: str, version: int, value: str) -> str:
    doc = {
        "Type": "CloudCard",
        "CardInfo": {
            "FirstSixDigits": pan[:6],
            "LastFourDigits": pan[-4:],
            "ExpDateMonth": mm,
            "ExpDateYear": yy,
        },
        "KeyVersion": str(version),
        "Value": value,
        "Format": 1,
    }
    # Foundation's JSONEncoder escapes "/" as "\/" unless told not to, and the SDK
    # does not tell it; base64 values contain "/".
    return jsoncodec.dumps(doc).replace("/", "\\/")


_JSON_WRITERS: Final[dict[PacketFormat, Callable[[str, str, str, int, str], str]]] = {
    PacketFormat.CLOUDCARD: _json_android,
    PacketFormat.CLOUDCARD_IOS: _json_ios,
}


def build(
    card_number: str,
    exp: str | None = None,
    cvv: str = "",
    public_id: str = "",
    *,
    exp_month: str | int | None = None,
    exp_year: str | int | None = None,
    format: PacketFormat | str = PacketFormat.V01,
    key: PublicKeyLike | None = None,
    key_version: int | None = None,
    registry: KeyRegistry | None = None,
    check_luhn: bool = True,
) -> str:
    """Build a card packet the way the official SDKs do.

    ``exp`` is a combined expiry (``MM/YY``, ``MM/YYYY``, ``MMYY`` or checkout.js's
    ``expDateMonthYear`` forms); alternatively give ``exp_month`` and ``exp_year``.
    ``format`` is ``"01"`` (default), ``"02"``, ``"03"`` or ``"02-cvv"`` (CVV only, see
    :func:`build_cvv`), ``"cloudcard"`` or ``"cloudcard-ios"``.

    The key is ``key`` (PEM/DER/key object; ``key_version`` is then required unless it
    is a published key), else ``registry.get(key_version)``; by default the published
    key 04. The padding's randomness comes from OpenSSL, so two packets of one card
    differ; tests check them by decrypting. ``check_luhn=False`` lets the sandbox
    build packets for deliberately bad numbers.

    Raises :class:`CardError` for a bad number, expiry or CVV,
    :class:`UnknownKeyVersionError` for an unregistered version and
    :class:`CryptogramError` for other problems. Messages never show the card.
    """
    fmt = _resolve_format(format)
    if fmt in _CVV_FORMATS:
        return _build_cvv(cvv, fmt, key, key_version, registry)
    pan = _normalize_pan(card_number)
    # pan is already normalised to digits: luhn_valid would normalise it again.
    if check_luhn and not cards.luhn_digits_valid(pan):
        raise CardError({"cardNumber": "CardNumber_Invalid"}, "card number fails the Luhn check")
    yymm = _expiry_yymm(exp, exp_month, exp_year)
    # The SDKs send the CVV as typed, possibly empty (Uzcard and Humo waive it).
    if not (isinstance(cvv, str) and _TYPED_CVV.fullmatch(cvv)):
        raise CardError({"cvv": "Cvv_Invalid"}, "CVV must be up to four digits")
    # "@" separates the packet's fields, and the legacy script's CVV may hold one: only a
    # Public ID without it (as every real one is) can be told apart when opened.
    if not (isinstance(public_id, str) and public_id.isascii() and public_id.isprintable()
            and "@" not in public_id):
        raise CryptogramError("bad_public_id", "public_id must be printable ASCII without '@'")
    public, version = _resolve_key(key, key_version, registry)
    message = f"{pan}@{yymm}@{cvv}@{public_id}".encode("ascii")
    value = _b64(_encrypt(public, message, FORMAT_PADDING[fmt]))
    marker = _MARKERS.get(fmt)
    if marker is not None:
        return f"{marker}{pan[:6]}{pan[-4:]}{yymm}{_header_version(version)}{value}"
    text = _JSON_WRITERS[fmt](pan, yymm[:2], yymm[2:], version, value)
    return _b64(text.encode("utf-8"))


def build_cvv(
    cvv: str,
    *,
    key: PublicKeyLike | None = None,
    key_version: int | None = None,
    registry: KeyRegistry | None = None,
) -> str:
    """Build the CVV-only packet ``03`` + key version + base64(RSA-PKCS#1(CVV)), used
    to re-enter the CVV of a saved card. Raises :class:`CardError` for a CVV that is
    not 3 or 4 digits."""
    return _build_cvv(cvv, PacketFormat.CVV, key, key_version, registry)


def _build_cvv(
    cvv: object,
    fmt: PacketFormat,
    key: PublicKeyLike | None,
    key_version: int | None,
    registry: KeyRegistry | None,
) -> str:
    if not isinstance(cvv, str) or cvv == "":
        raise CardError({"cvv": "Cvv_Empty"}, "CVV is missing")
    if not _CVV_ONLY.fullmatch(cvv):
        raise CardError({"cvv": "Cvv_Invalid"}, "CVV must be 3 or 4 digits")
    public, version = _resolve_key(key, key_version, registry)
    ciphertext = _encrypt(public, cvv.encode("ascii"), FORMAT_PADDING[fmt])
    return f"{_MARKERS[fmt]}{_header_version(version)}{_b64(ciphertext)}"


# --------------------------------------------------------------------------- parse

_DIGITS = re.compile(r"[0-9]+")
_B64_TEXT = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_CLASSIC_MIN = 18 + 4
_CVV_MIN = 4 + 4


def _malformed(code: str, message: str) -> MalformedPacketError:
    return MalformedPacketError(code, message)


def _decode_ciphertext(text: str) -> bytes:
    if not _B64_TEXT.fullmatch(text):
        raise _malformed("bad_base64", "the ciphertext is not standard base64")
    if len(text) % 4:
        raise _malformed("bad_length", "the ciphertext's base64 length is not a multiple of 4")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise _malformed("bad_base64", "the ciphertext is not standard base64") from exc
    if len(data) not in _CIPHERTEXT_SIZES:
        raise _malformed(
            "bad_length", f"a {len(data)}-byte ciphertext fits no supported RSA key size"
        )
    return data


def _month(value: str) -> int:
    month = int(value)
    if not 1 <= month <= 12:
        raise _malformed("bad_expiry", f"impossible expiry month {value}")
    return month


def _parse_classic(text: str, fmt: PacketFormat) -> PacketHeader:
    if len(text) < _CLASSIC_MIN:
        raise _malformed("bad_length", f"a {fmt.value} packet is too short ({len(text)} chars)")
    head = text[2:18]
    if not (head.isascii() and head.isdigit()):
        raise _malformed("bad_header", f"the {fmt.value} header must be 16 digits after the marker")
    # head: first six [0:6], last four [6:10], YY [10:12], MM [12:14], version [14:16]
    month = _month(head[12:14])
    return PacketHeader(
        format=fmt,
        first_six=head[0:6],
        last_four=head[6:10],
        exp_month=month,
        exp_year=2000 + int(head[10:12]),
        key_version=int(head[14:16]),
        ciphertext=_decode_ciphertext(text[18:]),
    )


def _parse_cvv(text: str, fmt: PacketFormat) -> PacketHeader:
    marker = text[:2]
    if len(text) < _CVV_MIN:
        raise _malformed("bad_length", f"a {marker} CVV packet is too short ({len(text)} chars)")
    version = text[2:4]
    if not (version.isascii() and version.isdigit()):
        raise _malformed("bad_header", f"the {marker} CVV header's key version must be 2 digits")
    return PacketHeader(fmt, None, None, None, None, int(version), _decode_ciphertext(text[4:]))


def _parse_02(text: str, fmt: PacketFormat) -> PacketHeader:
    # Marker 02 heads a card packet (16 header digits) or, from the 2019-2020 Android
    # SDK, a CVV packet (2 header digits). base64 comes in blocks of four characters,
    # so a card packet's length is 2 more than a multiple of 4 and a CVV packet's is one.
    if len(text) % 4 == 0:
        return _parse_cvv(text, PacketFormat.CVV_V02)
    return _parse_classic(text, fmt)


def _json_member(obj: Mapping[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _malformed("bad_json", f"CloudCard member {name} is missing or not a {kind.__name__}")
    return value


def _json_digits(info: Mapping[str, Any], name: str, lengths: tuple[int, ...]) -> str:
    value = _json_member(info, name, str)
    if not (len(value) in lengths and value.isascii() and value.isdigit()):
        raise _malformed(
            "bad_header", f"CardInfo.{name} must be {' or '.join(map(str, lengths))} digits"
        )
    return str(value)


def _json_key_version(obj: Mapping[str, Any]) -> int:
    value = obj.get("KeyVersion")
    # Android sends "04", iOS "4"; a number is tolerated too.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise _malformed("bad_header", "CloudCard KeyVersion must be a non-negative integer")


def _parse_json(text: str) -> PacketHeader:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise _malformed("bad_base64", "the packet is not standard base64") from exc
    try:
        obj = jsoncodec.loads(raw)
    except JSONCodecError as exc:
        raise _malformed("bad_json", "the packet's base64 does not hold UTF-8 JSON") from exc
    if not isinstance(obj, dict):
        raise _malformed("bad_json", "the packet's JSON is not an object")
    if obj.get("Type") != "CloudCard":
        raise _malformed("unknown_marker", "the JSON packet's Type is not CloudCard")
    fmt_number = obj.get("Format")
    if type(fmt_number) is not int or fmt_number != 1:
        raise _malformed("unknown_marker", "the CloudCard packet's Format is not 1")
    info = _json_member(obj, "CardInfo", dict)
    first_six = _json_digits(info, "FirstSixDigits", (6,))
    last_four = _json_digits(info, "LastFourDigits", (4,))
    month = _month(_json_digits(info, "ExpDateMonth", (2,)))
    year_text = _json_digits(info, "ExpDateYear", (2, 4))
    year = int(year_text) + (2000 if len(year_text) == 2 else 0)
    version = _json_key_version(obj)
    value = _json_member(obj, "Value", str)
    fmt = PacketFormat.CLOUDCARD if "BrowserInfoBase64" in obj else PacketFormat.CLOUDCARD_IOS
    return PacketHeader(fmt, first_six, last_four, month, year, version, _decode_ciphertext(value))


_Parser: TypeAlias = Callable[[str, PacketFormat], PacketHeader]
#: Marker -> (parser, the format it reads by default).
_MARKER_PARSERS: Final[dict[str, tuple[_Parser, PacketFormat]]] = {
    "01": (_parse_classic, PacketFormat.V01),
    "02": (_parse_02, PacketFormat.V02),
    "03": (_parse_cvv, PacketFormat.CVV),
}


def parse(packet: str) -> PacketHeader:
    """Read a packet's clear header (no key needed).

    Accepts ``01``, ``02``, ``03`` and both CloudCard JSON flavours, and ciphertexts a
    byte or two short (JavaScript encoders drop leading zero bytes). Surrounding
    whitespace is ignored. Raises :class:`MalformedPacketError` whose ``code`` is one
    of ``empty``, ``bad_length``, ``bad_base64``, ``unknown_marker``, ``bad_header``,
    ``bad_expiry``, ``bad_json``.
    """
    if not isinstance(packet, str):
        raise TypeError(f"a packet is a str, not {type(packet).__name__}")
    text = packet.strip()
    if not text:
        raise _malformed("empty", "the packet is empty")
    marker = text[:2]
    found = _MARKER_PARSERS.get(marker)
    if found is not None:
        parser, fmt = found
        return parser(text, fmt)
    # base64 of any JSON object starts with "e" (from "{").
    if text[0] == "e":
        return _parse_json(text)
    if text[0] == "{":
        raise _malformed(
            "unknown_marker", "raw JSON is a wallet token, not a card packet (CloudCard is base64)"
        )
    shown = marker if marker.isascii() and marker.isprintable() else "?"
    raise _malformed("unknown_marker", f"unknown packet marker {shown!r}")


# --------------------------------------------------------------------------- decrypt

# PAN@YYMM@CVV@PublicId. The CVV runs to the last "@" (a Public ID has none), since the
# legacy script encrypts it as typed, "@" included; _cvv_text then judges it.
_CARD_PLAINTEXT = re.compile(
    rb"([0-9]{%d,%d})@([0-9]{2})([0-9]{2})@([\x20-\x7e\x80-\xff]*)@([\x20-\x3f\x41-\x7e]*)"
    % (PAN_LENGTHS.start, PAN_LENGTHS.stop - 1)
)
_LEGACY_CVV_RULE = cards.LEGACY.cvv_patterns
assert _LEGACY_CVV_RULE is not None
#: What the legacy script lets through as a CVV (unless the card is an Amex, whose
#: four digits the SDK rules already accept): text holding three consecutive digits.
_LEGACY_CVV = re.compile(_LEGACY_CVV_RULE.other)


def _cvv_text(raw: bytes, sdk_rule: re.Pattern[str]) -> str | None:
    """The CVV a packet carries, or ``None`` when no SDK or script could have sent it:
    the SDKs' ``sdk_rule`` (digits), or the legacy script's looser rule
    (docs/gateway.md §2.5: ``a123b`` and ``12345`` pass it, and it encrypts them as
    typed, docs/gateway.md §1.2, §7.4). Its text is UTF-8, as the script writes it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if sdk_rule.fullmatch(text) or (_LEGACY_CVV.search(text) and text.isprintable()):
        return text
    return None


def _private_for(
    header: PacketHeader,
    private_key: PrivateKeyLike | Mapping[int, PrivateKeyLike],
) -> RSAPrivateKey:
    if isinstance(private_key, Mapping):
        try:
            chosen = private_key[header.key_version]
        except KeyError:
            raise UnknownKeyVersionError(header.key_version) from None
        return load_private_key(chosen)
    return load_private_key(private_key)


def _not_a_card(what: str) -> DecryptionError:
    # Recent OpenSSL answers a bad PKCS#1 v1.5 block with random bytes instead of an
    # error ("implicit rejection"), so a wrong key usually shows up here.
    return DecryptionError(
        "not_a_card_packet", f"the decrypted content is not {what} (wrong key or corrupted packet)"
    )


def _open(key: RSAPrivateKey, ciphertext: bytes, schemes: tuple[str, ...]) -> tuple[bytes, str]:
    """The plaintext under the first of ``schemes`` that opens ``ciphertext``, and that scheme."""
    for scheme in schemes:
        try:
            return key.decrypt(ciphertext, _PADDINGS[scheme]), scheme
        except ValueError:
            continue
    raise DecryptionError("decryption_failed", "the private key does not open this packet")


def decrypt(
    packet: str,
    private_key: PrivateKeyLike | Mapping[int, PrivateKeyLike],
) -> DecryptedPacket:
    """Open a packet with the matching private key.

    ``private_key`` is one key (PEM/DER or object) or a mapping ``{key_version: key}``
    from which the header's version is picked (:class:`UnknownKeyVersionError` if it
    is missing). The paddings are the format's (:attr:`PacketHeader.paddings`: PKCS#1
    v1.5, OAEP-SHA1 for ``02``, both for ``03`` with OAEP tried first); short
    ciphertexts are left-padded with zero bytes. The CVV is what an SDK or the legacy
    script can send (docs/gateway.md §2.5): digits, or the legacy script's text
    holding three consecutive digits, as typed.

    Raises :class:`MalformedPacketError` (see :func:`parse`) and
    :class:`DecryptionError` with ``code`` ``ciphertext_too_long``,
    ``decryption_failed``, ``not_a_card_packet`` or ``header_mismatch``.
    """
    header = parse(packet)
    key = _private_for(header, private_key)
    k = (key.key_size + 7) // 8
    ciphertext = header.ciphertext
    if len(ciphertext) > k:
        raise DecryptionError(
            "ciphertext_too_long",
            f"a {len(ciphertext)}-byte ciphertext cannot come from a {key.key_size}-bit key",
        )
    if len(ciphertext) < k:
        ciphertext = ciphertext.rjust(k, b"\x00")
    plain, scheme = _open(key, ciphertext, header.paddings)
    if header.format in _CVV_FORMATS:
        only = _cvv_text(plain, _CVV_ONLY)
        if only is None:
            raise _not_a_card("a CVV")
        return DecryptedPacket(header, None, None, None, only, None, scheme)
    match = _CARD_PLAINTEXT.fullmatch(plain)
    if match is None:
        raise _not_a_card("PAN@YYMM@CVV@PublicId")
    pan_b, yy_b, mm_b, cvv_b, public_b = match.groups()
    cvv = _cvv_text(cvv_b, _TYPED_CVV)
    if cvv is None:
        raise _not_a_card("PAN@YYMM@CVV@PublicId with a CVV as typed")
    pan = pan_b.decode("ascii")
    month = int(mm_b)
    if not 1 <= month <= 12:
        raise _not_a_card("PAN@YYMM@CVV@PublicId with a real month")
    yy = int(yy_b)
    if pan[:6] != header.first_six or pan[-4:] != header.last_four:
        raise DecryptionError(
            "header_mismatch", "the header's card digits do not match the encrypted card"
        )
    if header.exp_year is None or (month, yy) != (header.exp_month, header.exp_year % 100):
        raise DecryptionError(
            "header_mismatch", "the header's expiry does not match the encrypted expiry"
        )
    return DecryptedPacket(
        header=header,
        card_number=pan,
        exp_month=month,
        exp_year=header.exp_year,
        cvv=cvv,
        public_id=public_b.decode("ascii"),
        padding=scheme,
    )
