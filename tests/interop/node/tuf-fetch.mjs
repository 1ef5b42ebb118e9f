#!/usr/bin/env node
// Independent TUF client: tuf-js 3.1.0's Updater fetching a stella mirror served over HTTP.
//
//   node tuf-fetch.mjs ROOT.json BASE_URL WORKDIR [TARGET_PATH...]
//
// ROOT.json is the pinned (trusted) root, copied into WORKDIR/metadata as root.json before the
// updater starts; BASE_URL serves the mirror tree (BASE_URL/tuf/metadata/... and the targets under
// BASE_URL/). The updater refreshes (root rotation chain, timestamp, snapshot, targets), then for each
// TARGET_PATH looks the target up in the verified targets metadata and downloads it, and tuf-js checks
// its length and hashes. The mirror's targets are plain paths (consistent snapshots apply to metadata
// only), so the client is told not to prefix target file names with their hash.
//
// Exit 0 and one JSON object on stdout on success:
//   {"rootVersion": N, "targetsVersion": V, "known": [every target path], "targets": [{path, length,
//    sha256, file}]}
// Exit 1 with "ErrorClass: message" on stderr when tuf-js refuses; exit 2 on a usage error.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import { Updater } from 'tuf-js';

async function main(argv) {
  if (argv.length < 3) {
    process.stderr.write('usage: tuf-fetch.mjs ROOT.json BASE_URL WORKDIR [TARGET_PATH...]\n');
    return 2;
  }
  const [rootPath, baseUrl, workDir, ...wanted] = argv;
  const metadataDir = path.join(workDir, 'metadata');
  const targetDir = path.join(workDir, 'targets');
  fs.mkdirSync(metadataDir, { recursive: true });
  fs.mkdirSync(targetDir, { recursive: true });
  fs.copyFileSync(rootPath, path.join(metadataDir, 'root.json'));

  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  const updater = new Updater({
    metadataBaseUrl: `${base}tuf/metadata`,
    metadataDir,
    targetBaseUrl: base,
    targetDir,
    config: { prefixTargetsWithHash: false, fetchRetry: 0 },
  });
  await updater.refresh();

  const targets = [];
  for (const [n, targetPath] of wanted.entries()) {
    const info = await updater.getTargetInfo(targetPath);
    if (!info) {
      throw new Error(`target ${targetPath} is not in the trusted targets metadata`);
    }
    // One flat file per target: target paths contain directories the target dir does not have.
    const file = path.join(targetDir, `${n}-${path.basename(targetPath)}`);
    await updater.downloadTarget(info, file);
    const data = fs.readFileSync(file);
    targets.push({
      path: targetPath,
      length: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
      file,
    });
  }
  const trusted = updater.trustedSet;
  const result = {
    rootVersion: trusted.root.signed.version,
    targetsVersion: trusted.targets.signed.version,
    known: Object.keys(trusted.targets.signed.targets).sort(),
    targets,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`${error?.constructor?.name ?? 'Error'}: ${error?.message ?? error}\n`);
    process.exitCode = 1;
  },
);
