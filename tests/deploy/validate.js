#!/usr/bin/env node
'use strict';
// Validates rendered Kubernetes manifests offline (see lib/k8s-schema.js): every object of every
// file must match its Kubernetes or JobSet schema, with unknown fields rejected.
//
//   node tests/deploy/validate.js rendered/gpu.yaml rendered/cpu.yaml ...
// Prints one line per file (objects validated, by kind); exits 1 on any error.
const fs = require('node:fs');
const path = require('node:path');
const { validateObject, parseDocuments, describe } = require('./lib/k8s-schema');

let failed = false;
for (const file of process.argv.slice(2)) {
  const name = path.basename(file, '.yaml');
  let objects;
  try {
    objects = parseDocuments(fs.readFileSync(file, 'utf8'), file);
  } catch (e) {
    console.log(`FAIL ${name}: ${e.message}`);
    failed = true;
    continue;
  }
  const kinds = {};
  const problems = [];
  for (const object of objects) {
    kinds[object.kind] = (kinds[object.kind] || 0) + 1;
    for (const error of validateObject(object)) problems.push(`  ${describe(object)}: ${error}`);
  }
  const summary = Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ');
  if (objects.length === 0) problems.push('  no objects');
  if (problems.length) {
    console.log(`FAIL ${name}: ${problems.length} error(s) in ${objects.length} objects`);
    problems.forEach((p) => console.log(p));
    failed = true;
  } else {
    console.log(`ok   ${name}: ${objects.length} objects valid (${summary})`);
  }
}
if (process.argv.length < 3) {
  console.log('usage: validate.js FILE.yaml...');
  failed = true;
}
process.exit(failed ? 1 : 0);
