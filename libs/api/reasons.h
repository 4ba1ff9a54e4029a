#pragma once

// The API's stable reason codes (the "code" of an error body, {"error":{"code","message"}}):
// one constant per code, used where the api library decides. The text is a contract (clients,
// docs/api.md and tests rely on it): never change a value, add a new constant instead.
// The HTTP status comes from the Status kind the code is returned with (http::HttpStatusFor);
// the comment gives it. Codes decided by another library are its constants: policy::k* (evidence
// and rules), collateral::k*, http::kBusy / http::kRateLimited, and kDomainTaken /
// kDomainNotAllowed (manager.h). tests/lint/reason_codes_check.py fails on a new bare literal.

#include <string_view>

namespace vouch::api {

// 400: invalid input (InvalidArgument)
inline constexpr std::string_view kInvalidAdvisory = "invalid_advisory";
inline constexpr std::string_view kInvalidApprovals = "invalid_approvals";
inline constexpr std::string_view kInvalidArgument = "invalid_argument";
inline constexpr std::string_view kInvalidAt = "invalid_at";
inline constexpr std::string_view kInvalidBase64 = "invalid_base64";
inline constexpr std::string_view kInvalidCa = "invalid_ca";
inline constexpr std::string_view kInvalidCollateralImport = "invalid_collateral_import";
inline constexpr std::string_view kInvalidCsr = "invalid_csr";
inline constexpr std::string_view kInvalidCursor = "invalid_cursor";
inline constexpr std::string_view kInvalidEncoding = "invalid_encoding";
inline constexpr std::string_view kInvalidEvidence = "invalid_evidence";
inline constexpr std::string_view kInvalidExpiry = "invalid_expiry";
inline constexpr std::string_view kInvalidFileName = "invalid_file_name";
inline constexpr std::string_view kInvalidFiles = "invalid_files";
inline constexpr std::string_view kInvalidFilter = "invalid_filter";
inline constexpr std::string_view kInvalidFmspc = "invalid_fmspc";
inline constexpr std::string_view kInvalidFormat = "invalid_format";
inline constexpr std::string_view kInvalidHeartbeat = "invalid_heartbeat";
inline constexpr std::string_view kInvalidHeartbeats = "invalid_heartbeats";
inline constexpr std::string_view kInvalidImageDigest = "invalid_image_digest";
inline constexpr std::string_view kInvalidImageRef = "invalid_image_ref";
inline constexpr std::string_view kInvalidInfo = "invalid_info";
inline constexpr std::string_view kInvalidInstanceId = "invalid_instance_id";
inline constexpr std::string_view kInvalidIsvprodid = "invalid_isvprodid";
inline constexpr std::string_view kInvalidIsvsvn = "invalid_isvsvn";
inline constexpr std::string_view kInvalidJson = "invalid_json";
inline constexpr std::string_view kInvalidKey = "invalid_key";
inline constexpr std::string_view kInvalidKind = "invalid_kind";
inline constexpr std::string_view kInvalidLimit = "invalid_limit";
inline constexpr std::string_view kInvalidListen = "invalid_listen";
inline constexpr std::string_view kInvalidMasterKey = "invalid_master_key";  // also 500
inline constexpr std::string_view kInvalidMeasurement = "invalid_measurement";
inline constexpr std::string_view kInvalidMinTcb = "invalid_min_tcb";
inline constexpr std::string_view kInvalidName = "invalid_name";
inline constexpr std::string_view kInvalidNonce = "invalid_nonce";
inline constexpr std::string_view kInvalidNote = "invalid_note";
inline constexpr std::string_view kInvalidOrigin = "invalid_origin";
inline constexpr std::string_view kInvalidPassword = "invalid_password";
inline constexpr std::string_view kInvalidPlatform = "invalid_platform";
inline constexpr std::string_view kInvalidPublicKey = "invalid_public_key";
inline constexpr std::string_view kInvalidReason = "invalid_reason";
inline constexpr std::string_view kInvalidRefusals = "invalid_refusals";
inline constexpr std::string_view kInvalidReport = "invalid_report";
inline constexpr std::string_view kInvalidRole = "invalid_role";
inline constexpr std::string_view kInvalidStatus = "invalid_status";
inline constexpr std::string_view kInvalidTtl = "invalid_ttl";
inline constexpr std::string_view kInvalidUpdate = "invalid_update";
inline constexpr std::string_view kInvalidUri = "invalid_uri";
inline constexpr std::string_view kInvalidUses = "invalid_uses";
inline constexpr std::string_view kInvalidValidity = "invalid_validity";
inline constexpr std::string_view kNotASession = "not_a_session";
inline constexpr std::string_view kSecretFileRefused = "secret_file_refused";
inline constexpr std::string_view kTooManyDomains = "too_many_domains";
inline constexpr std::string_view kUnknownField = "unknown_field";
inline constexpr std::string_view kUnsupportedPlatform = "unsupported_platform";
inline constexpr std::string_view kWeakPassword = "weak_password";

// 401: Unauthenticated
inline constexpr std::string_view kInvalidCredentials = "invalid_credentials";
inline constexpr std::string_view kJoinTokenRequired = "join_token_required";
inline constexpr std::string_view kNodeCertExpired = "node_cert_expired";
inline constexpr std::string_view kUnauthenticated = "unauthenticated";

// 403: refused (PermissionDenied; Refuse() for enrolment and issuance)
inline constexpr std::string_view kCsrfFailed = "csrf_failed";
inline constexpr std::string_view kForbidden = "forbidden";
inline constexpr std::string_view kInsecureMasterKey = "insecure_master_key";
inline constexpr std::string_view kJoinTokenInvalid = "join_token_invalid";
inline constexpr std::string_view kNodeCertRevoked = "node_cert_revoked";
inline constexpr std::string_view kNodeDeactivated = "node_deactivated";  // also 409
inline constexpr std::string_view kNodeIdentityRequired = "node_identity_required";
inline constexpr std::string_view kNonceInvalid = "nonce_invalid";

// 404: NotFound
inline constexpr std::string_view kApikeyNotFound = "apikey_not_found";
inline constexpr std::string_view kAppNotFound = "app_not_found";
inline constexpr std::string_view kBuildNotFound = "build_not_found";
inline constexpr std::string_view kCertificateNotFound = "certificate_not_found";
inline constexpr std::string_view kClusterJoinDisabled = "cluster_join_disabled";
inline constexpr std::string_view kCollateralDisabled = "collateral_disabled";
inline constexpr std::string_view kDomainNotFound = "domain_not_found";
inline constexpr std::string_view kInstanceNotFound = "instance_not_found";
inline constexpr std::string_view kNoNodeCa = "no_node_ca";
inline constexpr std::string_view kNodeIdentityNotFound = "node_identity_not_found";
inline constexpr std::string_view kNodeNotFound = "node_not_found";
inline constexpr std::string_view kNotInitialized = "not_initialized";
inline constexpr std::string_view kTaskNotFound = "task_not_found";

// 409: AlreadyExists, FailedPrecondition, Aborted
inline constexpr std::string_view kAlreadyInitialized = "already_initialized";
inline constexpr std::string_view kAlreadyRevoked = "already_revoked";
inline constexpr std::string_view kApikeyExists = "apikey_exists";
inline constexpr std::string_view kAppExists = "app_exists";
inline constexpr std::string_view kBuildExists = "build_exists";
inline constexpr std::string_view kBuildNotApproved = "build_not_approved";
inline constexpr std::string_view kBuildNotRevocable = "build_not_revocable";
inline constexpr std::string_view kBackupInProgress = "backup_in_progress";
inline constexpr std::string_view kBackupsDisabled = "backups_disabled";
inline constexpr std::string_view kConflictRetry = "conflict_retry";
inline constexpr std::string_view kDomainExists = "domain_exists";
inline constexpr std::string_view kDomainPending = "domain_pending";
inline constexpr std::string_view kLastAdmin = "last_admin";
inline constexpr std::string_view kNodeIdentityExists = "node_identity_exists";
inline constexpr std::string_view kTaskNotPending = "task_not_pending";
inline constexpr std::string_view kTooManyNodeIdentities = "too_many_node_identities";
inline constexpr std::string_view kUserExists = "user_exists";
inline constexpr std::string_view kZoneExists = "zone_exists";

// 500: DataLoss / Internal: stored data or configuration is unusable
inline constexpr std::string_view kCaKeyUnsealFailed = "ca_key_unseal_failed";
inline constexpr std::string_view kInternal = "internal";
inline constexpr std::string_view kInvalidConfig = "invalid_config";
inline constexpr std::string_view kTlsKeyUnsealFailed = "tls_key_unseal_failed";

// 503: Unavailable
inline constexpr std::string_view kNotReady = "not_ready";

// Issue 15: registries and app signing keys (registry_access.h, manager_registries.cc,
// manager_signing_keys.cc).
inline constexpr std::string_view kInvalidUrl = "invalid_url";                  // 400
inline constexpr std::string_view kInvalidSecret = "invalid_secret";            // 400
inline constexpr std::string_view kRegistryHostMismatch = "registry_host_mismatch";  // 400
inline constexpr std::string_view kRegistryNotFound = "registry_not_found";     // 404
inline constexpr std::string_view kRegistryExists = "registry_exists";          // 409
inline constexpr std::string_view kRegistryInUse = "registry_in_use";           // 409
inline constexpr std::string_view kSigningKeyPending = "signing_key_pending";   // 409
inline constexpr std::string_view kRegistrySecretUnsealFailed = "registry_secret_unseal_failed";  // 500
inline constexpr std::string_view kSigningKeyUnsealFailed = "signing_key_unseal_failed";          // 500

// Issue 15: conversion jobs (manager_conversions.cc, conversion_runner.cc). A job's own failure
// codes (its "error.code") are convert::FailureCode's (oci/reasons.h, convert.h) and these.
inline constexpr std::string_view kConversionNotFound = "conversion_not_found";  // 404
inline constexpr std::string_view kConversionFinished = "conversion_finished";   // 409: cancel of an ended job
inline constexpr std::string_view kInterrupted = "interrupted";                  // job: gave up after restarts

// Issue 18: zone CA rotation (manager_ca_rotation.cc).
inline constexpr std::string_view kCaRotationPending = "ca_rotation_pending";  // 409: one pending or approved
inline constexpr std::string_view kNoApprovedCa = "no_approved_ca";            // 409: activate with none approved
inline constexpr std::string_view kZoneCaNotFound = "zone_ca_not_found";       // 404

}  // namespace vouch::api
