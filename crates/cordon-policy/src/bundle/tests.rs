use std::collections::BTreeMap;

use super::{BundleError, Contents, SigningKey, archive, build, bundled_name, open};

const POLICY: &str = "apiVersion: cordon/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  inventory_files: [../inv/hosts.yaml]\n  groups:\n    web: {labels: {app: web}}\n  rules:\n    - {name: r, from: [web], to: [web], ports: [tcp/80], action: allow}\n";
const INVENTORY: &str = "apiVersion: cordon/v1\nkind: Inventory\nworkloads:\n  - {name: web-1, ips: [10.0.0.1], labels: {app: web}}\n";

fn contents() -> Contents {
    let mut files = BTreeMap::new();
    files.insert("policy/p.yaml".to_string(), POLICY.as_bytes().to_vec());
    files.insert("inv/hosts.yaml".to_string(), INVENTORY.as_bytes().to_vec());
    files.insert("responses.yaml".to_string(), b"kind: Responses\n".to_vec());
    Contents {
        policy: "policy/p.yaml".to_string(),
        inventory: Vec::new(),
        responses: Some("responses.yaml".to_string()),
        files,
    }
}

/// The members of a good bundle, to be altered.
fn members(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    archive::read(bytes).unwrap().into_iter().collect()
}

fn repack(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let refs: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    archive::write(&refs).unwrap()
}

#[test]
fn a_signed_bundle_opens_and_its_policy_reads_its_own_inventory() {
    let key = SigningKey::generate().unwrap();
    let bytes = build(&key, 7, "2026-12-07T00:00:00Z", &contents()).unwrap();
    let bundle = open(&bytes, &[key.public()]).unwrap();
    assert_eq!(bundle.version(), 7);
    assert_eq!(bundle.signer(), key.public());
    assert_eq!(bundle.manifest().key, key.public().id());
    assert_eq!(bundle.responses(), Some(b"kind: Responses\n".as_slice()));
    let policy = bundle.policy().unwrap();
    assert_eq!(
        policy.workloads.len(),
        1,
        "the inventory came from the bundle"
    );
    // The same contents sign to the same bytes: bundles are reproducible.
    assert_eq!(
        bytes,
        build(&key, 7, "2026-12-07T00:00:00Z", &contents()).unwrap()
    );
}

#[test]
fn keys_survive_their_pem_forms() {
    let key = SigningKey::generate().unwrap();
    let again = SigningKey::from_pem(&key.to_pem()).unwrap();
    assert_eq!(again.public(), key.public());
    let public = super::PublicKey::from_pem(&key.public().to_pem()).unwrap();
    assert_eq!(public, key.public());
    assert!(super::PublicKey::from_pem(&key.to_pem()).is_err());
    assert!(
        SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .is_err()
    );
    assert!(
        !format!("{key:?}").contains("PRIVATE"),
        "no secret in Debug"
    );
}

#[test]
fn every_kind_of_tampering_is_refused_with_its_reason() {
    let key = SigningKey::generate().unwrap();
    let other = SigningKey::generate().unwrap();
    let good = build(&key, 3, "2026-12-07T00:00:00Z", &contents()).unwrap();
    let trust = [key.public()];
    let reason = |bytes: &[u8]| open(bytes, &trust).unwrap_err();

    // A changed byte in a file.
    let mut m = members(&good);
    let policy = m
        .iter_mut()
        .find(|(n, _)| n == "files/policy/p.yaml")
        .unwrap();
    policy.1[40] ^= 1;
    assert!(
        matches!(reason(&repack(&m)), BundleError::Tampered { name } if name == "policy/p.yaml")
    );

    // Two files swapped.
    let mut m = members(&good);
    let a = m
        .iter()
        .position(|(n, _)| n == "files/inv/hosts.yaml")
        .unwrap();
    let b = m
        .iter()
        .position(|(n, _)| n == "files/policy/p.yaml")
        .unwrap();
    let (da, db) = (m[a].1.clone(), m[b].1.clone());
    m[a].1 = db;
    m[b].1 = da;
    assert!(matches!(reason(&repack(&m)), BundleError::Tampered { .. }));

    // A changed manifest (a higher version written in by hand).
    let mut m = members(&good);
    let manifest = m.iter_mut().find(|(n, _)| n == "manifest.json").unwrap();
    manifest.1 = String::from_utf8(manifest.1.clone())
        .unwrap()
        .replace("\"version\": 3", "\"version\": 4")
        .into_bytes();
    assert!(matches!(
        reason(&repack(&m)),
        BundleError::ManifestChanged { .. }
    ));

    // Signed with another key.
    let foreign = build(&other, 3, "2026-12-07T00:00:00Z", &contents()).unwrap();
    let e = reason(&foreign);
    assert!(
        e.to_string().contains(&other.public().id()),
        "names the signer: {e}"
    );

    // Unsigned: no signature, then no manifest.
    let m: Vec<_> = members(&good)
        .into_iter()
        .filter(|(n, _)| n != "manifest.sig")
        .collect();
    assert!(matches!(
        reason(&repack(&m)),
        BundleError::Unsigned("manifest.sig")
    ));
    let m: Vec<_> = members(&good)
        .into_iter()
        .filter(|(n, _)| n != "manifest.json")
        .collect();
    assert!(matches!(
        reason(&repack(&m)),
        BundleError::Unsigned("manifest.json")
    ));

    // A file added, a file removed.
    let mut m = members(&good);
    m.push(("files/extra.yaml".to_string(), b"x".to_vec()));
    assert!(matches!(reason(&repack(&m)), BundleError::Unlisted { .. }));
    let m: Vec<_> = members(&good)
        .into_iter()
        .filter(|(n, _)| n != "files/inv/hosts.yaml")
        .collect();
    assert!(matches!(reason(&repack(&m)), BundleError::Missing { .. }));

    // Cut anywhere: refused, never a panic.
    for cut in [0, 1, 10, good.len() / 2, good.len() - 9, good.len() - 1] {
        assert!(open(&good[..cut], &trust).is_err(), "cut at {cut}");
    }
    // Not a bundle at all.
    assert!(matches!(
        reason(b"apiVersion: cordon/v1\n"),
        BundleError::Archive(_)
    ));
    // No trusted key at all trusts nothing.
    assert!(open(&good, &[]).is_err());
}

#[test]
fn links_and_climbing_names_are_refused() {
    use flate2::write::GzEncoder;
    let gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    tar.append_link(&mut header, "files/p.yaml", "/etc/shadow")
        .unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    assert!(matches!(
        archive::read(&bytes),
        Err(BundleError::Member { .. })
    ));

    for bad in ["../x", "/etc/x", "a//b", "a/./b", "a\\b", ""] {
        assert!(super::check_name(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        bundled_name("policy", "../inv/a.yaml").as_deref(),
        Some("inv/a.yaml")
    );
    assert_eq!(
        bundled_name("", "../a.yaml"),
        None,
        "never out of the bundle"
    );
}

#[test]
fn a_member_claiming_more_than_the_limit_is_refused_before_it_is_read() {
    use std::io::Write as _;
    let mut header = tar::Header::new_ustar();
    header.set_path("files/big").unwrap();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(1 << 40);
    header.set_cksum();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(header.as_bytes()).unwrap();
    gz.write_all(&[0u8; 4096]).unwrap();
    let bytes = gz.finish().unwrap();
    let e = archive::read(&bytes).unwrap_err();
    assert!(e.to_string().contains("limit"), "{e}");
}
