#include "store/migrations.h"

namespace vouch::store {

const std::vector<std::vector<std::string>>& Migrations() {
  static const std::vector<std::vector<std::string>> kMigrations = {
      // 1: the manager core.
      {
          R"(CREATE TABLE settings (
               key TEXT PRIMARY KEY,
               value TEXT NOT NULL))",
          R"(CREATE TABLE zones (
               id TEXT PRIMARY KEY,
               name TEXT NOT NULL UNIQUE,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL,
               policy TEXT NOT NULL,
               ca_cert_pem TEXT NOT NULL,
               ca_key_sealed BLOB NOT NULL,
               crl_number INTEGER NOT NULL DEFAULT 0,
               crl_der BLOB,
               crl_updated_at INTEGER))",
          R"(CREATE TABLE users (
               id TEXT PRIMARY KEY,
               name TEXT NOT NULL UNIQUE,
               role TEXT NOT NULL CHECK (role IN ('admin', 'approver', 'member', 'viewer')),
               password_hash TEXT NOT NULL,
               disabled INTEGER NOT NULL DEFAULT 0,
               created_at INTEGER NOT NULL))",
          R"(CREATE TABLE sessions (
               token_hash TEXT PRIMARY KEY,
               user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
               created_at INTEGER NOT NULL,
               expires_at INTEGER NOT NULL))",
          R"(CREATE TABLE api_keys (
               id TEXT PRIMARY KEY,
               name TEXT NOT NULL,
               key_hash TEXT NOT NULL UNIQUE,
               user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
               created_at INTEGER NOT NULL,
               expires_at INTEGER,
               UNIQUE (user_id, name)))",
          R"(CREATE TABLE join_tokens (
               id TEXT PRIMARY KEY,
               zone_id TEXT NOT NULL REFERENCES zones(id),
               token_hash TEXT NOT NULL UNIQUE,
               created_by TEXT NOT NULL,
               created_at INTEGER NOT NULL,
               expires_at INTEGER NOT NULL,
               uses_left INTEGER NOT NULL))",
          R"(CREATE TABLE apps (
               id TEXT PRIMARY KEY,
               name TEXT NOT NULL UNIQUE,
               zone_id TEXT NOT NULL REFERENCES zones(id),
               domains TEXT NOT NULL,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL,
               deleted INTEGER NOT NULL DEFAULT 0))",
          R"(CREATE TABLE tasks (
               id TEXT PRIMARY KEY,
               kind TEXT NOT NULL CHECK (kind IN ('build', 'domain')),
               status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'cancelled')),
               zone_id TEXT NOT NULL REFERENCES zones(id),
               app_id TEXT NOT NULL REFERENCES apps(id),
               build_id TEXT,
               domain TEXT,
               summary TEXT NOT NULL,
               approvals_required INTEGER NOT NULL,
               denied_by TEXT,
               reason TEXT,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL,
               decided_at INTEGER))",
          R"(CREATE TABLE task_approvals (
               task_id TEXT NOT NULL REFERENCES tasks(id),
               user_name TEXT NOT NULL,
               at INTEGER NOT NULL,
               PRIMARY KEY (task_id, user_name)))",
          R"(CREATE TABLE builds (
               id TEXT PRIMARY KEY,
               app_id TEXT NOT NULL REFERENCES apps(id),
               platform TEXT NOT NULL,
               mrenclave TEXT NOT NULL,
               mrsigner TEXT NOT NULL,
               isvprodid INTEGER NOT NULL,
               isvsvn INTEGER NOT NULL,
               debug INTEGER NOT NULL,
               image_ref TEXT,
               image_digest TEXT,
               status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'revoked')),
               task_id TEXT,
               reason TEXT,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL))",
          "CREATE INDEX builds_measurement ON builds (mrenclave, mrsigner)",
          R"(CREATE TABLE nodes (
               id TEXT PRIMARY KEY,
               zone_id TEXT NOT NULL REFERENCES zones(id),
               platform TEXT NOT NULL,
               tcb_status TEXT NOT NULL,
               advisory_ids TEXT NOT NULL,
               fmspc TEXT,
               evidence_sha256 TEXT,
               public_key_sha256 TEXT NOT NULL,
               status TEXT NOT NULL,
               cert_serial TEXT,
               cert_not_after INTEGER,
               last_seen INTEGER,
               info TEXT,
               created_at INTEGER NOT NULL))",
          R"(CREATE TABLE certificates (
               serial TEXT PRIMARY KEY,
               zone_id TEXT NOT NULL REFERENCES zones(id),
               kind TEXT NOT NULL,
               app_id TEXT,
               build_id TEXT,
               node_id TEXT,
               instance_id TEXT,
               subject TEXT NOT NULL,
               sans TEXT NOT NULL,
               not_before INTEGER NOT NULL,
               not_after INTEGER NOT NULL,
               pem TEXT NOT NULL,
               status TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
               revoked_at INTEGER,
               revocation_reason TEXT,
               issued_to TEXT NOT NULL,
               created_at INTEGER NOT NULL))",
          "CREATE INDEX certificates_zone ON certificates (zone_id, status)",
          "CREATE INDEX certificates_build ON certificates (build_id)",
          R"(CREATE TABLE instances (
               id TEXT PRIMARY KEY,
               app_id TEXT NOT NULL REFERENCES apps(id),
               build_id TEXT NOT NULL REFERENCES builds(id),
               node_id TEXT REFERENCES nodes(id),
               serial TEXT,
               status TEXT NOT NULL,
               last_seq INTEGER NOT NULL DEFAULT 0,
               first_seen INTEGER NOT NULL,
               last_heartbeat INTEGER))",
          R"(CREATE TABLE audit (
               seq INTEGER PRIMARY KEY,
               at INTEGER NOT NULL,
               actor TEXT NOT NULL,
               action TEXT NOT NULL,
               target TEXT NOT NULL,
               outcome TEXT NOT NULL,
               detail TEXT NOT NULL,
               prev_hash TEXT NOT NULL,
               hash TEXT NOT NULL))",
      },
      // 2: node provisioning, agent-issued certificates and heartbeats (docs/agent.md).
      {
          R"(CREATE TABLE node_nonces (
               nonce_hash TEXT PRIMARY KEY,
               created_at INTEGER NOT NULL,
               expires_at INTEGER NOT NULL))",
          "CREATE INDEX node_nonces_expiry ON node_nonces (expires_at)",
          "CREATE INDEX instances_node ON instances (node_id)",
          "CREATE INDEX certificates_node ON certificates (node_id)",
          "CREATE INDEX builds_app ON builds (app_id)",
      },
      // 3: issue 13 (chain of trust)
      {
          // Node identity policy (docs/policy.md, "Node identity"): the agent identities a zone
          // accepts; pending ones wait for their approval task.
          R"(CREATE TABLE node_identities (
               id TEXT PRIMARY KEY,
               zone_id TEXT NOT NULL REFERENCES zones(id),
               platform TEXT NOT NULL CHECK (platform IN ('sgx', 'tdx', 'sev-snp')),
               rule TEXT NOT NULL,
               status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'denied')),
               task_id TEXT,
               note TEXT,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL))",
          "CREATE INDEX node_identities_zone ON node_identities (zone_id, status)",
          // Existing zones that allow sim accept the shipped sim agent (SHA-256 of
          // "vouch-agent-sim-enclave-v1" / "vouch-agent-sim-signer-v1", attest/sim_agent.h; a test
          // checks these literals); zones without sim get no default: their admin adds the real
          // agent's identity through the approval flow (docs/policy.md).
          R"(INSERT INTO node_identities (id, zone_id, platform, rule, status, task_id, note, created_at, created_by)
             SELECT 'nid_m3_' || id, id, 'sgx',
               '{"isvprodid":0,"min_isvsvn":0,"mrenclave":"c123733b4276bb5833aeb6895eebe36ce673ccc06db4e104d58fb070481e92d5","mrsigner":"5a77f481fdad3c892e818583b0dc19dcaa642662d0b3eabe2fb1cf952abca41a","platform":"sgx"}',
               'active', NULL, 'the shipped sim agent (migration 3)', created_at, 'system'
             FROM zones WHERE policy LIKE '%"allow_sim":true%')",
          // Tasks of kind node_identity belong to a zone, not an app. SQLite cannot alter a CHECK
          // or a NOT NULL: new tables, copy, drop, rename (the same statements on PostgreSQL).
          R"(CREATE TABLE tasks_v3 (
               id TEXT PRIMARY KEY,
               kind TEXT NOT NULL CHECK (kind IN ('build', 'domain', 'node_identity')),
               status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'cancelled')),
               zone_id TEXT NOT NULL REFERENCES zones(id),
               app_id TEXT REFERENCES apps(id),
               build_id TEXT,
               domain TEXT,
               summary TEXT NOT NULL,
               approvals_required INTEGER NOT NULL,
               denied_by TEXT,
               reason TEXT,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL,
               decided_at INTEGER,
               node_identity_id TEXT))",
          R"(INSERT INTO tasks_v3 (id, kind, status, zone_id, app_id, build_id, domain, summary, approvals_required,
               denied_by, reason, created_at, created_by, decided_at)
             SELECT id, kind, status, zone_id, app_id, build_id, domain, summary, approvals_required, denied_by, reason,
               created_at, created_by, decided_at FROM tasks)",
          R"(CREATE TABLE task_approvals_v3 (
               task_id TEXT NOT NULL REFERENCES tasks_v3(id),
               user_name TEXT NOT NULL,
               at INTEGER NOT NULL,
               PRIMARY KEY (task_id, user_name)))",
          "INSERT INTO task_approvals_v3 (task_id, user_name, at) SELECT task_id, user_name, at FROM task_approvals",
          "DROP TABLE task_approvals",
          "DROP TABLE tasks",
          // Renaming the parent carries the child's foreign key along (SQLite >= 3.26, PostgreSQL).
          "ALTER TABLE tasks_v3 RENAME TO tasks",
          "ALTER TABLE task_approvals_v3 RENAME TO task_approvals",
          "CREATE INDEX tasks_zone_status ON tasks (zone_id, status)",
      },
      // 4: issue 14: collateral. The vendors' verification collateral (libs/collateral,
      // docs/collateral.md), shared by every member: one row per version of an item, verified
      // before it was written; the current version of (kind, item_key, root) is the one with the
      // latest issue_date.
      {
          R"(CREATE TABLE collateral (
               id TEXT PRIMARY KEY,
               kind TEXT NOT NULL,
               item_key TEXT NOT NULL,
               root TEXT NOT NULL,
               sim INTEGER NOT NULL DEFAULT 0,
               issue_date INTEGER NOT NULL,
               next_update INTEGER NOT NULL,
               tcb_evaluation_data_number INTEGER,
               source TEXT NOT NULL,
               origin TEXT NOT NULL,
               content_type TEXT NOT NULL,
               body BLOB NOT NULL,
               issuer_chain TEXT NOT NULL,
               sha256 TEXT NOT NULL,
               stored_at INTEGER NOT NULL,
               UNIQUE (kind, item_key, root, sha256)))",
          "CREATE INDEX collateral_item ON collateral (kind, item_key, root, issue_date)",
      },
      // 5: session 9 (issues 15, 16, 18). Every *_sealed column is AES-256-GCM under the master
      // key (crypto/aead.h) with an AAD naming the row, and is re-sealed by `vouchd master-key
      // rotate` (api/master_key.cc).
      {
          // Issue 15: registries whose credentials vouchd keeps for server-side conversion.
          R"(CREATE TABLE registries (
               id TEXT PRIMARY KEY,
               name TEXT NOT NULL UNIQUE,
               url TEXT NOT NULL,
               ca_pem TEXT,
               username TEXT,
               secret_kind TEXT CHECK (secret_kind IN ('password', 'token')),
               secret_sealed BLOB,
               insecure INTEGER NOT NULL DEFAULT 0,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL,
               updated_at INTEGER NOT NULL))",
          "ALTER TABLE apps ADD COLUMN input_registry_id TEXT",
          "ALTER TABLE apps ADD COLUMN output_registry_id TEXT",
          // Issue 15: each app's image signing keys; the active one gives the app's mrsigner, a
          // pending one waits for its rotation task.
          R"(CREATE TABLE app_signing_keys (
               id TEXT PRIMARY KEY,
               app_id TEXT NOT NULL REFERENCES apps(id),
               key_sealed BLOB NOT NULL,
               mrsigner TEXT NOT NULL,
               status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'retired', 'denied')),
               task_id TEXT,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL,
               activated_at INTEGER))",
          "CREATE INDEX app_signing_keys_app ON app_signing_keys (app_id, status)",
          // Issue 15: conversion jobs. A job is claimed by one member at a time (lease_owner until
          // lease_expires_at); an expired lease may be taken over.
          R"(CREATE TABLE conversions (
               id TEXT PRIMARY KEY,
               app_id TEXT NOT NULL REFERENCES apps(id),
               state TEXT NOT NULL CHECK (state IN ('queued', 'pulling', 'converting', 'pushing', 'done', 'failed',
                                                    'cancelled')),
               input_image TEXT NOT NULL,
               output_image TEXT NOT NULL,
               input_registry_id TEXT,
               output_registry_id TEXT,
               options TEXT NOT NULL,
               progress TEXT NOT NULL,
               log TEXT NOT NULL,
               output_digest TEXT,
               mrenclave TEXT,
               mrsigner TEXT,
               build_id TEXT,
               error_code TEXT,
               error_message TEXT,
               attempts INTEGER NOT NULL DEFAULT 0,
               cancel_requested INTEGER NOT NULL DEFAULT 0,
               lease_owner TEXT,
               lease_expires_at INTEGER,
               bytes_converted INTEGER NOT NULL DEFAULT 0,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL,
               started_at INTEGER,
               finished_at INTEGER,
               updated_at INTEGER NOT NULL))",
          "CREATE INDEX conversions_state ON conversions (state, created_at)",
          "CREATE INDEX conversions_app ON conversions (app_id, created_at)",
          // Issue 18: zone CA generations. zones.ca_cert_pem / ca_key_sealed stay the active CA;
          // a rotation adds a row here (pending until its task is approved), activation swaps it
          // in and keeps the old one here as 'retired' with CRLs of its own until it expires.
          R"(CREATE TABLE zone_cas (
               id TEXT PRIMARY KEY,
               zone_id TEXT NOT NULL REFERENCES zones(id),
               cert_pem TEXT NOT NULL,
               key_sealed BLOB NOT NULL,
               status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'active', 'retired', 'denied')),
               task_id TEXT,
               crl_number INTEGER NOT NULL DEFAULT 0,
               crl_der BLOB,
               crl_updated_at INTEGER,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL,
               activated_at INTEGER,
               retired_at INTEGER))",
          "CREATE INDEX zone_cas_zone ON zone_cas (zone_id, status)",
          // Issue 16: each zone's heartbeat key agreement key (P-256), made on first need.
          "ALTER TABLE zones ADD COLUMN heartbeat_key_sealed BLOB",
          "ALTER TABLE zones ADD COLUMN heartbeat_pub_pem TEXT",
          // Tasks gain two kinds; subject_id names the app_signing_keys or zone_cas row.
          R"(CREATE TABLE tasks_v5 (
               id TEXT PRIMARY KEY,
               kind TEXT NOT NULL CHECK (kind IN ('build', 'domain', 'node_identity', 'signing_key', 'ca_rotation')),
               status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'cancelled')),
               zone_id TEXT NOT NULL REFERENCES zones(id),
               app_id TEXT REFERENCES apps(id),
               build_id TEXT,
               domain TEXT,
               summary TEXT NOT NULL,
               approvals_required INTEGER NOT NULL,
               denied_by TEXT,
               reason TEXT,
               created_at INTEGER NOT NULL,
               created_by TEXT NOT NULL,
               decided_at INTEGER,
               node_identity_id TEXT,
               subject_id TEXT))",
          R"(INSERT INTO tasks_v5 (id, kind, status, zone_id, app_id, build_id, domain, summary, approvals_required,
               denied_by, reason, created_at, created_by, decided_at, node_identity_id)
             SELECT id, kind, status, zone_id, app_id, build_id, domain, summary, approvals_required, denied_by, reason,
               created_at, created_by, decided_at, node_identity_id FROM tasks)",
          R"(CREATE TABLE task_approvals_v5 (
               task_id TEXT NOT NULL REFERENCES tasks_v5(id),
               user_name TEXT NOT NULL,
               at INTEGER NOT NULL,
               PRIMARY KEY (task_id, user_name)))",
          "INSERT INTO task_approvals_v5 (task_id, user_name, at) SELECT task_id, user_name, at FROM task_approvals",
          "DROP TABLE task_approvals",
          "DROP TABLE tasks",
          "ALTER TABLE tasks_v5 RENAME TO tasks",
          "ALTER TABLE task_approvals_v5 RENAME TO task_approvals",
          "CREATE INDEX tasks_zone_status ON tasks (zone_id, status)",
      },
      // 6: issue 16: instances at scale (docs/operations.md, "A million instances"). Lists are
      // pages in (first_seen, id) order, alone or after an equality filter on app, node or
      // status. No index holds last_heartbeat or last_seq, the columns a heartbeat writes: on
      // SQLite a heartbeat then rewrites no index entry, on PostgreSQL it can be a HOT update
      // (an index on (status, last_heartbeat) measured 40 % fewer row updates per second on
      // SQLite, a third on PostgreSQL). For the same reason a heartbeat should name `status` in
      // its SET only when it stops the instance: SQLite rewrites the instances_status_seen entry
      // of every row whose UPDATE sets status, even to the same value. `unresponsive` (running,
      // last_heartbeat before now - interval * missed) is read along instances_status_seen in
      // bounded windows (api/instance_counts.h). libs/api/instance_counts_test.cc checks the plans.
      {
          // Every row has a last_heartbeat from now on (issuance sets it): the SQL conditions
          // need no COALESCE with first_seen.
          "UPDATE instances SET last_heartbeat = first_seen WHERE last_heartbeat IS NULL",
          "CREATE INDEX instances_first_seen ON instances (first_seen, id)",
          "CREATE INDEX instances_status_seen ON instances (status, first_seen, id)",
          "CREATE INDEX instances_app_seen ON instances (app_id, first_seen, id)",
          "DROP INDEX instances_node",
          "CREATE INDEX instances_node_seen ON instances (node_id, first_seen, id)",
          // Certificate pages (created_at, serial) and the valid / expiring counts.
          "CREATE INDEX certificates_created ON certificates (created_at, serial)",
          "CREATE INDEX certificates_status_expiry ON certificates (status, not_after)",
      },
      // 7: issue 16: heartbeats as HOT updates on PostgreSQL (BENCHMARKS.md, "PostgreSQL costs
      // (issue 16)"). A heartbeat rewrites its instance's row; PostgreSQL can keep the new
      // version on the same page without touching any of the table's five indexes (a HOT update)
      // only when that page has room, and pages filled to 100 % by inserts have none: every
      // heartbeat then added an entry to each index (about 5.5 WAL records and 900 bytes of WAL
      // per heartbeat, indexes and heap bloating with each round). Leaving 30 % of each new page
      // free makes them HOT (92 % measured at 400,000 instances, 130 bytes of WAL per heartbeat).
      // Pages written before keep their layout until vacuumed. SQLite updates rows in place:
      // nothing to do there.
      {
          "/*only:postgres*/ ALTER TABLE instances SET (fillfactor = 70)",
      },
      // 8: issue 16: the heartbeat batch lookup (api/manager_heartbeats.cc) reads only indexes on
      // SQLite. It wants each instance's node and serial and its certificate's status and zone:
      // through the primary keys that is four b-tree descents per heartbeat, two of them into
      // table rows (a certificate row holds its PEM: about two rows per 4 KB page), into a page
      // cache that SQLite empties at each read transaction in WAL mode once the writer has
      // committed, i.e. every batch. These covering indexes make it two descents into small
      // entries; the lookup names them (INDEXED BY: without statistics SQLite's planner prefers
      // the unique primary-key index). Neither holds a column a heartbeat writes. PostgreSQL's
      // lookup is one statement per batch on a warm buffer cache: nothing to do there.
      {
          "/*only:sqlite*/ CREATE INDEX instances_heartbeat_lookup ON instances (id, node_id, serial)",
          "/*only:sqlite*/ CREATE INDEX certificates_heartbeat_lookup ON certificates (serial, status, zone_id)",
      },
  };
  return kMigrations;
}

}  // namespace vouch::store
