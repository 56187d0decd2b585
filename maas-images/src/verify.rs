//! OpenPGP verification of simplestreams documents (sequoia-openpgp).
//!
//! Owns [`Keyring`] (binary or armoured), [`Verification`] (a keyring, or the
//! source's explicit `skip_keyring_verification`) and [`Verified`], the only
//! way to hand bytes to the simplestreams parsers. A document passes only if
//! at least one signature is good and made by a key in the keyring; anything
//! else is a typed [`SignatureFailure`].

use std::cell::RefCell;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    DetachedVerifierBuilder, MessageLayer, MessageStructure, VerificationError, VerificationHelper,
    VerifierBuilder,
};
use openpgp::policy::StandardPolicy;
use openpgp::{Cert, KeyHandle};

use crate::error::{Error, Result};

/// A set of OpenPGP certificates trusted to sign a boot source.
#[derive(Clone)]
pub struct Keyring {
    certs: Vec<Cert>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

impl Keyring {
    /// Reads a keyring: binary (`gpg --export`, the `.gpg` files MAAS ships) or
    /// ASCII-armoured (`gpg --export --armor`).
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let parser = CertParser::from_bytes(data)
            .map_err(|e| Error::Keyring(format!("cannot parse: {e:#}")))?;
        let mut certs = Vec::new();
        for cert in parser {
            certs.push(cert.map_err(|e| Error::Keyring(format!("bad certificate: {e:#}")))?);
        }
        if certs.is_empty() {
            return Err(Error::Keyring("no certificate in keyring".into()));
        }
        Ok(Self { certs })
    }

    /// Reads a keyring file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&data)
    }

    /// The primary-key fingerprints, upper-case hex.
    pub fn fingerprints(&self) -> Vec<String> {
        self.certs
            .iter()
            .map(|c| c.fingerprint().to_hex())
            .collect()
    }
}

/// Who vouched for a [`Verified`] document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signer {
    /// A good signature by this key (fingerprint of the signing key, hex).
    Key(String),
    /// The source has `skip_keyring_verification` set.
    Skipped,
}

/// Bytes whose signature was checked (or whose check the source explicitly
/// skipped). Only this crate can make one, so parsers taking `&Verified<_>`
/// cannot be handed unchecked input.
#[derive(Clone, Debug)]
pub struct Verified<T> {
    inner: T,
    document: String,
    signer: Signer,
}

impl<T> Verified<T> {
    /// The verified value.
    pub fn get(&self) -> &T {
        &self.inner
    }

    /// The value, giving up the proof.
    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Where the document came from.
    pub fn document(&self) -> &str {
        &self.document
    }

    /// Who signed it.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

impl Verified<Bytes> {
    /// Wraps bytes without checking, as MAAS does for a source with
    /// `skip_keyring_verification`: a clearsigned text is reduced to its JSON
    /// (from the first `{` to the signature block).
    pub fn skipped(document: &str, data: Bytes) -> Self {
        Self {
            inner: strip_clearsign(data),
            document: document.to_owned(),
            signer: Signer::Skipped,
        }
    }
}

const CLEARSIGN_HEADER: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const SIGNATURE_HEADER: &[u8] = b"-----BEGIN PGP SIGNATURE-----";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn strip_clearsign(data: Bytes) -> Bytes {
    if !data.trim_ascii_start().starts_with(CLEARSIGN_HEADER) {
        return data;
    }
    let Some(start) = data.iter().position(|&b| b == b'{') else {
        return data;
    };
    let end = find(&data[start..], SIGNATURE_HEADER).map_or(data.len(), |e| start + e);
    data.slice(start..end)
}

/// Why a signature check failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureFailure {
    /// The document carries no OpenPGP signature at all.
    NotSigned,
    /// Signed, but by none of the keyring's keys.
    UnknownKey {
        /// Issuer key ids/fingerprints named by the signatures.
        issuers: Vec<String>,
    },
    /// A signature by a keyring key that does not match the text (tampering).
    BadSignature(String),
    /// The key is in the keyring but not usable (expired, revoked, not signing-capable).
    BadKey(String),
    /// Not parseable as a signed OpenPGP message.
    Malformed(String),
}

impl fmt::Display for SignatureFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotSigned => f.write_str("document is not signed"),
            Self::UnknownKey { issuers } => write!(
                f,
                "signed by a key not in the keyring (issuer {})",
                issuers.join(", ")
            ),
            Self::BadSignature(e) => write!(f, "bad signature: {e}"),
            Self::BadKey(e) => write!(f, "signing key not usable: {e}"),
            Self::Malformed(e) => write!(f, "malformed signed message: {e}"),
        }
    }
}

/// How a source's documents are checked.
#[derive(Clone, Debug)]
pub enum Verification {
    /// Require a good signature by a key in this keyring.
    Keyring(Arc<Keyring>),
    /// `skip_keyring_verification`: accept unsigned documents and ignore signatures.
    Skip,
}

impl Verification {
    /// Checks an inline-signed document (clearsigned `.sjson`, or a signed
    /// OpenPGP message) and returns the signed text.
    pub fn verify_inline(&self, document: &str, data: Bytes) -> Result<Verified<Bytes>> {
        let keyring = match self {
            Verification::Skip => return Ok(Verified::skipped(document, data)),
            Verification::Keyring(k) => k,
        };
        let fail = |failure| Error::Signature {
            document: document.to_owned(),
            failure,
        };
        let trimmed = data.trim_ascii_start();
        if trimmed.starts_with(b"{") || trimmed.starts_with(b"[") || trimmed.is_empty() {
            return Err(fail(SignatureFailure::NotSigned));
        }
        let outcome = RefCell::new(None);
        let policy = StandardPolicy::new();
        let helper = Helper {
            keyring,
            outcome: &outcome,
        };
        let result = VerifierBuilder::from_bytes(&data[..])
            .and_then(|b| b.with_policy(&policy, None, helper))
            .and_then(|mut v| {
                let mut out = Vec::with_capacity(data.len());
                v.read_to_end(&mut out)?;
                Ok(out)
            });
        match (result, outcome.into_inner()) {
            (Ok(text), Some(Ok(fpr))) => Ok(Verified {
                inner: Bytes::from(text),
                document: document.to_owned(),
                signer: Signer::Key(fpr),
            }),
            (_, Some(Err(failure))) => Err(fail(failure)),
            (Err(e), _) => Err(fail(SignatureFailure::Malformed(format!("{e:#}")))),
            // The helper always records an outcome when the message is complete.
            (Ok(_), None) => Err(fail(SignatureFailure::NotSigned)),
        }
    }

    /// Checks a document against a detached signature (`.gpg`/`.asc`).
    pub fn verify_detached(
        &self,
        document: &str,
        data: Bytes,
        signature: &[u8],
    ) -> Result<Verified<Bytes>> {
        let keyring = match self {
            Verification::Skip => return Ok(Verified::skipped(document, data)),
            Verification::Keyring(k) => k,
        };
        let fail = |failure| Error::Signature {
            document: document.to_owned(),
            failure,
        };
        let outcome = RefCell::new(None);
        let policy = StandardPolicy::new();
        let helper = Helper {
            keyring,
            outcome: &outcome,
        };
        let result = DetachedVerifierBuilder::from_bytes(signature)
            .and_then(|b| b.with_policy(&policy, None, helper))
            .and_then(|mut v| v.verify_bytes(&data));
        match (result, outcome.into_inner()) {
            (Ok(()), Some(Ok(fpr))) => Ok(Verified {
                inner: data,
                document: document.to_owned(),
                signer: Signer::Key(fpr),
            }),
            (_, Some(Err(failure))) => Err(fail(failure)),
            (Err(e), _) => Err(fail(SignatureFailure::Malformed(format!("{e:#}")))),
            (Ok(()), None) => Err(fail(SignatureFailure::NotSigned)),
        }
    }
}

/// Accepts a message only if one signature is good and by a keyring key;
/// records why otherwise so the caller gets a typed failure.
struct Helper<'a> {
    keyring: &'a Keyring,
    outcome: &'a RefCell<Option<std::result::Result<String, SignatureFailure>>>,
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, _ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self.keyring.certs.clone())
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        let mut failure: Option<SignatureFailure> = None;
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::SignatureGroup { results } => {
                    for r in results {
                        let this = match r {
                            Ok(good) => {
                                *self.outcome.borrow_mut() =
                                    Some(Ok(good.ka.key().fingerprint().to_hex()));
                                return Ok(());
                            }
                            Err(VerificationError::MissingKey { sig }) => {
                                SignatureFailure::UnknownKey {
                                    issuers: sig.get_issuers().iter().map(|h| h.to_hex()).collect(),
                                }
                            }
                            Err(VerificationError::BadSignature { error, .. }) => {
                                SignatureFailure::BadSignature(format!("{error:#}"))
                            }
                            Err(VerificationError::BadKey { error, .. })
                            | Err(VerificationError::UnboundKey { error, .. }) => {
                                SignatureFailure::BadKey(format!("{error:#}"))
                            }
                            Err(VerificationError::MalformedSignature { error, .. }) => {
                                SignatureFailure::Malformed(format!("{error:#}"))
                            }
                            Err(other) => SignatureFailure::Malformed(other.to_string()),
                        };
                        // A bad signature by a trusted key says more than an unknown issuer.
                        let replace = match (&failure, &this) {
                            (None, _) => true,
                            (Some(SignatureFailure::UnknownKey { .. }), _) => {
                                !matches!(this, SignatureFailure::UnknownKey { .. })
                            }
                            _ => false,
                        };
                        if replace {
                            failure = Some(this);
                        }
                    }
                }
                MessageLayer::Encryption { .. } => {
                    failure = Some(SignatureFailure::Malformed(
                        "encrypted message, expected a signed one".into(),
                    ));
                }
                MessageLayer::Compression { .. } => {}
            }
        }
        let failure = failure.unwrap_or(SignatureFailure::NotSigned);
        let message = failure.to_string();
        *self.outcome.borrow_mut() = Some(Err(failure));
        Err(openpgp::Error::InvalidOperation(message).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::serialize::Serialize;
    use openpgp::serialize::stream::{Armorer, Message, Signer as PgpSigner};
    use std::io::Write;

    fn key() -> Cert {
        let (cert, _) = CertBuilder::general_purpose(Some("test <t@example.invalid>"))
            .generate()
            .unwrap();
        cert
    }

    fn keyring(cert: &Cert) -> Verification {
        let mut buf = Vec::new();
        cert.serialize(&mut buf).unwrap();
        Verification::Keyring(Arc::new(Keyring::from_bytes(&buf).unwrap()))
    }

    fn clearsign(cert: &Cert, text: &[u8]) -> Bytes {
        let policy = StandardPolicy::new();
        let keypair = cert
            .keys()
            .with_policy(&policy, None)
            .supported()
            .for_signing()
            .secret()
            .next()
            .unwrap()
            .key()
            .clone()
            .into_keypair()
            .unwrap();
        let mut out = Vec::new();
        {
            let m = Message::new(&mut out);
            let mut s = PgpSigner::new(m, keypair)
                .unwrap()
                .cleartext()
                .build()
                .unwrap();
            s.write_all(text).unwrap();
            s.finalize().unwrap();
        }
        Bytes::from(out)
    }

    #[test]
    fn good_clearsigned_document_verifies() {
        let cert = key();
        let signed = clearsign(&cert, b"{\"a\": 1}\n");
        assert!(signed.starts_with(CLEARSIGN_HEADER));
        let v = keyring(&cert).verify_inline("doc", signed).unwrap();
        assert_eq!(v.get().trim_ascii(), b"{\"a\": 1}");
        assert!(matches!(v.signer(), Signer::Key(_)));
    }

    #[test]
    fn tampered_text_is_a_bad_signature() {
        let cert = key();
        let signed = clearsign(&cert, b"{\"a\": 1}\n");
        let tampered = String::from_utf8(signed.to_vec())
            .unwrap()
            .replace("\"a\": 1", "\"a\": 2");
        let e = keyring(&cert)
            .verify_inline("doc", Bytes::from(tampered))
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::Signature {
                    failure: SignatureFailure::BadSignature(_),
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn other_key_is_unknown() {
        let signed = clearsign(&key(), b"{}\n");
        let e = keyring(&key()).verify_inline("doc", signed).unwrap_err();
        assert!(e.to_string().contains("not in the keyring"), "{e}");
    }

    #[test]
    fn plain_json_is_not_signed_unless_skipped() {
        let cert = key();
        let e = keyring(&cert)
            .verify_inline("doc", Bytes::from_static(b"{}"))
            .unwrap_err();
        assert!(e.to_string().contains("not signed"), "{e}");
        let v = Verification::Skip
            .verify_inline("doc", Bytes::from_static(b"{}"))
            .unwrap();
        assert_eq!(v.signer(), &Signer::Skipped);
    }

    #[test]
    fn skip_strips_clearsign_armour() {
        let signed = clearsign(&key(), b"{\"a\": 1}\n");
        let v = Verification::Skip.verify_inline("doc", signed).unwrap();
        assert_eq!(v.get().trim_ascii(), b"{\"a\": 1}");
    }

    #[test]
    fn armoured_keyring_and_detached_signature() {
        let cert = key();
        let mut armoured = Vec::new();
        cert.armored().serialize(&mut armoured).unwrap();
        let ring = Verification::Keyring(Arc::new(Keyring::from_bytes(&armoured).unwrap()));
        let policy = StandardPolicy::new();
        let keypair = cert
            .keys()
            .with_policy(&policy, None)
            .for_signing()
            .secret()
            .next()
            .unwrap()
            .key()
            .clone()
            .into_keypair()
            .unwrap();
        let mut sig = Vec::new();
        {
            let m = Armorer::new(Message::new(&mut sig))
                .kind(openpgp::armor::Kind::Signature)
                .build()
                .unwrap();
            let mut s = PgpSigner::new(m, keypair)
                .unwrap()
                .detached()
                .build()
                .unwrap();
            s.write_all(b"{}").unwrap();
            s.finalize().unwrap();
        }
        ring.verify_detached("doc", Bytes::from_static(b"{}"), &sig)
            .unwrap();
        let e = ring
            .verify_detached("doc", Bytes::from_static(b"{ }"), &sig)
            .unwrap_err();
        assert!(e.to_string().contains("bad signature"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_keyrings_and_messages_never_panic(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
        ) {
            let _ = Keyring::from_bytes(&data);
            let ring = Verification::Keyring(Arc::new(Keyring { certs: Vec::new() }));
            let _ = ring.verify_inline("fuzz", Bytes::from(data.clone()));
            let _ = ring.verify_detached("fuzz", Bytes::from_static(b"{}"), &data);
            let _ = Verification::Skip.verify_inline("fuzz", Bytes::from(data));
        }

        #[test]
        fn damaged_clearsigned_messages_never_verify_wrongly(pos in 0usize..10_000, byte in proptest::prelude::any::<u8>()) {
            let cert = fixed_key();
            let signed = clearsign(cert, b"{\"a\": 1}\n");
            let mut damaged = signed.to_vec();
            let pos = pos % damaged.len();
            proptest::prop_assume!(damaged[pos] != byte);
            damaged[pos] = byte;
            // Either rejected, or accepted with exactly the signed text (a
            // change in armour whitespace/headers may be harmless).
            if let Ok(v) = keyring(cert).verify_inline("doc", Bytes::from(damaged)) {
                proptest::prop_assert_eq!(v.get().trim_ascii(), b"{\"a\": 1}".as_slice());
            }
        }
    }

    fn fixed_key() -> &'static Cert {
        static KEY: std::sync::OnceLock<Cert> = std::sync::OnceLock::new();
        KEY.get_or_init(key)
    }

    #[test]
    fn garbage_keyring_is_an_error() {
        assert!(Keyring::from_bytes(b"not a key").is_err());
        assert!(Keyring::from_bytes(b"").is_err());
    }
}
