#!/usr/bin/env python3
"""A small token server for docker-registry's `auth: token` (distribution's Bearer token scheme),
for tests/e2e/registry_auth_test.sh. Python stdlib plus the `openssl` CLI for the signature.

  registry_token_server.py PORT TLS_CERT TLS_KEY SIGN_KEY SIGN_CHAIN ISSUER USERS LOG

Serves GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] over HTTPS. Basic
credentials are checked against USERS ("user:password" lines); wrong ones get 401. Anonymous
requests get a token with no access. An authenticated user gets every action asked for. The token
is a JWT signed RS256 with SIGN_KEY; its header carries the signing certificate chain (x5c, leaf
first) that the registry verifies against its rootcertbundle. One line per request goes to LOG
(user, service, scopes; never the password)."""
import base64, http.server, json, os, ssl, subprocess, sys, time, urllib.parse

port, tls_cert, tls_key, sign_key, sign_chain, issuer, users_file, log_file = sys.argv[1:9]
USERS = dict(l.rstrip("\n").split(":", 1) for l in open(users_file) if ":" in l)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def chain_der():
    pems = open(sign_chain).read().split("-----END CERTIFICATE-----")
    out = []
    for p in pems:
        if "-----BEGIN CERTIFICATE-----" not in p:
            continue
        body = p.split("-----BEGIN CERTIFICATE-----")[1]
        out.append(base64.b64encode(base64.b64decode("".join(body.split()))).decode())
    return out


X5C = chain_der()


def sign(signing_input):
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sign_key], input=signing_input,
                       capture_output=True, check=True)
    return r.stdout


def make_token(user, service, access):
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": X5C}
    claims = {"iss": issuer, "sub": user, "aud": service, "exp": now + 300, "nbf": now - 10, "iat": now,
              "jti": b64url(os.urandom(12)), "access": access}
    si = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
          b64url(json.dumps(claims, separators=(",", ":")).encode())).encode()
    return si.decode() + "." + b64url(sign(si))


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body, extra=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND"}]})
        q = urllib.parse.parse_qs(url.query)
        service = q.get("service", [""])[0]
        scopes = q.get("scope", [])
        user = ""
        auth = self.headers.get("Authorization", "")
        if auth:
            if not auth.startswith("Basic "):
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "basic auth only"}]})
            try:
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                u, p = "", None
            if USERS.get(u) != p:
                with open(log_file, "a") as f:
                    f.write(f"refused user={u} service={service} scope={' '.join(scopes)}\n")
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                  {"WWW-Authenticate": 'Basic realm="token"'})
            user = u
        access = []
        for s in scopes:
            parts = s.split(":")
            if len(parts) < 3 or not user:
                continue
            access.append({"type": parts[0], "name": ":".join(parts[1:-1]), "actions": parts[-1].split(",")})
        with open(log_file, "a") as f:
            f.write(f"issued user={user or '-'} service={service} scope={' '.join(scopes) or '-'}\n")
        token = make_token(user, service, access)
        self.reply(200, {"token": token, "access_token": token, "expires_in": 300,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(tls_cert, tls_key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
