"""Round trips between checkout_kit.cryptogram and the ``openssl pkeyutl`` command line.

Each packet format is opened by openssl under the padding its marker implies, and
ciphertexts made by openssl, wrapped into packets, are opened by ``decrypt``.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from checkout_kit import cryptogram
from checkout_kit.cryptogram import PacketFormat, build, decrypt, parse

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl binary is missing"),
]

PID = "test_api_00000000000000000000002"
VECTORS = json.loads((Path(__file__).parent / "vectors" / "packets.json").read_text("utf-8"))

PKCS1 = ["-pkeyopt", "rsa_padding_mode:pkcs1"]
OAEP_SHA1 = [
    "-pkeyopt", "rsa_padding_mode:oaep",
    "-pkeyopt", "rsa_oaep_md:sha1",
    "-pkeyopt", "rsa_mgf1_md:sha1",
]  # fmt: skip
OPTIONS = {"pkcs1": PKCS1, "oaep-sha1": OAEP_SHA1}
CVV_FORMATS = (PacketFormat.CVV, PacketFormat.CVV_V02)
#: Every (format, padding) the SDKs have sent: each format's current padding, and the
#: 2019-2020 Android SDK's "03" under OAEP-SHA1 (docs/gateway.md §1.6).
LAYOUTS = [(fmt, cryptogram.FORMAT_PADDING[fmt]) for fmt in PacketFormat] + [
    (PacketFormat.CVV, "oaep-sha1")
]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keys")
    private_pem, public_pem = cryptogram.generate_key_pair(2048)
    (folder / "private.pem").write_bytes(private_pem)
    (folder / "public.pem").write_bytes(public_pem)
    return folder / "private.pem", folder / "public.pem"


def pkeyutl(*args: str, data: bytes) -> bytes:
    done = subprocess.run(
        ["openssl", "pkeyutl", *args], input=data, capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def openssl_decrypt(key: Path, ciphertext: bytes, scheme: str) -> bytes:
    # Left-pad as every decoder must (JavaScript encoders drop leading zero bytes).
    block = ciphertext.rjust(256, b"\x00")
    return pkeyutl("-decrypt", "-inkey", str(key), *OPTIONS[scheme], data=block)


def openssl_encrypt(public: Path, plaintext: bytes, scheme: str) -> bytes:
    return pkeyutl("-encrypt", "-pubin", "-inkey", str(public), *OPTIONS[scheme], data=plaintext)


def wrap(fmt: PacketFormat, ciphertext: bytes, card: dict[str, Any], version: int) -> str:
    """Make a packet around a foreign ciphertext, laid out as docs/gateway.md §1.5-§1.7 say."""
    b64 = base64.b64encode(ciphertext).decode()
    pan, yymm = card["number"], card["yymm"]
    if fmt in CVV_FORMATS:
        return f"{fmt.value[:2]}{version:02d}{b64}"
    if fmt in (PacketFormat.V01, PacketFormat.V02):
        return f"{fmt.value}{pan[:6]}{pan[-4:]}{yymm}{version:02d}{b64}"
    doc: dict[str, Any] = {
        "Type": "CloudCard",
        "CardInfo": {
            "FirstSixDigits": pan[:6],
            "LastFourDigits": pan[-4:],
            "ExpDateYear": yymm[:2],
            "ExpDateMonth": yymm[2:],
        },
        "KeyVersion": str(version),
        "Format": 1,
        "Value": b64,
    }
    if fmt is PacketFormat.CLOUDCARD:
        doc["BrowserInfoBase64"] = ""
    return base64.b64encode(json.dumps(doc).encode()).decode()


@pytest.mark.parametrize("fmt", list(PacketFormat))
def test_openssl_opens_our_packets(keys: tuple[Path, Path], fmt: PacketFormat) -> None:
    private, public = keys
    if fmt in CVV_FORMATS:
        packet = build("", cvv="4321", format=fmt, key=public.read_bytes(), key_version=9)
        expected = b"4321"
    else:
        packet = build(
            "2200000000000004", "07/31", "321", PID, format=fmt,
            key=public.read_bytes(), key_version=9,
        )  # fmt: skip
        expected = f"2200000000000004@3107@321@{PID}".encode()
    ciphertext = parse(packet).ciphertext
    assert len(ciphertext) == 256
    assert openssl_decrypt(private, ciphertext, cryptogram.FORMAT_PADDING[fmt]) == expected


@pytest.mark.parametrize(("fmt", "scheme"), LAYOUTS, ids=[f"{f.value}-{s}" for f, s in LAYOUTS])
def test_we_open_openssl_ciphertexts(
    keys: tuple[Path, Path], fmt: PacketFormat, scheme: str
) -> None:
    private, public = keys
    card = {"number": "5555555555554444", "yymm": "2902"}
    plaintext = b"777" if fmt in CVV_FORMATS else f"5555555555554444@2902@@{PID}".encode()
    ciphertext = openssl_encrypt(public, plaintext, scheme)
    opened = decrypt(wrap(fmt, ciphertext, card, 3), {3: private.read_bytes()})
    assert (opened.header.format, opened.padding) == (fmt, scheme)
    if fmt in CVV_FORMATS:
        assert opened.cvv == "777"
        return
    assert (opened.card_number, opened.exp_month, opened.exp_year, opened.cvv) == (
        "5555555555554444",
        2,
        2029,
        "",
    )
    assert opened.public_id == PID
    # The same ciphertext as a JavaScript encoder would send it when it starts with
    # zero bytes: drop them and the packet must still open.
    stripped = ciphertext.lstrip(b"\x00")
    if len(stripped) < len(ciphertext):
        short = decrypt(wrap(fmt, stripped, card, 3), private.read_bytes())
        # The header keeps the block as carried, so only the ciphertext may differ.
        assert short.header.ciphertext == stripped
        assert replace(short, header=replace(short.header, ciphertext=ciphertext)) == opened


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS["packets"] if "plaintext" in v],
    ids=lambda v: v["id"],
)
def test_openssl_opens_the_vectors(tmp_path: Path, vector: dict[str, Any]) -> None:
    key = tmp_path / "vectors.pem"
    key.write_text(VECTORS["test_private_key_pem"])
    header = parse(vector["packet"])
    plain = vector["plaintext"]
    if header.format in CVV_FORMATS:
        expected = plain["cvv"].encode()
    else:
        yymm = f"{plain['exp_year'] % 100:02d}{plain['exp_month']:02d}"
        expected = f"{plain['card_number']}@{yymm}@{plain['cvv']}@{plain['public_id']}".encode()
    assert openssl_decrypt(key, header.ciphertext, plain["padding"]) == expected
