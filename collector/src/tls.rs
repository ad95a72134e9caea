//! The local default's certificates: a self-signed CA (`DIR/tls/ca.pem`) and a server
//! certificate for `localhost`, `127.0.0.1` and `::1` signed by it. Generated once.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{io_err, write_atomic, Error, Result};

fn tls_err(e: impl std::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

/// Creates `DIR/tls/{ca.pem,server.pem,server-key.pem}` unless they exist.
pub fn ensure_certs(data_dir: &Path) -> Result<()> {
    let dir = data_dir.join("tls");
    if dir.join("server-key.pem").exists() && dir.join("ca.pem").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca.distinguished_name
        .push(DnType::CommonName, "Khien collector local CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(tls_err)?;

    let key = KeyPair::generate().map_err(tls_err)?;
    let mut host = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        if !h.trim().is_empty() {
            host.push(h.trim().to_owned());
        }
    }
    let mut params = CertificateParams::new(host).map_err(tls_err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "khien collector");
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(tls_err)?;

    write_atomic(&dir.join("ca.pem"), ca_cert.pem().as_bytes())?;
    write_atomic(&dir.join("server.pem"), cert.pem().as_bytes())?;
    write_atomic(&dir.join("server-key.pem"), key.serialize_pem().as_bytes())?;
    Ok(())
}

/// The rustls server configuration from `DIR/tls`.
pub fn server_config(data_dir: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let dir = data_dir.join("tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .map_err(tls_err)?
        .collect::<std::result::Result<_, _>>()
        .map_err(tls_err)?;
    let key = PrivateKeyDer::from_pem_file(dir.join("server-key.pem")).map_err(tls_err)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(tls_err)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
