#!/usr/bin/env node
// Independent check of a key-based Sigstore bundle with @sigstore/verify, fully offline.
//
//   node verify-bundle.js BUNDLE.json PUBKEY.pem [ARTIFACT]
//
// The trusted root is empty (no transparency logs, no CAs, no TSAs): a bundle signed offline with a
// key carries no tlog entry and no certificate, so the only thing that can make it verify is the
// signature under the public key we hand over. The key finder answers only for the hint stella
// should have written (base64 of the SHA-256 of the DER SubjectPublicKeyInfo), so a wrong hint fails
// too. ARTIFACT is needed only for messageSignature bundles; DSSE bundles carry their payload.
//
// Exit 0 and one JSON line on stdout on success; exit 1 with the error on stderr otherwise;
// exit 2 on a usage error.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');

const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function main(argv) {
  if (argv.length < 2 || argv.length > 3) {
    process.stderr.write('usage: verify-bundle.js BUNDLE.json PUBKEY.pem [ARTIFACT]\n');
    return 2;
  }
  const [bundlePath, keyPath, artifactPath] = argv;
  const publicKey = crypto.createPublicKey(fs.readFileSync(keyPath));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const expectedHint = crypto.createHash('sha256').update(spki).digest('base64');

  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const emptyRoot = TrustedRoot.fromJSON({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  });
  const keyFinder = (hint) => {
    if (hint !== expectedHint) {
      throw new Error(`unknown key hint ${JSON.stringify(hint)}; expected ${expectedHint}`);
    }
    return { publicKey, validFor: () => true };
  };
  const trustMaterial = toTrustMaterial(emptyRoot, keyFinder);
  const artifact = artifactPath === undefined ? undefined : fs.readFileSync(artifactPath);
  const entity = toSignedEntity(bundle, artifact);
  new Verifier(trustMaterial, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(entity);

  const out = { verified: true, hint: expectedHint, keyType: publicKey.asymmetricKeyType };
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
