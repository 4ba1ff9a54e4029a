#!/usr/bin/env python3
"""Writes a one-layer OCI image layout with arbitrary (also hostile) tar entries, for the converter's
e2e tests. Usage: make_image.py DIR KIND   (KIND: dotdot, absolute, symlink-escape, device,
through-symlink, truncated, wrong-media-type, digest-mismatch, multiarch, zstd)."""
import gzip, hashlib, io, json, os, subprocess, sys, tarfile

out, kind = sys.argv[1], sys.argv[2]
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)

def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(f"{out}/blobs/sha256/{d}", "wb").write(data)
    return "sha256:" + d, len(data)

def layer(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, typ, extra in entries:
            ti = tarfile.TarInfo(name)
            ti.type = typ
            data = b""
            if typ == tarfile.REGTYPE:
                data = extra or b"x"
                ti.size = len(data)
            elif typ in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                ti.linkname = extra
            elif typ in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                ti.devmajor, ti.devminor = 1, 3
            if typ == tarfile.DIRTYPE:
                ti.mode = 0o755
            t.addfile(ti, io.BytesIO(data) if data else None)
    return buf.getvalue()

base = [("bin", tarfile.DIRTYPE, None), ("bin/ok", tarfile.REGTYPE, b"fine")]
entries = {
    "dotdot": base + [("bin/../../escape", tarfile.REGTYPE, b"x")],
    "absolute": base + [("/etc/evil", tarfile.REGTYPE, b"x")],
    "symlink-escape": base + [("bin/up", tarfile.SYMTYPE, "../../../../etc/shadow")],
    "device": base + [("dev/mem", tarfile.CHRTYPE, None)],
    "through-symlink": base + [("lnk", tarfile.SYMTYPE, "bin"), ("lnk/evil", tarfile.REGTYPE, b"x")],
}.get(kind, base)
raw = layer(entries)
if kind == "zstd":
    data = subprocess.run(["zstd", "-q", "-c"], input=raw, check=True, capture_output=True).stdout
    ltype = "application/vnd.oci.image.layer.v1.tar+zstd"
else:
    data = gzip.compress(raw, mtime=0)
    ltype = "application/vnd.oci.image.layer.v1.tar+gzip"
if kind == "truncated":
    data = data[: len(data) // 2]
ldig, lsize = blob(data)
config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/ok"]},
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}
cdig, csize = blob(json.dumps(config).encode())
ctype = "application/vnd.oci.image.config.v1+json"
if kind == "wrong-media-type":
    ctype = "application/vnd.cncf.helm.config.v1+json"
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": ctype, "digest": cdig, "size": csize},
            "layers": [{"mediaType": ltype, "digest": ldig, "size": lsize}]}
mdig, msize = blob(json.dumps(manifest).encode())
top = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig, "size": msize,
       "annotations": {"org.opencontainers.image.ref.name": "t"}}
if kind == "multiarch":
    idx = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdig, "size": msize,
         "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}]}
    idig, isize = blob(json.dumps(idx).encode())
    top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idig, "size": isize,
           "annotations": {"org.opencontainers.image.ref.name": "t"}}
if kind == "digest-mismatch":
    open(f"{out}/blobs/sha256/{ldig[7:]}", "ab").write(b"tampered")
json.dump({"schemaVersion": 2, "manifests": [top]}, open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
