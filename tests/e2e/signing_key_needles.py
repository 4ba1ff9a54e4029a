#!/usr/bin/env python3
"""Prints, for every app signing key a vouchd data directory holds sealed (SQLite store), strings
that would give the key away if found in a log or an answer, for tests that grep for leaks:
  - the key's DER as sealed and its private scalar (as hex, one line each, prefixed "raw ") to look
    for in binary files (the store);
  - its PEM's second base64 line and the last 24 characters of the first (they cover the private
    scalar), and the scalar in hex (prefixed "text ").
Usage: signing_key_needles.py DATA_DIR
Unseals with DATA_DIR/master.key: AES-256-GCM, nonce || ciphertext || tag, AAD
"vouch:app_signing_keys.key_sealed:<id>" (libs/api/registry_access.h). Python stdlib, libcrypto
through ctypes and the openssl CLI; exits non-zero when there is no key or one does not open."""
import ctypes, ctypes.util, sqlite3, subprocess, sys

data = sys.argv[1]
master = open(f"{data}/master.key", "rb").read()
lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
lib.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
lib.EVP_aes_256_gcm.restype = ctypes.c_void_p
lib.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
for f in ("EVP_DecryptInit_ex", "EVP_DecryptUpdate", "EVP_DecryptFinal_ex", "EVP_CIPHER_CTX_ctrl"):
    getattr(lib, f).restype = ctypes.c_int
lib.EVP_DecryptInit_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
lib.EVP_DecryptUpdate.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_char_p,
                                  ctypes.c_int]
lib.EVP_DecryptFinal_ex.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
lib.EVP_CIPHER_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_char_p]
EVP_CTRL_GCM_SET_TAG = 0x11


def open_sealed(sealed, aad):
    nonce, body, tag = sealed[:12], sealed[12:-16], sealed[-16:]
    ctx = lib.EVP_CIPHER_CTX_new()
    try:
        out = ctypes.create_string_buffer(len(body) + 16)
        n = ctypes.c_int(0)
        ok = lib.EVP_DecryptInit_ex(ctx, lib.EVP_aes_256_gcm(), None, master, nonce) == 1
        ok = ok and lib.EVP_DecryptUpdate(ctx, None, ctypes.byref(n), aad, len(aad)) == 1
        ok = ok and lib.EVP_DecryptUpdate(ctx, out, ctypes.byref(n), body, len(body)) == 1
        size = n.value
        ok = ok and lib.EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1
        ok = ok and lib.EVP_DecryptFinal_ex(ctx, ctypes.create_string_buffer(16), ctypes.byref(n)) == 1
        if not ok:
            sys.exit("a sealed signing key does not open with the master key")
        return out.raw[:size]
    finally:
        lib.EVP_CIPHER_CTX_free(ctx)


db = sqlite3.connect(f"file:{data}/vouch.db?mode=ro", uri=True)
keys = db.execute("SELECT id, key_sealed FROM app_signing_keys").fetchall()
if not keys:
    sys.exit("no app signing key in the store")
for kid, sealed in keys:
    der = open_sealed(bytes(sealed), f"vouch:app_signing_keys.key_sealed:{kid}".encode())
    pem = subprocess.run(["openssl", "pkey", "-inform", "DER"], input=der, capture_output=True, check=True).stdout
    text = subprocess.run(["openssl", "pkey", "-inform", "DER", "-noout", "-text"], input=der, capture_output=True,
                          check=True).stdout.decode()
    # "priv:" then hex bytes "aa:bb:..." over a few lines, up to "pub:".
    priv = text.split("priv:", 1)[1].split("pub:", 1)[0]
    scalar = "".join(c for c in priv if c in "0123456789abcdef")[-64:]
    lines = pem.decode().splitlines()
    print("raw " + der.hex())
    print("raw " + scalar)
    print("text " + lines[1][-24:])
    print("text " + lines[2])
    print("text " + scalar)
