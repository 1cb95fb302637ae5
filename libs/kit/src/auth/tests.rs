use std::collections::BTreeMap;

use prost::Message;

use super::*;

#[test]
fn access_table_lists_every_rpc() {
    let set = prost_types::FileDescriptorSet::decode(invoicer_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut paths = Vec::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                paths.push(format!(
                    "/{}.{}/{}",
                    file.package(),
                    service.name(),
                    method.name()
                ));
            }
        }
    }
    assert!(paths.len() >= 20, "{paths:?}");
    for path in &paths {
        assert!(
            allowed_roles(path).is_some(),
            "{path} is missing from RPC_ACCESS"
        );
    }
    for (listed, _) in RPC_ACCESS {
        let known = paths.iter().any(|p| p == listed) || listed.starts_with("/grpc.reflection.");
        assert!(known, "{listed} in RPC_ACCESS names no RPC");
    }
}

#[test]
fn role_order_keeps_service_apart() {
    assert!(Role::Admin.is_at_least(Role::Operator));
    assert!(Role::Operator.is_at_least(Role::Operator));
    assert!(!Role::Viewer.is_at_least(Role::Operator));
    assert!(!Role::Service.is_at_least(Role::Viewer));
    assert!(!Role::Admin.is_at_least(Role::Service));
    assert!(Role::Service.is_at_least(Role::Service));
}

#[test]
fn token_list_parses_entries() {
    let hash = "A".repeat(64);
    let entries =
        parse_token_list(&format!(" operator:{hash} , viewer:{}", "b".repeat(64))).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].role, Role::Operator);
    assert_eq!(entries[0].sha256, "a".repeat(64));
    assert_eq!(entries[1].role, Role::Viewer);
}

#[test]
fn token_list_errors_name_the_entry() {
    let good = format!("viewer:{}", "a".repeat(64));
    let cases = [
        (format!("{good},operator"), 2, "expected ROLE:SHA256_HEX"),
        (
            format!("boss:{}", "a".repeat(64)),
            1,
            "unknown role \"boss\"",
        ),
        (format!("{good},{good},admin:abc"), 3, "found 3 characters"),
        (format!("admin:{}", "g".repeat(64)), 1, "64 hex digits"),
    ];
    for (list, position, expected) in cases {
        let (found, message) = parse_token_list(&list).unwrap_err();
        assert_eq!(found, position, "{list}: {message}");
        assert!(message.contains(expected), "{list}: {message}");
    }
}

#[test]
fn token_list_error_hides_pasted_token() {
    let (_, message) = parse_token_list("operator:my-raw-secret-token").unwrap_err();
    assert!(!message.contains("my-raw-secret-token"), "{message}");
}

fn policy() -> AccessPolicy {
    let tokens = [
        TokenEntry {
            role: Role::Operator,
            sha256: token_sha256_hex("op-token"),
            name: Some("erp".to_owned()),
        },
        TokenEntry {
            role: Role::Viewer,
            sha256: token_sha256_hex("view-token"),
            name: None,
        },
    ];
    let certificates = BTreeMap::from([("ops.company.example".to_owned(), Role::Admin)]);
    AccessPolicy::new(&tokens, &certificates, &Secret::new("svc-token")).unwrap()
}

#[test]
fn identify_by_token_name_and_fingerprint() {
    let policy = policy();
    let caller = policy.identify(Some(b"Bearer op-token"), &[]).unwrap();
    assert_eq!(caller.role, Role::Operator);
    assert_eq!(caller.name, "erp");
    let caller = policy.identify(Some(b"Bearer view-token"), &[]).unwrap();
    assert_eq!(caller.role, Role::Viewer);
    assert_eq!(
        caller.name,
        format!("viewer-{}", &token_sha256_hex("view-token")[..8])
    );
    let caller = policy.identify(Some(b"Bearer svc-token"), &[]).unwrap();
    assert_eq!(caller.role, Role::Service);
}

#[test]
fn identify_rejects_unknown_and_malformed() {
    let policy = policy();
    let headers: [&[u8]; 4] = [b"Bearer nope", b"Basic abc", b"Bearer ", b"\xff"];
    for header in headers {
        let denial = policy.identify(Some(header), &[]).unwrap_err();
        assert!(matches!(denial, Denial::Unauthenticated(_)), "{denial:?}");
    }
    let denial = policy.identify(None, &[]).unwrap_err();
    assert!(matches!(denial, Denial::Unauthenticated(_)), "{denial:?}");
}

#[test]
fn identify_by_certificate_name() {
    let policy = policy();
    let names = [
        "unknown.example".to_owned(),
        "ops.company.example".to_owned(),
    ];
    let caller = policy.identify(None, &names).unwrap();
    assert_eq!(caller.role, Role::Admin);
    assert_eq!(caller.name, "cert:ops.company.example");
    let denial = policy
        .identify(None, &["stranger.example".to_owned()])
        .unwrap_err();
    assert!(matches!(denial, Denial::Unauthenticated(ref m) if m.contains("stranger.example")));
}

#[test]
fn authorize_by_table() {
    let caller = |role| Caller {
        role,
        name: "t".to_owned(),
        authenticated: true,
    };
    let resend = "/invoicer.orchestrator.v1.OrchestratorService/ResendInvoice";
    let send = "/invoicer.mail_delivery.v1.MailDeliveryService/SendEmail";
    assert!(AccessPolicy::authorize(resend, &caller(Role::Operator)).is_ok());
    assert!(AccessPolicy::authorize(resend, &caller(Role::Admin)).is_ok());
    assert!(AccessPolicy::authorize(resend, &caller(Role::Viewer)).is_err());
    assert!(AccessPolicy::authorize(resend, &caller(Role::Service)).is_err());
    assert!(AccessPolicy::authorize(send, &caller(Role::Service)).is_ok());
    assert!(AccessPolicy::authorize(send, &caller(Role::Admin)).is_err());
    let unknown = AccessPolicy::authorize("/x.Y/Z", &caller(Role::Admin)).unwrap_err();
    assert!(matches!(unknown, Denial::PermissionDenied { .. }));
}

#[test]
fn invalid_config_entry_is_named() {
    let tokens = [TokenEntry {
        role: Role::Admin,
        sha256: "xyz".to_owned(),
        name: None,
    }];
    let error = AccessPolicy::new(&tokens, &BTreeMap::new(), &Secret::new("s")).unwrap_err();
    assert!(
        error.to_string().contains("entry 1 (role admin)"),
        "{error}"
    );
}

#[test]
fn secret_debug_is_redacted() {
    assert!(!format!("{:?}", Secret::new("hunter2")).contains("hunter2"));
}

#[test]
fn actor_prefers_authenticated_name() {
    let erp = Caller {
        role: Role::Operator,
        name: "erp".to_owned(),
        authenticated: true,
    };
    assert_eq!(erp.actor(""), "erp");
    assert_eq!(erp.actor("erp"), "erp");
    assert_eq!(erp.actor(" jane "), "erp (claimed: jane)");
    assert_eq!(Caller::anonymous().actor("jane"), "jane");
    assert_eq!(Caller::anonymous().actor(""), "anonymous");
}
