'use strict';
// The schema validator accepts valid objects and rejects broken ones: unknown fields, wrong
// types, bad enum values, duplicate list-map keys, unknown kinds, duplicate YAML keys.
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { validateObject, parseDocuments } = require('../lib/k8s-schema');

const fixture = (name) => parseDocuments(
  fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf8'), name);

test('valid Service, Job and JobSet pass', () => {
  for (const object of fixture('valid.yaml')) assert.deepStrictEqual(validateObject(object), []);
});

test('a Job with an unknown field, a wrong type and a bad enum fails', () => {
  const [job] = fixture('broken-job.yaml');
  const errors = validateObject(job);
  assert.ok(errors.includes('spec.template.spec.containers[0].gpus: unknown field (not in Container)'),
    errors.join('\n'));
  assert.ok(errors.includes('spec.completions: must be integer'), errors.join('\n'));
  assert.ok(errors.some((e) => e.startsWith('spec.template.spec.containers[0].imagePullPolicy: ' +
    'must be equal to one of the allowed values')), errors.join('\n'));
});

test('a JobSet is checked against the CRD schema and its Job template as batch/v1', () => {
  const [jobSet] = fixture('broken-jobset.yaml');
  const errors = validateObject(jobSet);
  for (const expected of [
    'spec.restartPolicy: unknown field',
    'spec.network.enableDNSHostnames: must be boolean',
    'spec.successPolicy.operator: must be equal to one of the allowed values ["All","Any"]',
    'spec.replicatedJobs: duplicate entry with name = ["workers"]',
    'spec.replicatedJobs[0].template.spec.template.spec.containers[0].argz: unknown field (not in Container)',
  ]) {
    assert.ok(errors.includes(expected), `missing "${expected}" in:\n${errors.join('\n')}`);
  }
});

test('unknown fields are found at every depth', () => {
  const [, job] = fixture('valid.yaml');
  job.extra = 1;
  job.metadata.lables = { a: 'b' };
  job.spec.template.spec.volumes = [{ name: 'v', emptyDir: { medium: 'Memory', sizeLimt: '1Gi' } }];
  assert.deepStrictEqual(validateObject(job).sort(), [
    'extra: unknown field (not in Job)',
    'metadata.lables: unknown field (not in ObjectMeta)',
    'spec.template.spec.volumes[0].emptyDir.sizeLimt: unknown field (not in EmptyDirVolumeSource)',
  ]);
});

test('unknown kinds and missing names are errors', () => {
  assert.deepStrictEqual(validateObject({ apiVersion: 'example.com/v1', kind: 'Thing',
    metadata: { name: 'x' } }), ['example.com/v1 Thing: no schema for this apiVersion']);
  assert.deepStrictEqual(validateObject({ apiVersion: 'v1', kind: 'Nope', metadata: { name: 'x' } }),
    ['v1 Nope: no schema for this kind']);
  assert.ok(validateObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {} })
    .includes('metadata.name: required'));
});

test('duplicate YAML keys are rejected', () => {
  assert.throws(() => parseDocuments('a: 1\na: 2\n', 'dup.yaml'), /dup.yaml: .*unique/i);
});

test('validate.js exits 1 when a file holds an invalid object, 0 when all are valid', () => {
  const run = (...names) => spawnSync(process.execPath, [path.join(__dirname, '..', 'validate.js'),
    ...names.map((n) => path.join(__dirname, 'fixtures', n))], { encoding: 'utf8' });
  const mixed = run('broken-job.yaml', 'valid.yaml');
  assert.strictEqual(mixed.status, 1, mixed.stdout);
  assert.match(mixed.stdout, /FAIL broken-job: 3 error\(s\) in 1 objects/);
  assert.match(mixed.stdout, /ok {3}valid: 3 objects valid/);
  const valid = run('valid.yaml');
  assert.strictEqual(valid.status, 0, valid.stdout);
});
