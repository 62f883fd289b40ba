#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora from the repository's fixtures:
corpus/<target>/ (git-ignored; the fuzzer adds what it finds there).

    python3 host/fuzz/seed.py
"""
import hashlib
import json
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


attacks = json.loads((ROOT / "fixtures/security/egress_attacks.json").read_text())
# url_decision: 17 bytes of address choice, then the URL.
addresses = [
    bytes([0, 93, 184, 216, 34]) + bytes(12),  # a public v4
    bytes([0, 169, 254, 169, 254]) + bytes(12),  # metadata
    bytes([1]) + bytes.fromhex("0064ff9b0001000000000000a9fea9fe"),  # local-use NAT64
    bytes([1]) + bytes.fromhex("0064ff9b00010a0a000a0a0aa9fea9fe"),  # local-use NAT64 /96 under 64:ff9b:1:a0a:a:a0a::
    bytes([1]) + bytes(15) + b"\x01",  # ::1
]
for case in attacks["cases"]:
    for address in addresses:
        put("url_decision", address + case["url"].encode())
    put("approval_input", json.dumps({"url": case["url"]}))
for address in addresses:
    put("addr_classify", (address[1:] + bytes(16))[:16])

for grant in attacks["grants"].values():
    put("grant_parse", grant if isinstance(grant, str) else json.dumps(grant))
for toml_file in (ROOT / "fixtures/configs").rglob("*.toml"):
    text = toml_file.read_text()
    put("grant_parse", text)
    put("config_parse", text)

guests = tomllib.loads((ROOT / "fixtures/runtime/guests.toml").read_text())
for guest in guests.get("guest", []):
    for case in guest.get("case", []):
        put("approval_input", case["input"])
put("approval_input", '{"url": "a", "url": "b"}')

put("journal_decode", json.dumps({"size": 3, "root": "00" * 32, "time": "2026-12-01T00:00:00Z",
                                  "key_id": "0" * 16, "signature": "00" * 64}))
entry = {"seq": 1, "time": "t", "kind": "invocation", "payload": "{}",
         "prev_hash": "0" * 64, "hash": "0" * 64}
put("journal_decode", json.dumps([entry]))
print(f"seeded {sum(1 for _ in CORPUS.rglob('*') if _.is_file())} files under {CORPUS}")
