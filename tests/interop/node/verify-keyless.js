#!/usr/bin/env node
// Independent check of a keyless Sigstore bundle with @sigstore/verify, fully offline.
//
//   node verify-keyless.js BUNDLE.json TRUSTED_ROOT.json [ARTIFACT]
//
// The trust material is the trusted root file alone (no TUF, no network). The default thresholds apply: one
// verified timestamp (a Rekor integrated time bound by its SET, or an RFC 3161 token), one SCT, one verified
// transparency-log entry. ARTIFACT is needed only for messageSignature bundles.
//
// Exit 0 and one JSON line on stdout (the certificate's identity) on success; exit 1 with the error on stderr
// otherwise; exit 2 on a usage error.
'use strict';

const fs = require('node:fs');

const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

function main(argv) {
  if (argv.length < 2 || argv.length > 3) {
    process.stderr.write('usage: verify-keyless.js BUNDLE.json TRUSTED_ROOT.json [ARTIFACT]\n');
    return 2;
  }
  const [bundlePath, rootPath, artifactPath] = argv;
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath, 'utf8')));
  const artifact = artifactPath === undefined ? undefined : fs.readFileSync(artifactPath);
  const signer = new Verifier(toTrustMaterial(root)).verify(toSignedEntity(bundle, artifact));
  const identity = signer.identity || {};
  process.stdout.write(JSON.stringify({ verified: true, identity: identity.subjectAlternativeName || null }) + '\n');
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  const code = err && err.code ? `${err.code}: ` : '';
  process.stderr.write(`verification failed: ${code}${err && err.message ? err.message : err}\n`);
  process.exitCode = 1;
}
