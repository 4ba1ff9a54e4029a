#!/usr/bin/env python3
"""Writes seed archives for fuzz_backup_archive in the layout of libs/backup/archive_format.h."""
import hashlib
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).parent


def archive(files, schema=5):
    manifest = {"format": 1, "vouch_version": "0.1.0", "schema_version": schema,
                "created_at": "2026-12-06T04:00:00Z", "store": "sqlite",
                "files": [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest(), "mode": 0o600}
                          for p, d in files]}
    m = json.dumps(manifest).encode()
    body = b"VOUCHBK1" + struct.pack("<II", 1, len(m)) + m + b"".join(d for _, d in files)
    return body + hashlib.sha256(body).digest()


(HERE / "minimal.vbk").write_bytes(archive([("vouch.db", b"SQLite format 3\0"), ("config.json", b"{}")]))
(HERE / "nested.vbk").write_bytes(archive([("vouch.db", b"db"), ("config.json", b"{}"),
                                           ("tls/server.pem", b"cert"), ("tls/server.key.sealed", b"\x01" * 60),
                                           ("empty", b"")]))
(HERE / "no_files.vbk").write_bytes(archive([]))
