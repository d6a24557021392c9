// The AWS SDK for JavaScript v3 side of the S3 interop test
// (s3_sdk_interop.sh): writes the fixtures, and lists, fetches and writes
// objects with @aws-sdk/client-s3 against an s3rver endpoint.
//
//   node sdk_interop.mjs fixtures DIR
//       writes the fixture files into DIR and prints the manifest
//       ("RELATIVE_KEY<TAB>FILE" lines) on stdout
//   node sdk_interop.mjs check ENDPOINT BUCKET PREFIX MANIFEST
//       lists PREFIX with the SDK (small pages) and fetches every object:
//       the listing must hold exactly the manifest's keys (PREFIX + key) with
//       their sizes and MD5 ETags, and every body must equal its file
//   node sdk_interop.mjs write ENDPOINT BUCKET PREFIX MANIFEST
//       puts every file under PREFIX + key with the SDK
//
// check and write print one "PASS ..." or "FAIL ..." line per assertion and
// exit 1 if any failed (2 on usage errors).

import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

let failed = 0;
function pass(what) {
  console.log(`PASS ${what}`);
}
function fail(what) {
  failed += 1;
  console.log(`FAIL ${what}`);
}
function expect(cond, what, detail = '') {
  if (cond) pass(what);
  else fail(detail ? `${what}: ${detail}` : what);
}

const md5 = (bytes) => createHash('md5').update(bytes).digest('hex');
const unquote = (etag) => (etag ?? '').replace(/^"|"$/g, '');

// Deterministic pseudo-random bytes (xorshift32), so a failure reproduces.
function pseudoRandom(n, seed) {
  const out = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

// Keys relative to a prefix. They follow our key rules (printable ASCII
// without spaces, no empty/./.. components) and avoid s3rver's listing-order
// deviation (no key continuing a common prefix with a byte below '/').
function fixtures() {
  const nul = Buffer.alloc(4099);
  for (let i = 0; i < nul.length; i++) nul[i] = i % 3 === 0 ? 0 : (i * 7) & 0xff;
  return [
    ['hello.txt', Buffer.from('hello, interop\n')],
    ['a/b-c_d.e~f', Buffer.from('key with - _ . ~ inside a component\n')],
    // Every printable ASCII punctuation character our key rules allow.
    ['punct/a!"#$%&\'()*+,-.:;<=>?@[\\]^_`{|}~z', Buffer.from('URI-encoded on the wire, XML-escaped in listings\n')],
    ['bin/nul.bin', Buffer.concat([Buffer.from([0, 0, 0]), nul, Buffer.from([0])])],
    ['empty', Buffer.alloc(0)],
    ['big/3mib.bin', pseudoRandom(3 * 1024 * 1024, 20240606)],
  ];
}

function readManifest(path) {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [key, file] = l.split('\t');
      return { key, file, bytes: readFileSync(file) };
    });
}

async function client(endpoint) {
  let sdk;
  try {
    sdk = await import('@aws-sdk/client-s3');
  } catch (e) {
    console.log(`FAIL cannot load @aws-sdk/client-s3 (${e.code ?? e.message}): run 'npm ci' in the repository root`);
    process.exit(1);
  }
  const s3 = new sdk.S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  return { sdk, s3 };
}

async function check(endpoint, bucket, prefix, manifestPath) {
  const want = readManifest(manifestPath);
  const { sdk, s3 } = await client(endpoint);

  // List with pages of 2 keys, following the continuation tokens.
  const listed = new Map();
  let token;
  let pages = 0;
  do {
    const page = await s3.send(
      new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, MaxKeys: 2, ContinuationToken: token }),
    );
    pages += 1;
    for (const o of page.Contents ?? []) listed.set(o.Key, { size: o.Size, etag: unquote(o.ETag) });
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && pages < 1000);

  const wantKeys = want.map((w) => prefix + w.key).sort();
  const gotKeys = [...listed.keys()].sort();
  expect(
    JSON.stringify(gotKeys) === JSON.stringify(wantKeys),
    `sdk lists the ${wantKeys.length} objects under ${prefix} (${pages} pages)`,
    `got ${JSON.stringify(gotKeys)}`,
  );

  for (const w of want) {
    const key = prefix + w.key;
    const l = listed.get(key);
    expect(
      l && l.size === w.bytes.length && l.etag === md5(w.bytes),
      `sdk list entry ${key} has size ${w.bytes.length} and the MD5 ETag`,
      l ? `size ${l.size}, etag ${l.etag}` : 'missing',
    );
    try {
      const got = await s3.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }));
      const body = Buffer.from(await got.Body.transformToByteArray());
      expect(
        body.equals(w.bytes),
        `sdk get ${key} is byte-identical (${w.bytes.length} bytes)`,
        `got ${body.length} bytes, md5 ${md5(body)}, want md5 ${md5(w.bytes)}`,
      );
    } catch (e) {
      fail(`sdk get ${key}: ${e.name}: ${e.message}`);
    }
  }
}

async function write(endpoint, bucket, prefix, manifestPath) {
  const want = readManifest(manifestPath);
  const { sdk, s3 } = await client(endpoint);
  for (const w of want) {
    const key = prefix + w.key;
    try {
      const r = await s3.send(
        new sdk.PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: w.bytes,
          ContentLength: w.bytes.length,
          ContentType: 'application/octet-stream',
        }),
      );
      expect(unquote(r.ETag) === md5(w.bytes), `sdk put ${key} (${w.bytes.length} bytes)`, `etag ${r.ETag}`);
    } catch (e) {
      fail(`sdk put ${key}: ${e.name}: ${e.message}`);
    }
  }
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === 'fixtures' && args.length === 1) {
    for (const [key, bytes] of fixtures()) {
      const file = join(args[0], key);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, bytes);
      console.log(`${key}\t${file}`);
    }
  } else if (command === 'check' && args.length === 4) {
    await check(...args);
  } else if (command === 'write' && args.length === 4) {
    await write(...args);
  } else {
    console.error('usage: node sdk_interop.mjs fixtures DIR | check|write ENDPOINT BUCKET PREFIX MANIFEST');
    process.exit(2);
  }
} catch (e) {
  fail(`${command}: ${e.name}: ${e.message}`);
}
process.exit(failed > 0 ? 1 : 0);
