#!/usr/bin/env node
// Independent check of a Sigstore bundle with @sigstore/verify, fully offline.
//
//   node verify-bundle.js BUNDLE.json PUBKEY.pem [ARTIFACT]
//   node verify-bundle.js BUNDLE.json --trusted-root TRUSTED_ROOT.json [ARTIFACT]
//
// PUBKEY.pem: a key-based bundle. The trusted root is empty (no transparency logs, no CAs, no TSAs): a bundle signed
// offline with a key carries no tlog entry and no certificate, so the only thing that can make it verify is the
// signature under the public key we hand over. The key finder answers only for the hint stella should have
// written (base64 of the SHA-256 of the DER SubjectPublicKeyInfo), so a wrong hint fails too.
//
// --trusted-root: a keyless bundle, checked against that trusted root file alone (no TUF, no network) with the
// default thresholds: one verified timestamp (a Rekor integrated time bound by its SET, or an RFC 3161 token),
// one SCT, one verified transparency-log entry.
//
// ARTIFACT is needed only for messageSignature bundles; DSSE bundles carry their payload.
// Exit 0 and one JSON line on stdout on success; exit 1 with the error on stderr otherwise;
// exit 2 on a usage error.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');

const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const EMPTY_ROOT = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

function keyTrust(keyPath) {
  const publicKey = crypto.createPublicKey(fs.readFileSync(keyPath));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const expectedHint = crypto.createHash('sha256').update(spki).digest('base64');
  const keyFinder = (hint) => {
    if (hint !== expectedHint) {
      throw new Error(`unknown key hint ${JSON.stringify(hint)}; expected ${expectedHint}`);
    }
    return { publicKey, validFor: () => true };
  };
  return {
    material: toTrustMaterial(TrustedRoot.fromJSON(EMPTY_ROOT), keyFinder),
    options: { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 },
    out: { hint: expectedHint, keyType: publicKey.asymmetricKeyType },
  };
}

function rootTrust(rootPath) {
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath, 'utf8')));
  return { material: toTrustMaterial(root), options: {}, out: {} };
}

function main(argv) {
  const keyless = argv[1] === '--trusted-root';
  const rest = keyless ? argv.slice(2) : argv.slice(1);
  if (argv.length < 2 || rest.length < 1 || rest.length > 2) {
    process.stderr.write(
      'usage: verify-bundle.js BUNDLE.json (PUBKEY.pem | --trusted-root ROOT.json) [ARTIFACT]\n',
    );
    return 2;
  }
  const [bundlePath] = argv;
  const [trustPath, artifactPath] = rest;
  const trust = keyless ? rootTrust(trustPath) : keyTrust(trustPath);
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const artifact = artifactPath === undefined ? undefined : fs.readFileSync(artifactPath);
  const signer = new Verifier(trust.material, trust.options).verify(toSignedEntity(bundle, artifact));

  const out = { verified: true, ...trust.out };
  if (signer.identity && signer.identity.subjectAlternativeName) {
    out.identity = signer.identity.subjectAlternativeName;
  }
  if (bundle.content.$case === 'dsseEnvelope') {
    out.payloadType = bundle.content.dsseEnvelope.payloadType;
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  const code = err && err.code ? `${err.code}: ` : '';
  process.stderr.write(`verification failed: ${code}${err && err.message ? err.message : err}\n`);
  process.exitCode = 1;
}
