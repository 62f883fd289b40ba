"""Signs components in a registry on loopback the way the supply-chain
tests need, with real tools: keys, certificates, signatures and RFC 3161
timestamps are made by `openssl` (Debian's); the signature artifacts are
stored in the registry in cosign's and Sigstore's layouts over the
distribution API (`requests`, installed with oras).

    sign.py keygen PREFIX
        PREFIX.key / PREFIX.pub: an ECDSA P-256 key pair, as `cosign
        generate-key-pair` makes (PEM).
    sign.py cosign REGISTRY REPO DIGEST KEY
        A cosign key-pair signature of manifest DIGEST: a simple-signing
        payload under the tag sha256-HEX.sig, signed in its annotation.
    sign.py bundle-key REGISTRY REPO DIGEST KEY PKI
        A Sigstore bundle (message signature over the manifest's bytes, the
        key as its verification material, an RFC 3161 timestamp from the
        timestamp authority in PKI) attached as a referrer.
    sign.py bundle-keyless REGISTRY REPO DIGEST PKI IDENTITY ISSUER
        A keyless Sigstore bundle: a certificate for IDENTITY with the OIDC
        ISSUER extension from a CA in PKI (made on first use), and an RFC
        3161 timestamp of the signature from a timestamp authority in PKI;
        PKI/trusted_root.json lists both.
    sign.py copy-tag REGISTRY REPO SOURCE TARGET
        Puts the manifest tagged SOURCE under the tag TARGET too (a
        signature of one digest offered for another).
    sign.py root-with-log PKI
        PKI/trusted_root_with_log.json: PKI's root, also listing a
        transparency log (keyed with the CA's key), so bundles must carry
        a log entry.
"""

import base64
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import requests

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True).stdout


def b64(data):
    return base64.b64encode(data).decode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def url(registry, repo, kind, ref):
    return f"http://{registry}/v2/{repo}/{kind}/{ref}"


def push_blob(registry, repo, data):
    digest = sha256(data)
    start = requests.post(f"http://{registry}/v2/{repo}/blobs/uploads/", timeout=30)
    start.raise_for_status()
    location = start.headers["Location"]
    if location.startswith("/"):
        location = f"http://{registry}{location}"
    sep = "&" if "?" in location else "?"
    done = requests.put(f"{location}{sep}digest={digest}", data=data,
                        headers={"Content-Type": "application/octet-stream"}, timeout=30)
    done.raise_for_status()
    return {"digest": digest, "size": len(data)}


def push_manifest(registry, repo, ref, manifest, media_type):
    body = json.dumps(manifest, separators=(",", ":")).encode()
    put = requests.put(url(registry, repo, "manifests", ref), data=body,
                       headers={"Content-Type": media_type}, timeout=30)
    put.raise_for_status()
    return {"mediaType": media_type, "digest": sha256(body), "size": len(body)}


def manifest_bytes(registry, repo, digest):
    got = requests.get(url(registry, repo, "manifests", digest),
                       headers={"Accept": MANIFEST}, timeout=30)
    got.raise_for_status()
    assert sha256(got.content) == digest, "the registry answered another manifest"
    return got.content


def sign(key, data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return openssl("dgst", "-sha256", "-sign", key, f.name)


def keygen(prefix):
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", prefix + ".key")
    openssl("ec", "-in", prefix + ".key", "-pubout", "-out", prefix + ".pub")


def cosign(registry, repo, digest, key):
    hex_digest = digest.split(":", 1)[1]
    payload = json.dumps({
        "critical": {
            "identity": {"docker-reference": f"{registry}/{repo}"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }, separators=(",", ":")).encode()
    layer = push_blob(registry, repo, payload)
    layer.update({"mediaType": SIMPLE_SIGNING,
                  "annotations": {"dev.cosignproject.cosign/signature": b64(sign(key, payload))}})
    config = push_blob(registry, repo, b"{}")
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    push_manifest(registry, repo, f"sha256-{hex_digest}.sig",
                  {"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [layer]},
                  MANIFEST)


def attach_bundle(registry, repo, digest, bundle):
    """Stores BUNDLE as a referrer of DIGEST, listed under the fallback tag."""
    hex_digest = digest.split(":", 1)[1]
    subject_bytes = manifest_bytes(registry, repo, digest)
    layer = push_blob(registry, repo, json.dumps(bundle).encode())
    layer["mediaType"] = BUNDLE
    config = push_blob(registry, repo, b"{}")
    config["mediaType"] = EMPTY
    referrer = {"schemaVersion": 2, "mediaType": MANIFEST, "artifactType": BUNDLE,
                "config": config, "layers": [layer],
                "subject": {"mediaType": MANIFEST, "digest": digest, "size": len(subject_bytes)}}
    body = json.dumps(referrer, separators=(",", ":")).encode()
    descriptor = push_manifest(registry, repo, sha256(body), referrer, MANIFEST)
    descriptor["artifactType"] = BUNDLE
    tag = f"sha256-{hex_digest}"
    existing = requests.get(url(registry, repo, "manifests", tag), headers={"Accept": INDEX}, timeout=30)
    manifests = existing.json().get("manifests", []) if existing.ok else []
    push_manifest(registry, repo, tag,
                  {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests + [descriptor]},
                  INDEX)


def message_signature(data, signature):
    return {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(hashlib.sha256(data).digest())},
            "signature": b64(signature)}


def timestamp(directory, signature):
    """An RFC 3161 timestamp token over SIGNATURE from PKI's authority."""
    work = tempfile.mkdtemp(dir=directory)
    sig_file = os.path.join(work, "sig")
    with open(sig_file, "wb") as f:
        f.write(signature)
    query = os.path.join(work, "q.tsq")
    openssl("ts", "-query", "-data", sig_file, "-sha256", "-cert", "-out", query)
    token = os.path.join(work, "token.der")
    openssl("ts", "-reply", "-config", os.path.join(directory, "ts.cnf"), "-queryfile", query,
            "-signer", os.path.join(directory, "tsa.pem"), "-inkey", os.path.join(directory, "tsa.key"),
            "-token_out", "-out", token)
    with open(token, "rb") as f:
        return {"rfc3161Timestamps": [{"signedTimestamp": b64(f.read())}]}


def bundle_key(registry, repo, digest, key, directory):
    pki(directory)
    data = manifest_bytes(registry, repo, digest)
    signature = sign(key, data)
    bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
              "verificationMaterial": {"publicKey": {"hint": "airlock-test"}, "tlogEntries": [],
                                       "timestampVerificationData": timestamp(directory, signature)},
              "messageSignature": message_signature(data, signature)}
    attach_bundle(registry, repo, digest, bundle)


def der(pem_path):
    return openssl("x509", "-in", pem_path, "-outform", "DER")


def pki(directory):
    """A root CA and a timestamp authority it certifies, made once."""
    root = os.path.join(directory, "root")
    if not os.path.exists(root + ".pem"):
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", root + ".key")
        openssl("req", "-x509", "-new", "-key", root + ".key", "-out", root + ".pem", "-days", "30",
                "-subj", "/O=airlock-test/CN=test root",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        tsa = os.path.join(directory, "tsa")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", tsa + ".key")
        openssl("req", "-new", "-key", tsa + ".key", "-out", tsa + ".csr", "-subj", "/O=airlock-test/CN=test tsa")
        ext = os.path.join(directory, "tsa.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=critical,timeStamping\n")
        openssl("x509", "-req", "-in", tsa + ".csr", "-CA", root + ".pem", "-CAkey", root + ".key",
                "-CAcreateserial", "-out", tsa + ".pem", "-days", "30", "-extfile", ext)
        with open(os.path.join(directory, "ts.cnf"), "w") as f:
            f.write("[ tsa ]\ndefault_tsa = tsa_config\n[ tsa_config ]\n"
                    f"serial = {directory}/tsaserial\n"
                    "signer_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256\n"
                    "accuracy = secs:1\nordering = no\ntsa_name = no\ness_cert_id_chain = no\n"
                    "ess_cert_id_alg = sha256\n")
        with open(os.path.join(directory, "tsaserial"), "w") as f:
            f.write("01\n")
        start = "2020-01-01T00:00:00Z"
        trusted_root = {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [], "ctlogs": [],
            "certificateAuthorities": [{
                "subject": {"organization": "airlock-test", "commonName": "test root"},
                "uri": "https://ca.airlock.test",
                "certChain": {"certificates": [{"rawBytes": b64(der(root + ".pem"))}]},
                "validFor": {"start": start}}],
            "timestampAuthorities": [{
                "subject": {"organization": "airlock-test", "commonName": "test tsa"},
                "uri": "https://tsa.airlock.test",
                "certChain": {"certificates": [{"rawBytes": b64(der(tsa + ".pem"))},
                                               {"rawBytes": b64(der(root + ".pem"))}]},
                "validFor": {"start": start}}],
        }
        with open(os.path.join(directory, "trusted_root.json"), "w") as f:
            json.dump(trusted_root, f)
    return root


def bundle_keyless(registry, repo, digest, directory, identity, issuer):
    root = pki(directory)
    work = tempfile.mkdtemp(dir=directory)
    leaf = os.path.join(work, "leaf")
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", leaf + ".key")
    openssl("req", "-new", "-key", leaf + ".key", "-out", leaf + ".csr", "-subj", "/O=airlock-test")
    ext = os.path.join(work, "leaf.ext")
    san = f"email:{identity}" if "@" in identity and "://" not in identity else f"URI:{identity}"
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                f"extendedKeyUsage=codeSigning\nsubjectAltName=critical,{san}\n"
                f"1.3.6.1.4.1.57264.1.8=ASN1:UTF8String:{issuer}\n")
    openssl("x509", "-req", "-in", leaf + ".csr", "-CA", root + ".pem", "-CAkey", root + ".key",
            "-CAcreateserial", "-out", leaf + ".pem", "-days", "1", "-extfile", ext)
    data = manifest_bytes(registry, repo, digest)
    signature = sign(leaf + ".key", data)
    bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
              "verificationMaterial": {
                  "certificate": {"rawBytes": b64(der(leaf + ".pem"))},
                  "tlogEntries": [],
                  "timestampVerificationData": timestamp(directory, signature)},
              "messageSignature": message_signature(data, signature)}
    attach_bundle(registry, repo, digest, bundle)


def copy_tag(registry, repo, source, target):
    got = requests.get(url(registry, repo, "manifests", source), headers={"Accept": MANIFEST}, timeout=30)
    got.raise_for_status()
    put = requests.put(url(registry, repo, "manifests", target), data=got.content,
                       headers={"Content-Type": MANIFEST}, timeout=30)
    put.raise_for_status()


def root_with_log(directory):
    root = pki(directory)
    with open(os.path.join(directory, "trusted_root.json")) as f:
        trusted = json.load(f)
    key = openssl("ec", "-in", root + ".key", "-pubout", "-outform", "DER")
    trusted["tlogs"] = [{
        "baseUrl": "https://log.airlock.test",
        "hashAlgorithm": "SHA2_256",
        "publicKey": {"rawBytes": b64(key), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                      "validFor": {"start": "2020-01-01T00:00:00Z"}},
        "logId": {"keyId": b64(hashlib.sha256(key).digest())},
    }]
    with open(os.path.join(directory, "trusted_root_with_log.json"), "w") as f:
        json.dump(trusted, f)


def main():
    command, *args = sys.argv[1:]
    {"keygen": keygen, "cosign": cosign, "bundle-key": bundle_key,
     "bundle-keyless": bundle_keyless, "copy-tag": copy_tag,
     "root-with-log": root_with_log}[command](*args)


if __name__ == "__main__":
    main()
