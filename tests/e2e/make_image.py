#!/usr/bin/env python3
"""Writes a one-layer OCI image layout with arbitrary (also hostile) tar entries, for the converter's
e2e tests. Usage: make_image.py DIR KIND   (KIND: dotdot, absolute, symlink-escape, device,
through-symlink, truncated, truncated-tar, wrong-media-type, digest-mismatch, diff-id-mismatch, multiarch, zstd, bomb-entry, bomb-many).
bomb-entry: one 256 MiB file of zeros; bomb-many: eight 32 MiB files; both as concatenated gzip
members of 1 MiB of zeros each, so the layer is ~260 KB and takes no time to make."""
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
            if typ in (tarfile.DIRTYPE, tarfile.REGTYPE):
                ti.mode = 0o755  # the converter resolves the program to an executable file
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
def bomb(sizes):
    """A gzip tar layer whose files are all zeros, without building it in memory."""
    zero_mib = gzip.compress(b"\0" * (1 << 20), mtime=0)
    out, h = [], hashlib.sha256()
    for i, size in enumerate(sizes):
        ti = tarfile.TarInfo(f"zero{i}")
        ti.size, ti.mode = size, 0o755
        hdr = ti.tobuf(tarfile.PAX_FORMAT)
        out.append(gzip.compress(hdr, mtime=0))
        h.update(hdr)
        for _ in range(size >> 20):
            out.append(zero_mib)
            h.update(b"\0" * (1 << 20))
    end = b"\0" * 1024
    out.append(gzip.compress(end, mtime=0))
    h.update(end)
    return b"".join(out), h.hexdigest()

raw = layer(entries)
diff_id = hashlib.sha256(raw).hexdigest()
if kind in ("bomb-entry", "bomb-many"):
    data, diff_id = bomb([256 << 20] if kind == "bomb-entry" else [32 << 20] * 8)
    ltype = "application/vnd.oci.image.layer.v1.tar+gzip"
elif kind == "zstd":
    data = subprocess.run(["zstd", "-q", "-c"], input=raw, check=True, capture_output=True).stdout
    ltype = "application/vnd.oci.image.layer.v1.tar+zstd"
else:
    data = gzip.compress(raw, mtime=0)
    ltype = "application/vnd.oci.image.layer.v1.tar+gzip"
if kind == "truncated":
    data = data[: len(data) // 2]
if kind == "truncated-tar":  # plain tar that ends inside the content of bin/ok
    data, ltype = raw[: 512 * 3 + 2], "application/vnd.oci.image.layer.v1.tar"
ldig, lsize = blob(data)
if kind == "diff-id-mismatch":  # the layer blob is intact; the config names other content
    diff_id = hashlib.sha256(layer(base[:1] + [("bin/ok", tarfile.REGTYPE, b"evil")])).hexdigest()
program = "/zero0" if kind in ("bomb-entry", "bomb-many") else "/bin/ok"
config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": [program]},
          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff_id]}}
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
